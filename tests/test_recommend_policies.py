"""One meeting under several policies: RecommendationService.RecommendPolicies and
DecisionLog.recommend_many (one pass, one stored decision per policy)."""

from __future__ import annotations

import grpc
import pytest
from grpc_status import rpc_status
from proxyvote.core.recommender import Recommender
from proxyvote.v1 import decision_service_pb2 as ds
from proxyvote.v1 import decision_service_pb2_grpc as ds_grpc
from proxyvote.v1 import recommendation_service_pb2 as rs
from proxyvote.v1 import recommendation_service_pb2_grpc as rs_grpc

from tests.conftest import TODAY, bad_request, bearer, example_evidence, example_meeting, meeting_message

BUNDLED = ("human-rights-esg", "governance-baseline", "board-aligned")


@pytest.fixture
def stubs(running_server):
    with grpc.insecure_channel(running_server.address) as channel:
        yield (
            rs_grpc.RecommendationServiceStub(channel),
            ds_grpc.DecisionServiceStub(channel),
            bearer(running_server.key),
        )


def policies_request(*policies: str) -> rs.RecommendPoliciesRequest:
    return rs.RecommendPoliciesRequest(
        meeting=meeting_message(), policies=policies, as_of="2020-05-20", request_id="r-many"
    )


def test_one_stored_decision_per_policy_in_request_order_each_replaying_identical(stubs, running_server):
    recommend, decisions, metadata = stubs
    reply = recommend.RecommendPolicies(policies_request(*BUNDLED), metadata=metadata, timeout=60)

    assert [r.policy.id for r in reply.responses] == list(BUNDLED)
    ids = [r.decision_id for r in reply.responses]
    assert all(ids) and len(set(ids)) == 3
    for response in reply.responses:
        assert response.request_id == "r-many"
        assert len(response.recommendations) == len(meeting_message().items)
        replay = decisions.ReplayDecision(
            ds.ReplayDecisionRequest(decision_id=response.decision_id), metadata=metadata, timeout=60
        )
        assert replay.identical, response.policy.id
        stored = decisions.GetDecision(
            ds.GetDecisionRequest(decision_id=response.decision_id), metadata=metadata, timeout=60
        ).decision
        # Each stored request names its one policy: it is an ordinary decision.
        assert stored.request.policy == response.policy.id
        assert stored.policy.id == response.policy.id
    # Stored together, in one group: consecutive in the tenant's chain, and the chain verifies.
    seqs = [
        decisions.GetDecision(
            ds.GetDecisionRequest(decision_id=i), metadata=metadata, timeout=60
        ).decision.chain_seq
        for i in ids
    ]
    assert seqs == list(range(seqs[0], seqs[0] + 3))
    assert decisions.VerifyAuditLog(ds.VerifyAuditLogRequest(), metadata=metadata, timeout=60).ok
    # One meeting row for the three.
    assert len({d.meeting_id for d in running_server.app.store.decisions.all(running_server.tenant)}) == 1


def test_the_policies_decision_equals_a_single_recommend_under_each_policy(stubs):
    """Differential: one pass under N policies gives what N single Recommend calls give, item by item."""
    recommend, _, metadata = stubs
    many = recommend.RecommendPolicies(
        rs.RecommendPoliciesRequest(
            meeting=meeting_message(),
            policies=BUNDLED,
            as_of="2020-05-20",
            evidence=[],
            request_id="same",
        ),
        metadata=metadata,
        timeout=60,
    )
    for policy, combined in zip(BUNDLED, many.responses, strict=True):
        single = recommend.Recommend(
            rs.RecommendRequest(
                meeting=meeting_message(), policy=policy, as_of="2020-05-20", request_id="same"
            ),
            metadata=metadata,
            timeout=60,
        )
        assert combined.decision_id != single.decision_id
        assert len(combined.recommendations) == len(single.recommendations)
        for a, b in zip(combined.recommendations, single.recommendations, strict=True):
            assert a == b, (policy, a.item_id)
        combined.ClearField("decision_id")
        single.ClearField("decision_id")
        assert combined.SerializeToString(deterministic=True) == single.SerializeToString(deterministic=True)
    # The policies differ somewhere, so the comparison above compared something.
    votes = {tuple(r.vote for r in response.recommendations) for response in many.responses}
    assert len(votes) > 1


