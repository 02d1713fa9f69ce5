"""SEC Form N-PX vote records -> domain meetings: the XML vote table and JSON lines.

Each row of a filing is one fund's vote on one item of one meeting. Rows are
grouped into meetings by issuer identifier (CUSIP, ISIN or FIGI) and meeting
date, items by normalised description (``core.meetings``); the fund's vote
becomes an ``InvestorVote(investor=filer, vote, source=accession)``.

What is kept from a row, and where:

- ``voteSource`` ISSUER is a MANAGEMENT item, SECURITY HOLDER (or SHAREHOLDER)
  a SHAREHOLDER one; a row without it is taken as MANAGEMENT.
- ``managementRecommendation`` becomes the item's board recommendation where
  the item has none (filers fill this field loosely: see records-dev.md). A
  FOR/AGAINST recommendation on an item voted by frequency is dropped.
- The filer's categories are NOT the item's ``category``: a caller category
  overrides the classifier, and a backtest must classify as the service does.
  They are kept inert in the item's ``sources`` as ``npx-category:<TYPE>``.
- Several ``voteRecord`` lots: the lot with the most shares voted gives the
  fund's vote (the first on a tie). A row with no vote reported keeps its item
  without an investor vote, and is listed as skipped.

XML is parsed by lxml with a parser that never loads a DTD, resolves an
entity or touches the network, and any document with a DOCTYPE is refused
before parsing (entity declarations are how billion-laughs and external-entity
attacks start; N-PX vote tables have none). Errors name the file, the line
and the element, all of them at once (up to ``MAX_ERRORS``).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lxml import etree

from proxyvote.core.meetings import combine as combine_meetings
from proxyvote.core.meetings import item_id_for, meeting_key, normalise_description, normalise_identifier
from proxyvote.core.model import FREQUENCIES, NO_RECOMMENDATION, BallotItem, InvestorVote, Issuer, Meeting
from proxyvote.errors import FieldViolation, InvalidArgument
from proxyvote.wire.xml_nodes import child, children, clean_text, local_name

NAMESPACE = "http://www.sec.gov/edgar/document/npxproxy/informationtable"
COVER_NAMESPACE = "http://www.sec.gov/edgar/npx"
CATEGORY_SOURCE = "npx-category:"
MAX_ERRORS = 50
MAX_TEXT = 4_000

# N-PX howVoted / managementRecommendation spellings -> our vote names.
_VOTES = {
    "FOR": "FOR",
    "AGAINST": "AGAINST",
    "ABSTAIN": "ABSTAIN",
    "WITHHOLD": "WITHHOLD",
    "WITHHELD": "WITHHOLD",
    "1 YEAR": "ONE_YEAR",
    "1 YEARS": "ONE_YEAR",
    "ONE YEAR": "ONE_YEAR",
    "2 YEARS": "TWO_YEARS",
    "2 YEAR": "TWO_YEARS",
    "TWO YEARS": "TWO_YEARS",
    "3 YEARS": "THREE_YEARS",
    "3 YEAR": "THREE_YEARS",
    "THREE YEARS": "THREE_YEARS",
}
# Spellings of "no vote cast": the item is kept, without a vote from this fund.
_NO_VOTE = frozenset({"DO NOT VOTE", "DID NOT VOTE", "NOT VOTED", "TAKE NO ACTION", "NO VOTE"})
# Spellings of "no recommendation".
_NO_RECOMMENDATION = frozenset({"", "NONE", "N/A", "NA", "NO RECOMMENDATION"})
_PROPONENTS = {"ISSUER": "MANAGEMENT", "SECURITY HOLDER": "SHAREHOLDER", "SHAREHOLDER": "SHAREHOLDER"}


@dataclass(frozen=True, slots=True)
class Lot:
    how_voted: str | None  # our vote name; None: no vote reported
    shares: float
    management: str  # our vote name, or NONE
    exact_shares: Decimal | None = None  # sharesVoted as written (XML only)


@dataclass(frozen=True, slots=True)
class NpxRow:
    """One fund's record of one item, as read (values already checked and mapped)."""

    where: str  # "FILE:line N", for notes
    issuer_name: str
    cusip: str
    isin: str
    figi: str
    meeting_date: dt.date
    description: str
    other_description: str
    proponent_kind: str
    categories: tuple[str, ...]
    lots: tuple[Lot, ...]
    investor: str
    source: str
    shares_voted: Decimal | None = None  # the row's sharesVoted as written (XML only)


