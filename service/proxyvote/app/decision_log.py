"""Recommendations with a memory: every decision stored, replayable, overridable.

Sits between the servicers and the store: a Recommend is decided through the
Recommender, then stored with everything needed to reproduce it (the request
with its as-of date filled in, the policy version, the engine version, the
evidence it carried and the response bytes) in one transaction.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from proxyvote import ENGINE_VERSION
from proxyvote.app.evidence_store import EvidenceStore
from proxyvote.app.policy_catalog import PolicyCatalog
from proxyvote.core.model import MeetingDecision
from proxyvote.core.recommender import Recommender
from proxyvote.errors import InvalidArgument, NotFound
from proxyvote.store import Store, StoredDecision, StoredOverride
from proxyvote.v1 import recommendation_service_pb2 as rs
from proxyvote.wire import convert


@dataclass(frozen=True)
class Replay:
    identical: bool
    stored_engine_version: str
    differing_item_ids: tuple[str, ...]
    response: rs.RecommendResponse
    decision: MeetingDecision
    overrides: tuple[StoredOverride, ...]


class DecisionLog:
    def __init__(
        self, recommender: Recommender, catalog: PolicyCatalog, store: Store, evidence: EvidenceStore
    ):
        self.recommender = recommender
        self.catalog = catalog
        self.store = store
        self.evidence = evidence

    def effective_request(
        self, tenant: str, request: rs.RecommendRequest, today: dt.date
    ) -> rs.RecommendRequest:
        """The request as it will be evaluated: as-of date filled in, and the stored evidence
        about the issuer that was public on that date added to what the caller sent.

        Storing this request is what makes a decision replayable: it holds every input.
        A request that does not validate is returned as it is, to fail whole in the recommender.
        """
        try:
            meeting = convert.meeting_from_proto(request.meeting) if request.HasField("meeting") else None
            as_of = convert.parse_as_of(request.as_of) or today
        except InvalidArgument:
            return request
        effective = rs.RecommendRequest()
        effective.CopyFrom(request)
        effective.as_of = as_of.isoformat()
        if meeting is not None:
            sent = {r.evidence_id for r in request.evidence}
            effective.evidence.extend(
                m for m in self.evidence.visible(tenant, meeting.issuer, as_of) if m.evidence_id not in sent
            )
        return effective

    def recommend(self, tenant: str, request: rs.RecommendRequest, today: dt.date) -> rs.RecommendResponse:
        request = self.effective_request(tenant, request, today)
        decision = self.recommender.decide_request(request, today, tenant)
        response = convert.decision_to_proto(decision, request.request_id)
        entry = self.catalog.entry(tenant, f"{decision.policy.id}@{decision.policy.version}")
        meeting = decision.meeting
        stored = self.store.append_decision(
            tenant,
            {
                "meeting_id": meeting.meeting_id,
                "issuer_name": meeting.issuer.name,
                "ticker": meeting.issuer.ticker,
                "meeting_date": meeting.meeting_date,
                "body": request.meeting.SerializeToString(deterministic=True),
                "items": [
                    {
                        "item_id": item.item_id,
                        "number": item.number,
                        "title": item.title,
                        "proponent_kind": item.proponent_kind,
                        "board_recommendation": item.board_recommendation,
                    }
                    for item in meeting.items
                ],
            },
            entry.stored.pk,
            entry.policy.content_hash,
            ENGINE_VERSION,
            decision.as_of,
            request.SerializeToString(deterministic=True),
            response.SerializeToString(deterministic=True),
        )
        response.decision_id = stored.decision_id
        return response

    def get(self, tenant: str, decision_id: str) -> tuple[StoredDecision, list[StoredOverride]]:
        return self.store.decision(tenant, decision_id), self.store.overrides(tenant, decision_id)

    def replay(self, tenant: str, decision_id: str) -> Replay:
        """Decides again from the stored inputs, under the stored policy version."""
        stored = self.store.decision(tenant, decision_id)
        request = rs.RecommendRequest.FromString(stored.request)
        policy = self.catalog.by_pk(stored.policy_pk).policy
        decision = self.recommender.decide_under(
            convert.meeting_from_proto(request.meeting),
            policy,
            stored.as_of,
            convert.evidence_from_proto(request.evidence),
        )
        response = convert.decision_to_proto(decision, request.request_id)
        identical = response.SerializeToString(deterministic=True) == stored.response
        differing: tuple[str, ...] = ()
        if not identical:
            before = rs.RecommendResponse.FromString(stored.response)
            old = {r.item_id: r for r in before.recommendations}
            differing = tuple(r.item_id for r in response.recommendations if old.get(r.item_id) != r)
        overrides = tuple(self.store.overrides(tenant, decision_id))
        return Replay(identical, stored.engine_version, differing, response, decision, overrides)

    def verify(self, tenant: str):
        return self.store.verify_chain(tenant)

    def override(
        self, tenant: str, decision_id: str, item_id: str, vote: str, reason: str, analyst: str
    ) -> StoredOverride:
        stored = self.store.decision(tenant, decision_id)
        items = {r.item_id for r in rs.RecommendResponse.FromString(stored.response).recommendations}
        if item_id not in items:
            raise NotFound("item", f"{item_id} in {decision_id}")
        return self.store.add_override(tenant, decision_id, item_id, vote, reason, analyst)
