"""`make bench`: throughput ratios against baselines measured in the same run.

1. RPC: RecommendationService.Recommend (20-item meeting, human-rights-esg, with
   evidence) through the real server, against a bare gRPC echo server that gets
   the same request bytes and returns bytes of the real response's size, each
   in its own process, same thread-pool size, same client concurrency; and the
   same pair on grpc.aio servers.
2. Engine: decisions/s of proxyvote.engine.decide_meeting against a plain-Python
   hand-written human-rights-esg (bench/handwritten.py) on the same
   pre-classified items; classification items/s on its own.

Figures are printed as a table and written to bench/results/latest.json.
See docs/benchmarks.md for how to read them.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import io
import json
import os
import platform
import pstats
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import grpc
import handwritten
import workload
from google.protobuf.internal import api_implementation
from proxyvote import ENGINE_VERSION
from proxyvote.core.classify import classify_meeting
from proxyvote.core.engine import decide_meeting
from proxyvote.core.recommender import Recommender

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
METHOD = "/proxyvote.v1.RecommendationService/Recommend"
TODAY = dt.date(2020, 5, 20)

RPC_TARGET = 0.8  # real >= 0.8 x echo
ENGINE_TARGET = 1 / 3  # engine >= 1/3 x hand-written


# --- RPC ------------------------------------------------------------------------


class ServerProcess:
    """A benchmark server (bench/rpc_servers.py) in a child process on a loopback port."""

    def __init__(self, mode: str, workers: int, payload_file: Path):
        self.mode = mode
        self.proc = subprocess.Popen(
            [
                sys.executable,
                str(BENCH / "rpc_servers.py"),
                mode,
                "--workers",
                str(workers),
                "--payload",
                str(payload_file),
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        line = self.proc.stdout.readline()  # blocks until the server is up (or has died)
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"{mode} server did not start (exit {self.proc.poll()})")
        _, port, _, key = line.split()
        self.address = f"127.0.0.1:{int(port)}"
        # Every server gets an authorization header of the same size; only the real ones check it.
        self.metadata = (("authorization", f"Bearer {key if key != '-' else 'pvk_' + 'x' * 43}"),)

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (Linux /proc)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.proc.poll() is None:
            try:
                self.proc.stdin.close()  # the server stops when stdin closes
                self.proc.wait(timeout=5)
            except (subprocess.TimeoutExpired, OSError):
                self.proc.terminate()
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait()


def drive(
    channel: grpc.Channel, request: bytes, calls: int, inflight: int, expect_size: int, metadata=()
) -> float:
    """Seconds to complete ``calls`` calls with at most ``inflight`` outstanding (futures)."""
    call = channel.unary_unary(METHOD)  # no (de)serializers: the client's cost is the same for both servers
    slots = threading.BoundedSemaphore(inflight)
    finished = threading.Event()
    lock = threading.Lock()
    state = {"left": calls, "errors": [], "bad_size": 0}

    def on_done(future):
        try:
            if len(future.result()) != expect_size:
                state["bad_size"] += 1
        except grpc.RpcError as exc:
            state["errors"].append(f"{exc.code()}: {exc.details()}")
        slots.release()
        with lock:
            state["left"] -= 1
            if state["left"] == 0:
                finished.set()

    start = time.perf_counter()
    for _ in range(calls):
        slots.acquire()
        call.future(request, timeout=60, metadata=metadata).add_done_callback(on_done)
    if not finished.wait(timeout=300):
        raise RuntimeError("calls did not finish within 300 s")
    elapsed = time.perf_counter() - start
    if state["errors"] or state["bad_size"]:
        raise RuntimeError(
            f"{len(state['errors'])} errors {state['errors'][:3]}, {state['bad_size']} wrong sizes"
        )
    return elapsed


def bench_rpc(args) -> dict:
    request = workload.rpc_request()
    request_bytes = request.SerializeToString()
    # The echo servers return the real response's bytes: same size on the wire as the real server's,
    # whose responses also carry the stored decision's id.
    response = Recommender.from_directory().recommend(request, TODAY)
    response.decision_id = "d_" + "0" * 32
    response_bytes = response.SerializeToString()
    RESULTS.mkdir(exist_ok=True)
    payload_file = RESULTS / "echo-payload.bin"
    payload_file.write_bytes(response_bytes)

    modes = ["sync-echo", "sync-real", "aio-echo", "aio-real"]
    calls = {m: args.echo_calls if m.endswith("echo") else args.real_calls for m in modes}
    servers: dict[str, ServerProcess] = {}
    samples: dict[str, list[dict]] = {m: [] for m in modes}
    try:
        for m in modes:
            servers[m] = ServerProcess(m, args.workers, payload_file)
        channels = {m: grpc.insecure_channel(servers[m].address) for m in modes}
        for m in modes:  # warm-up: connections, imports, caches
            drive(
                channels[m],
                request_bytes,
                max(calls[m] // 10, args.inflight),
                args.inflight,
                len(response_bytes),
                servers[m].metadata,
            )
        # Interleaved repetitions, so a slow moment of the machine hits every server alike.
        for _ in range(args.repeats):
            for m in modes:
                cpu0 = servers[m].cpu_seconds()
                seconds = drive(
                    channels[m],
                    request_bytes,
                    calls[m],
                    args.inflight,
                    len(response_bytes),
                    servers[m].metadata,
                )
                server_cpu = servers[m].cpu_seconds() - cpu0
                samples[m].append(
                    {
                        "calls": calls[m],
                        "seconds": seconds,
                        "calls_per_s": calls[m] / seconds,
                        "server_cpu_ms_per_call": 1000 * server_cpu / calls[m],
                        "server_cores_busy": server_cpu / seconds,
                    }
                )
        for channel in channels.values():
            channel.close()
    finally:
        for server in servers.values():
            server.stop()

    out = {
        "request_bytes": len(request_bytes),
        "response_bytes": len(response_bytes),
        "items": len(request.meeting.items),
        "workers": args.workers,
        "inflight": args.inflight,
        "repeats": args.repeats,
        "servers": {},
    }
    for m in modes:
        rates = [s["calls_per_s"] for s in samples[m]]
        out["servers"][m] = {
            "calls": calls[m],
            "calls_per_s_median": statistics.median(rates),
            "calls_per_s_best": max(rates),
            "calls_per_s_all": rates,
            "server_cpu_ms_per_call": statistics.median(s["server_cpu_ms_per_call"] for s in samples[m]),
            "server_cores_busy": statistics.median(s["server_cores_busy"] for s in samples[m]),
        }
    s = out["servers"]
    out["ratio_sync_real_over_echo"] = (
        s["sync-real"]["calls_per_s_median"] / s["sync-echo"]["calls_per_s_median"]
    )
    out["ratio_aio_real_over_echo"] = (
        s["aio-real"]["calls_per_s_median"] / s["aio-echo"]["calls_per_s_median"]
    )
    out["aio_over_sync_real"] = s["aio-real"]["calls_per_s_median"] / s["sync-real"]["calls_per_s_median"]
    out["aio_over_sync_echo"] = s["aio-echo"]["calls_per_s_median"] / s["sync-echo"]["calls_per_s_median"]
    out["target"] = RPC_TARGET
    return out


# --- Engine -----------------------------------------------------------------------


def timed_passes(fn, passes: int) -> float:
    start = time.perf_counter()
    for _ in range(passes):
        fn()
    return time.perf_counter() - start


def bench_engine(args) -> dict:
    recommender = Recommender.from_directory()
    policy = recommender.policies.get(workload.POLICY)
    taxonomy = recommender.taxonomy
    rule_ids = tuple(r.id for r in policy.rules)
    if rule_ids != handwritten.RULE_ORDER:
        raise SystemExit(
            "bench/handwritten.py implements a different human-rights-esg than policies/ now holds:\n"
            f"  policy rules: {rule_ids}\n  hand-written: {handwritten.RULE_ORDER}\n"
            "Update bench/handwritten.py to the policy before benchmarking."
        )
    meetings = workload.engine_workload()
    prepared = [(m, classify_meeting(m, taxonomy), view) for m, view in meetings]
    items = sum(len(m.items) for m, _ in meetings)

    # Agreement first: the same vote, rule, against-management, strength, rationale and citations.
    fired: Counter = Counter()
    disagreements = []
    for meeting, classes, view in prepared:
        engine_out = decide_meeting(meeting, classes, policy, view).recommendations
        hand_out = handwritten.decide_meeting(meeting, classes, view)
        for rec, hand in zip(engine_out, hand_out, strict=True):
            fired[rec.rule_id] += 1
            mine = (
                rec.item_id,
                rec.vote,
                rec.rule_id,
                rec.against_management,
                rec.strength,
                rec.rationale,
                rec.cited_evidence_ids,
            )
            if mine != tuple(hand):
                disagreements.append((meeting.meeting_id, mine, tuple(hand)))
    if disagreements:
        for meeting_id, mine, hand in disagreements[:5]:
            print(f"DISAGREE {meeting_id}:\n  engine {mine}\n  hand   {hand}", file=sys.stderr)
        raise SystemExit(f"{len(disagreements)} of {items} items disagree; not timing")
    unfired = [r for r in rule_ids if r not in fired]

    def run_engine():
        for meeting, classes, view in prepared:
            decide_meeting(meeting, classes, policy, view)

    def run_engine_cold():
        # The policy's memo of outcomes emptied first: every distinct input is
        # evaluated again, as for the first meetings a policy sees.
        policy.outcomes.clear()
        policy._candidates.clear()
        run_engine()

    def run_hand():
        for meeting, classes, view in prepared:
            handwritten.decide_meeting(meeting, classes, view)

    def run_classify():
        for meeting, _ in meetings:
            classify_meeting(meeting, taxonomy)

    def run_classify_cached():
        # What the service does: Recommender.classify, memoised per wording.
        for meeting, _ in meetings:
            for item in meeting.items:
                recommender.classify(item)

    run_engine(), run_hand(), run_classify(), run_classify_cached()  # warm-up
    rates = {"engine": [], "engine_cold": [], "handwritten": [], "classify": [], "classify_cached": []}
    passes = {
        "engine": args.engine_passes,
        "engine_cold": args.engine_passes,
        "handwritten": args.hand_passes,
        "classify": args.classify_passes,
        "classify_cached": args.engine_passes,
    }
    functions = {
        "engine": run_engine,
        "engine_cold": run_engine_cold,
        "handwritten": run_hand,
        "classify": run_classify,
        "classify_cached": run_classify_cached,
    }
    for _ in range(args.engine_repeats):  # interleaved, like the RPC runs
        for name in rates:
            rates[name].append(items * passes[name] / timed_passes(functions[name], passes[name]))

    out = {
        "meetings": len(meetings),
        "items": items,
        "policy": f"{policy.id}@{policy.version} sha256:{policy.content_hash[:12]}",
        "taxonomy": f"sha256:{taxonomy.content_hash[:12]}",
        "repeats": args.engine_repeats,
        "passes": passes,
        "rules_fired": dict(sorted(fired.items())),
        "rules_never_fired": unfired,
        "agreement": f"{items}/{items} items identical (vote, rule id, against management, strength, "
        "rationale, cited evidence)",
    }
    for name, values in rates.items():
        out[name] = {
            "per_s_median": statistics.median(values),
            "per_s_best": max(values),
            "per_s_all": values,
        }
    out["ratio_engine_over_handwritten"] = out["engine"]["per_s_median"] / out["handwritten"]["per_s_median"]
    out["ratio_engine_cold_over_handwritten"] = (
        out["engine_cold"]["per_s_median"] / out["handwritten"]["per_s_median"]
    )
    out["target"] = ENGINE_TARGET
    if out["ratio_engine_over_handwritten"] < ENGINE_TARGET or args.profile:
        out["profile"] = profile_engine(run_engine, args.profile_lines)
    return out


def profile_engine(run_engine, lines: int) -> dict:
    """cProfile of one pass of the engine workload: the functions with the most own time."""
    profiler = cProfile.Profile()
    profiler.enable()
    run_engine()
    profiler.disable()
    stats = pstats.Stats(profiler)
    total = stats.total_tt
    rows = []
    for (filename, line, name), (_cc, ncalls, tottime, cumtime, _callers) in sorted(
        stats.stats.items(), key=lambda kv: kv[1][2], reverse=True
    )[:lines]:
        where = f"{Path(filename).name}:{line}" if line else filename
        rows.append(
            {
                "function": f"{where}({name})",
                "calls": ncalls,
                "own_s": round(tottime, 4),
                "own_pct": round(100 * tottime / total, 1),
                "cum_s": round(cumtime, 4),
            }
        )
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
    return {"total_s": round(total, 4), "by_own_time": rows, "cumulative_text": text.getvalue()}


# --- Report ----------------------------------------------------------------------


def source_state() -> dict:
    """Which code was measured: the commit and whether the tree had local changes (read-only git)."""
    root = BENCH.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "service", "policies"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return {"commit": "", "local_changes": None}
    return {"commit": commit, "local_changes_in_service_or_policies": bool(dirty)}


def machine() -> dict:
    return {
        "nproc": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "grpcio": grpc.__version__,
        "protobuf_backend": api_implementation.Type(),
        "engine_version": ENGINE_VERSION,
    }


def print_report(results: dict) -> None:
    m = results["machine"]
    print(
        f"\nmachine: {m['nproc']} cores, Python {m['python']}, grpcio {m['grpcio']}, "
        f"protobuf {m['protobuf_backend']}"
    )
    src = results["source"]
    if src.get("commit"):
        changed = (
            " + local changes in service/ or policies/"
            if src.get("local_changes_in_service_or_policies")
            else ""
        )
        print(f"source: commit {src['commit']}{changed}")
    rpc = results.get("rpc")
    if rpc:
        print(
            f"\nRPC  Recommend, {rpc['items']} items, request {rpc['request_bytes']} B, response "
            f"{rpc['response_bytes']} B; {rpc['workers']} server threads, {rpc['inflight']} calls in flight, "
            f"median of {rpc['repeats']}"
        )
        print(
            f"  {'server':<10} {'calls':>6} {'calls/s':>9} {'best':>9} "
            f"{'srv ms CPU/call':>16} {'srv cores':>10}"
        )
        for name, s in rpc["servers"].items():
            print(
                f"  {name:<10} {s['calls']:>6} {s['calls_per_s_median']:>9.1f} {s['calls_per_s_best']:>9.1f} "
                f"{s['server_cpu_ms_per_call']:>16.3f} {s['server_cores_busy']:>10.2f}"
            )
        t = rpc["target"]
        print(f"  sync real / sync echo = {rpc['ratio_sync_real_over_echo']:.3f}   (target >= {t})")
        print(f"  aio  real / aio  echo = {rpc['ratio_aio_real_over_echo']:.3f}   (target >= {t})")
        print(f"  aio / sync: real {rpc['aio_over_sync_real']:.3f}, echo {rpc['aio_over_sync_echo']:.3f}")
    eng = results.get("engine")
    if eng:
        print(
            f"\nENGINE  {eng['items']} items in {eng['meetings']} meetings, human-rights-esg, "
            f"median of {eng['repeats']}"
        )
        print(f"  policy {eng['policy']}, taxonomy {eng['taxonomy']}")
        print(f"  {'':<24} {'items/s':>12} {'best':>12}")
        for label, key in (
            ("engine decisions", "engine"),
            ("engine, memo emptied", "engine_cold"),
            ("hand-written decisions", "handwritten"),
            ("classification", "classify"),
            ("classification, cached", "classify_cached"),
        ):
            print(f"  {label:<24} {eng[key]['per_s_median']:>12,.0f} {eng[key]['per_s_best']:>12,.0f}")
        print(
            f"  engine / hand-written = {eng['ratio_engine_over_handwritten']:.4f}   "
            f"(target >= {eng['target']:.3f}); with the memo emptied each pass "
            f"{eng['ratio_engine_cold_over_handwritten']:.4f}"
        )
        print(f"  agreement: {eng['agreement']}")
        print(f"  rules never fired: {', '.join(eng['rules_never_fired']) or 'none'}")
        prof = eng.get("profile")
        if prof:
            print(f"\n  engine profile (one pass, {prof['total_s']:.3f} s under cProfile), by own time:")
            for row in prof["by_own_time"]:
                print(f"    {row['own_pct']:>5.1f}%  {row['calls']:>7}  {row['function']}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--only", choices=["rpc", "engine"], help="run one of the two benchmarks")
    p.add_argument(
        "--workers",
        type=int,
        default=2 * (os.cpu_count() or 1) + 2,
        help="server thread-pool size, both servers (default: create_server's, 2*nproc+2)",
    )
    p.add_argument("--inflight", type=int, default=16, help="client calls in flight")
    p.add_argument("--real-calls", type=int, default=4000, help="calls per repetition, real servers")
    p.add_argument("--echo-calls", type=int, default=6000, help="calls per repetition, echo servers")
    p.add_argument("--repeats", type=int, default=5, help="RPC repetitions (median reported)")
    p.add_argument("--engine-repeats", type=int, default=5, help="engine repetitions (median reported)")
    p.add_argument("--engine-passes", type=int, default=4, help="workload passes per engine repetition")
    p.add_argument("--hand-passes", type=int, default=100, help="workload passes per hand-written repetition")
    p.add_argument(
        "--classify-passes", type=int, default=2, help="workload passes per classification repetition"
    )
    p.add_argument("--profile", action="store_true", help="profile the engine even if it meets its target")
    p.add_argument("--profile-lines", type=int, default=15)
    p.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    args = p.parse_args(argv)

    started = time.perf_counter()
    results = {
        "when": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "source": source_state(),
    }
    if args.only in (None, "engine"):
        results["engine"] = bench_engine(args)
    if args.only in (None, "rpc"):
        results["rpc"] = bench_rpc(args)
    results["wall_s"] = round(time.perf_counter() - started, 1)
    print_report(results)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
    print(
        f"\nwrote {args.out.relative_to(Path.cwd()) if args.out.is_relative_to(Path.cwd()) else args.out} "
        f"({results['wall_s']} s)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
