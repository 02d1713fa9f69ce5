"""The decision log: decisions appended to a hash chain per owner, and analysts' overrides.

Decisions and overrides are inserted, never updated or deleted. Decisions are
written by one writer thread per process, which commits whatever is waiting in
one transaction (group commit).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import queue
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session

from proxyvote.core.audit_log import GENESIS, ChainEntry, Verification, entry_hash, verify
from proxyvote.errors import Aborted, DeadlineExceeded, NotFound, Unavailable
from proxyvote.store.database import Database, canonical_time, now
from proxyvote.store.models import BallotItemRecord, Decision, MeetingRecord, Override

_CHAIN_RETRIES = 50
_MAX_REMEMBERED = 100_000


@dataclass(frozen=True, slots=True)
class MeetingRow:
    """What the store keeps of a decided meeting beside its body (for listing and backtests)."""

    meeting_id: str
    issuer_name: str
    ticker: str
    meeting_date: dt.date
    body: bytes  # the Meeting message, serialised once
    items: tuple[dict, ...]  # item_id, number, title, proponent_kind, board_recommendation


@dataclass(frozen=True, slots=True)
class DecisionRecord:
    """One decision to append: everything needed to show and replay it."""

    owner: str
    meeting: MeetingRow
    policy_pk: int
    policy_hash: str
    engine_version: str
    as_of: dt.date
    request: bytes  # the RecommendRequest as evaluated (the meeting's bytes inside)
    response: bytes


@dataclass(frozen=True, slots=True)
class StoredDecision:
    decision_id: str
    owner: str
    chain_seq: int
    meeting_id: str
    policy_pk: int
    policy_hash: str
    engine_version: str
    as_of: dt.date
    request: bytes
    response: bytes
    created_at: dt.datetime
    prev_hash: str
    entry_hash: str


@dataclass(frozen=True, slots=True)
class StoredOverride:
    override_id: str
    decision_id: str
    item_id: str
    vote: str
    reason: str
    analyst: str
    created_at: dt.datetime


class _Pending:
    """A decision waiting for the writer thread, and the caller waiting for it."""

    def __init__(self, record: DecisionRecord, deadline: float | None = None, content_hash: str = ""):
        self.record = record
        self.deadline = deadline  # time.monotonic() past which the caller no longer waits
        self.content_hash = content_hash or hashlib.sha256(record.meeting.body).hexdigest()
        self._done = threading.Event()
        self._result: StoredDecision | None = None
        self._error: Exception | None = None

    def resolve(self, result: StoredDecision) -> None:
        self._result = result
        self._done.set()

    def fail(self, error: Exception) -> None:
        self._error = error
        self._done.set()

    def wait(self) -> StoredDecision:
        self._done.wait()
        if self._error is not None:
            raise self._error
        return self._result


class _GroupWriter:
    """One thread that writes every waiting decision in one transaction.

    What one caller submits together (the decisions of one meeting under several
    policies) is queued as one group and so always lands in the same batch.
    """

    def __init__(self, write_batch, max_batch: int = 256):
        self._write_batch = write_batch
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._waiting = 0  # decisions (not groups) in the queue

    def submit(self, group: tuple[_Pending, ...]) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="decision-writer", daemon=True)
                self._thread.start()
            self._waiting += len(group)
        self._queue.put(group)

    def queued(self) -> int:
        return self._waiting

    def _taken(self, group: tuple[_Pending, ...]) -> None:
        with self._lock:
            self._waiting -= len(group)

    def stop(self) -> None:
        with self._lock:
            if self._thread is not None:
                self._queue.put(None)
                self._thread.join(timeout=30)
                self._thread = None

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            self._taken(first)
            batch = list(first)
            while len(batch) < self._max_batch:
                try:
                    group = self._queue.get_nowait()
                except queue.Empty:
                    break
                if group is None:
                    self._queue.put(None)  # stop after this batch
                    break
                self._taken(group)
                batch.extend(group)
            try:
                self._write_batch(batch)
            except Exception as exc:  # never leave a caller waiting
                for p in batch:
                    p.fail(exc)


class DecisionRepository:
    def __init__(self, database: Database):
        self._db = database
        self.engine = database.engine
        # Chain heads and meeting keys this process wrote or read: (seq, hash) by owner,
        # meeting pk by (owner, content hash). Only ever a hint: the constraints decide.
        self._heads: dict[str, tuple[int, str]] = {}
        self._meetings: dict[tuple[str, str], int] = {}
        self._writer = _GroupWriter(self._write_batch)
        self.on_batch: Callable[[int], None] | None = None  # told each group commit's size (metrics)

    def close(self) -> None:
        self._writer.stop()

    def queued(self) -> int:
        """Decisions waiting for the writer thread."""
        return self._writer.queued()

    def append(self, record: DecisionRecord, deadline: float | None = None) -> StoredDecision:
        """Stores one decision at the head of its owner's chain; returns once it is committed.

        The writer thread commits whatever is waiting in one transaction (group
        commit): each decision is whole or absent, and concurrent callers share
        the commit's cost. The head of each chain and the meetings' keys are
        remembered between calls; another process appending to the same chain
        makes an insert violate the (owner, chain_seq) constraint, and the batch
        is retried from the database's head. A decision whose ``deadline`` (a
        ``time.monotonic()`` value) has passed when its batch is written is not
        stored: its caller gets DeadlineExceeded.
        """
        return self.append_many((record,), deadline)[0]

    def append_many(
        self, records: tuple[DecisionRecord, ...], deadline: float | None = None
    ) -> tuple[StoredDecision, ...]:
        """Stores several decisions together, in the given order, in one transaction: all or none.

        They are one group for the writer thread (see ``append``), so they are
        consecutive in the owner's chain. Records of one meeting share its row:
        the meeting body is hashed once per distinct body.
        """
        if not self._db.reachable:  # fail now rather than queue behind a batch stuck on it
            raise Unavailable("the database is not answering (health is NOT_SERVING); retry later")
        hashes: dict[int, str] = {}  # by identity of the body: a shared body is hashed once
        group = []
        for record in records:
            body = record.meeting.body
            if id(body) not in hashes:
                hashes[id(body)] = hashlib.sha256(body).hexdigest()
            group.append(_Pending(record, deadline, hashes[id(body)]))
        self._writer.submit(tuple(group))
        return tuple(p.wait() for p in group)

    def _write_batch(self, batch: list[_Pending]) -> None:
        """One transaction for the batch; resolves each pending decision or fails them all."""
        instant = time.monotonic()
        for p in batch:
            if p.deadline is not None and instant >= p.deadline:
                p.fail(DeadlineExceeded("the call's deadline passed before its decision was stored"))
        batch = [p for p in batch if p.deadline is None or instant < p.deadline]
        if not batch:
            return
        if self.on_batch is not None:
            self.on_batch(len(batch))
        decisions = Decision.__table__
        for _ in range(_CHAIN_RETRIES):
            try:
                results, rows = [], []
                heads: dict[str, tuple[int, str]] = {}
                with self.engine.begin() as connection:
                    meeting_pks = self._meeting_pks(connection, batch)
                    for p in batch:
                        r = p.record
                        meeting_pk = meeting_pks[(r.owner, p.content_hash)]
                        head = (
                            heads.get(r.owner)
                            or self._heads.get(r.owner)
                            or self._head_from_db(connection, r.owner)
                        )
                        seq, prev = head[0] + 1, head[1]
                        decision_id = "d_" + uuid.uuid4().hex
                        created_at = now()
                        digest = entry_hash(
                            prev,
                            r.owner,
                            seq,
                            decision_id,
                            r.policy_hash,
                            r.engine_version,
                            r.as_of.isoformat(),
                            canonical_time(created_at),
                            r.request,
                            r.response,
                        )
                        rows.append(
                            {
                                "decision_id": decision_id,
                                "owner": r.owner,
                                "chain_seq": seq,
                                "meeting_pk": meeting_pk,
                                "policy_pk": r.policy_pk,
                                "policy_hash": r.policy_hash,
                                "engine_version": r.engine_version,
                                "as_of": r.as_of,
                                "request": r.request,
                                "response": r.response,
                                "created_at": created_at,
                                "prev_hash": prev,
                                "entry_hash": digest,
                            }
                        )
                        heads[r.owner] = (seq, digest)
                        results.append(
                            StoredDecision(
                                decision_id,
                                r.owner,
                                seq,
                                r.meeting.meeting_id,
                                r.policy_pk,
                                r.policy_hash,
                                r.engine_version,
                                r.as_of,
                                r.request,
                                r.response,
                                created_at,
                                prev,
                                digest,
                            )
                        )
                    connection.execute(decisions.insert(), rows)  # one statement for the batch
                self._heads.update(heads)
                for p, result in zip(batch, results, strict=True):
                    p.resolve(result)
                return
            except (IntegrityError, OperationalError, Unavailable) as exc:
                # Another process took a sequence number or stored a meeting, or the database
                # was busy or went away: forget the hints and start again from the database.
                for p in batch:
                    self._heads.pop(p.record.owner, None)
                    self._meetings.pop((p.record.owner, p.content_hash), None)
                if isinstance(exc, Unavailable):  # PostgreSQL unreachable (store/database.py)
                    for p in batch:
                        p.fail(exc)
                    return
                if isinstance(exc, OperationalError) and "locked" not in str(exc):
                    error = Unavailable(str(exc).splitlines()[0])
                    for p in batch:
                        p.fail(error)
                    return
        for p in batch:
            p.fail(Aborted("the decision log is too busy; retry"))

    @staticmethod
    def _head_from_db(connection, owner: str) -> tuple[int, str]:
        head = connection.execute(
            select(Decision.chain_seq, Decision.entry_hash)
            .where(Decision.owner == owner)
            .order_by(Decision.chain_seq.desc())
            .limit(1)
        ).first()
        return (head[0], head[1]) if head else (0, GENESIS)

    def _meeting_pks(self, connection, batch: list[_Pending]) -> dict[tuple[str, str], int]:
        """The meeting row of each pending decision, stored where missing, in a few statements.

        One SELECT per owner for the meetings this process does not remember,
        one multi-row INSERT ... RETURNING for the new ones, one for their items:
        the writer thread competes for the GIL with the deciding threads, so
        every statement it saves is a wait saved.
        """
        wanted: dict[tuple[str, str], MeetingRow] = {}
        for p in batch:
            wanted.setdefault((p.record.owner, p.content_hash), p.record.meeting)
        found = {key: self._meetings[key] for key in wanted if key in self._meetings}
        by_owner: dict[str, list[str]] = {}
        for owner, content_hash in wanted:
            if (owner, content_hash) not in found:
                by_owner.setdefault(owner, []).append(content_hash)
        for owner, hashes in by_owner.items():
            rows = connection.execute(
                select(MeetingRecord.content_hash, MeetingRecord.pk).where(
                    MeetingRecord.owner == owner, MeetingRecord.content_hash.in_(hashes)
                )
            )
            found.update(((owner, content_hash), pk) for content_hash, pk in rows)
        new = [key for key in wanted if key not in found]
        if new:
            meetings = MeetingRecord.__table__
            inserted = connection.execute(
                meetings.insert().returning(meetings.c.pk, sort_by_parameter_order=True),
                [
                    {
                        "owner": owner,
                        "meeting_id": wanted[(owner, content_hash)].meeting_id,
                        "issuer_name": wanted[(owner, content_hash)].issuer_name,
                        "ticker": wanted[(owner, content_hash)].ticker,
                        "meeting_date": wanted[(owner, content_hash)].meeting_date,
                        "content_hash": content_hash,
                        "body": wanted[(owner, content_hash)].body,
                    }
                    for owner, content_hash in new
                ],
            )
            found.update(zip(new, inserted.scalars(), strict=True))
            items = [
                dict(item, meeting_pk=found[key], position=n)
                for key in new
                for n, item in enumerate(wanted[key].items)
            ]
            if items:
                connection.execute(BallotItemRecord.__table__.insert(), items)
        if len(self._meetings) + len(found) >= _MAX_REMEMBERED:
            self._meetings.clear()
        self._meetings.update(found)
        return found

    def _decision_rows(self, session: Session, owner: str):
        return session.execute(
            select(Decision, MeetingRecord.meeting_id)
            .join(MeetingRecord, MeetingRecord.pk == Decision.meeting_pk)
            .where(Decision.owner == owner)
            .order_by(Decision.chain_seq)
        )

    @staticmethod
    def _stored(row: Decision, meeting_id: str) -> StoredDecision:
        return StoredDecision(
            row.decision_id,
            row.owner,
            row.chain_seq,
            meeting_id,
            row.policy_pk,
            row.policy_hash,
            row.engine_version,
            row.as_of,
            row.request,
            row.response,
            row.created_at,
            row.prev_hash,
            row.entry_hash,
        )

    def get(self, owner: str, decision_id: str) -> StoredDecision:
        """The owner's decision; another owner's is NOT_FOUND exactly as a missing one."""
        with self._db.session() as session:
            found = session.execute(
                select(Decision, MeetingRecord.meeting_id)
                .join(MeetingRecord, MeetingRecord.pk == Decision.meeting_pk)
                .where(Decision.owner == owner, Decision.decision_id == decision_id)
            ).first()
            if found is None:
                raise NotFound("decision", decision_id)
            return self._stored(*found)

    def all(self, owner: str) -> list[StoredDecision]:
        with self._db.session() as session:
            return [self._stored(*row) for row in self._decision_rows(session, owner)]

    def verify_chain(self, owner: str) -> Verification:
        return verify(
            ChainEntry(
                d.owner,
                d.chain_seq,
                d.decision_id,
                d.policy_hash,
                d.engine_version,
                d.as_of.isoformat(),
                canonical_time(d.created_at),
                d.request,
                d.response,
                d.prev_hash,
                d.entry_hash,
            )
            for d in self.all(owner)
        )

    def add_override(
        self, owner: str, decision_id: str, item_id: str, vote: str, reason: str, analyst: str
    ) -> StoredOverride:
        with self._db.session() as session, session.begin():
            decision_pk = session.scalar(
                select(Decision.pk).where(Decision.owner == owner, Decision.decision_id == decision_id)
            )
            if decision_pk is None:
                raise NotFound("decision", decision_id)
            row = Override(
                override_id="o_" + uuid.uuid4().hex,
                owner=owner,
                decision_pk=decision_pk,
                item_id=item_id,
                vote=vote,
                reason=reason,
                analyst=analyst,
                created_at=now(),
            )
            session.add(row)
        return StoredOverride(row.override_id, decision_id, item_id, vote, reason, analyst, row.created_at)

    def overrides(self, owner: str, decision_id: str) -> list[StoredOverride]:
        with self._db.session() as session:
            rows = session.scalars(
                select(Override)
                .join(Decision, Decision.pk == Override.decision_pk)
                .where(Override.owner == owner, Decision.decision_id == decision_id)
                .order_by(Override.pk)
            )
            return [
                StoredOverride(
                    r.override_id, decision_id, r.item_id, r.vote, r.reason, r.analyst, r.created_at
                )
                for r in rows
            ]
