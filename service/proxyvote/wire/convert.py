"""Protobuf <-> domain, one converter per message, and request validation.

The only module that knows both the API's messages and the core's values.
Validation happens here, on the way in, so every violation can name the
request field it is about.
"""

from __future__ import annotations

import datetime as dt

from google.protobuf import json_format

from proxyvote.core.bounded_cache import BoundedCache
from proxyvote.core.model import (
    NO_RECOMMENDATION,
    AdviserRecommendation,
    BallotItem,
    CallerCategory,
    Classification,
    EvidenceRecord,
    EvidenceSource,
    InvestorVote,
    Issuer,
    ItemOutcome,
    Meeting,
    MeetingDecision,
    Outcome,
    PolicyRef,
    Recommendation,
    RecommendCommand,
    parse_date,
)
from proxyvote.errors import FieldViolation, InvalidArgument
from proxyvote.v1 import enums_pb2, evidence_pb2, meeting_pb2, policy_pb2, recommendation_pb2
from proxyvote.v1 import recommendation_service_pb2 as rs

MAX_ITEMS = 1000
MAX_TITLE = 4_000
MAX_TEXT = 200_000
MAX_ID = 200
MAX_EVIDENCE = 10_000
MAX_CODE = 40  # tickers and other issuer codes

_VOTE = enums_pb2.Vote
_KIND = enums_pb2.ProponentKind
_NPX = enums_pb2.NpxCategory
_MEETING_TYPE = enums_pb2.MeetingType
_EKIND = enums_pb2.EvidenceKind
_ESTATUS = enums_pb2.EvidenceStatus


def _names(enum) -> dict[int, str]:
    """Value -> name, the zero value mapping to ""; unknown values are absent."""
    return {number: ("" if number == 0 else name) for name, number in enum.items()}


VOTE_NAMES = _names(_VOTE)
VOTE_VALUES = {name: number for name, number in _VOTE.items()}
KIND_NAMES = _names(_KIND)
NPX_NAMES = _names(_NPX)
NPX_VALUES = {name: number for name, number in _NPX.items()}
MEETING_TYPE_NAMES = _names(_MEETING_TYPE)
EKIND_NAMES = _names(_EKIND)
ESTATUS_NAMES = _names(_ESTATUS)
_CASTABLE = frozenset(VOTE_NAMES.values()) - {"", "NONE", "REFER"}


