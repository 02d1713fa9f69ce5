"""ISO 20022 proxy voting: seev.001 MeetingNotification in, seev.004 MeetingInstruction out.

Message definitions (one published version each; docs/formats.md maps every field):

- ``seev.001.001.11`` MeetingNotificationV11, namespace
  ``urn:iso:std:iso:20022:tech:xsd:seev.001.001.11``, root ``Document/MtgNtfctn``;
- ``seev.004.001.09`` MeetingInstructionV09, namespace
  ``urn:iso:std:iso:20022:tech:xsd:seev.004.001.09``, root ``Document/MtgInstr``.

The official XSDs cannot be fetched offline, so structural checks stand in for
them: required elements present, codes from the code sets, valid dates,
booleans and quantities. Every error names the element's path and line, all of
them at once. What a notification holds that has no place in a ``Meeting`` is
returned as a ``Note`` (path, line, why), never dropped silently.

XML is parsed with ``npx.parse_xml``: the same lxml parser, which resolves no
entity, loads no DTD and touches no network, and refuses any DOCTYPE first.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from lxml import etree

from proxyvote.core.model import NO_RECOMMENDATION, REFER, BallotItem, Issuer, Meeting
from proxyvote.core.vote_plan import ZERO, VotePlan, shares_text
from proxyvote.errors import FieldViolation, InvalidArgument
from proxyvote.wire.npx import parse_xml
from proxyvote.wire.xml_nodes import child, children, clean_text, local_name, sub_element, xml_text

SEEV001 = "seev.001.001.11"
SEEV004 = "seev.004.001.09"
SEEV001_NS = f"urn:iso:std:iso:20022:tech:xsd:{SEEV001}"
SEEV004_NS = f"urn:iso:std:iso:20022:tech:xsd:{SEEV004}"
# Our own block inside seev.004 SplmtryData/Envlp (the standard's extension point).
PLAN_NS = "urn:proxyvote:v1:vote-plan"
MAX_ERRORS = 50
MAX_ID = 35  # Max35Text: MtgId, IssrLabl, SnglInstrId, AcctId

# MeetingType4Code (+ MeetingTypeClassification2Code) -> our meeting_type.
MEETING_TYPES = {
    "GMET": "ANNUAL",
    "XMET": "SPECIAL",
    "SPCL": "SPECIAL",
    "MIXD": "ANNUAL_SPECIAL",
    "CMET": "COURT",
}
MEETING_TYPE_CODES = ("GMET", "XMET", "SPCL", "MIXD", "BMET", "CMET")
CLASSIFICATION_CODES = ("AMET", "CLAS", "ISSU", "OMET", "VRHI")
# Our meeting_type -> MeetingType4Code for seev.004 MtgRef/Tp.
TYPE_CODES = {"ANNUAL": "GMET", "SPECIAL": "XMET", "ANNUAL_SPECIAL": "MIXD", "COURT": "CMET", "": "GMET"}

# VoteInstruction5Code / VoteInstruction6Code -> our votes.
VOTE_CODES = {
    "CFOR": "FOR",
    "CAGS": "AGAINST",
    "ABST": "ABSTAIN",
    "WTHH": "WITHHOLD",
    "ONEY": "ONE_YEAR",
    "TWOY": "TWO_YEARS",
    "THRY": "THREE_YEARS",
}
CODE_OF_VOTE = {vote: code for code, vote in VOTE_CODES.items()}
# Codes of the sets that are no vote we cast (chairman, discretionary, no action, blank,
# with/against management) or, for a recommendation, no recommendation.
OTHER_INSTRUCTION_CODES = ("CHRM", "DISC", "NOAC", "BLNK", "WMGT", "AMGT")
NO_RECOMMENDATION_CODE = "NREC"

# seev.004 Vote14 holds one element per vote, in this (schema) order.
VOTE_ELEMENTS = (
    ("FOR", "For"),
    ("AGAINST", "Agnst"),
    ("ABSTAIN", "Abstn"),
    ("WITHHOLD", "Wthhld"),
    ("ONE_YEAR", "OneYr"),
    ("TWO_YEARS", "TwoYrs"),
    ("THREE_YEARS", "ThreeYrs"),
)
_VOTE_OF_ELEMENT = {element: vote for vote, element in VOTE_ELEMENTS}
# Vote14 elements that carry no vote we plan (reported if a message holds them).
_OTHER_VOTE_ELEMENTS = ("WthMgmt", "AgnstMgmt", "Dscrtnry", "NoActn", "Blnk", "Prtry")


@dataclass(frozen=True, slots=True)
class Note:
    """An element present in a message that has no place in our values."""

    path: str
    line: int
    description: str

    def __str__(self) -> str:
        return f"{self.path} (line {self.line}): {self.description}"


@dataclass(frozen=True, slots=True)
class Notification:
    """A seev.001 read: the meeting, and a note per element that could not be mapped."""

    meeting: Meeting
    notes: tuple[Note, ...]


# --- helpers over lxml ---


def _path_of(element) -> str:
    parts = []
    node = element
    while node is not None and isinstance(node.tag, str):
        parent = node.getparent()
        name = local_name(node)
        if parent is not None:
            same = children(parent, name)
            if len(same) > 1:
                name = f"{name}[{same.index(node) + 1}]"
        parts.append(name)
        node = parent
    return "/" + "/".join(reversed(parts))


class _Reader:
    """Errors and notes of one document, and which elements were used."""

    def __init__(self, name: str):
        self.name = name
        self.errors: list[FieldViolation] = []
        self.used: set = set()  # elements whose whole content was read
        self.entered: set = set()  # containers read child by child
        self.extra: list[Note] = []  # notes on elements that were read

    def error(self, element, description: str) -> None:
        if len(self.errors) < MAX_ERRORS:
            self.errors.append(
                FieldViolation(
                    f"{self.name}:line {element.sourceline}", f"{_path_of(element)}: {description}"
                )
            )

    def missing(self, parent, local: str) -> None:
        self.error(parent, f"<{local}> is required")

    def enter(self, element):
        if element is not None:
            self.entered.add(element)
        return element

    def text(self, parent, local: str, required: bool = False, max_length: int = 0) -> str:
        element = child(parent, local) if parent is not None else None
        if element is None:
            if required and parent is not None:
                self.missing(parent, local)
            return ""
        self.used.add(element)
        value = clean_text(element.text)
        if required and not value:
            self.error(element, "is empty")
        if max_length and len(value) > max_length:
            self.error(element, f"is longer than {max_length} characters")
        return value

    def code(self, parent, local: str, allowed: Iterable[str], required: bool = False) -> str:
        value = self.text(parent, local, required)
        if value and value not in allowed:
            self.error(child(parent, local), f"{value[:40]!r} is not one of {', '.join(allowed)}")
            return ""
        return value

    def boolean(self, parent, local: str, required: bool = False) -> bool | None:
        value = self.text(parent, local, required)
        if not value:
            return None
        if value in ("true", "1"):
            return True
        if value in ("false", "0"):
            return False
        self.error(child(parent, local), f"{value[:40]!r} is not a boolean (true or false)")
        return None

    def date(self, element) -> dt.date | None:
        """An ISODate, or the date of an ISODateTime."""
        self.used.add(element)
        value = clean_text(element.text)
        try:
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}", value):
                return dt.date.fromisoformat(value)
            if re.fullmatch(r"\d{4}-\d{2}-\d{2}T[0-9:.]+(Z|[+-]\d{2}:\d{2})?", value):
                return dt.date.fromisoformat(value[:10])
        except ValueError:
            pass
        self.error(element, f"{value[:40]!r} is not an ISO date (YYYY-MM-DD) or date-time")
        return None

    def notes(self, root) -> tuple[Note, ...]:
        """The topmost elements neither used nor entered: each one reported once."""
        out: list[Note] = []

        def walk(element) -> None:
            for node in element:
                if not isinstance(node.tag, str) or node in self.used:
                    continue
                if node in self.entered:
                    walk(node)
                else:
                    out.append(Note(_path_of(node), node.sourceline or 0, _why(node)))

        walk(root)
        return tuple(out)

    def raise_if_any(self) -> None:
        if self.errors:
            raise InvalidArgument(self.errors)


_WHY = {
    "VoteTp": "binding or advisory: our ballot items have no such field",
    "Tp": "the resolution type has no place in our ballot items",
    "NtifngPtyRcmmndtn": "the notifying party's recommendation is not the board's: not kept",
    "Vote": "vote parameters (deadlines, methods, split or partial vote allowed) are not kept",
    "Pos": "positions come from our accounts, not from the notification",
}


def _why(element) -> str:
    local = local_name(element)
    if local == "VoteInstrTp":
        return "an instruction type that is no vote we cast (chairman, discretionary, no action, ...)"
    if local == "MgmtRcmmndtn":
        return "a recommendation that is no vote (CHRM, NOAC, BLNK, ...): taken as no recommendation"
    if local == "Desc" and local_name(element.getparent()) == "Rsltn":
        return "a description in another language: the English one (else the first) is kept"
    return _WHY.get(local, "not mapped: no place for it in our meeting")


# --- seev.001 in ---


def is_seev001(data: bytes) -> bool:
    """Whether a document names the seev.001 namespace (any version) near its start."""
    return b"urn:iso:std:iso:20022:tech:xsd:seev.001." in data[:4096]


def meeting_from_seev001(data: bytes, name: str) -> Notification:
    """The meeting a MeetingNotification announces; InvalidArgument naming every bad element."""
    root = parse_xml(data, name)
    reader = _Reader(name)
    qname = etree.QName(root)
    if qname.namespace != SEEV001_NS:
        found = qname.namespace or "no namespace"
        raise InvalidArgument(
            [
                FieldViolation(
                    f"{name}:line {root.sourceline}",
                    f"/{qname.localname}: namespace {found} is not {SEEV001_NS} "
                    f"(this service reads {SEEV001}, MeetingNotificationV11)",
                )
            ]
        )
    reader.enter(root)
    body = child(root, "MtgNtfctn") if qname.localname == "Document" else None
    if body is None:
        reader.error(root, "<Document><MtgNtfctn> is required (a seev.001 MeetingNotification)")
        reader.raise_if_any()
    reader.enter(body)
    general = reader.enter(child(body, "NtfctnGnlInf"))
    notification_id = ""
    if general is None:
        reader.missing(body, "NtfctnGnlInf")
    else:
        notification_id = reader.text(general, "NtfctnId", max_length=MAX_ID)
        reader.code(general, "NtfctnTp", ("NEWM", "REPL", "RMDR"), required=True)
        status = child(general, "NtfctnSts")
        if status is None:
            reader.missing(general, "NtfctnSts")
        else:
            reader.enter(status)
            reader.code(status, "EvtCmpltnsSts", ("COMP", "INCO"), required=True)
            reader.code(status, "EvtConfSts", ("CONF", "UCON"), required=True)
    meeting_id, issuer_meeting_id, meeting_type = "", "", ""
    record_date = None
    mtg = reader.enter(child(body, "Mtg"))
    if mtg is None:
        reader.missing(body, "Mtg")
    else:
        meeting_id = reader.text(mtg, "MtgId", required=True, max_length=MAX_ID)
        issuer_meeting_id = reader.text(mtg, "IssrMtgId", max_length=MAX_ID)
        type_code = reader.code(mtg, "Tp", MEETING_TYPE_CODES, required=True)
        meeting_type = MEETING_TYPES.get(type_code, "")
        classification = child(mtg, "Clssfctn")
        if classification is not None:
            reader.enter(classification)
            reader.code(classification, "Cd", CLASSIFICATION_CODES)
        if type_code == "BMET":
            tp = child(mtg, "Tp")
            reader.extra.append(
                Note(
                    _path_of(tp),
                    tp.sourceline,
                    "BMET (bondholder meeting) is no meeting type of ours: left unset",
                )
            )
        fixing = child(mtg, "EntitlmntFxgDt")
        if fixing is not None:
            record_date = _date_format(reader, fixing, ("Dt",), "Dt")
    meeting_date = None
    details = children(body, "MtgDtls")
    if not details:
        reader.missing(body, "MtgDtls")
    else:
        first = reader.enter(details[0])
        when = child(first, "DtAndTm")
        if when is None:
            reader.missing(first, "DtAndTm")
        else:
            meeting_date = _date_format(reader, when, ("DtOrDtTm",), None)
            if meeting_date is None and not reader.errors:
                reader.error(when, "the meeting date is not given (a date code is no date)")
    issuer = _issuer(reader, body)
    securities = children(body, "Scty")
    isin, cusip, ticker, security_name = "", "", "", ""
    if not securities:
        reader.missing(body, "Scty")
    else:
        security = reader.enter(securities[0])
        ident = reader.enter(child(security, "FinInstrmId"))
        if ident is None:
            reader.missing(security, "FinInstrmId")
        else:
            isin = reader.text(ident, "ISIN")
            if isin and not re.fullmatch(r"[A-Z]{2}[A-Z0-9]{9}[0-9]", isin):
                reader.error(child(ident, "ISIN"), f"{isin[:40]!r} is not an ISIN")
            security_name = reader.text(ident, "Desc")
            for other in children(ident, "OthrId"):
                cusip, ticker = _other_id(reader, other, cusip, ticker)
    items = _resolutions(reader, body)
    if not children(body, "Rsltn"):
        reader.error(body, "<Rsltn> is required: a meeting without resolutions has no ballot")
    issuer_name = issuer.name or security_name
    if not issuer_name and child(body, "Issr") is not None:
        reader.error(
            child(body, "Issr"),
            "the issuer's name is required (Issr/Id/NmAndAdr/Nm, or Scty/FinInstrmId/Desc)",
        )
    reader.raise_if_any()
    notes = [*reader.extra, *reader.notes(root), *_withdrawn_notes(body)]
    ids = f"MtgId {meeting_id}" + (f", IssrMtgId {issuer_meeting_id}" if issuer_meeting_id else "")
    if notification_id:
        ids += f", NtfctnId {notification_id}"
    meeting = Meeting(
        meeting_id=meeting_id,
        issuer=Issuer(issuer_name, ticker=ticker, isin=isin, cusip=cusip, country=issuer.country),
        meeting_date=meeting_date,
        items=tuple(items),
        meeting_type=meeting_type,
        record_date=record_date,
        provenance=f"ISO 20022 {SEEV001} MeetingNotification ({ids})",
    )
    return Notification(meeting, tuple(notes))


def _date_format(reader: _Reader, holder, choices: tuple[str, ...], inner: str | None) -> dt.date | None:
    """A DateFormat choice: a date (or date-time), or a date code (no date: reported as a note)."""
    reader.enter(holder)
    for local in choices:
        choice = child(holder, local)
        if choice is None:
            continue
        reader.enter(choice)
        for leaf in ("Dt", "DtTm"):
            element = child(choice, leaf)
            if element is not None:
                return reader.date(element)
        reader.error(choice, "holds neither <Dt> nor <DtTm>")
        return None
    if child(holder, "DtCd") is None:
        reader.error(holder, f"holds no date (<{'> or <'.join(choices)}> or <DtCd>)")
    return None


@dataclass(frozen=True, slots=True)
class _IssuerRead:
    name: str
    country: str


def _issuer(reader: _Reader, body) -> _IssuerRead:
    issuer = reader.enter(child(body, "Issr"))
    if issuer is None:
        reader.missing(body, "Issr")
        return _IssuerRead("", "")
    ident = reader.enter(child(issuer, "Id"))
    if ident is None:
        reader.missing(issuer, "Id")
        return _IssuerRead("", "")
    name_and_address = child(ident, "NmAndAdr")
    if name_and_address is None:
        return _IssuerRead("", "")
    reader.enter(name_and_address)
    name = reader.text(name_and_address, "Nm", required=True)
    country = ""
    address = child(name_and_address, "Adr")
    if address is not None:
        reader.enter(address)
        country = reader.text(address, "Ctry", required=True)
        if country and not re.fullmatch(r"[A-Z]{2}", country):
            reader.error(child(address, "Ctry"), f"{country[:40]!r} is not an ISO 3166 country code")
    return _IssuerRead(name, country)


_CUSIP_NAMES = ("CUSIP", "CUSP")
_TICKER_NAMES = ("TICKER", "TICK", "TS")


def _other_id(reader: _Reader, other, cusip: str, ticker: str) -> tuple[str, str]:
    """OthrId: a CUSIP or a ticker is kept (its Tp names it); any other is left for the notes."""
    kind_holder = child(other, "Tp")
    kind = ""
    if kind_holder is not None:
        kind = (
            clean_text(getattr(child(kind_holder, "Cd"), "text", ""))
            or clean_text(getattr(child(kind_holder, "Prtry"), "text", ""))
        ).upper()
    if kind in _CUSIP_NAMES and not cusip:
        reader.used.add(other)
        return clean_text(getattr(child(other, "Id"), "text", "")), ticker
    if kind in _TICKER_NAMES and not ticker:
        reader.used.add(other)
        return cusip, clean_text(getattr(child(other, "Id"), "text", ""))
    return cusip, ticker


def _resolutions(reader: _Reader, body) -> list[BallotItem]:
    items = []
    seen: dict[str, int] = {}
    for resolution in children(body, "Rsltn"):
        reader.enter(resolution)
        label = reader.text(resolution, "IssrLabl", required=True, max_length=MAX_ID)
        if label in seen:
            reader.error(
                child(resolution, "IssrLabl"), f"duplicate IssrLabl {label!r} (also line {seen[label]})"
            )
        elif label:
            seen[label] = child(resolution, "IssrLabl").sourceline
        for_information = reader.boolean(resolution, "ForInfOnly", required=True)
        status = reader.code(resolution, "Sts", ("ACTV", "WDRA"), required=True)
        shareholder = reader.boolean(resolution, "SubmittdBySctyHldr")
        title, text = _description(reader, resolution)
        options = []
        for offered in children(resolution, "VoteInstrTp"):
            vote = _offered_vote(reader, offered)
            if vote and vote not in options:
                options.append(vote)
        recommendation = NO_RECOMMENDATION
        rec_element = child(resolution, "MgmtRcmmndtn")
        if rec_element is not None:
            code = clean_text(rec_element.text)
            if code in VOTE_CODES:
                reader.used.add(rec_element)
                recommendation = VOTE_CODES[code]
            elif code == NO_RECOMMENDATION_CODE:
                reader.used.add(rec_element)
            elif code in OTHER_INSTRUCTION_CODES:
                pass  # left for the notes: a code that is no vote
            else:
                reader.used.add(rec_element)
                reader.error(rec_element, f"{code[:40]!r} is not a VoteInstruction5Code")
        if for_information or status == "WDRA":
            continue  # reported by _withdrawn_notes; never on our ballot
        if not title and label:
            reader.error(resolution, "<Desc><Titl> (or a <Desc><Desc>) is required: the item's wording")
        items.append(
            BallotItem(
                item_id=label,
                number=label,
                title=title,
                text=text,
                proponent_kind="SHAREHOLDER" if shareholder else "MANAGEMENT",
                board_recommendation=recommendation,
                vote_options=tuple(options),
            )
        )
    return items


def _description(reader: _Reader, resolution) -> tuple[str, str]:
    """Titl and Desc of the English description (the first one if none is English);
    descriptions in other languages are left for the notes."""
    descriptions = children(resolution, "Desc")
    if not descriptions:
        return "", ""
    chosen = next(
        (d for d in descriptions if clean_text(getattr(child(d, "Lang"), "text", "")) == "en"),
        descriptions[0],
    )
    reader.enter(chosen)
    lang = reader.text(chosen, "Lang", required=True)
    if lang and not re.fullmatch(r"[a-z]{2}", lang):
        reader.error(child(chosen, "Lang"), f"{lang[:40]!r} is not an ISO 639-1 language code")
    title = reader.text(chosen, "Titl", max_length=1025)
    paragraphs = []
    for paragraph in children(chosen, "Desc"):
        reader.used.add(paragraph)
        paragraphs.append(clean_text(paragraph.text))
    text = "\n\n".join(p for p in paragraphs if p)
    if not title and paragraphs:
        title, text = paragraphs[0], "\n\n".join(p for p in paragraphs[1:] if p)
    return title, text


def _offered_vote(reader: _Reader, offered) -> str:
    """VoteInstrTp/VoteInstrTpCd/Tp as our vote; "" for a code that is no vote (left for the notes)."""
    holder = child(offered, "VoteInstrTpCd")
    if holder is None:
        reader.missing(offered, "VoteInstrTpCd")
        return ""
    code_element = child(holder, "Tp")
    if code_element is None:
        return ""  # a proprietary type: left for the notes
    code = clean_text(code_element.text)
    if code in VOTE_CODES:
        reader.enter(offered)
        reader.enter(holder)
        reader.used.add(code_element)
        return VOTE_CODES[code]
    if code not in OTHER_INSTRUCTION_CODES:
        reader.used.add(offered)
        reader.error(code_element, f"{code[:40]!r} is not a VoteInstruction6Code")
    return ""


def _withdrawn_notes(body) -> list[Note]:
    notes = []
    for resolution in children(body, "Rsltn"):
        label = clean_text(getattr(child(resolution, "IssrLabl"), "text", ""))
        if clean_text(getattr(child(resolution, "Sts"), "text", "")) == "WDRA":
            notes.append(
                Note(
                    _path_of(resolution),
                    resolution.sourceline,
                    f"resolution {label} is withdrawn (WDRA): not on our ballot",
                )
            )
        elif clean_text(getattr(child(resolution, "ForInfOnly"), "text", "")) in ("true", "1"):
            notes.append(
                Note(
                    _path_of(resolution),
                    resolution.sourceline,
                    f"resolution {label} is for information only: not on our ballot",
                )
            )
    return notes


# --- seev.004 out ---


@dataclass(frozen=True, slots=True)
class NotInstructed:
    """Shares of one custodian account on one item that no instruction carries: the
    accounts' policies referred the item to a person (REFER)."""

    custodian_account: str
    item_id: str
    label: str
    shares: Decimal
    accounts: int
    policies: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class InstructionBatch:
    """One MeetingInstruction per custodian account (XML bytes), and what they leave out."""

    messages: dict[str, bytes]
    instruction_ids: dict[str, str]
    not_instructed: tuple[NotInstructed, ...]


