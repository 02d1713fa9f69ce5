"""The store: repositories over SQLAlchemy, raising domain errors only.

Policy versions, decisions and overrides are inserted, never updated or
deleted. Writes that race are settled by unique constraints: the loser gets
``Aborted`` (a stale policy version) or is retried (the decision chain).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import secrets
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import create_engine, event, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.orm import Session, sessionmaker

from ..audit_log import GENESIS, ChainEntry, Verification, entry_hash, verify
from ..errors import Aborted, AlreadyExists, NotFound, Unavailable
from .models import (
    ApiKey,
    BallotItemRecord,
    Decision,
    MeetingRecord,
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
        # SQLite has one writer at a time: queue this process's writers here rather
        # than in SQLite's busy loop. PostgreSQL writers need no such queue.
        self._write_lock = threading.Lock() if engine.dialect.name == "sqlite" else contextlib.nullcontext()

    def close(self) -> None:
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

    def tenant_name(self, tenant_id: str) -> str | None:
        with self._session() as session:
            return session.scalar(select(Tenant.name).where(Tenant.id == tenant_id))

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
                if (latest or 0) + 1 != version:
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
        """Stores one decision at the head of the owner's chain, in one transaction.

        ``meeting`` holds meeting_id, issuer_name, ticker, meeting_date, body
        (the Meeting message's bytes) and items (dicts of item columns).

        The head of each chain and the meetings' keys are remembered between
        calls; another process appending to the same chain makes the insert
        violate the (owner, chain_seq) constraint, and the append is retried
        from the database's head.
        """
        decision_id = "d_" + uuid.uuid4().hex
        content_hash = hashlib.sha256(meeting["body"]).hexdigest()
        decisions = Decision.__table__
        with self._write_lock:
            for _ in range(_CHAIN_RETRIES):
                try:
                    with self.engine.begin() as connection:
                        meeting_pk = self._meeting_pk(connection, owner, content_hash, meeting)
                        head = self._heads.get(owner) or self._head_from_db(connection, owner)
                        seq, prev = head[0] + 1, head[1]
                        created_at = _now()
                        digest = entry_hash(
                            prev,
                            owner,
                            seq,
                            decision_id,
                            policy_hash,
                            engine_version,
                            as_of.isoformat(),
                            canonical_time(created_at),
                            request,
                            response,
                        )
                        connection.execute(
                            decisions.insert().values(
                                decision_id=decision_id,
                                owner=owner,
                                chain_seq=seq,
                                meeting_pk=meeting_pk,
                                policy_pk=policy_pk,
                                policy_hash=policy_hash,
                                engine_version=engine_version,
                                as_of=as_of,
                                request=request,
                                response=response,
                                created_at=created_at,
                                prev_hash=prev,
                                entry_hash=digest,
                            )
                        )
                    self._heads[owner] = (seq, digest)
                    return StoredDecision(
                        decision_id,
                        owner,
                        seq,
                        meeting["meeting_id"],
                        policy_pk,
                        policy_hash,
                        engine_version,
                        as_of,
                        request,
                        response,
                        created_at,
                        prev,
                        digest,
                    )
                except (IntegrityError, OperationalError) as exc:
                    # Another writer took this sequence number or stored the meeting, or the
                    # database was busy: forget the hints and start again from the database.
                    self._heads.pop(owner, None)
                    self._meetings.pop((owner, content_hash), None)
                    if isinstance(exc, OperationalError) and "locked" not in str(exc):
                        raise Unavailable(str(exc).splitlines()[0]) from exc
        raise Aborted("the decision log is too busy; retry")

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
