"""Domain vote plans -> the SEC Form N-PX vote table (``proxyVoteTable`` XML).

The same namespace and element names the reader (``wire.npx``) parses. One
``proxyTable`` per ballot item of each (meeting, plan):

- ``issuerName``, ``cusip`` and/or ``isin`` (at least one is required here),
  ``meetingDate`` as MM/DD/YYYY, ``voteDescription`` the item's title as on
  the card, ``voteCategories`` the plan's categories for the item in the SEC's
  spelling (``OTHER`` where the item was not placed), ``voteSource`` ISSUER or
  SECURITY HOLDER;
- ``sharesVoted`` the shares instructed on the item (referred shares are not
  voted, so not counted), ``sharesOnLoan`` 0 (we hold no securities-lending data);
- one ``voteRecord`` lot per vote cast (``howVoted``, ``sharesVoted``,
  ``managementRecommendation``), so pass-through splits show as separate lots.
  For or against management follows from comparing the two, as the form says.
  An item whose every share was referred gets no row: it was not voted, and
  ``vote_table`` returns it in its report.

The reporting period runs from 1 July to 30 June; a meeting outside it is refused.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from proxyvote.core.classify_eval import NPX_SPELLING
from proxyvote.core.model import NO_RECOMMENDATION, Meeting
from proxyvote.core.vote_plan import VotePlan, shares_text
from proxyvote.errors import FieldViolation, InvalidArgument
from proxyvote.wire.npx import NAMESPACE
from proxyvote.wire.xml_nodes import sub_element

# Our votes -> N-PX howVoted / managementRecommendation spellings (the reader maps them back).
HOW_VOTED = {
    "FOR": "FOR",
    "AGAINST": "AGAINST",
    "ABSTAIN": "ABSTAIN",
    "WITHHOLD": "WITHHOLD",
    "ONE_YEAR": "1 YEAR",
    "TWO_YEARS": "2 YEARS",
    "THREE_YEARS": "3 YEARS",
}
SERIES_ID = re.compile(r"S[0-9]{9}")
VOTE_SOURCES = {"MANAGEMENT": "ISSUER", "SHAREHOLDER": "SECURITY HOLDER"}


@dataclass(frozen=True, slots=True)
class ReportingPeriod:
    """The N-PX reporting period ending on 30 June of ``year``: 1 July of the year before to 30 June."""

    year: int

    @property
    def start(self) -> dt.date:
        return dt.date(self.year - 1, 7, 1)

    @property
    def end(self) -> dt.date:
        return dt.date(self.year, 6, 30)

    def __contains__(self, day: dt.date) -> bool:
        return self.start <= day <= self.end

    @classmethod
    def of(cls, day: dt.date) -> ReportingPeriod:
        return cls(day.year + 1 if day.month >= 7 else day.year)


@dataclass(frozen=True, slots=True)
class VoteTable:
    """The vote table's bytes, the rows written, and (meeting_id, item_id, why) of items left out."""

    xml: bytes
    rows: int
    not_voted: tuple[tuple[str, str, str], ...]


def _sub(parent, local: str, text: str | None = None):
    return sub_element(parent, NAMESPACE, local, text)


def vote_table(
    period: ReportingPeriod,
    votes: Iterable[tuple[Meeting, VotePlan]],
    *,
    series: str = "",
) -> VoteTable:
    """The fund's N-PX vote table for ``period`` over its (meeting, plan) pairs.

    InvalidArgument (every problem at once) for a meeting outside the period, a plan
    of another meeting, or an issuer with neither CUSIP nor ISIN. ``series`` (the SEC
    series id, optional) is written as ``voteSeries`` on every row.
    """
    pairs = list(votes)
    problems = []
    if series and not SERIES_ID.fullmatch(series):
        problems.append(FieldViolation("series", f"{series[:40]!r} is not an SEC series id (S and 9 digits)"))
    for index, (meeting, plan) in enumerate(pairs):
        where = f"votes[{index}]"
        if meeting.meeting_date not in period:
            problems.append(
                FieldViolation(
                    f"{where}.meeting.meeting_date",
                    f"{meeting.meeting_id}: {meeting.meeting_date} is outside the reporting period "
                    f"{period.start} to {period.end}",
                )
            )
        if plan.meeting_id != meeting.meeting_id or plan.item_ids != tuple(i.item_id for i in meeting.items):
            problems.append(
                FieldViolation(f"{where}.plan", f"is not a plan of meeting {meeting.meeting_id!r}")
            )
        if not meeting.issuer.cusip and not meeting.issuer.isin:
            problems.append(
                FieldViolation(
                    f"{where}.meeting.issuer", f"{meeting.meeting_id}: a CUSIP or an ISIN is required"
                )
            )
    if problems:
        raise InvalidArgument(problems)
    root = etree.Element(f"{{{NAMESPACE}}}proxyVoteTable", nsmap={"inf": NAMESPACE})
    rows, not_voted = 0, []
    for meeting, plan in sorted(pairs, key=lambda p: (p[0].meeting_date, p[0].issuer.name, p[0].meeting_id)):
        totals = {t.item_id: t for t in plan.items}
        for item in meeting.items:
            item_totals = totals[item.item_id]
            if not item_totals.shares_by_vote:
                not_voted.append(
                    (meeting.meeting_id, item.item_id, "every share was referred to a person: not voted")
                )
                continue
            rows += 1
            _row(root, meeting, item, item_totals, series)
    xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)
    return VoteTable(xml, rows, tuple(not_voted))


def _row(root, meeting: Meeting, item, totals, series: str) -> None:
    table = _sub(root, "proxyTable")
    _sub(table, "issuerName", meeting.issuer.name)
    if meeting.issuer.cusip:
        _sub(table, "cusip", meeting.issuer.cusip)
    if meeting.issuer.isin:
        _sub(table, "isin", meeting.issuer.isin)
    if meeting.issuer.figi:
        _sub(table, "figi", meeting.issuer.figi)
    _sub(table, "meetingDate", meeting.meeting_date.strftime("%m/%d/%Y"))
    _sub(table, "voteDescription", item.title)
    categories = _sub(table, "voteCategories")
    for code in totals.categories or ("OTHER",):
        _sub(_sub(categories, "voteCategory"), "categoryType", NPX_SPELLING[code])
    _sub(table, "voteSource", VOTE_SOURCES[item.proponent_kind])
    voted = sum((shares for _, shares in totals.shares_by_vote), start=type(totals.total)(0))
    _sub(table, "sharesVoted", shares_text(voted))
    _sub(table, "sharesOnLoan", "0")
    vote = _sub(table, "vote")
    recommendation = item.board_recommendation
    management = HOW_VOTED.get(recommendation, "NONE") if recommendation != NO_RECOMMENDATION else "NONE"
    for how, shares in totals.shares_by_vote:
        record = _sub(vote, "voteRecord")
        _sub(record, "howVoted", HOW_VOTED[how])
        _sub(record, "sharesVoted", shares_text(shares))
        _sub(record, "managementRecommendation", management)
    if series:
        _sub(table, "voteSeries", series)