def plan_fingerprint(plan: VotePlan) -> str:
    """A stable id for a plan without a stored id: a hash of its meeting, programme, decision
    ids and positions (the same plan gives the same instruction ids)."""
    digest = hashlib.sha256()
    for part in (plan.meeting_id, plan.programme, plan.security, str(plan.record_date or "")):
        digest.update(part.encode() + b"\x00")
    for share in plan.policies:
        digest.update(f"{share.policy}\x00{share.decision_id}\x00".encode())
    for account in plan.accounts:
        digest.update(f"{account.account_id}\x00{account.custodian_account}\x00{account.shares}\x00".encode())
    return digest.hexdigest()[:32]


def instruction_id(plan_id: str, custodian_account: str) -> str:
    """The MtgInstrId of one custodian account's instruction under a plan (deterministic, <= 35 chars)."""
    digest = hashlib.sha256(f"{plan_id}\x00{custodian_account}".encode()).hexdigest().upper()
    return f"PV{digest[:30]}"


def _sub(parent, local: str, text: str | None = None, ns: str = SEEV004_NS):
    return sub_element(parent, ns, local, text)


def meeting_instructions(
    meeting: Meeting,
    plan: VotePlan,
    plan_id: str = "",
    *,
    created: dt.datetime | None = None,
) -> InstructionBatch:
    """One seev.004 MeetingInstruction per custodian account of the plan.

    Per resolution (``IssrLabl``: the item's number, else its id) the quantity per
    vote is the sum of the shares of the accounts in that custodian account whose
    policy cast it, so accounts that differ give a split vote. Shares referred to a
    person are not instructed: they are listed in ``not_instructed``. The message
    and instruction ids derive from ``plan_id`` (default: ``plan_fingerprint(plan)``)
    and the custodian account; the plan id and every decision id are carried in
    ``SplmtryData``. ``created`` (optional) is written as ``ReqdExctnDt``.
    """
    if plan.meeting_id != meeting.meeting_id or plan.item_ids != tuple(i.item_id for i in meeting.items):
        raise InvalidArgument(
            [
                FieldViolation(
                    "plan", f"is a plan of meeting {plan.meeting_id!r}, not of {meeting.meeting_id!r}"
                )
            ]
        )
    if meeting.meeting_type not in TYPE_CODES:
        raise InvalidArgument(
            [FieldViolation("meeting.meeting_type", f"{meeting.meeting_type} has no seev MeetingType4Code")]
        )
    plan_id = plan_id or plan_fingerprint(plan)
    labels = {item.item_id: item.number or item.item_id for item in meeting.items}
    too_long = [label for label in labels.values() if len(label) > MAX_ID]
    bad_accounts = sorted({a.custodian_account for a in plan.accounts if len(a.custodian_account) > MAX_ID})
    if too_long or bad_accounts:
        raise InvalidArgument(
            [
                FieldViolation("meeting.items", f"IssrLabl {label!r} is longer than {MAX_ID}")
                for label in too_long
            ]
            + [FieldViolation("plan.accounts", f"AcctId {a!r} is longer than {MAX_ID}") for a in bad_accounts]
        )
    # custodian account -> item -> vote -> shares; and the referred part
    votes: dict[str, dict[str, dict[str, Decimal]]] = defaultdict(
        lambda: defaultdict(lambda: defaultdict(Decimal))
    )
    referred: dict[tuple[str, str], list] = {}
    held: dict[str, Decimal] = defaultdict(Decimal)
    for account in plan.accounts:
        held[account.custodian_account] += account.shares
    for instruction in plan.instructions():
        if instruction.vote == REFER:
            entry = referred.setdefault((instruction.custodian_account, instruction.item_id), [ZERO, 0, []])
            entry[0] += instruction.shares
            entry[1] += 1
            if instruction.policy not in entry[2]:
                entry[2].append(instruction.policy)
        else:
            votes[instruction.custodian_account][instruction.item_id][instruction.vote] += instruction.shares
    messages, ids = {}, {}
    for custodian in sorted(held):
        ids[custodian] = instruction_id(plan_id, custodian)
        messages[custodian] = _instruction_xml(
            meeting,
            plan,
            plan_id,
            ids[custodian],
            custodian,
            held[custodian],
            votes.get(custodian, {}),
            labels,
            created,
        )
    not_instructed = tuple(
        NotInstructed(custodian, item_id, labels[item_id], shares, accounts, tuple(sorted(policies)))
        for (custodian, item_id), (shares, accounts, policies) in sorted(
            referred.items(), key=lambda kv: (kv[0][0], plan.item_ids.index(kv[0][1]))
        )
    )
    return InstructionBatch(messages, ids, not_instructed)


