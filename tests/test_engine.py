"""The engine: one decision per item, rule order, conditions, fall-through, traces."""

from __future__ import annotations

import datetime as dt

import pytest
from proxyvote.core.classify import classify_meeting
from proxyvote.core.engine import decide_meeting
from proxyvote.core.evidence import evidence_as_of
from proxyvote.core.model import BallotItem, EvidenceRecord, EvidenceSource, Issuer, Meeting
from proxyvote.core.policy import compile_policy, read_policy
from proxyvote.core.policy_library import PolicyLibrary

ISSUER = Issuer(name="Example Corp", ticker="EXC")
AS_OF = dt.date(2024, 5, 1)


def meeting(*items: BallotItem) -> Meeting:
    return Meeting("EXC-2024", ISSUER, dt.date(2024, 5, 20), tuple(items), "ANNUAL")


def item(title: str, kind: str = "SHAREHOLDER", board: str = "AGAINST", **kw) -> BallotItem:
    return BallotItem(
        item_id=kw.pop("item_id", "1"), title=title, proponent_kind=kind, board_recommendation=board, **kw
    )


def record(eid: str, published: str, topics, kind="CONTROVERSY", status="REPORTED") -> EvidenceRecord:
    return EvidenceRecord(
        evidence_id=eid,
        issuer_name="Example Corp",
        issuer_ticker="EXC",
        published=dt.date.fromisoformat(published),
        topics=tuple(topics),
        kind=kind,
        status=status,
        summary=f"summary of {eid}",
        sources=(EvidenceSource("Example Wire"),),
    )


def policy_from(text: str, recommender, parent=None):
    return compile_policy(read_policy(text, "test.yaml", recommender.taxonomy), parent)


def decide(recommender, policy, m: Meeting, records=(), as_of=AS_OF):
    view = evidence_as_of(records, m.issuer, as_of)
    return decide_meeting(m, classify_meeting(m, recommender.taxonomy), policy, view)


FR_STUDY = "Shareholder proposal requesting a report on risks of facial recognition sales to police"

STRENGTH_POLICY = """
id: strength-test
version: 1
default: {vote: REFER, why: undecided}
rules:
  - id: needs-controversy
    when: {topics: [facial_recognition]}
    if: controversies(item.topics, 2).size() > 0
    vote: FOR
    why: "Controversies: $cited"
  - id: fallback
    when: {topics: [facial_recognition]}
    vote: ABSTAIN
    why: No controversy could be established.
"""


def test_every_item_gets_exactly_one_decision_in_ballot_order(recommender):
    m = meeting(
        item("Elect Director Jane Roe", "MANAGEMENT", "FOR", item_id="1"),
        item(FR_STUDY, item_id="2"),
        item("Approve the transaction of other business", "MANAGEMENT", "FOR", item_id="3"),
    )
    d = decide(recommender, recommender.policies.get("human-rights-esg"), m)
    assert [r.item_id for r in d.recommendations] == ["1", "2", "3"]


def test_a_condition_needing_absent_evidence_falls_through_instead_of_holding(recommender):
    policy = policy_from(STRENGTH_POLICY, recommender)
    d = decide(recommender, policy, meeting(item(FR_STUDY)), records=())
    r = d.recommendations[0]
    assert (r.vote, r.rule_id) == ("ABSTAIN", "fallback")
    first = r.trace[0]
    assert first.rule_id == "needs-controversy" and first.outcome == "CONDITION_UNKNOWN"
    assert "evidence unavailable" in first.conditions[0].error


def test_evidence_published_after_the_as_of_date_is_invisible(recommender):
    policy = policy_from(STRENGTH_POLICY, recommender)
    later = record("late", "2024-06-01", ["facial_recognition"])
    d = decide(recommender, policy, meeting(item(FR_STUDY)), records=[later])
    r = d.recommendations[0]
    assert r.rule_id == "fallback"
    # Nothing was known about the issuer on the as-of date: not even that it is covered.
    assert r.trace[0].outcome == "CONDITION_UNKNOWN"
    assert "late" not in r.cited_evidence_ids and d.evidence == ()


