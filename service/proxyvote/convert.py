"""Protobuf <-> domain, one converter per message, and request validation.

The only module that knows both the API's messages and the core's values.
Validation happens here, on the way in, so every violation can name the
request field it is about.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf import json_format

from .errors import FieldViolation, InvalidArgument
from .model import (
    NO_RECOMMENDATION,
    BallotItem,
    CallerCategory,
    Classification,
    EvidenceRecord,
    EvidenceSource,
    Issuer,
    Meeting,
    MeetingDecision,
    PolicyRef,
    Recommendation,
    parse_date,
)
from .v1 import enums_pb2, evidence_pb2, meeting_pb2, recommendation_pb2

MAX_ITEMS = 1000
MAX_TITLE = 4_000
MAX_TEXT = 200_000
MAX_ID = 200
MAX_EVIDENCE = 10_000

_VOTE = enums_pb2.Vote
_KIND = enums_pb2.ProponentKind
_NPX = enums_pb2.NpxCategory
_MEETING_TYPE = enums_pb2.MeetingType
_EKIND = enums_pb2.EvidenceKind
_ESTATUS = enums_pb2.EvidenceStatus


def _name(enum, value: int) -> str:
    return enum.Name(value) if value else ""


class _Violations:
    def __init__(self):
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


def _check_date(v: _Violations, field: str, text: str, required: bool) -> dt.date | None:
    if not text:
        if required:
            v.add(field, "is required (YYYY-MM-DD)")
        return None
    try:
        return parse_date(text)
    except ValueError:
        v.add(field, f"{text[:40]!r} is not a valid YYYY-MM-DD date")
        return None


def _check_text(v: _Violations, field: str, text: str, limit: int, required: bool) -> None:
    if required and not text.strip():
        v.add(field, "is required")
    elif len(text) > limit:
        v.add(field, f"is longer than {limit} characters")


def parse_as_of(text: str, field: str = "as_of") -> dt.date | None:
    v = _Violations()
    date = _check_date(v, field, text, required=False)
    v.raise_if_any()
    return date


def meeting_from_proto(msg: meeting_pb2.Meeting, field: str = "meeting") -> Meeting:
    """The domain meeting, or InvalidArgument naming every bad field."""
    v = _Violations()
    _check_text(v, f"{field}.meeting_id", msg.meeting_id, MAX_ID, required=True)
    if not msg.HasField("issuer"):
        v.add(f"{field}.issuer", "is required")
    else:
        _check_text(v, f"{field}.issuer.name", msg.issuer.name, MAX_TITLE, required=True)
    meeting_date = _check_date(v, f"{field}.meeting_date", msg.meeting_date, required=True)
    _check_date(v, f"{field}.record_date", msg.record_date, required=False)
    if not msg.items:
        v.add(f"{field}.items", "must hold at least one ballot item")
    elif len(msg.items) > MAX_ITEMS:
        v.add(f"{field}.items", f"holds more than {MAX_ITEMS} items")
    seen: dict[str, int] = {}
    items = []
    for i, item in enumerate(msg.items[:MAX_ITEMS]):
        where = f"{field}.items[{i}]"
        _check_text(v, f"{where}.item_id", item.item_id, MAX_ID, required=True)
        if item.item_id and item.item_id in seen:
            v.add(
                f"{where}.item_id",
                f"duplicate item_id {item.item_id[:40]!r} (also items[{seen[item.item_id]}])",
            )
        seen.setdefault(item.item_id, i)
        _check_text(v, f"{where}.title", item.title, MAX_TITLE, required=True)
        _check_text(v, f"{where}.text", item.text, MAX_TEXT, required=False)
        if not item.proponent.kind:
            v.add(f"{where}.proponent.kind", "is required (MANAGEMENT or SHAREHOLDER)")
        options = tuple(_name(_VOTE, o) for o in item.vote_options)
        if any(o in ("", "NONE", "REFER") for o in options):
            v.add(f"{where}.vote_options", "may hold only votes a shareholder can cast")
        category = None
        if item.HasField("category"):
            if not item.category.npx_category:
                v.add(f"{where}.category.npx_category", "is required when category is given")
            else:
                category = CallerCategory(_name(_NPX, item.category.npx_category), item.category.topic)
        if item.board_recommendation == _VOTE.Value("REFER"):
            v.add(f"{where}.board_recommendation", "REFER is not a board recommendation")
        items.append(
            BallotItem(
                item_id=item.item_id,
                number=item.number,
                title=item.title,
                text=item.text,
                proponent_kind=_name(_KIND, item.proponent.kind),
                proponent_name=item.proponent.name,
                board_recommendation=_name(_VOTE, item.board_recommendation) or NO_RECOMMENDATION,
                vote_options=options,
                category=category,
            )
        )
    v.raise_if_any()
    issuer = msg.issuer
    return Meeting(
        meeting_id=msg.meeting_id,
        issuer=Issuer(issuer.name, issuer.ticker, issuer.isin, issuer.cusip, issuer.country),
        meeting_date=meeting_date,
        items=tuple(items),
        meeting_type=_name(_MEETING_TYPE, msg.meeting_type),
    )


def evidence_from_proto(records, field: str = "evidence") -> tuple[EvidenceRecord, ...]:
    v = _Violations()
    if len(records) > MAX_EVIDENCE:
        v.add(field, f"holds more than {MAX_EVIDENCE} records")
        v.raise_if_any()
    out = []
    for i, r in enumerate(records):
        where = f"{field}[{i}]"
        _check_text(v, f"{where}.evidence_id", r.evidence_id, MAX_ID, required=True)
        published = _check_date(v, f"{where}.published", r.published, required=True)
        event_date = _check_date(v, f"{where}.event_date", r.event_date, required=False)
        if not (r.issuer.name or r.issuer.ticker):
            v.add(f"{where}.issuer", "needs a name or a ticker")
        if not r.kind:
            v.add(f"{where}.kind", "is required")
        _check_text(v, f"{where}.summary", r.summary, MAX_TEXT, required=False)
        if published is None:
            continue
        out.append(
            EvidenceRecord(
                evidence_id=r.evidence_id,
                issuer_name=r.issuer.name,
                issuer_ticker=r.issuer.ticker,
                published=published,
                topics=tuple(r.topics),
                kind=_name(_EKIND, r.kind),
                status=_name(_ESTATUS, r.status) or "REPORTED",
                summary=r.summary,
                event_date=event_date,
                date_precision=r.date_precision or "day",
                sources=tuple(EvidenceSource(s.publisher, s.url, s.document) for s in r.sources),
            )
        )
    v.raise_if_any()
    return tuple(out)


def evidence_to_proto(record: EvidenceRecord) -> evidence_pb2.EvidenceRecord:
    return evidence_pb2.EvidenceRecord(
        evidence_id=record.evidence_id,
        issuer=evidence_pb2.EvidenceIssuer(name=record.issuer_name, ticker=record.issuer_ticker),
        published=record.published.isoformat(),
        event_date=record.event_date.isoformat() if record.event_date else "",
        date_precision=record.date_precision if record.date_precision != "day" else "",
        topics=record.topics,
        kind=_EKIND.Value(record.kind) if record.kind else 0,
        status=_ESTATUS.Value(record.status) if record.status else 0,
        summary=record.summary,
        sources=[
            evidence_pb2.EvidenceSource(publisher=s.publisher, url=s.url, document=s.document)
            for s in record.sources
        ],
    )


def policy_ref_to_proto(ref: PolicyRef) -> recommendation_pb2.PolicyRef:
    return recommendation_pb2.PolicyRef(id=ref.id, version=ref.version, content_hash=ref.content_hash)


_SOURCE = recommendation_pb2.Classification.Source
_RESULT = recommendation_pb2.ConditionResult.Result
_OUTCOME = recommendation_pb2.RuleEvaluation.Outcome


def classification_to_proto(c: Classification) -> recommendation_pb2.Classification:
    return recommendation_pb2.Classification(
        source=_SOURCE.Value(f"SOURCE_{c.source}"),
        npx_categories=[_NPX.Value(n) for n in c.npx_categories],
        topic=c.topic,
        topics=c.topics,
        request_kind=c.request_kind,
        flags=c.flags,
        matches=[
            recommendation_pb2.ClassificationMatch(
                rule_id=m.rule_id, kind=m.kind, field=m.field, pattern=m.pattern, matched=m.matched
            )
            for m in c.matches
        ],
        taxonomy_hash=c.taxonomy_hash,
    )


def recommendation_to_proto(r: Recommendation) -> recommendation_pb2.Recommendation:
    return recommendation_pb2.Recommendation(
        item_id=r.item_id,
        vote=_VOTE.Value(r.vote),
        board_recommendation=_VOTE.Value(r.board_recommendation),
        against_management=r.against_management,
        needs_review=r.needs_review,
        review_reason=r.review_reason,
        npx_categories=[_NPX.Value(n) for n in r.classification.npx_categories],
        topic=r.classification.topic,
        classification=classification_to_proto(r.classification),
        rule_id=r.rule_id,
        rationale=r.rationale,
        strength=r.strength,
        trace=[
            recommendation_pb2.RuleEvaluation(
                rule_id=e.rule_id,
                policy_id=e.policy_id,
                outcome=_OUTCOME.Value(f"OUTCOME_{e.outcome}"),
                conditions=[
                    recommendation_pb2.ConditionResult(
                        role=c.role,
                        expression=c.expression,
                        result=_RESULT.Value(f"RESULT_{c.result}"),
                        values=dict(c.values),
                        error=c.error,
                    )
                    for c in e.conditions
                ],
                note=e.note,
            )
            for e in r.trace
        ],
        cited_evidence_ids=r.cited_evidence_ids,
        policy=policy_ref_to_proto(r.policy),
    )


def decision_to_proto(d: MeetingDecision, request_id: str = ""):
    from .v1 import recommendation_service_pb2

    return recommendation_service_pb2.RecommendResponse(
        meeting_id=d.meeting.meeting_id,
        policy=policy_ref_to_proto(d.policy),
        as_of=d.as_of.isoformat(),
        engine_version=d.engine_version,
        taxonomy_hash=d.taxonomy_hash,
        recommendations=[recommendation_to_proto(r) for r in d.recommendations],
        evidence=[evidence_to_proto(e) for e in d.evidence],
        request_id=request_id,
    )


def meeting_from_json(text: str, field: str = "meeting") -> meeting_pb2.Meeting:
    """Parses a meeting file (data-format.md) into the API message."""
    try:
        return json_format.Parse(text, meeting_pb2.Meeting())
    except json_format.ParseError as exc:
        raise InvalidArgument([FieldViolation(field, f"not a valid meeting: {exc}")]) from exc


def evidence_file_from_json(text: str, field: str = "evidence") -> evidence_pb2.EvidenceFile:
    try:
        return json_format.Parse(text, evidence_pb2.EvidenceFile())
    except json_format.ParseError as exc:
        raise InvalidArgument([FieldViolation(field, f"not a valid evidence file: {exc}")]) from exc


def policy_to_proto(policy):
    from .v1 import policy_pb2

    return policy_pb2.Policy(
        name=f"policies/{policy.id}",
        id=policy.id,
        version=policy.version,
        content_hash=policy.content_hash,
        title=policy.title,
        extends=policy.extends,
        source=policy.source,
        default_vote=policy.default_vote,
        rule_ids=[r.id for r in policy.rules],
    )


def problem_to_proto(problem):
    from .v1 import policy_pb2

    return policy_pb2.PolicyProblem(
        file=problem.file,
        line=problem.line,
        column=problem.column,
        rule_id=problem.rule_id,
        path=problem.path,
        message=problem.message,
    )
