"""The domain: plain, immutable values the core works on.

Enumerations are kept as their names (``"FOR"``, ``"SHAREHOLDER"``), the same
spelling as the interchange files and the protobuf enums.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

VOTES = ("FOR", "AGAINST", "ABSTAIN", "WITHHOLD", "ONE_YEAR", "TWO_YEARS", "THREE_YEARS")
FREQUENCIES = ("ONE_YEAR", "TWO_YEARS", "THREE_YEARS")
REFER = "REFER"
NO_RECOMMENDATION = "NONE"
DEFAULT_VOTE_OPTIONS = ("FOR", "AGAINST", "ABSTAIN")
PROPONENT_KINDS = ("MANAGEMENT", "SHAREHOLDER")

NPX_CATEGORIES = (
    "DIRECTOR_ELECTIONS",
    "SECTION_14A_SAY_ON_PAY",
    "AUDIT_RELATED",
    "INVESTMENT_COMPANY_MATTERS",
    "SHAREHOLDER_RIGHTS_AND_DEFENSES",
    "EXTRAORDINARY_TRANSACTIONS",
    "CAPITAL_STRUCTURE",
    "COMPENSATION",
    "CORPORATE_GOVERNANCE",
    "ENVIRONMENT_OR_CLIMATE",
    "HUMAN_RIGHTS_OR_HUMAN_CAPITAL",
    "DIVERSITY_EQUITY_INCLUSION",
    "OTHER_SOCIAL_ISSUES",
    "OTHER",
)

EVIDENCE_KINDS = ("CONTROVERSY", "ALLEGATION", "COMPANY_ACTION", "DISCLOSURE")
EVIDENCE_STATUSES = ("REPORTED", "DISPUTED", "COMPANY_STATEMENT", "CONFIRMED")


def parse_date(text: str) -> dt.date:
    """A strict YYYY-MM-DD date; raises ValueError otherwise."""
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError(f"{text!r} is not a YYYY-MM-DD date")
    return dt.date.fromisoformat(text)


@dataclass(frozen=True, slots=True)
class Issuer:
    name: str
    ticker: str = ""
    isin: str = ""
    cusip: str = ""
    country: str = ""
    figi: str = ""


@dataclass(frozen=True, slots=True)
class CallerCategory:
    npx_category: str
    topic: str = ""


@dataclass(frozen=True, slots=True)
class ItemOutcome:
    """How the meeting voted on an item, where known (past meetings, backtests)."""

    passed: bool | None = None
    support_pct: float | None = None
    support_basis: str = ""
    votes_for: int | None = None
    votes_against: int | None = None
    votes_abstain: int | None = None
    broker_non_votes: int | None = None


@dataclass(frozen=True, slots=True)
class AdviserRecommendation:
    adviser: str
    vote: str


@dataclass(frozen=True, slots=True)
class InvestorVote:
    investor: str
    vote: str
    source: str = ""


@dataclass(frozen=True, slots=True)
class BallotItem:
    item_id: str
    title: str
    proponent_kind: str
    number: str = ""
    text: str = ""
    proponent_name: str = ""
    board_recommendation: str = NO_RECOMMENDATION
    # Empty when the card was not described: then any vote is allowed.
    vote_options: tuple[str, ...] = ()
    category: CallerCategory | None = None
    # What happened, for past meetings; no rule reads these.
    outcome: ItemOutcome | None = None
    adviser_recommendations: tuple[AdviserRecommendation, ...] = ()
    investor_votes: tuple[InvestorVote, ...] = ()
    sources: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Meeting:
    meeting_id: str
    issuer: Issuer
    meeting_date: dt.date
    items: tuple[BallotItem, ...]
    meeting_type: str = ""
    record_date: dt.date | None = None
    provenance: str = ""


@dataclass(frozen=True, slots=True)
class RecommendCommand:
    """One request to decide a meeting, as every edge hands it to the core.

    ``as_of`` is None when the caller left it to the service (then: today);
    ``policy`` is a reference, ``"id"`` or ``"id@version"``.
    """

    meeting: Meeting
    policy: str
    as_of: dt.date | None = None
    evidence: tuple[EvidenceRecord, ...] = ()
    request_id: str = ""


@dataclass(frozen=True, slots=True)
class EvidenceSource:
    publisher: str
    url: str = ""
    document: str = ""


@dataclass(frozen=True, slots=True)
class EvidenceRecord:
    evidence_id: str
    issuer_name: str
    issuer_ticker: str
    published: dt.date
    topics: tuple[str, ...]
    kind: str
    status: str
    summary: str = ""
    event_date: dt.date | None = None
    date_precision: str = "day"
    sources: tuple[EvidenceSource, ...] = ()


@dataclass(frozen=True, slots=True)
class Match:
    """One taxonomy rule that matched an item, and on what."""

    rule_id: str
    kind: str  # "topic", "request_kind" or "flag"
    field: str
    pattern: str
    matched: str


@dataclass(frozen=True, slots=True)
class Classification:
    source: str  # "CALLER", "TAXONOMY" (rules and/or the linear model) or "UNPLACED"
    npx_categories: tuple[str, ...]
    topic: str
    topics: tuple[str, ...]
    request_kind: str
    flags: tuple[str, ...]
    matches: tuple[Match, ...]
    taxonomy_hash: str
    # (category, confidence 0..1) for every category given, highest first.
    confidences: tuple[tuple[str, float], ...] = ()
    # Set when nothing is confident: the reason a person must look.
    review_reason: str = ""
    # The direction of a shareholder request: "anti_esg" (it would roll back or
    # discredit ESG practices), "pro_esg", or "" (not an E&S request / unknown),
    # and the model's probability that it is anti-ESG (-1.0 without a model).
    direction: str = ""
    direction_score: float = -1.0

    @property
    def needs_review(self) -> bool:
        return bool(self.review_reason)

    @property
    def confidence(self) -> float:
        return self.confidences[0][1] if self.confidences else 0.0

    @property
    def placed(self) -> bool:
        return self.source != "UNPLACED"


@dataclass(frozen=True, slots=True)
class ConditionResult:
    role: str  # "if", "unless", "strong"
    expression: str
    result: str  # "TRUE", "FALSE", "UNKNOWN"
    values: tuple[tuple[str, str], ...] = ()
    error: str = ""


@dataclass(frozen=True, slots=True)
class RuleEvaluation:
    rule_id: str
    policy_id: str
    outcome: str  # "FIRED", "CONDITION_FALSE", "CONDITION_UNKNOWN", "NOT_APPLICABLE"
    conditions: tuple[ConditionResult, ...] = ()
    note: str = ""


@dataclass(frozen=True, slots=True)
class PolicyRef:
    id: str
    version: int
    content_hash: str


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a policy decides an item, apart from which item it is.

    One outcome is shared by every item with the same inputs (see engine), so
    what depends on it (its rendering, its protobuf form) is computed once.
    """

    vote: str
    rule_id: str
    rationale: str
    strength: str  # "strong", "standard" or "" (the rule has no strength)
    trace: tuple[RuleEvaluation, ...]
    cited: tuple[EvidenceRecord, ...]  # oldest first
    against_management: bool
    review_reason: str  # empty unless a human must look

    @property
    def needs_review(self) -> bool:
        return bool(self.review_reason)

    @property
    def cited_evidence_ids(self) -> tuple[str, ...]:
        return tuple(r.evidence_id for r in self.cited)


# Not frozen: a frozen dataclass costs a microsecond more to build, and
# decisions are built by the hundred million in a backtest. Treat as immutable.
@dataclass(slots=True)
class Recommendation:
    item_id: str
    board_recommendation: str
    classification: Classification
    outcome: Outcome
    policy: PolicyRef

    vote = property(lambda self: self.outcome.vote)
    rule_id = property(lambda self: self.outcome.rule_id)
    rationale = property(lambda self: self.outcome.rationale)
    strength = property(lambda self: self.outcome.strength)
    trace = property(lambda self: self.outcome.trace)
    against_management = property(lambda self: self.outcome.against_management)
    needs_review = property(lambda self: self.outcome.needs_review)
    review_reason = property(lambda self: self.outcome.review_reason)
    cited_evidence_ids = property(lambda self: self.outcome.cited_evidence_ids)


@dataclass(frozen=True, slots=True)
class MeetingDecision:
    """Every item of one meeting decided under one policy as of one date."""

    meeting: Meeting
    policy: PolicyRef
    as_of: dt.date
    engine_version: str
    taxonomy_hash: str
    recommendations: tuple[Recommendation, ...]
    evidence: tuple[EvidenceRecord, ...] = field(default=())