def test_with_evidence_on_record_but_none_related_a_condition_is_false_not_unknown(recommender):
    policy = policy_from(STRENGTH_POLICY, recommender)
    other = record("plastics", "2023-01-01", ["plastics"])
    r = decide(recommender, policy, meeting(item(FR_STUDY)), records=[other]).recommendations[0]
    assert (r.rule_id, r.trace[0].outcome) == ("fallback", "CONDITION_FALSE")


def test_a_rule_cites_exactly_the_records_its_conditions_used(recommender):
    policy = policy_from(STRENGTH_POLICY, recommender)
    records = [
        record("recent", "2023-09-01", ["facial_recognition"]),
        record("too-old", "2020-01-01", ["facial_recognition"]),
        record("other-topic", "2023-10-01", ["plastics"]),
    ]
    r = decide(recommender, policy, meeting(item(FR_STUDY)), records=records).recommendations[0]
    assert (r.vote, r.rule_id) == ("FOR", "needs-controversy")
    assert r.cited_evidence_ids == ("recent",)
    assert "Controversies: Example Wire, 2023-09-01" in r.rationale
    values = dict(r.trace[0].conditions[0].values)
    assert values["evidence_used"] == '["recent"]'
    assert "facial_recognition" in values["item.topics"]


def test_child_rules_come_before_inherited_ones_and_redefinitions_replace_them(recommender):
    parent = recommender.policies.get("governance-baseline")
    child = policy_from(
        """
id: child
version: 1
extends: governance-baseline
default: {vote: REFER}
rules:
  - id: independent-chair
    when: {topics: [independent_chair]}
    vote: AGAINST
    why: This child opposes independent chair proposals.
""",
        recommender,
        parent,
    )
    ids = [r.id for r in child.rules]
    assert ids[0] == "independent-chair" and ids.count("independent-chair") == 1
    assert child.rules[0].policy_id == "child"
    assert child.content_hash != parent.content_hash
    r = decide(recommender, child, meeting(item("Require an Independent Board Chair"))).recommendations[0]
    assert (r.vote, r.against_management) == ("AGAINST", False)


def test_with_board_follows_the_board_and_refers_when_there_is_none(recommender):
    policy = recommender.policies.get("board-aligned")
    m = meeting(
        item("Ratify Deloitte & Touche LLP as Auditors", "MANAGEMENT", "FOR", item_id="a"),
        item("Report on Plastic Packaging", "SHAREHOLDER", "AGAINST", item_id="b"),
        item("Report on Plastic Packaging", "SHAREHOLDER", "NONE", item_id="c"),
    )
    votes = [
        (r.vote, r.against_management, r.needs_review) for r in decide(recommender, policy, m).recommendations
    ]
    assert votes == [("FOR", False, False), ("AGAINST", False, False), ("REFER", False, True)]


def test_against_is_cast_as_withhold_on_a_card_that_only_offers_withhold(recommender):
    policy = policy_from(
        """
id: oppose-directors
version: 1
default: {vote: REFER}
rules:
  - id: oppose
    when: {topics: [director_election]}
    vote: AGAINST
    why: Opposes.
""",
        recommender,
    )
    nominee = item("Elect Director Jane Roe", "MANAGEMENT", "FOR", vote_options=("FOR", "WITHHOLD"))
    r = decide(recommender, policy, meeting(nominee)).recommendations[0]
    assert (r.vote, r.against_management) == ("WITHHOLD", True)


def test_unplaced_items_keep_only_unconfident_guesses_and_need_review(recommender):
    r = decide(
        recommender,
        recommender.policies.get("human-rights-esg"),
        meeting(item("Zyxw qwerty frobnicate", "MANAGEMENT", "FOR")),
    ).recommendations[0]
    assert r.classification.source == "UNPLACED"
    # Without the model the item is OTHER; with it, the model's guesses, none of them confident.
    assert all(confidence < 0.35 for _, confidence in r.classification.confidences)
    assert (r.vote, r.needs_review) == ("REFER", True)
    assert "could not place" in r.review_reason


