"""Servicers driven through grpc_testing: conversion, codes and rich error details."""

from __future__ import annotations

import grpc
import pytest
from google.rpc import status_pb2
from proxyvote.v1 import decision_service_pb2 as ds
from proxyvote.v1 import (
    enums_pb2,
    memo_service_pb2,
    policy_service_pb2,
)
from proxyvote.v1 import (
    recommendation_service_pb2 as rs,
)

from .conftest import TODAY, bad_request, bearer, evidence_messages, meeting_message, servicers_under_test

RECOMMENDATION = rs.DESCRIPTOR.services_by_name["RecommendationService"]
POLICY = policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"]
MEMO = memo_service_pb2.DESCRIPTOR.services_by_name["MemoService"]


DECISION = ds.DESCRIPTOR.services_by_name["DecisionService"]


@pytest.fixture
def server(sqlite_app):
    """The app's own list of services (proxyvote.api.services) behind grpc_testing."""
    app = sqlite_app
    _, key = app.store.tenants.create("servicer-tests")
    testing = servicers_under_test(app)
    testing.metadata = bearer(key)
    return testing


def unary(server, service, method, request, metadata=None):
    metadata = server.metadata if metadata is None else metadata
    rpc = server.invoke_unary_unary(service.methods_by_name[method], metadata, request, None)
    response, trailing, code, details = rpc.termination()
    return response, dict(trailing), code, details


def violations(trailing) -> dict[str, str]:
    status = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
    return {v.field: v.description for v in bad_request(status).field_violations}


def test_recommend_decides_every_item_of_the_demo_meeting(server):
    request = rs.RecommendRequest(meeting=meeting_message(), policy="human-rights-esg", as_of="2020-05-20")
    response, _, code, _ = unary(server, RECOMMENDATION, "Recommend", request)
    assert code is grpc.StatusCode.OK
    assert len(response.recommendations) == len(request.meeting.items)
    by_id = {r.item_id: r for r in response.recommendations}
    for item_id, topic in (("6", "customer_due_diligence"), ("7", "facial_recognition")):
        r = by_id[item_id]
        assert r.vote == enums_pb2.FOR and r.against_management and r.topic == topic
        # Several categories where a filer might tick several; the rule's category leads.
        assert r.npx_categories[0] == enums_pb2.HUMAN_RIGHTS_OR_HUMAN_CAPITAL
        # Each category comes with the classifier's confidence, the leading one first.
        assert [c.npx_category for c in r.classification.confidences] == list(r.npx_categories)
        assert r.classification.confidences[0].confidence >= 0.5 and not r.classification.review_reason
    assert response.as_of == "2020-05-20" and response.policy.id == "human-rights-esg"


def test_as_of_defaults_to_the_servers_today(server):
    request = rs.RecommendRequest(meeting=meeting_message(), policy="board-aligned")
    response, _, code, _ = unary(server, RECOMMENDATION, "Recommend", request)
    assert code is grpc.StatusCode.OK and response.as_of == TODAY.isoformat()


def test_request_evidence_is_cited_with_its_details(server):
    request = rs.RecommendRequest(
        meeting=meeting_message(),
        policy="human-rights-esg",
        as_of="2020-05-20",
        evidence=evidence_messages(),
    )
    response, _, _, _ = unary(server, RECOMMENDATION, "Recommend", request)
    item6 = next(r for r in response.recommendations if r.item_id == "6")
    assert item6.strength == "strong" and "amzn-2020-05-cdd-no-action" in item6.cited_evidence_ids
    assert {e.evidence_id for e in response.evidence} >= set(item6.cited_evidence_ids)
    assert all(e.published <= "2020-05-20" for e in response.evidence)