@dataclass(frozen=True, slots=True)
class NpxMeetings:
    """What a file gave: its meetings (merged), rows read, and (meeting_key, reason) of what was skipped."""

    meetings: tuple[Meeting, ...]
    rows: int
    skipped: tuple[tuple[str, str], ...]


class _Errors:
    def __init__(self):
        self.items: list[FieldViolation] = []

    def add(self, where: str, description: str) -> None:
        if len(self.items) < MAX_ERRORS:
            self.items.append(FieldViolation(where, description))

    def raise_if_any(self) -> None:
        if self.items:
            raise InvalidArgument(self.items)


def map_vote(text: str | None) -> str | None:
    """An N-PX howVoted as our vote name; None for no vote; ValueError for an unknown value."""
    cleaned = clean_text(text).upper()
    if not cleaned or cleaned in _NO_VOTE:
        return None
    if cleaned in _VOTES:
        return _VOTES[cleaned]
    raise ValueError(
        f"{clean_text(text)[:40]!r} is not an N-PX vote (FOR, AGAINST, ABSTAIN, WITHHOLD, 1/2/3 YEARS)"
    )


def map_recommendation(text: str | None) -> str:
    """An N-PX managementRecommendation as our vote name or NONE; ValueError for an unknown value."""
    cleaned = clean_text(text).upper()
    if cleaned in _NO_RECOMMENDATION:
        return NO_RECOMMENDATION
    if cleaned in _VOTES:
        return _VOTES[cleaned]
    raise ValueError(f"{clean_text(text)[:40]!r} is not an N-PX management recommendation")


def map_proponent(text: str | None) -> str:
    cleaned = clean_text(text).upper()
    if not cleaned:
        return "MANAGEMENT"
    if cleaned in _PROPONENTS:
        return _PROPONENTS[cleaned]
    raise ValueError(f"{clean_text(text)[:40]!r} is not an N-PX vote source (ISSUER or SECURITY HOLDER)")


# --- XML vote tables ---


def _parser() -> etree.XMLParser:
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_pis=True,
    )


_DOCTYPE = re.compile(rb"<!\s*DOCTYPE", re.IGNORECASE)
_ENTITY = re.compile(rb"<!\s*ENTITY", re.IGNORECASE)


def _refuse_doctype(data: bytes, name: str) -> None:
    """A DOCTYPE is refused before lxml sees the document; with entity declarations, said so."""
    scanned = [data]
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):  # UTF-16: scan the text as well
        try:
            scanned.append(data.decode("utf-16").encode("utf-8"))
        except UnicodeDecodeError:
            pass
    for text in scanned:
        match = _DOCTYPE.search(text)
        if match:
            line = text.count(b"\n", 0, match.start()) + 1
            if _ENTITY.search(text):
                reason = "entity declarations are refused (they are never expanded)"
            else:
                reason = "a DOCTYPE is refused (N-PX vote tables have none)"
            raise InvalidArgument([FieldViolation(f"{name}:line {line}", f"<!DOCTYPE>: {reason}")])


def parse_xml(data: bytes, name: str) -> etree._Element:
    """The root element of a safely parsed document; InvalidArgument with the line on any problem."""
    _refuse_doctype(data, name)
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.lineno or (exc.position[0] if exc.position else 0)
        raise InvalidArgument(
            [FieldViolation(f"{name}:line {line}", f"not well-formed XML: {exc.msg}")]
        ) from exc
    tree = root.getroottree()
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise InvalidArgument([FieldViolation(f"{name}:line 1", "<!DOCTYPE>: a DOCTYPE is refused")])
    return root


def _text(element, local: str) -> str:
    found = child(element, local)
    return clean_text(found.text) if found is not None else ""


