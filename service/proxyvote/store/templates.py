"""Tenants' memo templates: versions of Jinja sources, by name."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from proxyvote.errors import Aborted
from proxyvote.store.database import Database, now
from proxyvote.store.models import MemoTemplate

_RETRIES = 50


class TemplateRepository:
    def __init__(self, database: Database):
        self._db = database

    def add(self, owner: str, name: str, source: str) -> int:
        """Stores a new version of the owner's template ``name``; returns its version."""
        for _ in range(_RETRIES):
            try:
                with self._db.engine.begin() as connection:
                    latest = connection.scalar(
                        select(func.max(MemoTemplate.version)).where(
                            MemoTemplate.owner == owner, MemoTemplate.name == name
                        )
                    )
                    version = (latest or 0) + 1
                    connection.execute(
                        MemoTemplate.__table__.insert().values(
                            owner=owner, name=name, version=version, source=source, created_at=now()
                        )
                    )
                return version
            except IntegrityError:
                continue
        raise Aborted(f"template {name} is being uploaded concurrently; retry")

    def latest(self, owner: str, name: str) -> str | None:
        with self._db.engine.connect() as connection:
            return connection.scalar(
                select(MemoTemplate.source)
                .where(MemoTemplate.owner == owner, MemoTemplate.name == name)
                .order_by(MemoTemplate.version.desc())
                .limit(1)
            )
