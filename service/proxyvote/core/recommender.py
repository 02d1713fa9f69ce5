"""The one way in: every front end (gRPC, CLI, backtests) decides through here.

Domain values in, domain values out. It looks the policy up, builds the
point-in-time evidence view, classifies each item once and runs the engine.
The caller supplies ``today`` (the default as-of date), so nothing below reads
a clock; the edges have validated and converted the request already.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from typing import Protocol

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

CLASSIFICATION_CACHE_SIZE = 1 << 16


class PolicySource(Protocol):
    """Where policies come from: a PolicyLibrary (files) or the app's PolicyCatalog (the store)."""

    def get(self, reference: str, field: str = "policy", tenant: str = "") -> Policy: ...


@dataclass(frozen=True)
class Recommender:
    policies: PolicySource
    taxonomy: Taxonomy
    classification_cache_size: int = CLASSIFICATION_CACHE_SIZE

    def __post_init__(self):
        # Classification is a pure function of the item's wording and proponent:
        # items repeat across meetings, seasons and the policies applied to one
        # meeting, so each distinct wording is classified once.
        @functools.lru_cache(maxsize=self.classification_cache_size)
        def classify_wording(title, text, kind, name, category) -> Classification:
            return classify(
                BallotItem("", title, kind, text=text, proponent_name=name, category=category), self.taxonomy
            )

        object.__setattr__(self, "_classify_wording", classify_wording)

    def classify(self, item: BallotItem) -> Classification:
        return self._classify_wording(
            item.title, item.text, item.proponent_kind, item.proponent_name, item.category
        )

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

    def clear_caches(self) -> None:
        """Forgets every classification (determinism tests start cold)."""
        self._classify_wording.cache_clear()