@pytest.mark.parametrize(
    ("policies", "field"),
    [
        ((), "policies"),
        (("human-rights-esg", "board-aligned", "human-rights-esg"), "policies[2]"),
        (("board-aligned", " "), "policies[1]"),
        # Two names of one version (the latest of human-rights-esg is version 3).
        (("human-rights-esg", "human-rights-esg@3"), "policies[1]"),
    ],
)
def test_empty_or_duplicate_policies_are_invalid_argument_naming_the_field(
    stubs, running_server, policies, field
):
    recommend, _, metadata = stubs
    with pytest.raises(grpc.RpcError) as raised:
        recommend.RecommendPolicies(policies_request(*policies), metadata=metadata, timeout=60)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = bad_request(rpc_status.from_call(raised.value)).field_violations
    assert [v.field for v in violations] == [field]
    assert running_server.app.store.decisions.all(running_server.tenant) == []  # nothing stored


def test_an_unknown_policy_is_not_found_and_nothing_is_stored(stubs, running_server):
    recommend, _, metadata = stubs
    with pytest.raises(grpc.RpcError) as raised:
        recommend.RecommendPolicies(
            policies_request("human-rights-esg", "no-such-policy"), metadata=metadata, timeout=60
        )
    assert raised.value.code() == grpc.StatusCode.NOT_FOUND
    assert "no-such-policy" in raised.value.details()
    assert running_server.app.store.decisions.all(running_server.tenant) == []


def test_without_a_key_it_is_unauthenticated(stubs):
    recommend, _, _ = stubs
    with pytest.raises(grpc.RpcError) as raised:
        recommend.RecommendPolicies(policies_request(*BUNDLED), timeout=60)
    assert raised.value.code() == grpc.StatusCode.UNAUTHENTICATED


# --- The decision log: each item classified once across the policies ---


@pytest.fixture
def classify_calls(monkeypatch):
    """Counts Recommender.classify calls (cache hits included: one call is one classification asked for)."""
    calls: list[str] = []
    original = Recommender.classify

    def counting(self, item):
        calls.append(item.item_id)
        return original(self, item)

    monkeypatch.setattr(Recommender, "classify", counting)
    return calls


def command_for(meeting, policy: str = ""):
    import datetime as dt

    from proxyvote.core.model import RecommendCommand

    return RecommendCommand(meeting, policy, dt.date(2020, 5, 20), example_evidence(), "r")


def test_recommend_many_classifies_each_item_once_across_policies(sqlite_app, classify_calls):
    tenant, _ = sqlite_app.store.tenants.create("t")
    meeting = example_meeting()
    recorded = sqlite_app.log.recommend_many(tenant, command_for(meeting), BUNDLED, TODAY)
    assert len(recorded) == 3
    assert sorted(classify_calls) == sorted(item.item_id for item in meeting.items)

    # The same three decisions one policy at a time ask three times as often: what the
    # count above would show if each policy re-classified.
    classify_calls.clear()
    singles = [sqlite_app.log.recommend(tenant, command_for(meeting, p), TODAY) for p in BUNDLED]
    assert len(classify_calls) == 3 * len(meeting.items)
    for one, many in zip(singles, recorded, strict=True):
        assert one.decision == many.decision


def test_recommend_many_stores_the_meeting_once_and_each_decision_replays(sqlite_app):
    tenant, _ = sqlite_app.store.tenants.create("t")
    recorded = sqlite_app.log.recommend_many(tenant, command_for(example_meeting()), BUNDLED, TODAY)
    for r in recorded:
        replay = sqlite_app.log.replay(tenant, r.decision_id)
        assert replay.identical
        assert replay.decision == r.decision
    with sqlite_app.store.database.session() as session:
        from proxyvote.store.models import MeetingRecord

        assert session.query(MeetingRecord).count() == 1


def test_recommend_many_past_its_deadline_in_the_writer_queue_stores_none_of_them(sqlite_app, monkeypatch):
    import time

    from proxyvote.errors import DeadlineExceeded

    tenant, _ = sqlite_app.store.tenants.create("t")
    writer = sqlite_app.store.decisions._writer
    original = writer._write_batch

    def slow_batch(batch):
        time.sleep(0.3)  # the commit before this one takes long
        original(batch)

    monkeypatch.setattr(writer, "_write_batch", slow_batch)
    with pytest.raises(DeadlineExceeded):
        sqlite_app.log.recommend_many(
            tenant, command_for(example_meeting()), BUNDLED, TODAY, deadline=time.monotonic() + 0.1
        )
    assert sqlite_app.store.decisions.all(tenant) == []
    assert sqlite_app.store.decisions.queued() == 0
