"""Past meetings for backtests: a shared set plus each tenant's own, merged as records arrive.

One row per owner and meeting. An import merges each incoming meeting with
the stored one it matches (same date and a shared CUSIP, ISIN or FIGI, or the
same ``meeting_key``) through ``core.meetings.merge_meetings``, all in one
transaction: a file is stored whole or not at all, and importing it again
changes nothing.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.exc import IntegrityError

from proxyvote.core.meetings import (
    combine,
    issuer_identifiers,
    meeting_key,
    merge_meetings,
    normalise_identifier,
)
from proxyvote.core.model import Meeting
from proxyvote.errors import Aborted
from proxyvote.store.database import Database, now
from proxyvote.store.models import PastMeeting
from proxyvote.v1 import meeting_pb2
from proxyvote.wire import convert


@dataclass(frozen=True, slots=True)
class ImportSummary:
    """What an import did, meeting by meeting.

    ``imported``: new meetings; ``merged``: stored meetings that gained items,
    votes or details; ``unchanged``: stored meetings that already held all of it;
    ``skipped``: (meeting_key, reason) of what was left out (e.g. a row with no vote).
    ``results`` holds (meeting_key, "imported" | "merged" | "unchanged") in import order.
    """

    imported: int = 0
    merged: int = 0
    unchanged: int = 0
    skipped: tuple[tuple[str, str], ...] = ()
    results: tuple[tuple[str, str], ...] = ()

    def plus(self, other: ImportSummary) -> ImportSummary:
        return ImportSummary(
            self.imported + other.imported,
            self.merged + other.merged,
            self.unchanged + other.unchanged,
            self.skipped + other.skipped,
            self.results + other.results,
        )


def encode(meeting: Meeting) -> tuple[bytes, str]:
    body = convert.meeting_to_proto(meeting).SerializeToString(deterministic=True)
    return body, hashlib.sha256(body).hexdigest()


def decode(body: bytes) -> Meeting:
    return convert.meeting_from_proto(meeting_pb2.Meeting.FromString(body))


def _columns(meeting: Meeting) -> dict:
    issuer = meeting.issuer
    return dict(
        meeting_key=meeting_key(meeting),
        issuer_name=issuer.name[:4000],
        cusip=normalise_identifier(issuer.cusip)[:40],
        isin=normalise_identifier(issuer.isin)[:40],
        figi=normalise_identifier(issuer.figi)[:40],
        ticker=normalise_identifier(issuer.ticker)[:40],
        meeting_date=meeting.meeting_date,
        item_count=len(meeting.items),
    )


class PastMeetingRepository:
    def __init__(self, database: Database):
        self._db = database

    def import_meetings(self, owner: str, meetings: Sequence[Meeting]) -> ImportSummary:
        """Stores the meetings for ``owner``, merged with what is stored, all or none."""
        imported = merged = unchanged = 0
        results: list[tuple[str, str]] = []
        table = PastMeeting.__table__
        try:
            with self._db.engine.begin() as connection:
                for meeting in combine(meetings):
                    rows = connection.execute(
                        select(PastMeeting.pk, PastMeeting.content_hash, PastMeeting.body)
                        .where(PastMeeting.owner == owner, PastMeeting.meeting_date == meeting.meeting_date)
                        .where(or_(*self._matches(meeting)))
                        .order_by(PastMeeting.pk)
                    ).all()
                    if not rows:
                        body, digest = encode(meeting)
                        stamp = now()
                        connection.execute(
                            table.insert().values(
                                owner=owner,
                                content_hash=digest,
                                body=body,
                                created_at=stamp,
                                updated_at=stamp,
                                **_columns(meeting),
                            )
                        )
                        imported += 1
                        results.append((meeting_key(meeting), "imported"))
                        continue
                    current = decode(rows[0].body)
                    for other in rows[1:]:
                        current = merge_meetings(current, decode(other.body))
                    result = merge_meetings(current, meeting)
                    body, digest = encode(result)
                    if len(rows) == 1 and digest == rows[0].content_hash:
                        unchanged += 1
                        results.append((meeting_key(result), "unchanged"))
                        continue
                    for other in rows[1:]:
                        connection.execute(table.delete().where(table.c.pk == other.pk))
                    connection.execute(
                        table.update()
                        .where(table.c.pk == rows[0].pk)
                        .values(content_hash=digest, body=body, updated_at=now(), **_columns(result))
                    )
                    merged += 1
                    results.append((meeting_key(result), "merged"))
        except IntegrityError as exc:
            raise Aborted("past meetings were imported concurrently; retry") from exc
        return ImportSummary(imported, merged, unchanged, (), tuple(results))

    @staticmethod
    def _matches(meeting: Meeting):
        conditions = [PastMeeting.meeting_key == meeting_key(meeting)]
        for kind, value in issuer_identifiers(meeting.issuer):
            conditions.append(getattr(PastMeeting, kind) == value)
        return conditions

    @staticmethod
    def _where(query, owners, date_from, date_to, issuer):
        query = query.where(PastMeeting.owner.in_(owners))
        if date_from is not None:
            query = query.where(PastMeeting.meeting_date >= date_from)
        if date_to is not None:
            query = query.where(PastMeeting.meeting_date <= date_to)
        if issuer:
            code = normalise_identifier(issuer)
            query = query.where(
                or_(
                    PastMeeting.cusip == code,
                    PastMeeting.isin == code,
                    PastMeeting.figi == code,
                    PastMeeting.ticker == code,
                    func.lower(PastMeeting.issuer_name) == " ".join(issuer.split()).lower(),
                )
            )
        return query

    def select(
        self,
        owners: tuple[str, ...],
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        issuer: str | None = None,
        *,
        offset: int = 0,
        limit: int | None = None,
    ) -> list[Meeting]:
        """The meetings of ``owners`` in the range (dates inclusive), ordered by (meeting_date, meeting_key).

        ``issuer`` matches a CUSIP, ISIN, FIGI or ticker, or the issuer's name
        (case and spacing aside). A meeting that several owners hold (the same
        meeting_key) is returned once, merged, the first owner's record winning.
        ``offset``/``limit`` page over that list.
        """
        rank = {owner: i for i, owner in enumerate(owners)}
        query = self._where(
            select(PastMeeting.meeting_key, PastMeeting.owner, PastMeeting.body),
            owners,
            date_from,
            date_to,
            issuer,
        ).order_by(PastMeeting.meeting_date, PastMeeting.meeting_key)
        with self._db.engine.connect() as connection:
            rows = connection.execute(query).all()
        grouped: dict[str, list] = {}
        for row in rows:
            grouped.setdefault(row.meeting_key, []).append(row)
        keys = list(grouped)[offset : None if limit is None else offset + limit]
        out = []
        for key in keys:
            group = sorted(grouped[key], key=lambda r: rank[r.owner])
            meeting = decode(group[0].body)
            for other in group[1:]:
                meeting = merge_meetings(meeting, decode(other.body))
            out.append(meeting)
        return out

    def count(
        self,
        owners: tuple[str, ...],
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        issuer: str | None = None,
    ) -> int:
        """How many meetings ``select`` returns with the same arguments."""
        query = self._where(
            select(func.count(func.distinct(PastMeeting.meeting_key))), owners, date_from, date_to, issuer
        )
        with self._db.engine.connect() as connection:
            return int(connection.scalar(query) or 0)