def _at(name: str, element) -> str:
    return f"{name}:line {element.sourceline}"


def _xml_date(text: str) -> dt.date:
    """N-PX dates are MM/DD/YYYY; YYYY-MM-DD is accepted too."""
    if re.fullmatch(r"\d{2}/\d{2}/\d{4}", text):
        month, day, year = text.split("/")
        return dt.date(int(year), int(month), int(day))
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        return dt.date.fromisoformat(text)
    raise ValueError(f"{text[:40]!r} is not a date (MM/DD/YYYY)")


def rows_from_xml(data: bytes, name: str, filer: str, source: str) -> list[NpxRow]:
    """The rows of a ``proxyVoteTable``; InvalidArgument naming each bad element and its line."""
    root = parse_xml(data, name)
    qname = etree.QName(root)
    if qname.namespace == COVER_NAMESPACE or qname.localname == "edgarSubmission":
        raise InvalidArgument(
            [
                FieldViolation(
                    _at(name, root),
                    f"<{qname.localname}> is an N-PX cover document: it holds no votes; "
                    "import its vote table (proxyVoteTable)",
                )
            ]
        )
    if qname.localname != "proxyVoteTable" or qname.namespace != NAMESPACE:
        raise InvalidArgument(
            [
                FieldViolation(
                    _at(name, root), f"<{qname.localname}> is not an N-PX proxyVoteTable ({NAMESPACE})"
                )
            ]
        )
    errors = _Errors()
    rows = []
    tables = children(root, "proxyTable")
    if not tables:
        errors.add(_at(name, root), "<proxyVoteTable> holds no <proxyTable>")
    for table in tables:
        row = _xml_row(errors, table, name, filer, source)
        if row is not None:
            rows.append(row)
    errors.raise_if_any()
    return rows


def _xml_row(errors: _Errors, table, name: str, filer: str, source: str) -> NpxRow | None:
    before = len(errors.items)

    def required(local: str) -> str:
        found = child(table, local)
        if found is None or not clean_text(found.text):
            errors.add(_at(name, found if found is not None else table), f"<{local}> is required")
            return ""
        return clean_text(found.text)

    issuer_name = required("issuerName")
    description = required("voteDescription")
    date_text = required("meetingDate")
    meeting_date = None
    if date_text:
        try:
            meeting_date = _xml_date(date_text)
        except ValueError as exc:
            errors.add(_at(name, child(table, "meetingDate")), f"<meetingDate>: {exc}")
    proponent = "MANAGEMENT"
    source_element = child(table, "voteSource")
    if source_element is not None:
        try:
            proponent = map_proponent(source_element.text)
        except ValueError as exc:
            errors.add(_at(name, source_element), f"<voteSource>: {exc}")
    categories = []
    for holder in children(table, "voteCategories"):
        for category in holder.iter():
            if local_name(category) == "categoryType" and clean_text(category.text):
                categories.append(clean_text(category.text).upper())
    lots = []
    vote = child(table, "vote")
    for record in children(vote, "voteRecord") if vote is not None else []:
        lot = _xml_lot(errors, record, name)
        if lot is not None:
            lots.append(lot)
    series = _text(table, "voteSeries")
    shares_voted = _exact(_text(table, "sharesVoted"))
    if len(errors.items) > before or meeting_date is None:
        return None
    return NpxRow(
        where=_at(name, table),
        issuer_name=issuer_name,
        cusip=normalise_identifier(_text(table, "cusip")),
        isin=normalise_identifier(_text(table, "isin")),
        figi=normalise_identifier(_text(table, "figi")),
        meeting_date=meeting_date,
        description=description,
        other_description=_text(table, "otherVoteDescription"),
        proponent_kind=proponent,
        categories=tuple(dict.fromkeys(categories)),
        lots=tuple(lots),
        investor=f"{filer} (series {series})" if series else filer,
        source=source,
        shares_voted=shares_voted,
    )


def _exact(text: str) -> Decimal | None:
    try:
        value = Decimal(text)
    except InvalidOperation:
        return None
    return value if value.is_finite() else None