class _Violations:
    def __init__(self):
        self.items: list[FieldViolation] = []

    def add(self, field: str, description: str) -> None:
        self.items.append(FieldViolation(field, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


def _enum(v: _Violations, field: str, names: dict[int, str], value: int) -> str:
    # proto3 enums are open: a peer can send a number this build does not know.
    name = names.get(value)
    if name is None:
        v.add(field, f"unknown enum value {value}")
        return ""
    return name


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


def recommend_command(request: rs.RecommendRequest, field: str = "") -> RecommendCommand:
    """A RecommendRequest as the core's command; InvalidArgument names every bad field at once."""
    prefix = f"{field}." if field else ""
    v = _Violations()

    def check_policy() -> None:
        if not request.policy.strip():
            v.add(f"{prefix}policy", "is required: a policy id or id@version")

    meeting, as_of, evidence = _request(v, request, prefix, check_policy)
    v.raise_if_any()
    return RecommendCommand(meeting, request.policy, as_of, evidence, request.request_id)


MAX_POLICIES = 32


def recommend_policies_command(request, field: str = "") -> tuple[RecommendCommand, tuple[str, ...]]:
    """A request naming several policies (RecommendPoliciesRequest, or a RenderMemoRequest):
    the command (its ``policy`` the first of them) and the policies, in order. Converted as
    ``recommend_command`` converts, the meeting once; every bad field named at once."""
    prefix = f"{field}." if field else ""
    v = _Violations()
    policies = tuple(request.policies)

    def check_policies() -> None:
        if not policies:
            v.add(f"{prefix}policies", "must name at least one policy (id or id@version)")
        elif len(policies) > MAX_POLICIES:
            v.add(f"{prefix}policies", f"names more than {MAX_POLICIES} policies")
        seen: dict[str, int] = {}
        for i, policy in enumerate(policies[:MAX_POLICIES]):
            name, key = f"{prefix}policies[{i}]", policy.strip()
            if not key:
                v.add(name, "is required: a policy id or id@version")
            elif len(policy) > MAX_ID:
                v.add(name, f"is longer than {MAX_ID} characters")
            elif key in seen:
                v.add(name, f"duplicate policy {key[:40]!r} (also policies[{seen[key]}])")
            seen.setdefault(key, i)

    meeting, as_of, evidence = _request(v, request, prefix, check_policies)
    v.raise_if_any()
    request_id = getattr(request, "request_id", "")
    return RecommendCommand(meeting, policies[0], as_of, evidence, request_id), policies


def _request(v: _Violations, request, prefix: str, check_policy):
    """(meeting, as_of, evidence) of a request with those fields, its policy checked by
    ``check_policy`` and its request_id checked: the violations in field order."""
    meeting = None
    if not request.HasField("meeting"):
        v.add(f"{prefix}meeting", "is required")
    else:
        meeting = _meeting(v, request.meeting, f"{prefix}meeting")
    as_of = _check_date(v, f"{prefix}as_of", request.as_of, required=False)
    check_policy()
    evidence = _evidence(v, request.evidence, f"{prefix}evidence")
    request_id = getattr(request, "request_id", "")
    _check_text(v, f"{prefix}request_id", request_id, MAX_ID, required=False)
    return meeting, as_of, evidence


def meeting_from_proto(msg: meeting_pb2.Meeting, field: str = "meeting") -> Meeting:
    """The domain meeting, or InvalidArgument naming every bad field."""
    v = _Violations()
    meeting = _meeting(v, msg, field)
    v.raise_if_any()
    return meeting


def _meeting(v: _Violations, msg: meeting_pb2.Meeting, field: str) -> Meeting | None:
    before = len(v.items)
    _check_text(v, f"{field}.meeting_id", msg.meeting_id, MAX_ID, required=True)
    if not msg.HasField("issuer"):
        v.add(f"{field}.issuer", "is required")
    else:
        _check_text(v, f"{field}.issuer.name", msg.issuer.name, MAX_TITLE, required=True)
    meeting_date = _check_date(v, f"{field}.meeting_date", msg.meeting_date, required=True)
    record_date = _check_date(v, f"{field}.record_date", msg.record_date, required=False)
    _check_text(v, f"{field}.provenance", msg.provenance, MAX_TEXT, required=False)
    meeting_type = _enum(v, f"{field}.meeting_type", MEETING_TYPE_NAMES, msg.meeting_type)
    if not msg.items:
        v.add(f"{field}.items", "must hold at least one ballot item")
    elif len(msg.items) > MAX_ITEMS:
        v.add(f"{field}.items", f"holds more than {MAX_ITEMS} items")
    seen: dict[str, int] = {}
    items = []
    for i, message in enumerate(msg.items[:MAX_ITEMS]):
        item = _item(v, message, f"{field}.items[{i}]")
        item_id = message.item_id
        if item_id in seen and item_id:
            v.add(
                f"{field}.items[{i}].item_id",
                f"duplicate item_id {item_id[:40]!r} (also items[{seen[item_id]}])",
            )
        seen.setdefault(item_id, i)
        items.append(item)
    if len(v.items) > before:
        return None
    issuer = msg.issuer
    return Meeting(
        meeting_id=msg.meeting_id,
        issuer=Issuer(issuer.name, issuer.ticker, issuer.isin, issuer.cusip, issuer.country, issuer.figi),
        meeting_date=meeting_date,
        items=tuple(items),
        meeting_type=meeting_type,
        record_date=record_date,
        provenance=msg.provenance,
    )


def _item(v: _Violations, item: meeting_pb2.BallotItem, field: str) -> BallotItem | None:
    before = len(v.items)
    _check_text(v, f"{field}.item_id", item.item_id, MAX_ID, required=True)
    _check_text(v, f"{field}.number", item.number, MAX_ID, required=False)
    _check_text(v, f"{field}.title", item.title, MAX_TITLE, required=True)
    _check_text(v, f"{field}.text", item.text, MAX_TEXT, required=False)
    kind = _enum(v, f"{field}.proponent.kind", KIND_NAMES, item.proponent.kind)
    if not item.proponent.kind:
        v.add(f"{field}.proponent.kind", "is required (MANAGEMENT or SHAREHOLDER)")
    _check_text(v, f"{field}.proponent.name", item.proponent.name, MAX_TITLE, required=False)
    options = tuple(VOTE_NAMES.get(o, "") for o in item.vote_options)
    if any(o not in _CASTABLE for o in options):
        v.add(f"{field}.vote_options", "may hold only votes a shareholder can cast")
    category = None
    if item.HasField("category"):
        npx = _enum(v, f"{field}.category.npx_category", NPX_NAMES, item.category.npx_category)
        _check_text(v, f"{field}.category.topic", item.category.topic, MAX_ID, required=False)
        if not item.category.npx_category:
            v.add(f"{field}.category.npx_category", "is required when category is given")
        elif npx:
            category = CallerCategory(npx, item.category.topic)
    board = _enum(v, f"{field}.board_recommendation", VOTE_NAMES, item.board_recommendation)
    if board == "REFER":
        v.add(f"{field}.board_recommendation", "REFER is not a board recommendation")
    outcome = None
    if item.HasField("outcome"):
        o = item.outcome
        if o.HasField("support_pct") and not 0.0 <= o.support_pct <= 100.0:
            v.add(f"{field}.outcome.support_pct", "must be between 0 and 100")
        counts = ("votes_for", "votes_against", "votes_abstain", "broker_non_votes")
        for name in counts:
            if o.HasField(name) and getattr(o, name) < 0:
                v.add(f"{field}.outcome.{name}", "must not be negative")
        outcome = ItemOutcome(
            passed=o.passed if o.HasField("passed") else None,
            support_pct=o.support_pct if o.HasField("support_pct") else None,
            support_basis=o.support_basis,
            **{name: (getattr(o, name) if o.HasField(name) else None) for name in counts},
        )
    advisers = tuple(
        AdviserRecommendation(
            a.adviser, _enum(v, f"{field}.adviser_recommendations[{n}].vote", VOTE_NAMES, a.vote)
        )
        for n, a in enumerate(item.adviser_recommendations)
    )
    investors = tuple(
        InvestorVote(i.investor, _enum(v, f"{field}.investor_votes[{n}].vote", VOTE_NAMES, i.vote), i.source)
        for n, i in enumerate(item.investor_votes)
    )
    if len(v.items) > before:
        return None
    return BallotItem(
        item_id=item.item_id,
        number=item.number,
        title=item.title,
        text=item.text,
        proponent_kind=kind,
        proponent_name=item.proponent.name,
        board_recommendation=board or NO_RECOMMENDATION,
        vote_options=options,
        category=category,
        outcome=outcome,
        adviser_recommendations=advisers,
        investor_votes=investors,
        sources=tuple(item.sources),
    )


def meeting_to_proto(m: Meeting) -> meeting_pb2.Meeting:
    """The API message of a domain meeting; lossless (meeting_from_proto gives ``m`` back)."""
    return meeting_pb2.Meeting(
        meeting_id=m.meeting_id,
        issuer=meeting_pb2.Issuer(
            name=m.issuer.name,
            ticker=m.issuer.ticker,
            isin=m.issuer.isin,
            cusip=m.issuer.cusip,
            country=m.issuer.country,
            figi=m.issuer.figi,
        ),
        meeting_type=_MEETING_TYPE.Value(m.meeting_type) if m.meeting_type else 0,
        meeting_date=m.meeting_date.isoformat(),
        record_date=m.record_date.isoformat() if m.record_date else "",
        provenance=m.provenance,
        items=[_item_to_proto(i) for i in m.items],
    )


def _item_to_proto(i: BallotItem) -> meeting_pb2.BallotItem:
    message = meeting_pb2.BallotItem(
        item_id=i.item_id,
        number=i.number,
        title=i.title,
        text=i.text,
        proponent=meeting_pb2.Proponent(kind=_KIND.Value(i.proponent_kind), name=i.proponent_name),
        board_recommendation=VOTE_VALUES[i.board_recommendation] if i.board_recommendation else 0,
        vote_options=[VOTE_VALUES[o] for o in i.vote_options],
        adviser_recommendations=[
            meeting_pb2.AdviserRecommendation(adviser=a.adviser, vote=VOTE_VALUES[a.vote] if a.vote else 0)
            for a in i.adviser_recommendations
        ],
        investor_votes=[
            meeting_pb2.InvestorVote(
                investor=x.investor, vote=VOTE_VALUES[x.vote] if x.vote else 0, source=x.source
            )
            for x in i.investor_votes
        ],
        sources=i.sources,
    )
    if i.category is not None:
        message.category.npx_category = NPX_VALUES[i.category.npx_category]
        message.category.topic = i.category.topic
    if i.outcome is not None:
        o = i.outcome
        message.outcome.support_basis = o.support_basis
        for name in (
            "passed",
            "support_pct",
            "votes_for",
            "votes_against",
            "votes_abstain",
            "broker_non_votes",
        ):
            value = getattr(o, name)
            if value is not None:
                setattr(message.outcome, name, value)
    return message


def evidence_from_proto(records, field: str = "evidence") -> tuple[EvidenceRecord, ...]:
    v = _Violations()
    converted = _evidence(v, records, field)
    v.raise_if_any()
    return converted


def _evidence(v: _Violations, records, field: str) -> tuple[EvidenceRecord, ...]:
    if len(records) > MAX_EVIDENCE:
        v.add(field, f"holds more than {MAX_EVIDENCE} records")
        return ()
    out = []
    for i, r in enumerate(records):
        record = _record(v, r, f"{field}[{i}]")
        if record is not None:
            out.append(record)
    return tuple(out)


def _record(v: _Violations, r: evidence_pb2.EvidenceRecord, field: str) -> EvidenceRecord | None:
    before = len(v.items)
    _check_text(v, f"{field}.evidence_id", r.evidence_id, MAX_ID, required=True)
    published = _check_date(v, f"{field}.published", r.published, required=True)
    event_date = _check_date(v, f"{field}.event_date", r.event_date, required=False)
    if not (r.issuer.name or r.issuer.ticker):
        v.add(f"{field}.issuer", "needs a name or a ticker")
    # The store's columns: longer was a DataError on PostgreSQL.
    _check_text(v, f"{field}.issuer.name", r.issuer.name, MAX_TITLE, required=False)
    _check_text(v, f"{field}.issuer.ticker", r.issuer.ticker, MAX_CODE, required=False)
    kind = _enum(v, f"{field}.kind", EKIND_NAMES, r.kind)
    if not r.kind:
        v.add(f"{field}.kind", "is required")
    status = _enum(v, f"{field}.status", ESTATUS_NAMES, r.status)
    _check_text(v, f"{field}.summary", r.summary, MAX_TEXT, required=False)
    if len(v.items) > before:
        return None
    return EvidenceRecord(
        evidence_id=r.evidence_id,
        issuer_name=r.issuer.name,
        issuer_ticker=r.issuer.ticker,
        published=published,
        topics=tuple(r.topics),
        kind=kind,
        status=status or "REPORTED",
        summary=r.summary,
        event_date=event_date,
        date_precision=r.date_precision or "day",
        sources=tuple(EvidenceSource(s.publisher, s.url, s.document) for s in r.sources),
    )


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
        npx_categories=[NPX_VALUES[n] for n in c.npx_categories],
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
        confidences=[
            recommendation_pb2.CategoryConfidence(npx_category=NPX_VALUES[n], confidence=round(p, 4))
            for n, p in c.confidences
        ],
        review_reason=c.review_reason,
        direction=c.direction,
    )


def outcome_to_proto(o: Outcome) -> recommendation_pb2.Recommendation:
    """The item-independent part of a Recommendation message."""
    return recommendation_pb2.Recommendation(
        vote=VOTE_VALUES[o.vote],
        against_management=o.against_management,
        needs_review=o.needs_review,
        review_reason=o.review_reason,
        rule_id=o.rule_id,
        rationale=o.rationale,
        strength=o.strength,
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
            for e in o.trace
        ],
        cited_evidence_ids=o.cited_evidence_ids,
    )


