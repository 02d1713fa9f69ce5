"""Persistence: the only package that knows SQLAlchemy.

``open_store(url)`` gives a ``Store``; the schema is created and changed only
by the Alembic migrations in ``migrations/`` (``proxyvote db upgrade``).
"""

from .repository import (
    DEFAULT_SQLITE_URL,
    SHARED,
    Store,
    StoredDecision,
    StoredOverride,
    StoredPolicy,
    open_store,
)
from .schema import downgrade, upgrade

__all__ = [
    "DEFAULT_SQLITE_URL",
    "SHARED",
    "Store",
    "StoredDecision",
    "StoredOverride",
    "StoredPolicy",
    "downgrade",
    "open_store",
    "upgrade",
]
