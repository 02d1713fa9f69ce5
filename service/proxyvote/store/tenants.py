"""Tenants and their API keys (stored as sha256 hashes, shown once)."""

from __future__ import annotations

import hashlib
import secrets
import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from proxyvote.errors import AlreadyExists
from proxyvote.store.database import Database, now
from proxyvote.store.models import ApiKey, Tenant

KEY_PREFIX = "pvk_"


def _hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class TenantRepository:
    def __init__(self, database: Database):
        self._db = database

    def create(self, name: str) -> tuple[str, str]:
        """A new tenant and its first API key, which is returned once and stored hashed."""
        tenant_id = "t_" + uuid.uuid4().hex[:16]
        try:
            with self._db.session() as session, session.begin():
                session.add(Tenant(id=tenant_id, name=name, created_at=now()))
                session.flush()
                key = self._add_key(session, tenant_id)
        except IntegrityError as exc:
            raise AlreadyExists("tenant", name) from exc
        return tenant_id, key

    @staticmethod
    def _add_key(session: Session, tenant_id: str) -> str:
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        session.add(
            ApiKey(
                id="k_" + uuid.uuid4().hex[:16],
                tenant_id=tenant_id,
                key_hash=_hash_key(key),
                created_at=now(),
            )
        )
        return key

    def for_key(self, key: str) -> str | None:
        """The tenant id an API key belongs to, or None."""
        with self._db.session() as session:
            return session.scalar(select(ApiKey.tenant_id).where(ApiKey.key_hash == _hash_key(key)))
