"""Recommendations with a memory: every decision stored, replayable, overridable.

Sits between the servicers and the store. A command is completed (as-of date
filled in, the stored evidence public on that date added), decided through the
Recommender, and stored as a typed record with everything needed to reproduce
it: the meeting (serialised once), the request as evaluated, the policy
version, the engine version and the response bytes, in one transaction.
A meeting under several policies (``recommend_many``) is decided in one pass
and stored as one decision per policy, in one transaction.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from dataclasses import dataclass

from proxyvote import ENGINE_VERSION
from proxyvote.app.evidence_store import EvidenceStore
from proxyvote.app.policy_catalog import CatalogEntry, PolicyCatalog
from proxyvote.core.model import MeetingDecision, RecommendCommand
from proxyvote.core.recommender import Recommender
from proxyvote.errors import DeadlineExceeded, FieldViolation, InvalidArgument, NotFound
from proxyvote.store import DecisionRecord, MeetingRow, StoredDecision, StoredOverride
from proxyvote.store.decisions import DecisionRepository
from proxyvote.v1 import recommendation_service_pb2 as rs
from proxyvote.wire import convert


@dataclass(frozen=True)
class Recorded:
    """A stored decision, the response that was stored for it (decision id set), and the
    meeting's bytes as stored (serialised once; a caller storing the meeting again reuses them)."""

    decision_id: str
    decision: MeetingDecision
    response: rs.RecommendResponse
    meeting_body: bytes = b""


@dataclass(frozen=True)
class Replay:
    identical: bool
    stored_engine_version: str
    differing_item_ids: tuple[str, ...]
    response: rs.RecommendResponse
    decision: MeetingDecision
    overrides: tuple[StoredOverride, ...]


def _fields(policy_refs: tuple[str, ...]) -> tuple[tuple[str, str], ...]:
    """Each reference with the request field it came from; at least one is required."""
    if not policy_refs:
        raise InvalidArgument([FieldViolation("policies", "must name at least one policy")])
    return tuple((ref, f"policies[{i}]") for i, ref in enumerate(policy_refs))


def _check_deadline(deadline: float | None, when: str) -> None:
    if deadline is not None and time.monotonic() >= deadline:
        raise DeadlineExceeded(f"the call's deadline passed {when}")


