"""gRPC servicers: convert, call the core through Recommender, convert back."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from . import convert
from .errors import FieldViolation, InvalidArgument, PolicyInvalid, ProxyvoteError
from .grpc_errors import code_of, field_violations, unary
from .memo import MemoRenderer
from .recommender import Recommender
from .v1 import (
    memo_service_pb2,
    memo_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
)
from .v1 import (
    recommendation_service_pb2 as rs,
)
from .v1 import recommendation_service_pb2_grpc as rs_grpc

Clock = Callable[[], dt.date]


def utc_today() -> dt.date:
    return dt.datetime.now(dt.UTC).date()


class RecommendationServicer(rs_grpc.RecommendationServiceServicer):
    def __init__(self, recommender: Recommender, today: Clock = utc_today):
        self._recommender = recommender
        self._today = today

    @unary(rs.RecommendResponse)
    def Recommend(self, request, context):
        return self._recommender.recommend(request, self._today())

    def StreamRecommend(self, request_iterator, context):
        for message in request_iterator:
            request = message.request
            try:
                response = self._recommender.recommend(request, self._today())
            except ProxyvoteError as exc:
                yield rs.StreamRecommendResponse(
                    request_id=request.request_id,
                    error=rs.RequestError(
                        code=code_of(exc).value[0],
                        message=str(exc)[:2000],
                        field_violations=[
                            rs.FieldViolation(field=f, description=d) for f, d in field_violations(exc)
                        ],
                    ),
                )
                continue
            yield rs.StreamRecommendResponse(request_id=request.request_id, response=response)


class PolicyServicer(policy_service_pb2_grpc.PolicyServiceServicer):
    def __init__(self, recommender: Recommender):
        self._recommender = recommender

    @unary(policy_service_pb2.ListPoliciesResponse)
    def ListPolicies(self, request, context):
        policies, token = self._recommender.library.page(request.page_size, request.page_token)
        return policy_service_pb2.ListPoliciesResponse(
            policies=[convert.policy_to_proto(p) for p in policies], next_page_token=token
        )

    @unary(policy_service_pb2.GetPolicyResponse)
    def GetPolicy(self, request, context):
        policy = self._recommender.library.get(request.name, "name")
        return policy_service_pb2.GetPolicyResponse(policy=convert.policy_to_proto(policy))

    @unary(policy_service_pb2.ValidatePolicyResponse)
    def ValidatePolicy(self, request, context):
        if not request.source.strip():
            raise InvalidArgument([FieldViolation("source", "is required: a policy document")])
        library, taxonomy = self._recommender.library, self._recommender.taxonomy
        try:
            policy = library.check(request.source, request.filename or "<request>", taxonomy)
        except PolicyInvalid as exc:
            return policy_service_pb2.ValidatePolicyResponse(
                valid=False, problems=[convert.problem_to_proto(p) for p in exc.problems]
            )
        return policy_service_pb2.ValidatePolicyResponse(valid=True, content_hash=policy.content_hash)


class MemoServicer(memo_service_pb2_grpc.MemoServiceServicer):
    def __init__(self, recommender: Recommender, renderer: MemoRenderer, today: Clock = utc_today):
        self._recommender = recommender
        self._renderer = renderer
        self._today = today

    @unary(memo_service_pb2.RenderMemoResponse)
    def RenderMemo(self, request, context):
        if not request.HasField("meeting"):
            raise InvalidArgument([FieldViolation("meeting", "is required")])
        evidence = convert.evidence_from_proto(request.evidence)
        decision = self._recommender.decide(
            request.meeting, request.policy, request.as_of, evidence, self._today()
        )
        content, content_type = self._renderer.render(decision, request.format)
        return memo_service_pb2.RenderMemoResponse(content=content, content_type=content_type)
