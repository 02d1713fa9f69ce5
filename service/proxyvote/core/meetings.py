"""Past meetings: one identity per meeting, and the merge of two records of the same meeting.

Pure functions of domain values. A past meeting is often known in pieces: one
file gives its ballot and outcome, each fund's N-PX filing gives that fund's
votes on some of its items. The pieces are the same meeting when they share an
issuer identifier and a meeting date; they are merged item by item, matching
items by their normalised description.

Merging is idempotent (``merge_meetings(m, m) == m``) and merging a piece
already merged changes nothing, which is what makes an import idempotent.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Iterable, Sequence

from proxyvote.core.model import NO_RECOMMENDATION, BallotItem, InvestorVote, Issuer, Meeting

# Identifiers in the order a meeting key prefers them.
IDENTIFIERS = ("cusip", "isin", "figi")
# Placeholders filers write where they have no identifier (the SEC template writes N/A).
_PLACEHOLDERS = frozenset({"", "N/A", "NA", "NONE", "NULL", "-", "0"})


def normalise_text(text: str) -> str:
    """Whitespace collapsed and case folded: how item descriptions and names are compared."""
    return " ".join(text.split()).casefold()


def normalise_description(text: str) -> str:
    """How item descriptions are matched: ``normalise_text`` without trailing punctuation."""
    return normalise_text(text).rstrip(" .;:,")


def normalise_identifier(value: str | None) -> str:
    """An issuer identifier as compared and stored: upper case, no spaces; "" for a placeholder."""
    cleaned = "".join((value or "").split()).upper()
    return "" if cleaned in _PLACEHOLDERS else cleaned


def issuer_identifiers(issuer: Issuer) -> tuple[tuple[str, str], ...]:
    """The issuer's (kind, value) identifiers among cusip, isin and figi, where present."""
    out = []
    for kind in IDENTIFIERS:
        value = normalise_identifier(getattr(issuer, kind))
        if value:
            out.append((kind, value))
    return tuple(out)


def meeting_key(meeting: Meeting) -> str:
    """A deterministic identity: the first of cusip, isin, figi, ticker, name, and the meeting date.

    E.g. ``cusip:023135106@2019-05-22``. Two records of one meeting that name
    the issuer by different identifiers get different keys; ``same_meeting``
    (any shared identifier on the same date) is what the store matches on.
    """
    issuer = meeting.issuer
    for kind, value in issuer_identifiers(issuer):
        return _bounded(kind, value, meeting)
    ticker = normalise_identifier(issuer.ticker)
    if ticker:
        return _bounded("ticker", ticker, meeting)
    return _bounded("name", normalise_text(issuer.name), meeting)


MAX_KEY = 300  # the store's column


def _bounded(kind: str, value: str, meeting: Meeting) -> str:
    """``kind:value@date``; a value too long for MAX_KEY keeps its start and a digest of the whole."""
    date = meeting.meeting_date.isoformat()
    if len(kind) + len(value) + len(date) + 2 > MAX_KEY:
        value = f"{value[:200]}#{hashlib.sha256(value.encode()).hexdigest()[:16]}"
    return f"{kind}:{value}@{date}"


def same_meeting(a: Meeting, b: Meeting) -> bool:
    """Same date and a shared cusip, isin or figi (or, without any, the same key)."""
    if a.meeting_date != b.meeting_date:
        return False
    ids_a, ids_b = set(issuer_identifiers(a.issuer)), set(issuer_identifiers(b.issuer))
    if ids_a and ids_b:
        return bool(ids_a & ids_b)
    return meeting_key(a) == meeting_key(b)


def item_id_for(description: str, occurrence: int = 0) -> str:
    """A stable item id from a description (for sources that number nothing, such as N-PX)."""
    digest = hashlib.sha256(normalise_description(description).encode("utf-8")).hexdigest()[:12]
    return f"npx-{digest}" if occurrence == 0 else f"npx-{digest}-{occurrence + 1}"


def _item_keys(items: Sequence[BallotItem]) -> list[tuple[str, int]]:
    """Each item's (normalised title, occurrence): the n-th item of one wording matches the n-th."""
    seen: dict[str, int] = {}
    keys = []
    for item in items:
        text = normalise_description(item.title)
        keys.append((text, seen.get(text, 0)))
        seen[text] = seen.get(text, 0) + 1
    return keys