class DecisionLog:
    def __init__(
        self,
        recommender: Recommender,
        catalog: PolicyCatalog,
        decisions: DecisionRepository,
        evidence: EvidenceStore,
    ):
        self.recommender = recommender
        self.catalog = catalog
        self.decisions = decisions
        self.evidence = evidence

    def effective(self, tenant: str, command: RecommendCommand, today: dt.date) -> RecommendCommand:
        """The command as it will be evaluated: as-of date filled in, and the stored evidence
        about the issuer that was public on that date added to what the caller sent.

        Storing this is what makes a decision replayable: it holds every input.
        """
        as_of = command.as_of or today
        sent = {r.evidence_id for r in command.evidence}
        visible = self.evidence.visible(tenant, command.meeting.issuer, as_of)
        stored = tuple(r for r in visible if r.evidence_id not in sent)
        return dataclasses.replace(command, as_of=as_of, evidence=command.evidence + stored)

    def decide(self, tenant: str, command: RecommendCommand, today: dt.date) -> MeetingDecision:
        """Decided as Recommend decides (stored evidence included), but not stored."""
        return self.recommender.decide(self.effective(tenant, command, today), today, tenant)

    def decide_many(
        self, tenant: str, command: RecommendCommand, policy_refs: tuple[str, ...], today: dt.date
    ) -> tuple[MeetingDecision, ...]:
        """Decided as ``recommend_many`` decides (one pass, stored evidence included), not stored."""
        return self._decide(tenant, command, _fields(policy_refs), today)[2]

    def recommend(
        self, tenant: str, command: RecommendCommand, today: dt.date, deadline: float | None = None
    ) -> Recorded:
        """Decides and stores; ``deadline`` (a time.monotonic() value) past which nothing is
        decided or stored: the caller has given up."""
        return self._record(tenant, command, ((command.policy, "policy"),), today, deadline)[0]

    def recommend_many(
        self,
        tenant: str,
        command: RecommendCommand,
        policy_refs: tuple[str, ...],
        today: dt.date,
        deadline: float | None = None,
    ) -> tuple[Recorded, ...]:
        """The meeting of ``command`` decided under each policy of ``policy_refs`` (its own
        ``policy`` is not used), one stored decision per policy, in that order.

        The effective command is computed once, each item classified once and each
        policy evaluated once per item (``Recommender.decide_many``); the meeting is
        serialised once and every decision is stored in one transaction, each as an
        ordinary decision record (its own id, its request naming its one policy), so
        each replays by itself. A policy named twice, or two references to one
        version, is INVALID_ARGUMENT on ``policies[i]``; an unknown one NOT_FOUND.
        """
        return self._record(tenant, command, _fields(policy_refs), today, deadline)

    def _record(
        self,
        tenant: str,
        command: RecommendCommand,
        refs: tuple[tuple[str, str], ...],
        today: dt.date,
        deadline: float | None,
    ) -> tuple[Recorded, ...]:
        """Decides under each (reference, field) and stores every decision in one group write."""
        _check_deadline(deadline, "before it was decided")
        command, entries, decisions = self._decide(tenant, command, refs, today)
        _check_deadline(deadline, "before it was stored")
        meeting = command.meeting
        body = convert.meeting_to_proto(meeting).SerializeToString(deterministic=True)
        row = MeetingRow(
            meeting_id=meeting.meeting_id,
            issuer_name=meeting.issuer.name,
            ticker=meeting.issuer.ticker,
            meeting_date=meeting.meeting_date,
            body=body,
            items=tuple(
                {
                    "item_id": item.item_id,
                    "number": item.number,
                    "title": item.title,
                    "proponent_kind": item.proponent_kind,
                    "board_recommendation": item.board_recommendation,
                }
                for item in meeting.items
            ),
        )
        responses = tuple(convert.decision_to_proto(d, command.request_id) for d in decisions)
        stored = self.decisions.append_many(
            tuple(
                DecisionRecord(
                    owner=tenant,
                    meeting=row,
                    policy_pk=entry.stored.pk,
                    policy_hash=entry.policy.content_hash,
                    engine_version=ENGINE_VERSION,
                    as_of=decision.as_of,
                    # The request as evaluated under this one policy: what replay reads back.
                    request=convert.request_bytes(
                        body, command if ref == command.policy else dataclasses.replace(command, policy=ref)
                    ),
                    response=response.SerializeToString(deterministic=True),
                )
                for (ref, _), entry, decision, response in zip(
                    refs, entries, decisions, responses, strict=True
                )
            ),
            deadline,
        )
        recorded = []
        for s, decision, response in zip(stored, decisions, responses, strict=True):
            response.decision_id = s.decision_id
            recorded.append(Recorded(s.decision_id, decision, response, body))
        return tuple(recorded)

    def _decide(
        self, tenant: str, command: RecommendCommand, refs: tuple[tuple[str, str], ...], today: dt.date
    ) -> tuple[RecommendCommand, tuple[CatalogEntry, ...], tuple[MeetingDecision, ...]]:
        """The effective command, each (reference, field) resolved, and the one-pass decisions."""
        command = self.effective(tenant, command, today)
        entries = self._entries(tenant, refs)
        decisions = self.recommender.decide_many(
            command.meeting, tuple(e.policy for e in entries), command.as_of, command.evidence
        )
        return command, entries, decisions

    def _entries(self, tenant: str, refs: tuple[tuple[str, str], ...]) -> tuple[CatalogEntry, ...]:
        """Each reference resolved in the catalog; two resolving to one version are refused."""
        entries: list[CatalogEntry] = []
        seen: dict[int, int] = {}
        for i, (ref, field) in enumerate(refs):
            entry = self.catalog.entry(tenant, ref, field)
            if entry.stored.pk in seen:
                first = refs[seen[entry.stored.pk]][1]
                raise InvalidArgument(
                    [
                        FieldViolation(
                            field,
                            f"names {entry.policy.id}@{entry.policy.version} again (as {first} does)",
                        )
                    ]
                )
            seen[entry.stored.pk] = i
            entries.append(entry)
        return tuple(entries)

    def get(self, tenant: str, decision_id: str) -> tuple[StoredDecision, list[StoredOverride]]:
        return self.decisions.get(tenant, decision_id), self.decisions.overrides(tenant, decision_id)

    def replay(self, tenant: str, decision_id: str) -> Replay:
        """Decides again from the stored inputs, under the stored policy version."""
        stored = self.decisions.get(tenant, decision_id)
        command = convert.recommend_command(rs.RecommendRequest.FromString(stored.request), "stored.request")
        policy = self.catalog.by_pk(stored.policy_pk).policy
        decision = self.recommender.decide_under(command.meeting, policy, stored.as_of, command.evidence)
        response = convert.decision_to_proto(decision, command.request_id)
        identical = response.SerializeToString(deterministic=True) == stored.response
        differing: tuple[str, ...] = ()
        if not identical:
            before = rs.RecommendResponse.FromString(stored.response)
            old = {r.item_id: r for r in before.recommendations}
            differing = tuple(r.item_id for r in response.recommendations if old.get(r.item_id) != r)
        overrides = tuple(self.decisions.overrides(tenant, decision_id))
        return Replay(identical, stored.engine_version, differing, response, decision, overrides)

    def verify(self, tenant: str):
        return self.decisions.verify_chain(tenant)

    def override(
        self, tenant: str, decision_id: str, item_id: str, vote: str, reason: str, analyst: str
    ) -> StoredOverride:
        stored = self.decisions.get(tenant, decision_id)
        items = {r.item_id for r in rs.RecommendResponse.FromString(stored.response).recommendations}
        if item_id not in items:
            raise NotFound("item", f"{item_id} in {decision_id}")
        return self.decisions.add_override(tenant, decision_id, item_id, vote, reason, analyst)
