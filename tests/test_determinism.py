"""The same input gives the same bytes, however warm or busy the service is.

Every comparison here is between instances that were built separately and
start empty (classification cache, each policy's memo of outcomes and rule
candidates), so a cache that returned a wrong or stale value would show up as
different bytes rather than be compared with itself.

How we know they can fail: with the engine's memo key patched (in a scratch
script, not committed) to forget the board's recommendation, the issuer and
the evidence, the first three tests fail.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from proxyvote.app.files import evidence_files, load_evidence, load_recommender
from proxyvote.app.wiring import build_app
from proxyvote.core.model import RecommendCommand
from proxyvote.settings import Settings, repository_root
from proxyvote.store.schema import upgrade
from proxyvote.wire import convert

EXAMPLES = repository_root() / "examples"
TODAY = dt.date(2026, 11, 23)

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import workload  # noqa: E402 (bench/ is put on the path above)


def fresh_recommender():
    """A recommender read from the policy files, nothing decided or classified yet."""
    recommender = load_recommender(Settings.load({}).policy_dir)
    recommender.clear_caches()
    for policy in recommender.policies.all():
        assert len(policy.outcomes) == 0 and policy._candidates == {}
    return recommender


def example_commands() -> list[RecommendCommand]:
    """Every example meeting under every bundled policy, with the example evidence,
    as of the meeting's date and as of a later date (every record public)."""
    meetings = [
        convert.meeting_from_json(path.read_text(encoding="utf-8"))
        for path in sorted((EXAMPLES / "meetings").glob("*.json"))
    ]
    evidence = load_evidence(evidence_files(EXAMPLES / "evidence"))
    policies = [f"{p.id}@{p.version}" for p in load_recommender(Settings.load({}).policy_dir).policies.all()]
    assert len(meetings) >= 3 and len(policies) >= 3 and evidence
    return [
        RecommendCommand(
            meeting, policy, as_of, evidence, request_id=f"{meeting.meeting_id}/{policy}/{as_of}"
        )
        for meeting in meetings
        for policy in policies
        for as_of in (meeting.meeting_date, None)
    ]


def synthetic_commands() -> list[RecommendCommand]:
    """The benchmark's synthetic meetings (many issuers, cards, proponents and dates)."""
    evidence = workload.evidence_records()
    return [
        RecommendCommand(meeting, workload.POLICY, view.as_of, evidence, request_id=meeting.meeting_id)
        for meeting, view in workload.engine_workload()
    ]


def response_bytes(recommender, command: RecommendCommand) -> bytes:
    decision = recommender.decide(command, TODAY)
    return convert.decision_to_proto(decision, command.request_id).SerializeToString(deterministic=True)


def test_two_fresh_recommenders_give_identical_bytes_for_every_example_and_policy():
    commands = example_commands()
    first, second = fresh_recommender(), fresh_recommender()

    forwards = [response_bytes(first, c) for c in commands]
    # The other in reverse order: its memo fills in another order, which must not matter.
    backwards = [response_bytes(second, c) for c in reversed(commands)][::-1]

    assert len(set(forwards)) == len(commands)  # every case is a different answer
    assert forwards == backwards


def test_a_warm_recommender_answers_as_a_fresh_one():
    commands = example_commands()
    warm = fresh_recommender()
    for command in commands + synthetic_commands():
        warm.decide(command, TODAY)

    assert [response_bytes(warm, c) for c in commands] == [
        response_bytes(fresh_recommender(), c) for c in commands
    ]


def test_threads_deciding_different_meetings_at_once_give_the_sequential_bytes():
    commands = example_commands() + synthetic_commands()
    sequential = [response_bytes(fresh_recommender(), c) for c in commands]

    shared = fresh_recommender()
    threads = 8
    start = threading.Barrier(threads)

    def decide_share(offset: int) -> list[tuple[int, bytes]]:
        start.wait()  # every thread begins at once, on the same cold memo
        return [(i, response_bytes(shared, commands[i])) for i in range(offset, len(commands), threads)]

    with ThreadPoolExecutor(threads) as pool:
        results = dict(pair for share in pool.map(decide_share, range(threads)) for pair in share)

    assert [results[i] for i in range(len(commands))] == sequential


@pytest.fixture
def database_url(tmp_path):
    url = f"sqlite:///{tmp_path}/proxyvote.db"
    upgrade(url)
    return url


def test_decisions_stored_by_one_app_replay_identically_in_a_freshly_built_app(database_url):
    settings = Settings.load({}, database_url=database_url)
    # Half the commands send no evidence: the app adds the stored (shared) evidence, which the
    # replay must find in the stored request. The other half send it and leave as_of to today.
    every = example_commands()
    commands = [dataclasses.replace(c, evidence=()) for c in every if c.as_of] + [
        c for c in every if not c.as_of
    ]

    first = build_app(settings)
    try:
        tenant, _ = first.store.tenants.create("determinism")
        recorded = [first.log.recommend(tenant, command, TODAY) for command in commands]
    finally:
        first.close()

    second = build_app(settings)  # the same database; nothing decided, classified or compiled yet
    try:
        assert second.recommender is not first.recommender
        replays = [second.log.replay(tenant, r.decision_id) for r in recorded]
    finally:
        second.close()

    assert [r.differing_item_ids for r in replays] == [()] * len(recorded)
    assert all(r.identical for r in replays)
    assert [r.response.recommendations for r in replays] == [r.response.recommendations for r in recorded]