def _first(a, b):
    return a if a else b


def _union(a: Iterable, b: Iterable) -> tuple:
    return tuple(dict.fromkeys((*a, *b)))


def merge_issuers(a: Issuer, b: Issuer) -> Issuer:
    """``a``'s fields, with the empty ones filled from ``b``."""
    return Issuer(**{f.name: _first(getattr(a, f.name), getattr(b, f.name)) for f in dataclasses.fields(a)})


def merge_items(a: BallotItem, b: BallotItem) -> BallotItem:
    """One item from two records of it: ``a`` wins where both say something, votes are unioned."""
    board = a.board_recommendation
    if board in ("", NO_RECOMMENDATION) and b.board_recommendation not in ("", NO_RECOMMENDATION):
        board = b.board_recommendation
    return dataclasses.replace(
        a,
        number=_first(a.number, b.number),
        text=_first(a.text, b.text),
        proponent_name=_first(a.proponent_name, b.proponent_name),
        board_recommendation=board,
        vote_options=_first(a.vote_options, b.vote_options),
        category=a.category if a.category is not None else b.category,
        outcome=a.outcome if a.outcome is not None else b.outcome,
        adviser_recommendations=_first(a.adviser_recommendations, b.adviser_recommendations),
        investor_votes=merge_investor_votes(a.investor_votes, b.investor_votes),
        sources=_union(a.sources, b.sources),
    )


def merge_investor_votes(a: Sequence[InvestorVote], b: Sequence[InvestorVote]) -> tuple[InvestorVote, ...]:
    """The union, in first-seen order, without repeating an (investor, vote, source)."""
    return _union(a, b)


def merge_meetings(a: Meeting, b: Meeting) -> Meeting:
    """``a`` with ``b`` merged in: the same meeting (see ``same_meeting``) known from two records.

    Items are matched by normalised description (case, spacing and
    trailing punctuation aside; the n-th item of a wording
    with the n-th); matched items are merged (``merge_items``), ``b``'s other
    items are appended in their order, with an id made unique if it clashes.
    """
    keys_a = _item_keys(a.items)
    position = {key: i for i, key in enumerate(keys_a)}
    items = list(a.items)
    ids = {item.item_id for item in items}
    for key, item in zip(_item_keys(b.items), b.items, strict=True):
        at = position.get(key)
        if at is not None:
            items[at] = merge_items(items[at], item)
            continue
        item_id = item.item_id
        n = 2
        while item_id in ids:
            item_id = f"{item.item_id}~{n}"
            n += 1
        ids.add(item_id)
        position[key] = len(items)
        items.append(item if item_id == item.item_id else dataclasses.replace(item, item_id=item_id))
    parts = _union(a.provenance.split("; "), b.provenance.split("; "))
    provenance = "; ".join(p for p in parts if p)
    return dataclasses.replace(
        a,
        issuer=merge_issuers(a.issuer, b.issuer),
        items=tuple(items),
        meeting_type=_first(a.meeting_type, b.meeting_type),
        record_date=a.record_date or b.record_date,
        provenance=provenance,
    )


def match_keys(meeting: Meeting) -> tuple[str, ...]:
    """What ``same_meeting`` compares, as strings: two meetings are the same when they share one."""
    date = meeting.meeting_date.isoformat()
    ids = issuer_identifiers(meeting.issuer)
    if ids:
        return tuple(f"{kind}:{value}@{date}" for kind, value in ids)
    return (meeting_key(meeting),)


def combine(meetings: Iterable[Meeting]) -> list[Meeting]:
    """Records of the same meeting merged into one (in first-seen order); the others as they are."""
    out: list[Meeting] = []
    index: dict[str, int] = {}
    for meeting in meetings:
        keys = match_keys(meeting)
        at = next((index[k] for k in keys if k in index), None)
        if at is None:
            at = len(out)
            out.append(meeting)
        else:
            out[at] = merge_meetings(out[at], meeting)
        for key in match_keys(out[at]):
            index.setdefault(key, at)
    return out