def _xml_lot(errors: _Errors, record, name: str) -> Lot | None:
    how = child(record, "howVoted")
    if how is None:
        errors.add(_at(name, record), "<voteRecord>: <howVoted> is required")
        return None
    try:
        vote = map_vote(how.text)
    except ValueError as exc:
        errors.add(_at(name, how), f"<howVoted>: {exc}")
        return None
    management = NO_RECOMMENDATION
    rec = child(record, "managementRecommendation")
    if rec is not None:
        try:
            management = map_recommendation(rec.text)
        except ValueError as exc:
            errors.add(_at(name, rec), f"<managementRecommendation>: {exc}")
            return None
    shares_element = child(record, "sharesVoted")
    shares = 0.0
    if shares_element is not None and clean_text(shares_element.text):
        try:
            shares = float(clean_text(shares_element.text))
        except ValueError:
            errors.add(
                _at(name, shares_element),
                f"<sharesVoted>: {clean_text(shares_element.text)[:40]!r} is not a number",
            )
            return None
    return Lot(
        vote,
        shares,
        management,
        _exact(clean_text(shares_element.text)) if shares_element is not None else None,
    )


# --- JSON lines (the shape of records-dev.jsonl) ---

_JSONL_REQUIRED = ("issuer_name", "meeting_date", "vote_description")


def rows_from_jsonl(text: str, name: str, filer: str = "", source: str = "") -> list[NpxRow]:
    """One row per non-blank line; InvalidArgument naming each bad line and field."""
    errors = _Errors()
    rows = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{name}:line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            errors.add(where, f"not a JSON object: {exc.msg} (column {exc.colno})")
            continue
        except RecursionError:  # json recurses once per level of nesting
            errors.add(where, "not a JSON object this service reads: nested too deeply")
            continue
        if not isinstance(record, dict):
            errors.add(where, "not a JSON object")
            continue
        row = _json_row(errors, record, where, filer, source)
        if row is not None:
            rows.append(row)
    if not rows and not errors.items:
        errors.add(f"{name}:line 1", "holds no N-PX records")
    errors.raise_if_any()
    return rows


def _json_text(errors: _Errors, record: dict, key: str, where: str) -> str:
    value = record.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        errors.add(where, f"{key}: must be a string")
        return ""
    return clean_text(value)


def _json_row(errors: _Errors, record: dict, where: str, filer: str, source: str) -> NpxRow | None:
    before = len(errors.items)
    values = {
        key: _json_text(errors, record, key, where)
        for key in (
            "issuer_name",
            "cusip",
            "isin",
            "figi",
            "meeting_date",
            "vote_description",
            "other_vote_description",
            "vote_source",
            "filer",
            "accession",
            "series",
        )
    }
    for key in _JSONL_REQUIRED:
        if not values[key] and len(errors.items) == before:
            errors.add(where, f"{key}: is required")
    meeting_date = None
    if values["meeting_date"]:
        try:
            meeting_date = dt.date.fromisoformat(values["meeting_date"])
            if len(values["meeting_date"]) != 10:
                raise ValueError
        except ValueError:
            errors.add(where, f"meeting_date: {values['meeting_date'][:40]!r} is not a YYYY-MM-DD date")
    investor = values["filer"] or filer
    if not investor:
        errors.add(where, "filer: is required (or give the filer for the whole file)")
    proponent = "MANAGEMENT"
    try:
        proponent = map_proponent(values["vote_source"])
    except ValueError as exc:
        errors.add(where, f"vote_source: {exc}")
    categories = record.get("categories") or []
    if isinstance(categories, str):
        categories = categories.split("|")
    if not isinstance(categories, list) or not all(isinstance(c, str) for c in categories):
        errors.add(where, "categories: must be a list of strings")
        categories = []
    lots = ()
    try:
        how = record.get("how_voted")
        management = record.get("management_recommendation")
        for key, value in (("how_voted", how), ("management_recommendation", management)):
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{key}: must be a string or null")
        try:
            vote = map_vote(how)
        except ValueError as exc:
            raise ValueError(f"how_voted: {exc}") from None
        try:
            rec = map_recommendation(management)
        except ValueError as exc:
            raise ValueError(f"management_recommendation: {exc}") from None
        lots = (Lot(vote, 0.0, rec),)
    except ValueError as exc:
        errors.add(where, str(exc))
    if len(errors.items) > before or meeting_date is None:
        return None
    return NpxRow(
        where=where,
        issuer_name=values["issuer_name"],
        cusip=normalise_identifier(values["cusip"]),
        isin=normalise_identifier(values["isin"]),
        figi=normalise_identifier(values["figi"]),
        meeting_date=meeting_date,
        description=values["vote_description"],
        other_description=values["other_vote_description"],
        proponent_kind=proponent,
        categories=tuple(dict.fromkeys(clean_text(c).upper() for c in categories if clean_text(c))),
        lots=lots,
        investor=f"{investor} (series {values['series']})" if values["series"] else investor,
        source=values["accession"] or source,
    )


