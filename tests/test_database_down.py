"""The database going away, for real: a PostgreSQL instance of the test's own is stopped and started.

The test starts its own PostgreSQL (``initdb`` and ``pg_ctl`` on a free port,
in a temporary folder, as the ``postgres`` user when run as root), migrates it
with ``proxyvote db upgrade``, and runs ``proxyvote serve`` against it. With
the instance stopped (``pg_ctl stop -m fast``), calls answer UNAVAILABLE within
their deadline and health goes NOT_SERVING; once it is started again, calls
succeed without a restart of the server, health is SERVING, and the audit log
verifies. The machine's shared instance is never touched.

Skipped when the PostgreSQL server binaries are missing, except under CI=true,
where that fails.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from proxyvote.v1 import decision_service_pb2 as ds
from proxyvote.v1 import decision_service_pb2_grpc as ds_grpc
from proxyvote.v1 import recommendation_service_pb2 as rs
from proxyvote.v1 import recommendation_service_pb2_grpc as rs_grpc

from .conftest import ROOT, meeting_message

pytestmark = pytest.mark.e2e
PROXYVOTE = [sys.executable, "-m", "proxyvote.cli"]
DEADLINE = 2.0  # seconds: each call made while the database is down must be answered within it
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
SERVING = health_pb2.HealthCheckResponse.SERVING


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _missing(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must test the database going away for real; {reason}")
    pytest.skip(reason)


def _postgres_binaries() -> Path:
    """The newest /usr/lib/postgresql/*/bin with initdb, pg_ctl and postgres (or those on PATH)."""
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda d: [int(p) if p.isdigit() else 0 for p in Path(d).parent.name.split(".")],
        reverse=True,
    )
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).parent))
    for directory in candidates:
        if all(os.access(Path(directory, b), os.X_OK) for b in ("initdb", "pg_ctl", "postgres")):
            return Path(directory)
    _missing(
        "PostgreSQL server binaries (initdb, pg_ctl, postgres) not found under /usr/lib/postgresql/*/bin"
    )


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on a free loopback port; ``close`` removes it."""

    def __init__(self, binaries: Path):
        self.bin = binaries
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="proxyvote-pg-"))  # short: it holds the socket
        self.data = self.dir / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        self._as_postgres: list[str] = []
        if os.geteuid() == 0:  # initdb refuses to run as root
            import pwd

            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                self.close()
                _missing("running as root and there is no 'postgres' user to run initdb as")
            if shutil.which("runuser") is None:
                self.close()
                _missing("running as root and there is no runuser to run initdb as 'postgres'")
            os.chown(self.dir, owner.pw_uid, owner.pw_gid)
            self._as_postgres = ["runuser", "-u", "postgres", "--"]

    def _run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess:
        command = self._as_postgres + [str(self.bin / args[0]), *args[1:]]
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        assert done.returncode == 0, f"{' '.join(command)}: {done.stdout}{done.stderr}{self.log()}"
        return done

    def log(self) -> str:
        path = self.dir / "postgres.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def init(self) -> None:
        self._run("initdb", "-D", str(self.data), "-U", "postgres", "-A", "trust", "--no-sync", "-E", "UTF8")

    def start(self) -> float:
        """Starts the instance and waits until it accepts connections; seconds taken."""
        began = time.monotonic()
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off"
        )
        log = str(self.dir / "postgres.log")
        self._run("pg_ctl", "-D", str(self.data), "-l", log, "-o", options, "-w", "-t", "20", "start")
        return time.monotonic() - began

    def stop(self, mode: str = "fast") -> float:
        began = time.monotonic()
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "-t", "20", "stop")
        return time.monotonic() - began

    def close(self) -> None:
        if (self.data / "postmaster.pid").exists():
            command = self._as_postgres + [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate"]
            subprocess.run(command + ["-w", "-t", "20", "stop"], capture_output=True, timeout=30)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def postgres():
    instance = PrivatePostgres(_postgres_binaries())
    try:
        instance.init()
        instance.start()
        yield instance
    finally:
        instance.close()


@pytest.fixture
def server(postgres, tmp_path):
    """``proxyvote serve`` on the private instance: (address, API key, process, log path)."""
    from proxyvote.store import open_store

    # One worker: each worker pings and fails on its own, and one starts faster than a supervisor and two.
    env = dict(os.environ, DATABASE_URL=postgres.url, PROXYVOTE_ADDR=f"127.0.0.1:{free_port()}")
    env.update(PROXYVOTE_WORKERS="1", PYTHONUNBUFFERED="1")
    env.pop("PROXYVOTE_API_KEY", None)
    upgraded = subprocess.run(
        PROXYVOTE + ["db", "upgrade"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert upgraded.returncode == 0, upgraded.stderr
    store = open_store(postgres.url)  # the tenant in-process: an interpreter's start saved
    try:
        _, key = store.tenants.create("db-down")
    finally:
        store.close()
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            PROXYVOTE + ["serve"], env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield env["PROXYVOTE_ADDR"], key, process, log_path
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


def _recommend(channel, key: str, timeout: float = DEADLINE):
    return rs_grpc.RecommendationServiceStub(channel).Recommend(
        rs.RecommendRequest(meeting=meeting_message(), policy="human-rights-esg", as_of="2020-05-20"),
        timeout=timeout,
        metadata=(("authorization", f"Bearer {key}"),),
    )


def _code_within_deadline(call) -> tuple[grpc.StatusCode, float, grpc.RpcError | None]:
    """The status code of ``call()`` and how long it took."""
    began = time.monotonic()
    try:
        call()
    except grpc.RpcError as exc:
        return exc.code(), time.monotonic() - began, exc
    return grpc.StatusCode.OK, time.monotonic() - began, None


def _reasons(error: grpc.RpcError) -> list[str]:
    """The ErrorInfo reasons of a failed call's google.rpc.Status."""
    reasons = []
    for detail in rpc_status.from_call(error).details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            reasons.append(info.reason)
    return reasons


