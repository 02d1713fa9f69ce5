"""Policy versions: immutable, one row a version, per owner."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, OperationalError

from proxyvote.errors import Aborted, NotFound, Unavailable
from proxyvote.store.database import Database, now
from proxyvote.store.models import PolicyVersion


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


class PolicyRepository:
    def __init__(self, database: Database):
        self._db = database

    def versions(self, owners: tuple[str, ...], policy_id: str | None = None) -> list[StoredPolicy]:
        query = select(PolicyVersion).where(PolicyVersion.owner.in_(owners))
        if policy_id is not None:
            query = query.where(PolicyVersion.policy_id == policy_id)
        query = query.order_by(PolicyVersion.policy_id, PolicyVersion.version)
        with self._db.session() as session:
            return [_policy(row) for row in session.scalars(query)]

    def version(
        self, owners: tuple[str, ...], policy_id: str, version: int | None = None
    ) -> StoredPolicy | None:
        query = select(PolicyVersion).where(
            PolicyVersion.owner.in_(owners), PolicyVersion.policy_id == policy_id
        )
        if version is None:
            query = query.order_by(PolicyVersion.version.desc()).limit(1)
        else:
            query = query.where(PolicyVersion.version == version)
        with self._db.session() as session:
            row = session.scalars(query).first()
            return _policy(row) if row else None

    def by_pk(self, pk: int) -> StoredPolicy:
        with self._db.session() as session:
            row = session.get(PolicyVersion, pk)
            if row is None:
                raise NotFound("policy version", str(pk))
            return _policy(row)

    def add(
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
            with self._db.session() as session, session.begin():
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
                    created_at=now(),
                )
                session.add(row)
                session.flush()
                return _policy(row)
        except IntegrityError as exc:
            raise Aborted(f"{policy_id}@{version} was written by a concurrent update") from exc
        except OperationalError as exc:
            raise Unavailable(str(exc).splitlines()[0]) from exc
