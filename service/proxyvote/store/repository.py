"""The store: repositories over SQLAlchemy, raising domain errors only.

Policy versions, decisions and overrides are inserted, never updated or
deleted. Writes that race are settled by unique constraints: the loser gets
``Aborted`` (a stale policy version) or is retried (the decision chain).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import queue
import secrets
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from proxyvote.core.audit_log import GENESIS, ChainEntry, Verification, entry_hash, verify
from proxyvote.errors import Aborted, AlreadyExists, NotFound, Unavailable
from proxyvote.store.models import (
    ApiKey,
    BallotItemRecord,
    Decision,
    EvidenceRow,
    MeetingRecord,
    MemoTemplate,
    Override,
    PolicyVersion,
    Tenant,
)

DEFAULT_SQLITE_URL = "sqlite:///var/proxyvote.db"
# The owner of bundled policies: readable by every tenant, writable by none.
SHARED = ""
KEY_PREFIX = "pvk_"
_CHAIN_RETRIES = 50
_MAX_REMEMBERED = 100_000


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def canonical_time(value: dt.datetime) -> str:
    """One spelling of a stored instant, whatever the database hands back."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredPolicy:
    pk: int
    owner: str
    policy_id: str
    version: int
    content_hash: str
    source: str
    filename: str
    parent_pk: int | None
    created_at: dt.datetime


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

    def __init__(
        self, owner, meeting, content_hash, policy_pk, policy_hash, engine_version, as_of, request, response
    ):
        self.owner, self.meeting, self.content_hash = owner, meeting, content_hash
        self.policy_pk, self.policy_hash, self.engine_version = policy_pk, policy_hash, engine_version
        self.as_of, self.request, self.response = as_of, request, response
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
    """One thread that writes every waiting decision in one transaction."""

    def __init__(self, write_batch, max_batch: int = 256):
        self._write_batch = write_batch
        self._max_batch = max_batch
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, pending: _Pending) -> None:
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="decision-writer", daemon=True)
                self._thread.start()
        self._queue.put(pending)

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
            batch = [first]
            while len(batch) < self._max_batch:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            try:
                self._write_batch(batch)
            except Exception as exc:  # never leave a caller waiting
                for p in batch:
                    p.fail(exc)


def _policy(row: PolicyVersion) -> StoredPolicy:
    return StoredPolicy(
        row.pk,
        row.owner,
        row.policy_id,
        row.version,
        row.content_hash,
        row.source,
        row.filename,
        row.parent_pk,
        row.created_at,
    )


def open_store(url: str | None = None) -> Store:
    url = url or DEFAULT_SQLITE_URL
    kwargs: dict = {}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_engine(url, **kwargs)
    if url.startswith("sqlite"):
        event.listen(engine, "connect", _sqlite_pragmas)
    return Store(engine)


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()


