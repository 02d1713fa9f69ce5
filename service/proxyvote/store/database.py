"""The database: one SQLAlchemy engine per process, and the spellings shared by the repositories."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from pathlib import Path

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import QueuePool

from proxyvote.errors import Unavailable

DEFAULT_SQLITE_URL = "sqlite:///var/proxyvote.db"
# The owner of bundled policies and the shared evidence: readable by every tenant, writable by none.
SHARED = ""
# PostgreSQL connections fail fast and notice a dead peer (libpq parameters; the URL's own win):
# connecting gives up after 2 s, unacknowledged data after 10 s, an idle peer is probed by keepalives.
POSTGRES_CONNECT_ARGS = {
    "connect_timeout": 2,
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 1,
    "keepalives_count": 3,
    "tcp_user_timeout": 10_000,
}
# SQLSTATEs that mean "the server is going or gone", not "your statement failed".
_UNAVAILABLE_STATES = ("08", "57P01", "57P02", "57P03")


def now() -> dt.datetime:
    """When a row is written: the store stamps its own rows, the core never reads a clock."""
    return dt.datetime.now(dt.UTC)


def canonical_time(value: dt.datetime) -> str:
    """One spelling of a stored instant, whatever the database hands back."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Database:
    def __init__(self, engine: Engine, ping_engine: Engine | None = None):
        self.engine = engine
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._ping_engine = ping_engine or engine
        self._unreachable = threading.Event()  # set: calls fail at once instead of waiting on the database
        if isinstance(engine.pool, _Pool):
            engine.pool.unreachable = self._unreachable

    def session(self) -> Session:
        return self._sessions()

    def close(self) -> None:
        self.engine.dispose()
        if self._ping_engine is not self.engine:
            self._ping_engine.dispose()

    @property
    def reachable(self) -> bool:
        """False while the health monitor finds the database unreachable (``mark_reachable``)."""
        return not self._unreachable.is_set()

    def mark_reachable(self, reachable: bool) -> None:
        """The health monitor's verdict. While unreachable, taking a connection raises Unavailable
        at once (no connect attempt, no pre-ping), so a database that accepts connections but never
        answers does not hold calls past their deadlines; pings go on, on their own connection.
        A no-op on SQLite."""
        if reachable:
            self._unreachable.clear()
        else:
            self._unreachable.set()

    def ping(self) -> bool:
        """Whether the database answers ``SELECT 1`` now.

        On PostgreSQL it uses a connection of its own (a pool of one), so a busy
        pool never makes it wait and it never takes a connection from a call.
        A refused or timed-out connection is False within the connect timeout;
        a server that accepts but never answers (frozen) is the caller's to time
        out (api/health_monitor does).
        """
        try:
            with self._ping_engine.connect() as connection:
                connection.exec_driver_sql("SELECT 1")
            return True
        except (Unavailable, SQLAlchemyError):
            return False


# SQLAlchemy names a pool's logger after its class: keep this one as quiet as its own (WARNING).
logging.getLogger(f"{__name__}._Pool").setLevel(logging.WARNING)


class _Pool(QueuePool):
    """The pool of a server database: waiting too long for a free connection is Unavailable, not a
    bug, and while the database is marked unreachable no connection is handed out at all."""

    unreachable: threading.Event | None = None

    def recreate(self) -> _Pool:  # engine.dispose() replaces the pool: keep the mark
        pool = super().recreate()
        pool.unreachable = self.unreachable
        return pool

    def _do_get(self):
        if self.unreachable is not None and self.unreachable.is_set():
            raise Unavailable("the database is not answering (health is NOT_SERVING); retry later")
        try:
            return super()._do_get()
        except PoolTimeout as exc:
            raise Unavailable(f"no database connection free within {self._timeout:.0f} s") from exc


def open_database(url: str) -> Database:
    kwargs: dict = {}
    if url.startswith("sqlite"):
        path = url.split("///", 1)[-1]
        if path and path != ":memory:":
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        kwargs["connect_args"] = {"timeout": 30, "check_same_thread": False}
    else:
        # A pooled connection is tested before use, so a database that comes back is reconnected.
        kwargs["pool_pre_ping"] = True
        if url.startswith("postgresql"):
            query = make_url(url).query
            kwargs["connect_args"] = {k: v for k, v in POSTGRES_CONNECT_ARGS.items() if k not in query}
    if url.startswith("sqlite"):
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return Database(engine)
    # SQLite keeps its errors (a locked database is the decision writer's to retry); a server's
    # lost or refused connections become Unavailable, for calls and for pings alike.
    engine = create_engine(url, poolclass=_Pool, **kwargs)
    ping_engine = create_engine(url, poolclass=_Pool, pool_size=1, max_overflow=0, pool_timeout=2, **kwargs)
    for each in (engine, ping_engine):
        event.listen(each, "handle_error", _unavailable_when_unreachable)
    return Database(engine, ping_engine)


def _unavailable_when_unreachable(context) -> None:
    """The one place a lost or refused connection becomes the domain's ``Unavailable``.

    Raised for: no connection could be made, the connection broke (SQLAlchemy's
    disconnect detection), the driver's InterfaceError, or an OperationalError
    whose SQLSTATE says the server is shutting down or the link failed. Other
    OperationalErrors (deadlock, serialization) stay what they are. The pool's
    own pre-ping is left alone: it reconnects, and a failed reconnect comes back
    here as a connection that could not be made. Invalidating broken pooled
    connections still happens (SQLAlchemy does it after the handlers).
    """
    if context.is_pre_ping:
        return
    error = context.original_exception
    dbapi = context.dialect.loaded_dbapi
    state = getattr(error, "sqlstate", None) or ""
    unreachable = (
        context.is_disconnect
        or context.connection is None  # while connecting
        or isinstance(error, dbapi.InterfaceError)
        or (
            isinstance(error, dbapi.OperationalError) and (not state or state.startswith(_UNAVAILABLE_STATES))
        )
    )
    if not unreachable:
        return
    where = (
        context.dialect.name
        if context.engine is None
        else context.engine.url.render_as_string(hide_password=True)
    )
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    raise Unavailable(f"{where}: {first_line}") from context.sqlalchemy_exception or error


def _sqlite_pragmas(connection, _record) -> None:
    cursor = connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.close()
