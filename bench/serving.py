"""Serving in season (issue 11), measured on the real `proxyvote serve`:

1. start: seconds from `proxyvote serve` to health SERVING, on a migrated SQLite database;
2. workers: calls/s with 1 and with N worker processes, on distinct meetings;
3. overload: 64 callers against one worker: calls served, refused (RESOURCE_EXHAUSTED), p99;
4. memory: the resident memory of one worker under a stream of distinct meetings with
   distinct wordings (an hour of a season, compressed), sampled as it goes: the plateau.

    .venv/bin/python bench/serving.py [--only start|workers|overload|memory]

Every server runs in its own process group on a loopback port and is stopped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

import workload  # noqa: E402

PROXYVOTE = [sys.executable, "-m", "proxyvote.cli"]
METHOD = "/proxyvote.v1.RecommendationService/Recommend"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    """`proxyvote serve` on a fresh migrated SQLite database, with one tenant."""

    def __init__(self, workers: int, database_url: str = "", **env):
        self.dir = tempfile.mkdtemp(prefix="proxyvote-serving-")
        self.address = f"127.0.0.1:{free_port()}"
        self.env = dict(
            os.environ,
            DATABASE_URL=database_url or f"sqlite:///{self.dir}/proxyvote.db",
            PROXYVOTE_ADDR=self.address,
            PROXYVOTE_LOG_FORMAT="text",
            **env,
        )
        subprocess.run(PROXYVOTE + ["db", "upgrade"], env=self.env, cwd=ROOT, check=True, capture_output=True)
        created = subprocess.run(
            PROXYVOTE + ["tenant", "create", "bench"],
            env=self.env,
            cwd=ROOT,
            check=True,
            capture_output=True,
            text=True,
        )
        self.metadata = (
            ("authorization", "Bearer " + created.stdout.split("API key, shown once: ")[1].strip()),
        )
        self.started = time.perf_counter()
        self.process = subprocess.Popen(
            PROXYVOTE + ["serve", "--workers", str(workers)],
            env=self.env,
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        self.startup = wait_serving(self.address, self.started)

    def pids(self) -> list[int]:
        children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        found = [int(p) for p in children.read_text().split()] if children.exists() else []
        return found or [self.process.pid]

    def stop(self) -> None:
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.process.pid, signal.SIGKILL)


# Retry a refused connection every 20 ms, not after gRPC's default backoff (1 s, then
# longer), which would be measured as start-up time.
FAST_RECONNECT = [
    ("grpc.initial_reconnect_backoff_ms", 20),
    ("grpc.min_reconnect_backoff_ms", 20),
    ("grpc.max_reconnect_backoff_ms", 20),
]


def wait_serving(address: str, started: float, deadline: float = 60) -> float:
    with grpc.insecure_channel(address, options=FAST_RECONNECT) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.perf_counter() - started < deadline:
            try:
                if stub.Check(health_pb2.HealthCheckRequest(), timeout=0.25).status == 1:
                    return time.perf_counter() - started
            except grpc.RpcError:
                time.sleep(0.01)
    raise RuntimeError(f"{address} not SERVING within {deadline} s")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def drive(address: str, requests: list[bytes], inflight: int, metadata, channels: int = 1) -> dict:
    """Sends every request with ``inflight`` outstanding over ``channels`` connections."""
    opened = [
        grpc.insecure_channel(address, options=[("grpc.use_local_subchannel_pool", 1)])
        for _ in range(channels)
    ]
    calls = [c.unary_unary(METHOD) for c in opened]
    slots = threading.BoundedSemaphore(inflight)
    done = threading.Event()
    lock = threading.Lock()
    state = {"left": len(requests), "codes": {}, "latencies": []}

    def finish(future, began):
        try:
            future.result()
            code = "OK"
        except grpc.RpcError as exc:
            code = exc.code().name
        with lock:
            state["codes"][code] = state["codes"].get(code, 0) + 1
            state["latencies"].append(time.perf_counter() - began)
            state["left"] -= 1
            if state["left"] == 0:
                done.set()
        slots.release()

    start = time.perf_counter()
    for n, request in enumerate(requests):
        slots.acquire()
        began = time.perf_counter()
        calls[n % channels].future(request, timeout=60, metadata=metadata).add_done_callback(
            lambda f, b=began: finish(f, b)
        )
    done.wait(600)
    elapsed = time.perf_counter() - start
    for c in opened:
        c.close()
    latencies = sorted(state["latencies"])
    return {
        "seconds": elapsed,
        "calls_per_s": len(requests) / elapsed,
        "ok_per_s": state["codes"].get("OK", 0) / elapsed,
        "codes": state["codes"],
        "p50_ms": 1000 * latencies[len(latencies) // 2],
        "p99_ms": 1000 * latencies[int(len(latencies) * 0.99)],
    }


def bench_start(runs: int) -> dict:
    times = []
    for _ in range(runs):
        served = Served(1)
        times.append(served.startup)
        served.stop()
    return {"seconds_to_serving": times, "median": statistics.median(times), "target": 1.5}


def fresh_postgres(admin_url: str) -> str:
    """A new, empty database on the PostgreSQL at ``admin_url``, or "" when it is not reachable."""
    import uuid

    import sqlalchemy

    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    name = f"proxyvote_bench_{uuid.uuid4().hex[:10]}"
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    except sqlalchemy.exc.OperationalError:
        return ""
    finally:
        engine.dispose()
    return admin_url.rsplit("/", 1)[0] + f"/{name}"


def drop_postgres(admin_url: str, url: str) -> None:
    import sqlalchemy

    engine = sqlalchemy.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    engine.dispose()


def bench_workers(calls: int, inflight: int, database: str, pg_url: str) -> dict:
    """Calls/s with 1 and with one worker per core. SQLite has one writer at a time, so
    workers scale on PostgreSQL (a fresh database on ``pg_url``), the deployment for them."""
    cores = os.cpu_count() or 1
    out: dict = {"database": database}
    for workers in sorted({1, cores}):
        url = fresh_postgres(pg_url) if database == "postgresql" else ""
        if database == "postgresql" and not url:
            return {"database": database, "skipped": f"PostgreSQL not reachable at {pg_url}"}
        served = Served(workers, url)
        requests = workload.DistinctRequests(seed=workers).batch(calls + calls // 10)
        drive(
            served.address, requests[: calls // 10], inflight, served.metadata, channels=4 * workers
        )  # warm-up
        out[f"workers={workers}"] = drive(
            served.address, requests[calls // 10 :], inflight, served.metadata, 4 * workers
        )
        served.stop()
        if url:
            drop_postgres(pg_url, url)
    return out


def bench_overload(calls: int, callers: int) -> dict:
    served = Served(1)
    requests = workload.DistinctRequests(seed=11).batch(calls)
    result = drive(served.address, requests, callers, served.metadata, channels=8)
    served.stop()
    return {"callers": callers, **result}


def distinct_wordings(requests: list[bytes], seed: int) -> list[bytes]:
    """The same meetings with every wording made new (names, years, companies), as a season brings."""
    from proxyvote.v1 import recommendation_service_pb2 as rs

    rng = random.Random(seed)
    names = ["Avery", "Blake", "Casey", "Devon", "Emery", "Finley", "Harper", "Jordan", "Kendall", "Logan"]
    out = []
    for n, data in enumerate(requests):
        request = rs.RecommendRequest.FromString(data)
        for item in request.meeting.items:
            item.title = f"{item.title} ({rng.choice(names)} {rng.choice(names)}, {n})"
        out.append(request.SerializeToString())
    return out


def bench_memory(meetings: int, samples: int, cache_mb: int) -> dict:
    """RSS under distinct wordings, with every cache's budget set to ``cache_mb`` (0: the defaults)."""
    budgets = (
        {
            f"PROXYVOTE_{name}_CACHE_MB": str(cache_mb)
            for name in ("CLASSIFICATION", "OUTCOME", "RESPONSE", "EVIDENCE")
        }
        if cache_mb
        else {}
    )
    served = Served(1, **budgets)
    pid = served.pids()[0]
    requests = distinct_wordings(workload.DistinctRequests(issuers=1024, seed=5).batch(meetings), seed=5)
    series = [(0, rss_kib(pid))]
    step = max(1, meetings // samples)
    for start in range(0, meetings, step):
        drive(served.address, requests[start : start + step], 16, served.metadata)
        series.append((start + step, rss_kib(pid)))
    served.stop()
    tail = [kib for _, kib in series[len(series) * 2 // 3 :]]
    return {
        "cache_mb_each": cache_mb or "defaults",
        "meetings": meetings,
        "items_per_meeting": workload.RPC_ITEMS,
        "rss_mib_by_meetings": [(m, round(kib / 1024, 1)) for m, kib in series],
        "plateau_mib": round(statistics.median(tail) / 1024, 1),
        "last_third_spread_mib": round((max(tail) - min(tail)) / 1024, 1),
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["start", "workers", "overload", "memory"])
    p.add_argument("--start-runs", type=int, default=5)
    p.add_argument("--calls", type=int, default=3000)
    p.add_argument("--inflight", type=int, default=12, help="calls in flight (below the per-worker limit)")
    p.add_argument(
        "--database", choices=["postgresql", "sqlite"], default="postgresql", help="for the workers figure"
    )
    p.add_argument("--pg-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/test")
    p.add_argument("--callers", type=int, default=64)
    p.add_argument("--memory-meetings", type=int, default=12000)
    p.add_argument("--samples", type=int, default=12)
    p.add_argument(
        "--cache-mb", type=int, default=8, help="every cache's budget for the memory run (0: defaults)"
    )
    p.add_argument("--out", type=Path, default=BENCH / "results" / "serving.json")
    args = p.parse_args(argv)
    results = {"machine": {"cores": os.cpu_count()}}
    if args.only in (None, "start"):
        results["start"] = bench_start(args.start_runs)
        print("start:", json.dumps(results["start"]))
    if args.only in (None, "workers"):
        results["workers"] = bench_workers(args.calls, args.inflight, args.database, args.pg_url)
        print("workers:", json.dumps(results["workers"]))
    if args.only in (None, "overload"):
        results["overload"] = bench_overload(args.calls, args.callers)
        print("overload:", json.dumps(results["overload"]))
    if args.only in (None, "memory"):
        results["memory"] = bench_memory(args.memory_meetings, args.samples, args.cache_mb)
        print("memory:", json.dumps(results["memory"]))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