def _statuses(channel) -> dict[str, int]:
    reply = health_pb2_grpc.HealthStub(channel).List(health_pb2.HealthListRequest(), timeout=DEADLINE)
    return {name: s.status for name, s in reply.statuses.items()}


def _wait_for(predicate, within: float, what: str, step: float = 0.05) -> float:
    """Seconds until ``predicate()`` holds; fails after ``within`` seconds."""
    began = time.monotonic()
    while time.monotonic() - began < within:
        if predicate():
            return time.monotonic() - began
        time.sleep(step)
    raise AssertionError(f"{what}: not within {within} s")


def _serving(channel) -> bool:
    try:
        return (
            health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=0.5).status
            == SERVING
        )
    except grpc.RpcError:
        return False


def test_postgres_stopped_is_unavailable_and_not_serving_then_recovers(postgres, server):
    address, key, process, log_path = server
    bearer = (("authorization", f"Bearer {key}"),)
    with grpc.insecure_channel(address) as channel:
        try:
            _wait_for(lambda: _serving(channel), 20, "health SERVING after start")
        except AssertionError as exc:
            raise AssertionError(
                f"{exc}; server output:\n{log_path.read_text(errors='replace')[-3000:]}"
            ) from None
        assert _recommend(channel, key, timeout=10).decision_id.startswith("d_")
        services = _statuses(channel)
        assert "" in services and "proxyvote.v1.RecommendationService" in services
        assert set(services.values()) == {SERVING}

        stop_took = postgres.stop("fast")
        stopped_at = time.monotonic()

        # Every call is answered UNAVAILABLE within its deadline: never INTERNAL, never a hang.
        calls = {
            "Recommend": lambda: _recommend(channel, key),
            "Recommend with an uncached key": lambda: _recommend(channel, "pvk_not_cached_anywhere"),
            "VerifyAuditLog": lambda: ds_grpc.DecisionServiceStub(channel).VerifyAuditLog(
                ds.VerifyAuditLogRequest(), timeout=DEADLINE, metadata=bearer
            ),
        }
        first_unavailable = None
        for name, call in calls.items():
            code, took, error = _code_within_deadline(call)
            assert code is grpc.StatusCode.UNAVAILABLE, f"{name}: {code} {error and error.details()}"
            assert took < DEADLINE
            first_unavailable = first_unavailable or time.monotonic() - stopped_at
            print(f"{name}: UNAVAILABLE in {took * 1000:.0f} ms")
            assert _reasons(error) == ["DATABASE_UNAVAILABLE"], name
        streamed = list(
            rs_grpc.RecommendationServiceStub(channel).StreamRecommend(
                iter([rs.StreamRecommendRequest(request=rs.RecommendRequest(
                    meeting=meeting_message(), policy="board-aligned", request_id="while-down"
                ))]),
                timeout=DEADLINE,
                metadata=bearer,
            )
        )  # fmt: skip
        assert [r.error.code for r in streamed] == [grpc.StatusCode.UNAVAILABLE.value[0]]

        _wait_for(lambda: set(_statuses(channel).values()) == {NOT_SERVING}, 5, "every service NOT_SERVING")
        not_serving_after = time.monotonic() - stopped_at
        assert set(_statuses(channel)) == set(services)

        restarted_at = time.monotonic()
        postgres.start()
        started_took = time.monotonic() - restarted_at

        def succeeds() -> bool:
            code, _, error = _code_within_deadline(lambda: _recommend(channel, key))
            assert code in (grpc.StatusCode.OK, grpc.StatusCode.UNAVAILABLE), error and error.details()
            return code is grpc.StatusCode.OK

        _wait_for(succeeds, 15, "Recommend succeeds again", step=0.1)
        recovered_after = time.monotonic() - restarted_at
        _wait_for(lambda: set(_statuses(channel).values()) == {SERVING}, 5, "every service SERVING again")
        serving_after = time.monotonic() - restarted_at

        verified = ds_grpc.DecisionServiceStub(channel).VerifyAuditLog(
            ds.VerifyAuditLogRequest(), timeout=10, metadata=bearer
        )
        assert verified.ok and verified.checked == 2, verified  # one before, one after; none while down
        assert process.poll() is None, "the server must not exit while the database is away"

    output = log_path.read_text(errors="replace")
    assert "unexpected error" not in output and "Traceback" not in output, output[-3000:]
    print(
        f"pg_ctl stop took {stop_took:.2f} s; then the first UNAVAILABLE after {first_unavailable:.3f} s,"
        f" every service NOT_SERVING after {not_serving_after:.2f} s;"
        f" PostgreSQL restarted in {started_took:.2f} s; first success {recovered_after:.2f} s and SERVING"
        f" {serving_after:.2f} s after the restart began"
    )


