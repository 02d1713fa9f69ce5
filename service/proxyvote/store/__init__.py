"""Persistence: the only package that knows SQLAlchemy.

``open_store(url)`` gives a ``Store``; the schema is created and changed only
by the Alembic migrations in ``migrations/`` (``proxyvote db upgrade``).
"""

from proxyvote.store.repository import (
    DEFAULT_SQLITE_URL,
    SHARED,
    Store,
    StoredDecision,
    StoredOverride,
    StoredPolicy,
    canonical_time,
    open_store,
)
from proxyvote.store.schema import current_revision, downgrade, head_revision, upgrade

__all__ = [
    "DEFAULT_SQLITE_URL",
    "SHARED",
    "Store",
    "StoredDecision",
    "StoredOverride",
    "StoredPolicy",
    "canonical_time",
    "current_revision",
    "downgrade",
    "head_revision",
    "open_store",
    "upgrade",
]