def test_decisions_carry_the_policy_id_version_and_hash(recommender):
    policy = recommender.policies.get("human-rights-esg")
    r = decide(recommender, policy, meeting(item(FR_STUDY))).recommendations[0]
    assert r.policy == policy.ref
    assert len(r.policy.content_hash) == 64


def test_the_same_input_gives_the_same_decision(recommender):
    policy = recommender.policies.get("human-rights-esg")
    records = [record("r1", "2023-09-01", ["facial_recognition"])]
    m = meeting(item(FR_STUDY))
    assert decide(recommender, policy, m, records) == decide(recommender, policy, m, records)


@pytest.mark.parametrize("name", ["board-aligned", "governance-baseline", "human-rights-esg"])
def test_bundled_policies_compile(recommender, name):
    assert isinstance(recommender.policies, PolicyLibrary)
    assert recommender.policies.get(name).rules


def test_concurrent_decisions_equal_sequential_ones(recommender):
    from concurrent.futures import ThreadPoolExecutor

    from proxyvote.v1 import recommendation_service_pb2 as rs

    from .conftest import TODAY, evidence_messages, meeting_message, recommend

    request = rs.RecommendRequest(
        meeting=meeting_message(), policy="human-rights-esg", as_of="2020-05-20", evidence=evidence_messages()
    )
    expected = recommend(recommender, request, TODAY).SerializeToString(deterministic=True)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: recommend(recommender, request, TODAY), range(64)))
    assert all(r.SerializeToString(deterministic=True) == expected for r in results)


NAMING_POLICY = """
id: naming-test
version: 1
default: {vote: REFER, why: Nothing decides this item.}
rules:
  - id: names-the-issuer
    when: {topics: [facial_recognition]}
    vote: FOR
    why: "$issuer should study the risk."
  - id: anonymous
    when: {topics: [independent_chair]}
    vote: FOR
    why: An independent chair oversees management.
"""


def test_outcomes_shared_across_issuers_still_name_each_issuer_where_the_rationale_does(recommender):
    policy = policy_from(NAMING_POLICY, recommender)
    other = Issuer(name="Other Holdings", ticker="OTH")
    items = (item(FR_STUDY, item_id="1"), item("Require an Independent Board Chair", item_id="2"))
    first = decide(recommender, policy, meeting(*items)).recommendations
    second_meeting = Meeting("OTH-2024", other, dt.date(2024, 5, 20), items, "ANNUAL")
    second = decide(recommender, policy, second_meeting).recommendations
    assert first[0].rationale == "Example Corp should study the risk."
    assert second[0].rationale == "Other Holdings should study the risk."
    # A rationale that names nobody is one outcome, shared by both meetings.
    assert first[1].outcome is second[1].outcome


def test_a_decided_meeting_leaves_nothing_behind_when_its_conditions_read_evidence(recommender):
    """The CEL context's functions close over the meeting's scope, and the CEL runtime's
    context is invisible to the cycle collector: a scope kept alive kept its evidence too."""
    import gc

    from proxyvote.core import engine

    policy = policy_from(STRENGTH_POLICY, recommender)
    records = [record(f"E{n}", "2024-01-10", ["facial_recognition"]) for n in range(3)]
    gc.collect()
    before = sum(isinstance(o, engine._Scope) for o in gc.get_objects())
    for n in range(5):
        policy.outcomes.clear()
        r = decide(recommender, policy, meeting(item(FR_STUDY, item_id=str(n))), records).recommendations[0]
        assert r.rule_id == "needs-controversy"
    del r
    gc.collect()
    assert sum(isinstance(o, engine._Scope) for o in gc.get_objects()) == before