# --- Without a PostgreSQL server: the monitor, the error translation, ping ---


def test_the_monitor_reports_transitions_and_counts_a_silent_ping_as_down():
    from proxyvote.api.health_monitor import DatabaseHealthMonitor

    answers = iter([True, False, False, "hang", True])
    release = threading.Event()

    def ping():
        answer = next(answers)
        if answer == "hang":
            release.wait(5)
            return True
        return answer

    changes = []
    monitor = DatabaseHealthMonitor(ping, changes.append, interval=0.01, timeout=0.2)
    seen = [monitor.check() for _ in range(4)]  # True, False, False, no answer in time
    assert seen == [True, False, False, False] and changes == [False]
    assert monitor.check() is False  # the silent ping is still out: no second one meanwhile
    release.set()
    time.sleep(0.05)
    assert monitor.check() is True and changes == [False, True]


_CONNECTED = object()


def _context(error, is_disconnect=False, connection=_CONNECTED, is_pre_ping=False):
    import types

    import psycopg

    return types.SimpleNamespace(
        original_exception=error,
        sqlalchemy_exception=None,
        is_disconnect=is_disconnect,
        is_pre_ping=is_pre_ping,
        connection=connection,
        engine=None,
        dialect=types.SimpleNamespace(name="postgresql", loaded_dbapi=psycopg),
    )


def test_connection_errors_become_unavailable_and_others_stay():
    import psycopg
    from proxyvote.errors import Unavailable
    from proxyvote.store.database import _unavailable_when_unreachable as translate

    for unreachable in (
        _context(psycopg.OperationalError("connection refused"), connection=None),
        _context(psycopg.errors.AdminShutdown("terminating connection due to administrator command")),
        _context(psycopg.errors.ConnectionFailure("gone")),
        _context(psycopg.InterfaceError("the connection is closed")),
        _context(psycopg.errors.QueryCanceled("x"), is_disconnect=True),
    ):
        with pytest.raises(Unavailable):
            translate(unreachable)
    for kept in (
        _context(psycopg.errors.DeadlockDetected("deadlock detected")),
        _context(psycopg.errors.SerializationFailure("could not serialize")),
        _context(psycopg.errors.UniqueViolation("duplicate key")),
        _context(psycopg.OperationalError("server closed"), is_pre_ping=True),  # the pool reconnects
    ):
        assert translate(kept) is None


def test_ping_is_false_at_once_when_nothing_listens_and_true_on_sqlite(tmp_path):
    from proxyvote.store.database import open_database

    refused = open_database(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    began = time.monotonic()
    assert refused.ping() is False and time.monotonic() - began < 2.5
    refused.close()
    sqlite = open_database(f"sqlite:///{tmp_path / 'ping.db'}")
    assert sqlite.ping() is True
    sqlite.close()


def test_a_database_marked_unreachable_hands_out_no_connection_until_marked_back():
    from proxyvote.errors import Unavailable
    from proxyvote.store.database import open_database

    database = open_database(f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    try:
        database.mark_reachable(False)
        database.engine.dispose()  # a new pool keeps the mark
        with pytest.raises(Unavailable, match="not answering"):
            database.engine.connect()
        database.mark_reachable(True)
        with pytest.raises(Unavailable, match="Connection refused|connection failed"):
            database.engine.connect()  # tried for real again (nothing listens)
    finally:
        database.close()


def test_a_slow_key_lookup_holds_up_only_its_own_call(sqlite_app, monkeypatch):
    """API keys not yet cached are looked up on the thread serving the call, not on gRPC's
    dispatching thread: while one waits on the database, health and other calls are answered."""
    from proxyvote.api.server import create_server
    from proxyvote.errors import Unavailable

    _, key = sqlite_app.store.tenants.create("slow")
    entered, release = threading.Event(), threading.Event()

    def slow_then_down(looked_up):
        entered.set()
        release.wait(10)
        raise Unavailable("the database went away during the lookup")

    monkeypatch.setattr(sqlite_app.store.tenants, "for_key", slow_then_down)
    server = create_server("127.0.0.1:0", sqlite_app, metrics=False)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            outcome = {}
            waiting = threading.Thread(
                target=lambda: outcome.update(
                    code=_code_within_deadline(lambda: _recommend(channel, key, 10))[0]
                )
            )
            waiting.start()
            assert entered.wait(10)
            began = time.monotonic()
            assert _serving(channel)
            assert time.monotonic() - began < 0.5
            release.set()
            waiting.join(10)
            assert outcome["code"] is grpc.StatusCode.UNAVAILABLE
    finally:
        release.set()
        server.stop(0)
