"""A file of past meetings, whatever its format, as domain meetings.

Formats, recognised by content (the extension breaks a tie):

- ``meeting``: one of our meeting files (data-format.md), or a JSON list of them;
- ``npx-xml``: an SEC N-PX vote table (``proxyVoteTable``);
- ``npx-jsonl``: N-PX records as JSON lines (the shape of records-dev.jsonl);
- ``seev001``: an ISO 20022 seev.001 MeetingNotification (``wire.seev``); each
  element it holds that has no place in a meeting is listed as skipped, with its
  path and line.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from proxyvote.core.meetings import meeting_key
from proxyvote.core.model import (
    NO_RECOMMENDATION,
    AdviserRecommendation,
    BallotItem,
    CallerCategory,
    InvestorVote,
    Issuer,
    ItemOutcome,
    Meeting,
)
from proxyvote.errors import FieldViolation, InvalidArgument
from proxyvote.v1 import meeting_pb2
from proxyvote.wire import convert, npx, seev

FORMATS = ("meeting", "npx-xml", "npx-jsonl", "seev001")


@dataclass(frozen=True, slots=True)
class MeetingFile:
    """What one file gave: its format, its meetings, the rows read and what was skipped (meeting_key, why)."""

    name: str
    format: str
    meetings: tuple
    rows: int
    skipped: tuple[tuple[str, str], ...] = ()


def detect_format(name: str, content: bytes) -> str:
    head = content.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    lower = name.lower()
    if head == b"<" or content[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return "seev001" if seev.is_seev001(content) else "npx-xml"
    if lower.endswith((".jsonl", ".ndjson")):
        return "npx-jsonl"
    if head == b"[":
        return "meeting"
    if head == b"{":
        first = content.lstrip(b"\xef\xbb\xbf \t\r\n").split(b"\n", 1)[0]
        try:
            record = json.loads(first)
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
            return "meeting"  # a pretty-printed object: one meeting (or not JSON: its reader says so)
        return "npx-jsonl" if isinstance(record, dict) and "vote_description" in record else "meeting"
    if lower.endswith(".xml"):
        return "npx-xml"
    raise InvalidArgument(
        [FieldViolation(name, "is neither a meeting (JSON), an N-PX vote table (XML) nor N-PX JSON lines")]
    )


def _text(name: str, content: bytes) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidArgument([FieldViolation(name, f"is not UTF-8 text (byte {exc.start})")]) from exc


def read_meeting_file(name: str, content: bytes, filer: str = "", source: str = "") -> MeetingFile:
    """The domain meetings of one file; InvalidArgument naming the element or line at fault.

    ``filer`` names the fund of an N-PX XML vote table (the table does not) and is
    the default filer of JSON lines without one; ``source`` (the filing, e.g. its
    accession number) defaults to the file's base name.
    """
    kind = detect_format(name, content)
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    if kind == "seev001":
        read = seev.meeting_from_seev001(content, name)
        key = meeting_key(read.meeting)
        notes = tuple((key, f"{name}: {note}") for note in read.notes)
        return MeetingFile(name, kind, (read.meeting,), len(read.meeting.items), notes)
    if kind == "npx-xml":
        stem = base.rsplit(".", 1)[0]
        result = npx.meetings_from_xml(content, name, filer or stem, source or base)
        return MeetingFile(name, kind, result.meetings, result.rows, result.skipped)
    text = _text(name, content)
    if kind == "npx-jsonl":
        result = npx.meetings_from_jsonl(text, name, filer, source or base)
        return MeetingFile(name, kind, result.meetings, result.rows, result.skipped)
    if text.lstrip().startswith("["):
        try:
            documents = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(
                [FieldViolation(f"{name}:line {exc.lineno}", f"not JSON: {exc.msg}")]
            ) from exc
        except RecursionError as exc:  # json recurses once per level of nesting
            raise InvalidArgument(
                [FieldViolation(name, "not JSON this service reads: nested too deeply")]
            ) from exc
        meetings = tuple(
            convert.meeting_from_json(json.dumps(document), field=f"{name}[{i}]")
            for i, document in enumerate(documents)
        )
        return MeetingFile(name, kind, meetings, len(meetings))
    return MeetingFile(name, kind, (convert.meeting_from_json(text, field=name),), 1)


# --- stored bodies ---

_VOTE_NAMES = convert.VOTE_NAMES
_KIND_NAMES = convert.KIND_NAMES
_NPX_NAMES = convert.NPX_NAMES
_MEETING_TYPE_NAMES = convert.MEETING_TYPE_NAMES
_OUTCOME_COUNTS = ("votes_for", "votes_against", "votes_abstain", "broker_non_votes")


def meeting_from_body(body: bytes) -> Meeting:
    """A meeting the store wrote (``meeting_to_proto(m).SerializeToString()``), without re-validating it.

    Bodies are validated when they come in; reading a stored one back is a
    backtest's inner loop, so this skips the checks ``convert.meeting_from_proto``
    makes and gives the same value (a test compares the two on every field).
    """
    msg = meeting_pb2.Meeting.FromString(body)
    i = msg.issuer
    return Meeting(
        meeting_id=msg.meeting_id,
        issuer=Issuer(i.name, i.ticker, i.isin, i.cusip, i.country, i.figi),
        meeting_date=dt.date.fromisoformat(msg.meeting_date),
        items=tuple(_item_from_body(item) for item in msg.items),
        meeting_type=_MEETING_TYPE_NAMES[msg.meeting_type],
        record_date=dt.date.fromisoformat(msg.record_date) if msg.record_date else None,
        provenance=msg.provenance,
    )


def _item_from_body(item) -> BallotItem:
    vote = _VOTE_NAMES
    outcome = None
    if item.HasField("outcome"):
        o = item.outcome
        outcome = ItemOutcome(
            passed=o.passed if o.HasField("passed") else None,
            support_pct=o.support_pct if o.HasField("support_pct") else None,
            support_basis=o.support_basis,
            **{name: (getattr(o, name) if o.HasField(name) else None) for name in _OUTCOME_COUNTS},
        )
    category = None
    if item.HasField("category") and item.category.npx_category:
        category = CallerCategory(_NPX_NAMES[item.category.npx_category], item.category.topic)
    return BallotItem(
        item_id=item.item_id,
        number=item.number,
        title=item.title,
        text=item.text,
        proponent_kind=_KIND_NAMES[item.proponent.kind],
        proponent_name=item.proponent.name,
        board_recommendation=vote[item.board_recommendation] or NO_RECOMMENDATION,
        vote_options=tuple(vote[o] for o in item.vote_options),
        category=category,
        outcome=outcome,
        adviser_recommendations=tuple(
            AdviserRecommendation(a.adviser, vote[a.vote]) for a in item.adviser_recommendations
        ),
        investor_votes=tuple(InvestorVote(x.investor, vote[x.vote], x.source) for x in item.investor_votes),
        sources=tuple(item.sources),
    )
