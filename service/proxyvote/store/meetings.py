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

from sqlalchemy import bindparam, func, or_, select
from sqlalchemy.exc import IntegrityError

from proxyvote.core.meetings import (
    combine,
    match_keys,
    meeting_key,
    merge_meetings,
    normalise_identifier,
)
from proxyvote.core.model import Meeting
from proxyvote.errors import Aborted
from proxyvote.store.database import Database, now
from proxyvote.store.models import PastMeeting
from proxyvote.wire import convert
from proxyvote.wire.meeting_files import meeting_from_body


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
    """A stored body (validated when it came in) back as the domain meeting."""
    return meeting_from_body(body)


def _lookup_keys(meeting: Meeting) -> set[str]:
    """What a stored meeting is found by: the meeting_key, and date-qualified identifiers."""
    return {meeting_key(meeting), *match_keys(meeting)}


class _Entry:
    """A meeting as the import sees it: stored (pk) or new (None), and what it has become."""

    __slots__ = ("pk", "stored_hash", "meeting", "absorbed_into", "absorbed_pks")

    def __init__(self, pk: int | None, stored_hash: str, meeting: Meeting | None):
        self.pk = pk
        self.stored_hash = stored_hash
        self.meeting = meeting
        self.absorbed_into: _Entry | None = None
        self.absorbed_pks: list[int] = []


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
        """Stores the meetings for ``owner``, merged with what is stored, all or none.

        The stored meetings of the batch's dates are looked up in one query per
        500 dates (keys and identifiers only; bodies only of those that match),
        matched in memory, and written with one INSERT, UPDATE and DELETE each.
        A stored meeting matches when it shares the incoming one's meeting_key,
        or its date and a CUSIP, ISIN or FIGI (``core.meetings.match_keys``).
        """
        batch = combine(meetings)
        if not batch:
            return ImportSummary()
        table = PastMeeting.__table__
        try:
            with self._db.engine.begin() as connection:
                index = self._stored(connection, owner, batch)
                touched: list[_Entry] = []
                for meeting in batch:
                    hits: list[_Entry] = []
                    for key in sorted(_lookup_keys(meeting)):
                        entry = index.get(key)
                        while entry is not None and entry.absorbed_into is not None:
                            entry = entry.absorbed_into
                        if entry is not None and entry not in hits:
                            hits.append(entry)
                    if not hits:
                        target = _Entry(None, "", meeting)
                        touched.append(target)
                    else:
                        hits.sort(key=lambda e: (e.pk is None, e.pk or 0))
                        target = hits[0]
                        if target not in touched:
                            touched.append(target)
                        for other in hits[1:]:
                            target.meeting = merge_meetings(target.meeting, other.meeting)
                            other.absorbed_into = target
                            if other.pk is not None:
                                target.absorbed_pks.append(other.pk)
                            target.absorbed_pks.extend(other.absorbed_pks)
                        target.meeting = merge_meetings(target.meeting, meeting)
                    for key in _lookup_keys(target.meeting):
                        index[key] = target
                live = [e for e in touched if e.absorbed_into is None]
                return self._write(connection, table, owner, live)
        except IntegrityError as exc:
            raise Aborted("past meetings were imported concurrently; retry") from exc

    def _stored(self, connection, owner: str, batch: list[Meeting]) -> dict[str, _Entry]:
        """The stored meetings the batch may match, by their match keys."""
        dates = sorted({m.meeting_date for m in batch})
        wanted = {k for m in batch for k in _lookup_keys(m)}
        entries: list[_Entry] = []
        index: dict[str, _Entry] = {}
        for start in range(0, len(dates), 500):
            rows = connection.execute(
                select(
                    PastMeeting.pk,
                    PastMeeting.meeting_key,
                    PastMeeting.cusip,
                    PastMeeting.isin,
                    PastMeeting.figi,
                    PastMeeting.meeting_date,
                    PastMeeting.content_hash,
                )
                .where(PastMeeting.owner == owner, PastMeeting.meeting_date.in_(dates[start : start + 500]))
                .order_by(PastMeeting.pk)
            ).all()
            for row in rows:
                day = row.meeting_date.isoformat()
                keys = {row.meeting_key} | {
                    f"{kind}:{getattr(row, kind)}@{day}"
                    for kind in ("cusip", "isin", "figi")
                    if getattr(row, kind)
                }
                if keys & wanted:
                    entry = _Entry(row.pk, row.content_hash, None)
                    entries.append(entry)
                    for key in keys:
                        index.setdefault(key, entry)
        for start in range(0, len(entries), 500):
            chunk = {e.pk: e for e in entries[start : start + 500]}
            for pk, body in connection.execute(
                select(PastMeeting.pk, PastMeeting.body).where(PastMeeting.pk.in_(list(chunk)))
            ):
                chunk[pk].meeting = decode(body)
        return index

    @staticmethod
    def _write(connection, table, owner: str, entries: list[_Entry]) -> ImportSummary:
        imported = merged = unchanged = 0
        results: list[tuple[str, str]] = []
        inserts, updates, deletes = [], [], []
        stamp = now()
        for entry in entries:
            body, digest = encode(entry.meeting)
            key = meeting_key(entry.meeting)
            if entry.pk is None:
                inserts.append(
                    dict(owner=owner, content_hash=digest, body=body, created_at=stamp, updated_at=stamp)
                    | _columns(entry.meeting)
                )
                imported += 1
                results.append((key, "imported"))
            elif digest == entry.stored_hash and not entry.absorbed_pks:
                unchanged += 1
                results.append((key, "unchanged"))
            else:
                updates.append(
                    dict(b_pk=entry.pk, content_hash=digest, body=body, updated_at=stamp)
                    | _columns(entry.meeting)
                )
                deletes.extend(entry.absorbed_pks)
                merged += 1
                results.append((key, "merged"))
        # Deletes first: a merged meeting may take the key of one it absorbed.
        if deletes:
            connection.execute(table.delete().where(table.c.pk.in_(deletes)))
        if updates:
            values = {name: bindparam(name) for name in updates[0] if name != "b_pk"}
            connection.execute(table.update().where(table.c.pk == bindparam("b_pk")).values(values), updates)
        if inserts:
            connection.execute(table.insert(), inserts)
        return ImportSummary(imported, merged, unchanged, (), tuple(results))

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

    def find(self, owners: tuple[str, ...], ident: str) -> Meeting | None:
        """The stored meeting named by its ``meeting_key`` (indexed) or, failing that, by its
        ``meeting_id`` (not a column: the owners' bodies are read until one matches); the
        first owner's record wins. None if there is none."""
        rank = {owner: i for i, owner in enumerate(owners)}
        with self._db.engine.connect() as connection:
            rows = connection.execute(
                select(PastMeeting.owner, PastMeeting.body).where(
                    PastMeeting.owner.in_(owners), PastMeeting.meeting_key == ident
                )
            ).all()
            if rows:
                return decode(min(rows, key=lambda r: rank[r.owner]).body)
            for owner in owners:
                query = select(PastMeeting.body).where(PastMeeting.owner == owner).order_by(PastMeeting.pk)
                for (body,) in connection.execute(query):
                    meeting = decode(body)
                    if meeting.meeting_id == ident:
                        return meeting
        return None
