"""The one way in: every front end (gRPC, CLI, backtests) decides through here.

It validates a request, looks the policy up, builds the point-in-time evidence
view, classifies each item once and runs the engine. The caller supplies
``today`` (the default as-of date), so nothing below reads a clock.
"""

from __future__ import annotations

import datetime as dt
import functools
from dataclasses import dataclass
from pathlib import Path

from proxyvote.core.classify import classify
from proxyvote.core.engine import decide_meeting
from proxyvote.core.evidence import evidence_as_of
from proxyvote.core.model import BallotItem, Classification, EvidenceRecord, Meeting, MeetingDecision
from proxyvote.core.policy import Policy
from proxyvote.core.policy_library import PolicyLibrary
from proxyvote.core.taxonomy import Taxonomy, parse_taxonomy
from proxyvote.errors import FieldViolation, InvalidArgument
from proxyvote.wire import convert


def repository_root() -> Path:
    return Path(__file__).resolve().parents[3]


def default_policy_dir() -> Path:
    return repository_root() / "policies"


MODEL_FILE = "taxonomy-model.json"


def load_taxonomy(policy_dir: Path) -> Taxonomy:
    """The taxonomy beside the policies (``taxonomy.yaml``), with the classifier
    model ``taxonomy-model.json`` when it was built (``make model``); without
    it items are placed by the rules alone (and the taxonomy hash says so)."""
    path = Path(policy_dir) / "taxonomy.yaml"
    model_path = Path(policy_dir) / MODEL_FILE
    model_text = model_path.read_text(encoding="utf-8") if model_path.exists() else None
    return parse_taxonomy(path.read_text(encoding="utf-8"), str(path), model_text)


CLASSIFICATION_CACHE_SIZE = 1 << 16


@dataclass(frozen=True)
class Recommender:
    # A PolicyLibrary (files) or a PolicyCatalog (the store): both have
    # get(reference, field, tenant).
    policies: PolicyLibrary
    taxonomy: Taxonomy

    def __post_init__(self):
        # Classification is a pure function of the item's wording and proponent:
        # items repeat across meetings, seasons and the policies applied to one
        # meeting, so each distinct wording is classified once.
        @functools.lru_cache(maxsize=CLASSIFICATION_CACHE_SIZE)
        def classify_wording(title, text, kind, name, category) -> Classification:
            return classify(
                BallotItem("", title, kind, text=text, proponent_name=name, category=category), self.taxonomy
            )

        object.__setattr__(self, "_classify_wording", classify_wording)

    def classify(self, item: BallotItem) -> Classification:
        return self._classify_wording(
            item.title, item.text, item.proponent_kind, item.proponent_name, item.category
        )

    @classmethod
    def from_directory(cls, policy_dir: Path | None = None) -> Recommender:
        directory = Path(policy_dir or default_policy_dir())
        taxonomy = load_taxonomy(directory)
        return cls(PolicyLibrary.from_directory(directory, taxonomy), taxonomy)

    def decide(
        self,
        meeting_msg,
        policy_reference: str,
        as_of_text: str,
        evidence: tuple[EvidenceRecord, ...],
        today: dt.date,
        tenant: str = "",
    ) -> MeetingDecision:
        """Validates everything first, so a bad request fails whole, naming each field."""
        violations: list[FieldViolation] = []
        meeting = as_of = None
        try:
            meeting = convert.meeting_from_proto(meeting_msg)
        except InvalidArgument as exc:
            violations.extend(exc.violations)
        try:
            as_of = convert.parse_as_of(as_of_text)
        except InvalidArgument as exc:
            violations.extend(exc.violations)
        if not policy_reference.strip():
            violations.append(FieldViolation("policy", "is required: a policy id or id@version"))
        if violations:
            raise InvalidArgument(violations)
        policy = self.policies.get(policy_reference, "policy", tenant)
        return self.decide_under(meeting, policy, as_of or today, evidence)

    def decide_under(
        self, meeting: Meeting, policy: Policy, as_of: dt.date, evidence: tuple[EvidenceRecord, ...]
    ) -> MeetingDecision:
        """The decision under an already resolved policy (a replay gives the stored version)."""
        view = evidence_as_of(evidence, meeting.issuer, as_of)
        classifications = tuple(self.classify(item) for item in meeting.items)
        return decide_meeting(meeting, classifications, policy, view)

    def decide_request(self, request, today: dt.date, tenant: str = "") -> MeetingDecision:
        if not request.HasField("meeting"):
            raise InvalidArgument([FieldViolation("meeting", "is required")])
        evidence = convert.evidence_from_proto(request.evidence)
        return self.decide(request.meeting, request.policy, request.as_of, evidence, today, tenant)

    def recommend(self, request, today: dt.date, tenant: str = ""):
        """A RecommendRequest in, a RecommendResponse out."""
        return convert.decision_to_proto(self.decide_request(request, today, tenant), request.request_id)