# --- rows -> meetings ---


def _fund_vote(lots: tuple[Lot, ...]) -> Lot | None:
    """The lot with the most shares voted (the first on a tie); None without lots."""
    best = None
    for lot in lots:
        if best is None or lot.shares > best.shares:
            best = lot
    return best


def meetings_from_rows(rows: Iterable[NpxRow]) -> NpxMeetings:
    """Rows grouped into meetings (per filing first, so a repeated wording stays two items), then merged."""
    pieces: dict[tuple[str, str, str], list[tuple[NpxRow, BallotItem]]] = {}
    headers: dict[tuple[str, str, str], Meeting] = {}
    skipped: list[tuple[str, str]] = []
    count = 0
    for row in rows:
        count += 1
        issuer = Issuer(name=row.issuer_name, isin=row.isin, cusip=row.cusip, figi=row.figi)
        header = Meeting("", issuer, row.meeting_date, (), provenance=f"SEC Form N-PX {row.source}".strip())
        key = meeting_key(header)
        piece = (row.investor, row.source, key)
        items = pieces.setdefault(piece, [])
        headers.setdefault(piece, header)
        occurrence = sum(
            1
            for r, _ in items
            if normalise_description(r.description) == normalise_description(row.description)
        )
        lot = _fund_vote(row.lots)
        votes: tuple[InvestorVote, ...] = ()
        board = NO_RECOMMENDATION
        if lot is None or lot.how_voted is None:
            skipped.append((key, f"{row.where}: no vote reported by {row.investor}; item kept without it"))
        else:
            votes = (InvestorVote(row.investor, lot.how_voted, row.source),)
        if lot is not None:
            board = lot.management
            voted_frequency = lot.how_voted in FREQUENCIES
            if voted_frequency and board not in FREQUENCIES:
                board = NO_RECOMMENDATION  # a FOR/AGAINST "recommendation" on a frequency says nothing
        items.append(
            (
                row,
                BallotItem(
                    item_id=item_id_for(row.description, occurrence),
                    title=row.description[:MAX_TEXT],
                    text=row.other_description,
                    proponent_kind=row.proponent_kind,
                    board_recommendation=board,
                    investor_votes=votes,
                    sources=tuple(f"{CATEGORY_SOURCE}{c}" for c in row.categories),
                ),
            )
        )
    meetings = []
    for piece, items in pieces.items():
        header = headers[piece]
        meetings.append(
            Meeting(
                meeting_id=f"npx:{piece[2]}"[:200],
                issuer=header.issuer,
                meeting_date=header.meeting_date,
                items=tuple(item for _, item in items),
                provenance=header.provenance,
            )
        )
    return NpxMeetings(tuple(combine_meetings(meetings)), count, tuple(skipped))


def meetings_from_xml(data: bytes, name: str, filer: str, source: str) -> NpxMeetings:
    """A ``proxyVoteTable``'s meetings. The table does not name its filer: the caller does."""
    return meetings_from_rows(rows_from_xml(data, name, filer, source))


def meetings_from_jsonl(text: str, name: str, filer: str = "", source: str = "") -> NpxMeetings:
    return meetings_from_rows(rows_from_jsonl(text, name, filer, source))