def _instruction_xml(
    meeting: Meeting,
    plan: VotePlan,
    plan_id: str,
    message_id: str,
    custodian: str,
    held: Decimal,
    votes: dict[str, dict[str, Decimal]],
    labels: dict[str, str],
    created: dt.datetime | None,
) -> bytes:
    root = etree.Element(f"{{{SEEV004_NS}}}Document", nsmap={None: SEEV004_NS})
    body = _sub(root, "MtgInstr")
    _sub(body, "MtgInstrId", message_id)
    ref = _sub(body, "MtgRef")
    _sub(ref, "MtgId", meeting.meeting_id[:MAX_ID])
    # MtgDtAndTm is an ISODateTime; we know the meeting's date only.
    _sub(ref, "MtgDtAndTm", f"{meeting.meeting_date.isoformat()}T00:00:00")
    _sub(ref, "Tp", TYPE_CODES[meeting.meeting_type])
    if meeting.meeting_type in ("ANNUAL", "ANNUAL_SPECIAL"):
        _sub(_sub(ref, "Clssfctn"), "Cd", "AMET")
    _sub(_sub(_sub(ref, "Issr"), "NmAndAdr"), "Nm", meeting.issuer.name[:350])
    security = _sub(body, "FinInstrmId")
    if meeting.issuer.isin:
        _sub(security, "ISIN", meeting.issuer.isin)
    if meeting.issuer.cusip:
        other = _sub(security, "OthrId")
        _sub(other, "Id", meeting.issuer.cusip)
        _sub(_sub(other, "Tp"), "Prtry", "CUSIP")
    if not meeting.issuer.isin and not meeting.issuer.cusip:
        _sub(security, "Desc", (plan.security or meeting.issuer.name)[:140])
    instruction = _sub(body, "Instr")
    _sub(instruction, "SnglInstrId", message_id)
    if created is not None:
        _sub(instruction, "ReqdExctnDt", created.replace(microsecond=0, tzinfo=None).isoformat())
    _sub(instruction, "VoteExctnConf", "false")
    account = _sub(instruction, "AcctDtls")
    if custodian:
        _sub(account, "AcctId", custodian)
    balance = _sub(_sub(account, "InstdBal"), "Bal")
    _sub(balance, "ShrtLngPos", "LONG")
    _sub(_sub(balance, "Qty"), "Unit", shares_text(held))
    per_resolution = _sub(_sub(_sub(instruction, "VoteDtls"), "VoteInstrForAgndRsltn"), "VotePerAgndRsltn")
    for item_id in plan.item_ids:
        shares = votes.get(item_id)
        if not shares:
            continue  # all referred: not instructed (listed beside the messages)
        vote = _sub(per_resolution, "VoteInstr")
        _sub(vote, "IssrLabl", labels[item_id])
        for our_vote, element in VOTE_ELEMENTS:
            if shares.get(our_vote):
                _sub(_sub(_sub(vote, element), "Qty"), "Unit", shares_text(shares[our_vote]))
    if not len(per_resolution):
        # Nothing to instruct: a message must still say so; an empty VotePerAgndRsltn is refused.
        instruction.remove(per_resolution.getparent().getparent())
    supplementary = _sub(body, "SplmtryData")
    _sub(supplementary, "PlcAndNm", "/Document/MtgInstr")
    envelope = _sub(supplementary, "Envlp")
    block = etree.SubElement(envelope, f"{{{PLAN_NS}}}VotePlan", nsmap={"pv": PLAN_NS})
    block.set("planId", xml_text(plan_id))
    block.set("programme", xml_text(plan.programme))
    for share in plan.policies:
        decision = etree.SubElement(block, f"{{{PLAN_NS}}}Decision")
        decision.set("policy", xml_text(share.policy))
        decision.set("decisionId", xml_text(share.decision_id))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# --- seev.004 read back ---