class Store:
    def __init__(self, engine: Engine):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        # Chain heads and meeting keys this process wrote or read: (seq, hash) by owner,
        # meeting pk by (owner, content hash). Only ever a hint: the constraints decide.
        self._heads: dict[str, tuple[int, str]] = {}
        self._meetings: dict[tuple[str, str], int] = {}
        self._writer = _GroupWriter(self._write_batch)

    def close(self) -> None:
        self._writer.stop()
        self.engine.dispose()

    def _session(self) -> Session:
        return self._sessions()

    # --- tenants and keys ---------------------------------------------------

    def create_tenant(self, name: str) -> tuple[str, str]:
        """A new tenant and its first API key, which is returned once and stored hashed."""
        tenant_id = "t_" + uuid.uuid4().hex[:16]
        try:
            with self._session() as session, session.begin():
                session.add(Tenant(id=tenant_id, name=name, created_at=_now()))
                session.flush()
                key = self._add_key(session, tenant_id)
        except IntegrityError as exc:
            raise AlreadyExists("tenant", name) from exc
        return tenant_id, key

    def _add_key(self, session: Session, tenant_id: str) -> str:
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        session.add(
            ApiKey(
                id="k_" + uuid.uuid4().hex[:16],
                tenant_id=tenant_id,
                key_hash=_hash_key(key),
                created_at=_now(),
            )
        )
        return key

    def tenant_for_key(self, key: str) -> str | None:
        with self._session() as session:
            return session.scalar(select(ApiKey.tenant_id).where(ApiKey.key_hash == _hash_key(key)))

    # --- policies -------------------------------------------------------------

    def policy_versions(self, owners: tuple[str, ...], policy_id: str | None = None) -> list[StoredPolicy]:
        query = select(PolicyVersion).where(PolicyVersion.owner.in_(owners))
        if policy_id is not None:
            query = query.where(PolicyVersion.policy_id == policy_id)
        query = query.order_by(PolicyVersion.policy_id, PolicyVersion.version)
        with self._session() as session:
            return [_policy(row) for row in session.scalars(query)]

    def policy_version(
        self, owners: tuple[str, ...], policy_id: str, version: int | None = None
    ) -> StoredPolicy | None:
        query = select(PolicyVersion).where(
            PolicyVersion.owner.in_(owners), PolicyVersion.policy_id == policy_id
        )
        if version is None:
            query = query.order_by(PolicyVersion.version.desc()).limit(1)
        else:
            query = query.where(PolicyVersion.version == version)
        with self._session() as session:
            row = session.scalars(query).first()
            return _policy(row) if row else None

    def policy_by_pk(self, pk: int) -> StoredPolicy:
        with self._session() as session:
            row = session.get(PolicyVersion, pk)
            if row is None:
                raise NotFound("policy version", str(pk))
            return _policy(row)

    def add_policy_version(
        self,
        owner: str,
        policy_id: str,
        version: int,
        content_hash: str,
        source: str,
        filename: str,
        parent_pk: int | None,
        allow_gap: bool = False,
    ) -> StoredPolicy:
        """Inserts ``version``, which must follow the latest stored one exactly.

        A concurrent writer that got there first makes this one ``Aborted``:
        the unique (owner, id, version) constraint decides, on any database.
        """
        try:
            with self._session() as session, session.begin():
                latest = session.scalar(
                    select(func.max(PolicyVersion.version)).where(
                        PolicyVersion.owner == owner, PolicyVersion.policy_id == policy_id
                    )
                )
                # Bundled files may skip retired versions (allow_gap); an update must follow exactly.
                if version <= (latest or 0) or (not allow_gap and version != (latest or 0) + 1):
                    raise Aborted(
                        f"{policy_id} is at version {latest or 0}; version {version} would not follow it"
                    )
                row = PolicyVersion(
                    owner=owner,
                    policy_id=policy_id,
                    version=version,
                    content_hash=content_hash,
                    source=source,
                    filename=filename,
                    parent_pk=parent_pk,
                    created_at=_now(),
                )
                session.add(row)
                session.flush()
                return _policy(row)
        except IntegrityError as exc:
            raise Aborted(f"{policy_id}@{version} was written by a concurrent update") from exc
        except OperationalError as exc:
            raise Unavailable(str(exc).splitlines()[0]) from exc

    # --- decisions ------------------------------------------------------------

    def append_decision(
        self,
        owner: str,
        meeting: dict,
        policy_pk: int,
        policy_hash: str,
        engine_version: str,
        as_of: dt.date,
        request: bytes,
        response: bytes,
    ) -> StoredDecision:
        """Stores one decision at the head of the owner's chain; returns once it is committed.

        ``meeting`` holds meeting_id, issuer_name, ticker, meeting_date, body
        (the Meeting message's bytes) and items (dicts of item columns).

        Decisions are written by one writer thread per process, which commits
        whatever is waiting in one transaction (group commit): each decision is
        whole or absent, and concurrent callers share the commit's cost. The
        head of each chain and the meetings' keys are remembered between calls;
        another process appending to the same chain makes an insert violate the
        (owner, chain_seq) constraint, and the batch is retried from the
        database's head.
        """
        pending = _Pending(
            owner,
            meeting,
            hashlib.sha256(meeting["body"]).hexdigest(),
            policy_pk,
            policy_hash,
            engine_version,
            as_of,
            request,
            response,
        )
        self._writer.submit(pending)
        return pending.wait()

    def _write_batch(self, batch: list[_Pending]) -> None:
        """One transaction for the batch; resolves each pending decision or fails them all."""
        decisions = Decision.__table__
        for _ in range(_CHAIN_RETRIES):
            try:
                results, rows = [], []
                heads: dict[str, tuple[int, str]] = {}
                with self.engine.begin() as connection:
                    for p in batch:
                        meeting_pk = self._meeting_pk(connection, p.owner, p.content_hash, p.meeting)
                        head = (
                            heads.get(p.owner)
                            or self._heads.get(p.owner)
                            or self._head_from_db(connection, p.owner)
                        )
                        seq, prev = head[0] + 1, head[1]
                        decision_id = "d_" + uuid.uuid4().hex
                        created_at = _now()
                        digest = entry_hash(
                            prev,
                            p.owner,
                            seq,
                            decision_id,
                            p.policy_hash,
                            p.engine_version,
                            p.as_of.isoformat(),
                            canonical_time(created_at),
                            p.request,
                            p.response,
                        )
                        rows.append(
                            {
                                "decision_id": decision_id,
                                "owner": p.owner,
                                "chain_seq": seq,
                                "meeting_pk": meeting_pk,
                                "policy_pk": p.policy_pk,
                                "policy_hash": p.policy_hash,
                                "engine_version": p.engine_version,
                                "as_of": p.as_of,
                                "request": p.request,
                                "response": p.response,
                                "created_at": created_at,
                                "prev_hash": prev,
                                "entry_hash": digest,
                            }
                        )
                        heads[p.owner] = (seq, digest)
                        results.append(
                            StoredDecision(
                                decision_id,
                                p.owner,
                                seq,
                                p.meeting["meeting_id"],
                                p.policy_pk,
                                p.policy_hash,
                                p.engine_version,
                                p.as_of,
                                p.request,
                                p.response,
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
            except (IntegrityError, OperationalError) as exc:
                # Another process took a sequence number or stored a meeting, or the database
                # was busy: forget the hints and start again from the database.
                for p in batch:
                    self._heads.pop(p.owner, None)
                    self._meetings.pop((p.owner, p.content_hash), None)
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

    def _meeting_pk(self, connection, owner: str, content_hash: str, meeting: dict) -> int:
        key = (owner, content_hash)
        pk = self._meetings.get(key)
        if pk is None:
            pk = connection.scalar(
                select(MeetingRecord.pk).where(
                    MeetingRecord.owner == owner, MeetingRecord.content_hash == content_hash
                )
            )
        if pk is None:
            pk = connection.execute(
                MeetingRecord.__table__.insert().values(
                    owner=owner,
                    meeting_id=meeting["meeting_id"],
                    issuer_name=meeting["issuer_name"],
                    ticker=meeting["ticker"],
                    meeting_date=meeting["meeting_date"],
                    content_hash=content_hash,
                    body=meeting["body"],
                )
            ).inserted_primary_key[0]
            if meeting["items"]:
                connection.execute(
                    BallotItemRecord.__table__.insert(),
                    [dict(item, meeting_pk=pk, position=n) for n, item in enumerate(meeting["items"])],
                )
        if len(self._meetings) >= _MAX_REMEMBERED:
            self._meetings.clear()
        self._meetings[key] = pk
        return pk

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

    def decision(self, owner: str, decision_id: str) -> StoredDecision:
        """The owner's decision; another owner's is NOT_FOUND exactly as a missing one."""
        with self._session() as session:
            found = session.execute(
                select(Decision, MeetingRecord.meeting_id)
                .join(MeetingRecord, MeetingRecord.pk == Decision.meeting_pk)
                .where(Decision.owner == owner, Decision.decision_id == decision_id)
            ).first()
            if found is None:
                raise NotFound("decision", decision_id)
            return self._stored(*found)

    def decisions(self, owner: str) -> list[StoredDecision]:
        with self._session() as session:
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
            for d in self.decisions(owner)
        )

    # --- evidence -------------------------------------------------------------

    def add_evidence(self, owner: str, records: list[dict]) -> tuple[int, int]:
        """Stores records (dicts of evidence_id, issuer_name, issuer_ticker, published, body), all or none.

        A record already stored with the same content is left alone; the same id
        with other content is refused (a correction is a new record). Returns
        (added, unchanged).
        """
        added = unchanged = 0
        try:
            with self.engine.begin() as connection:
                for record in records:
                    digest = hashlib.sha256(record["body"]).hexdigest()
                    existing = connection.scalar(
                        select(EvidenceRow.content_hash).where(
                            EvidenceRow.owner == owner, EvidenceRow.evidence_id == record["evidence_id"]
                        )
                    )
                    if existing == digest:
                        unchanged += 1
                        continue
                    if existing is not None:
                        raise AlreadyExists(
                            "evidence record with other content",
                            f"{record['evidence_id']} (a correction needs a new id)",
                        )
                    connection.execute(
                        EvidenceRow.__table__.insert().values(
                            owner=owner, content_hash=digest, created_at=_now(), **record
                        )
                    )
                    added += 1
        except IntegrityError as exc:
            raise Aborted("evidence was imported concurrently; retry") from exc
        return added, unchanged

    def evidence_about(self, owners: tuple[str, ...], ticker: str, name: str) -> list[bytes]:
        """Every stored record about an issuer (by ticker, or by name without one), of any date.

        Callers pass them through ``evidence.evidence_as_of``, the one place that applies a date.
        """
        query = select(EvidenceRow.body).where(EvidenceRow.owner.in_(owners))
        if ticker:
            query = query.where(func.lower(EvidenceRow.issuer_ticker) == ticker.lower())
        else:
            query = query.where(func.lower(EvidenceRow.issuer_name) == name.lower())
        with self.engine.connect() as connection:
            return list(connection.scalars(query.order_by(EvidenceRow.published, EvidenceRow.evidence_id)))

    # --- tenants' memo templates -----------------------------------------------

    def add_memo_template(self, owner: str, name: str, source: str) -> int:
        """Stores a new version of the owner's template ``name``; returns its version."""
        for _ in range(_CHAIN_RETRIES):
            try:
                with self.engine.begin() as connection:
                    latest = connection.scalar(
                        select(func.max(MemoTemplate.version)).where(
                            MemoTemplate.owner == owner, MemoTemplate.name == name
                        )
                    )
                    version = (latest or 0) + 1
                    connection.execute(
                        MemoTemplate.__table__.insert().values(
                            owner=owner, name=name, version=version, source=source, created_at=_now()
                        )
                    )
                return version
            except IntegrityError:
                continue
        raise Aborted(f"template {name} is being uploaded concurrently; retry")

    def memo_template(self, owner: str, name: str) -> str | None:
        with self.engine.connect() as connection:
            return connection.scalar(
                select(MemoTemplate.source)
                .where(MemoTemplate.owner == owner, MemoTemplate.name == name)
                .order_by(MemoTemplate.version.desc())
                .limit(1)
            )

    # --- overrides ------------------------------------------------------------

    def add_override(
        self, owner: str, decision_id: str, item_id: str, vote: str, reason: str, analyst: str
    ) -> StoredOverride:
        with self._session() as session, session.begin():
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
                created_at=_now(),
            )
            session.add(row)
        return StoredOverride(row.override_id, decision_id, item_id, vote, reason, analyst, row.created_at)

    def overrides(self, owner: str, decision_id: str) -> list[StoredOverride]:
        with self._session() as session:
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