# Bytes the serialised-part caches below may hold together (a setting: set_cache_bytes).
_CACHE_BYTES = [32 << 20]


def set_cache_bytes(max_bytes: int) -> None:
    """The budget of the response-part caches; each of the five gets a fifth."""
    _CACHE_BYTES[0] = max(0, int(max_bytes))
    for cache in _CACHES:
        cache.max_bytes = _CACHE_BYTES[0] // len(_CACHES)


def _held_bytes(entry: tuple) -> int:
    # The bytes, and the Python objects the entry keeps alive (several times their encoding).
    return 5 * len(entry[-1]) + 500


class _ByIdentity:
    """Serialized protobuf of values that many recommendations share.

    Outcomes and classifications are memoised upstream, so the same object
    comes back for item after item; its message is built once and merged in as
    bytes. Keyed by identity, holding the object so its id is not reused;
    bounded by bytes.
    """

    def __init__(self, build):
        self._build = build
        self._entries = BoundedCache(_CACHE_BYTES[0] // 5, _held_bytes)
        _CACHES.append(self._entries)

    def __call__(self, value) -> bytes:
        entry = self._entries.get(id(value))
        if entry is not None and entry[0] is value:
            return entry[1]
        data = self._build(value).SerializeToString(deterministic=True)
        self._entries.put(id(value), (value, data))
        return data


_CACHES: list[BoundedCache] = []
_outcome_bytes = _ByIdentity(outcome_to_proto)
_classification_bytes = _ByIdentity(
    lambda c: recommendation_pb2.Recommendation(
        npx_categories=[NPX_VALUES[n] for n in c.npx_categories],
        topic=c.topic,
        classification=classification_to_proto(c),
    )
)
_policy_bytes = _ByIdentity(lambda ref: recommendation_pb2.Recommendation(policy=policy_ref_to_proto(ref)))
_evidence_bytes = _ByIdentity(evidence_to_proto)
_parts = BoundedCache(_CACHE_BYTES[0] // 5, _held_bytes)
_CACHES.append(_parts)


def cache_stats() -> dict[str, object]:
    """Hits, misses and bytes of the response-part caches (for metrics)."""
    return {
        name: cache._entries if isinstance(cache, _ByIdentity) else cache
        for name, cache in (
            ("outcome", _outcome_bytes),
            ("classification", _classification_bytes),
            ("policy", _policy_bytes),
            ("evidence", _evidence_bytes),
            ("recommendation", _parts),
        )
    }


def fill_recommendation(message: recommendation_pb2.Recommendation, r: Recommendation) -> None:
    """Writes ``r`` into an empty Recommendation message (e.g. one from ``add()``)."""
    key = (id(r.outcome), id(r.classification), id(r.policy))
    entry = _parts.get(key)
    if (
        entry is None
        or entry[0] is not r.outcome
        or entry[1] is not r.classification
        or entry[2] is not r.policy
    ):
        data = _outcome_bytes(r.outcome) + _classification_bytes(r.classification) + _policy_bytes(r.policy)
        entry = (r.outcome, r.classification, r.policy, data)
        _parts.put(key, entry)
    message.MergeFromString(entry[3])
    message.item_id = r.item_id
    message.board_recommendation = VOTE_VALUES[r.board_recommendation]


def decision_to_proto(d: MeetingDecision, request_id: str = ""):
    response = rs.RecommendResponse(
        meeting_id=d.meeting.meeting_id,
        policy=policy_ref_to_proto(d.policy),
        as_of=d.as_of.isoformat(),
        engine_version=d.engine_version,
        taxonomy_hash=d.taxonomy_hash,
        request_id=request_id,
    )
    for record in d.evidence:
        response.evidence.add().MergeFromString(_evidence_bytes(record))
    add = response.recommendations.add
    for r in d.recommendations:
        fill_recommendation(add(), r)
    return response


def request_bytes(meeting_body: bytes, command: RecommendCommand) -> bytes:
    """The deterministic bytes of ``command`` as a RecommendRequest, around an already serialised meeting.

    A deterministic serialisation writes fields in number order and the meeting
    is field 1, so the request is the meeting's tag, length and bytes followed by
    the other fields: the meeting is serialised once, for the store, and the
    request's bytes (and so the audit chain) are what serialising it whole gives.
    """
    rest = rs.RecommendRequest(
        policy=command.policy,
        as_of=command.as_of.isoformat() if command.as_of else "",
        request_id=command.request_id,
    )
    for record in command.evidence:
        rest.evidence.add().MergeFromString(_evidence_bytes(record))
    head = _MEETING_TAG + _varint(len(meeting_body))
    return head + meeting_body + rest.SerializeToString(deterministic=True)


_MEETING_TAG = bytes([(rs.RecommendRequest.MEETING_FIELD_NUMBER << 3) | 2])  # length-delimited


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        low, value = value & 0x7F, value >> 7
        if value:
            out.append(low | 0x80)
        else:
            out.append(low)
            return bytes(out)


def meeting_from_json(text: str, field: str = "meeting") -> Meeting:
    """A meeting file (data-format.md), as the domain meeting."""
    return meeting_from_proto(meeting_message_from_json(text, field), field)


def meeting_message_from_json(text: str, field: str = "meeting") -> meeting_pb2.Meeting:
    try:
        return json_format.Parse(text, meeting_pb2.Meeting())
    except json_format.ParseError as exc:
        raise InvalidArgument([FieldViolation(field, f"not a valid meeting: {exc}")]) from exc


def evidence_from_json(text: str, field: str = "evidence") -> tuple[EvidenceRecord, ...]:
    """An evidence file (data-format.md), as domain records."""
    try:
        message = json_format.Parse(text, evidence_pb2.EvidenceFile())
    except json_format.ParseError as exc:
        raise InvalidArgument([FieldViolation(field, f"not a valid evidence file: {exc}")]) from exc
    return evidence_from_proto(message.records, f"{field}.records")


def policy_to_proto(policy):
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
    return policy_pb2.PolicyProblem(
        file=problem.file,
        line=problem.line,
        column=problem.column,
        rule_id=problem.rule_id,
        path=problem.path,
        message=problem.message,
    )
