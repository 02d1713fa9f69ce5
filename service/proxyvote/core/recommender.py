"""The one way in: every front end (gRPC, CLI, backtests) decides through here.

Domain values in, domain values out. It looks the policy up, builds the
point-in-time evidence view, classifies each item once and runs the engine.
The caller supplies ``today`` (the default as-of date), so nothing below reads
a clock; the edges have validated and converted the request already.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Protocol

from proxyvote.core.bounded_cache import BoundedCache, classification_size
from proxyvote.core.classify import classify
from proxyvote.core.engine import decide_meeting
from proxyvote.core.evidence import evidence_as_of
from proxyvote.core.model import (
    BallotItem,
    Classification,
    EvidenceRecord,
    Meeting,
    MeetingDecision,
    RecommendCommand,
)
from proxyvote.core.policy import Policy
from proxyvote.core.taxonomy import Taxonomy

CLASSIFICATION_CACHE_BYTES = 64 << 20


class PolicySource(Protocol):
    """Where policies come from: a PolicyLibrary (files) or the app's PolicyCatalog (the store)."""

    def get(self, reference: str, field: str = "policy", tenant: str = "") -> Policy: ...


@dataclass(frozen=True)
class Recommender:
    policies: PolicySource
    taxonomy: Taxonomy
    classification_cache_bytes: int = CLASSIFICATION_CACHE_BYTES

    def __post_init__(self):
        # Classification is a pure function of the item's wording and proponent:
        # items repeat across meetings, seasons and the policies applied to one
        # meeting, so each distinct wording is classified once, within a budget of bytes.
        object.__setattr__(
            self, "_classifications", BoundedCache(self.classification_cache_bytes, classification_size)
        )

    def classify(self, item: BallotItem) -> Classification:
        key = (item.title, item.text, item.proponent_kind, item.proponent_name, item.category)
        found = self._classifications.get(key)
        if found is None:
            found = classify(
                BallotItem(
                    "",
                    item.title,
                    item.proponent_kind,
                    text=item.text,
                    proponent_name=item.proponent_name,
                    category=item.category,
                ),
                self.taxonomy,
            )
            self._classifications.put(key, found, len(item.title) + len(item.text) + len(item.proponent_name))
        return found

    def policy(self, reference: str, tenant: str = "", field: str = "policy") -> Policy:
        return self.policies.get(reference, field, tenant)

    def decide(self, command: RecommendCommand, today: dt.date, tenant: str = "") -> MeetingDecision:
        """The decision of a command under the policy it names, as of its date (else ``today``)."""
        policy = self.policy(command.policy, tenant)
        return self.decide_under(command.meeting, policy, command.as_of or today, command.evidence)

    def decide_under(
        self, meeting: Meeting, policy: Policy, as_of: dt.date, evidence: tuple[EvidenceRecord, ...]
    ) -> MeetingDecision:
        """The decision under an already resolved policy (a replay gives the stored version)."""
        view = evidence_as_of(evidence, meeting.issuer, as_of)
        classifications = tuple(self.classify(item) for item in meeting.items)
        return decide_meeting(meeting, classifications, policy, view)

    def decide_many(
        self,
        meeting: Meeting,
        policies: tuple[Policy, ...],
        as_of: dt.date,
        evidence: tuple[EvidenceRecord, ...],
    ) -> tuple[MeetingDecision, ...]:
        """One meeting under several policies: the evidence view is built and each item
        classified once; each policy is then evaluated once per item."""
        view = evidence_as_of(evidence, meeting.issuer, as_of)
        classifications = tuple(self.classify(item) for item in meeting.items)
        return tuple(decide_meeting(meeting, classifications, policy, view) for policy in policies)

    def clear_caches(self) -> None:
        """Forgets every classification (determinism tests start cold)."""
        self._classifications.clear()

    @property
    def classification_cache(self) -> BoundedCache:
        return self._classifications