@pytest.mark.parametrize(
    "mutate, field",
    [
        (lambda m: m.ClearField("items"), "meeting.items"),
        (lambda m: m.ClearField("issuer"), "meeting.issuer"),
        (lambda m: setattr(m.items[1], "item_id", m.items[0].item_id), "meeting.items[1].item_id"),
        (lambda m: setattr(m, "meeting_date", "27/05/2020"), "meeting.meeting_date"),
        (lambda m: m.items[0].proponent.Clear(), "meeting.items[0].proponent.kind"),
    ],
)
def test_bad_meetings_are_invalid_argument_naming_the_field(server, mutate, field):
    meeting = meeting_message()
    mutate(meeting)
    request = rs.RecommendRequest(meeting=meeting, policy="board-aligned")
    _, trailing, code, _ = unary(server, RECOMMENDATION, "Recommend", request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(trailing)


def test_every_violation_of_a_request_is_reported_at_once(server):
    meeting = meeting_message()
    meeting.ClearField("issuer")
    request = rs.RecommendRequest(meeting=meeting, policy="", as_of="yesterday")
    _, trailing, code, _ = unary(server, RECOMMENDATION, "Recommend", request)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    assert {"meeting.issuer", "policy", "as_of"} <= set(violations(trailing))


@pytest.mark.parametrize("policy", ["no-such-policy", "human-rights-esg@42"])
def test_unknown_policy_or_version_is_not_found(server, policy):
    request = rs.RecommendRequest(meeting=meeting_message(), policy=policy)
    _, _, code, details = unary(server, RECOMMENDATION, "Recommend", request)
    assert code is grpc.StatusCode.NOT_FOUND and policy.split("@")[0] in details


def test_stream_recommend_answers_each_request_and_survives_a_bad_one(server):
    method = RECOMMENDATION.methods_by_name["StreamRecommend"]
    rpc = server.invoke_stream_stream(method, server.metadata, None)
    bad = meeting_message()
    bad.ClearField("items")
    requests = [
        rs.RecommendRequest(meeting=meeting_message(), policy="board-aligned", request_id="a"),
        rs.RecommendRequest(meeting=bad, policy="board-aligned", request_id="b"),
        rs.RecommendRequest(
            meeting=meeting_message("amazon-2019-agm"), policy="human-rights-esg", request_id="c"
        ),
    ]
    for request in requests:
        rpc.send_request(rs.StreamRecommendRequest(request=request))
    rpc.requests_closed()
    responses = [rpc.take_response() for _ in requests]
    _, code, _ = rpc.termination()
    assert code is grpc.StatusCode.OK
    assert [r.request_id for r in responses] == ["a", "b", "c"]
    assert responses[0].HasField("response") and responses[2].HasField("response")
    assert responses[1].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert [v.field for v in responses[1].error.field_violations] == ["meeting.items"]


def test_list_policies_paginates(server):
    seen, token = [], ""
    while True:
        request = policy_service_pb2.ListPoliciesRequest(page_size=2, page_token=token)
        response, _, code, _ = unary(server, POLICY, "ListPolicies", request)
        assert code is grpc.StatusCode.OK
        seen.extend(p.name for p in response.policies)
        token = response.next_page_token
        if not token:
            break
    assert {"policies/human-rights-esg", "policies/board-aligned", "policies/governance-baseline"} <= set(
        seen
    )


def test_get_policy_by_name_and_version(server):
    response, _, code, _ = unary(
        server, POLICY, "GetPolicy", policy_service_pb2.GetPolicyRequest(name="human-rights-esg@3")
    )
    assert code is grpc.StatusCode.OK
    policy = response.policy
    assert policy.extends == "governance-baseline" and "hr-technology-risk-assessment" in policy.rule_ids
    assert "independent-chair" in policy.rule_ids and policy.source.startswith("#")
    assert policy.bundled and policy.parent == "governance-baseline@1" and policy.create_time


def test_validate_policy_returns_every_problem_with_its_line(server):
    source = (
        "id: x\nversion: 1\ndefault: {vote: REFER}\nrules:\n"
        "  - id: r\n    vote: PERHAPS\n    why: w\n    if: item.nope == 1\n"
    )
    response, _, code, _ = unary(
        server, POLICY, "ValidatePolicy", policy_service_pb2.ValidatePolicyRequest(source=source)
    )
    assert code is grpc.StatusCode.OK and not response.valid
    assert [(p.line, p.rule_id) for p in response.problems] == [(6, "r")]


def test_validate_policy_accepts_a_good_one_and_gives_its_hash(server):
    source = "id: ok\nversion: 1\nextends: governance-baseline\ndefault: {vote: REFER}\nrules: []\n"
    response, _, _, _ = unary(
        server, POLICY, "ValidatePolicy", policy_service_pb2.ValidatePolicyRequest(source=source)
    )
    assert response.valid and len(response.content_hash) == 64


def test_render_memo_returns_markdown(server):
    request = memo_service_pb2.RenderMemoRequest(
        meeting=meeting_message(), policy="human-rights-esg", as_of="2020-05-20"
    )
    response, _, code, _ = unary(server, MEMO, "RenderMemo", request)
    assert code is grpc.StatusCode.OK and response.content_type.startswith("text/markdown")
    text = response.content.decode()
    assert "human-rights-esg v3" in text and "## Votes against management" in text


def test_every_call_needs_a_known_api_key(server):
    request = rs.RecommendRequest(meeting=meeting_message(), policy="board-aligned")
    for metadata in ((), bearer("pvk_not-a-key"), (("authorization", "Basic abc"),)):
        _, _, code, _ = unary(server, RECOMMENDATION, "Recommend", request, metadata)
        assert code is grpc.StatusCode.UNAUTHENTICATED