@dataclass(frozen=True, slots=True)
class ReadInstruction:
    """A MeetingInstruction read back: quantities per resolution label and vote."""

    instruction_id: str
    meeting_id: str
    isin: str
    custodian_account: str
    instructed_balance: Decimal
    votes: dict[str, dict[str, Decimal]]  # IssrLabl -> our vote -> quantity
    plan_id: str
    decision_ids: dict[str, str]  # policy -> decision id
    notes: tuple[Note, ...]


def _quantity(reader: _Reader, holder) -> Decimal | None:
    qty = child(holder, "Qty")
    unit = child(qty, "Unit") if qty is not None else None
    if unit is None:
        reader.error(holder, "<Qty><Unit> is required (a quantity of securities)")
        return None
    reader.used.add(holder)
    text = clean_text(unit.text)
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = None
    if value is None or not re.fullmatch(r"\d+(\.\d+)?", text):
        reader.error(unit, f"{text[:40]!r} is not a non-negative decimal quantity")
        return None
    return value


def read_meeting_instruction(data: bytes, name: str) -> ReadInstruction:
    """A seev.004 MeetingInstruction (one Instr); InvalidArgument naming every bad element."""
    root = parse_xml(data, name)
    reader = _Reader(name)
    qname = etree.QName(root)
    body = child(root, "MtgInstr") if qname.localname == "Document" else None
    if qname.namespace != SEEV004_NS or body is None:
        raise InvalidArgument(
            [
                FieldViolation(
                    f"{name}:line {root.sourceline}",
                    f"/{qname.localname}: not a {SEEV004} MeetingInstruction "
                    f"(Document/MtgInstr in {SEEV004_NS})",
                )
            ]
        )
    reader.enter(root)
    reader.enter(body)
    message_id = reader.text(body, "MtgInstrId", max_length=MAX_ID)
    ref = reader.enter(child(body, "MtgRef"))
    meeting_id = ""
    if ref is None:
        reader.missing(body, "MtgRef")
    else:
        meeting_id = reader.text(ref, "MtgId", required=True, max_length=MAX_ID)
        when = child(ref, "MtgDtAndTm")
        if when is None:
            reader.missing(ref, "MtgDtAndTm")
        else:
            reader.date(when)
        reader.code(ref, "Tp", MEETING_TYPE_CODES, required=True)
        reader.used.update(c for c in ref if local_name(c) in ("IssrMtgId", "Clssfctn", "Issr"))
    security = reader.enter(child(body, "FinInstrmId"))
    isin = reader.text(security, "ISIN") if security is not None else ""
    if security is not None:
        reader.used.update(c for c in security if local_name(c) in ("OthrId", "Desc"))
    if security is None:
        reader.missing(body, "FinInstrmId")
    instructions = children(body, "Instr")
    votes: dict[str, dict[str, Decimal]] = {}
    custodian, balance = "", ZERO
    if len(instructions) != 1:
        reader.error(body, f"holds {len(instructions)} <Instr>; this reader takes exactly one")
    else:
        instruction = reader.enter(instructions[0])
        reader.text(instruction, "SnglInstrId", required=True, max_length=MAX_ID)
        requested = child(instruction, "ReqdExctnDt")
        if requested is not None:
            reader.date(requested)
        reader.boolean(instruction, "VoteExctnConf", required=True)
        account = reader.enter(child(instruction, "AcctDtls"))
        if account is None:
            reader.missing(instruction, "AcctDtls")
        else:
            custodian = reader.text(account, "AcctId", max_length=MAX_ID)
            held = child(account, "InstdBal")
            if held is None:
                reader.missing(account, "InstdBal")
            else:
                reader.enter(held)
                bal = child(held, "Bal")
                if bal is None:
                    reader.missing(held, "Bal")
                else:
                    reader.code(bal, "ShrtLngPos", ("LONG", "SHOR"), required=True)
                    balance = _quantity(reader, bal) or ZERO
        details = child(instruction, "VoteDtls")
        if details is not None:
            reader.enter(details)
            per_agenda = child(details, "VoteInstrForAgndRsltn")
            per_resolution = child(per_agenda, "VotePerAgndRsltn") if per_agenda is not None else None
            if per_agenda is not None:
                reader.enter(per_agenda)
            if per_resolution is not None:
                reader.enter(per_resolution)
                for vote in children(per_resolution, "VoteInstr"):
                    reader.enter(vote)
                    label = reader.text(vote, "IssrLabl", required=True, max_length=MAX_ID)
                    if label in votes:
                        reader.error(child(vote, "IssrLabl"), f"duplicate IssrLabl {label!r}")
                    quantities: dict[str, Decimal] = {}
                    for node in vote:
                        local = local_name(node)
                        if local in _VOTE_OF_ELEMENT:
                            value = _quantity(reader, node)
                            if value is not None:
                                quantities[_VOTE_OF_ELEMENT[local]] = value
                    votes[label] = quantities
    plan_id, decision_ids = "", {}
    for supplementary in children(body, "SplmtryData"):
        envelope = child(supplementary, "Envlp")
        block = None
        if envelope is not None:
            block = next(
                (c for c in envelope if isinstance(c.tag, str) and etree.QName(c).namespace == PLAN_NS), None
            )
        if block is not None:
            reader.used.add(supplementary)
            plan_id = block.get("planId", "")
            for decision in block:
                if isinstance(decision.tag, str):
                    decision_ids[decision.get("policy", "")] = decision.get("decisionId", "")
    reader.raise_if_any()
    return ReadInstruction(
        message_id, meeting_id, isin, custodian, balance, votes, plan_id, decision_ids, reader.notes(root)
    )
