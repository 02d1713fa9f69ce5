"""`make bench`: throughput ratios against baselines measured in the same run.

1. RPC: RecommendationService.Recommend (20-item meetings, human-rights-esg, with
   evidence) through the real server (decision log on), against a bare gRPC echo
   server that gets the same request bytes and returns bytes of a real
   response's size, each in its own process, same thread-pool size, same client
   concurrency. Two kinds of traffic: a distinct meeting in every call, and one
   request over and over. ``--aio``: the same on grpc.aio servers.
2. Engine: decisions/s of proxyvote.core.engine.decide_meeting against a
   plain-Python hand-written human-rights-esg (bench/handwritten.py) on the same
   pre-classified items; classification items/s on its own (cold, long inputs,
   cached).

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
from proxyvote.app.files import load_recommender
from proxyvote.core.classify import classify_meeting
from proxyvote.core.engine import decide_meeting
from proxyvote.core.model import BallotItem
from proxyvote.core.recommender import Recommender
from proxyvote.settings import Settings
from proxyvote.v1 import recommendation_service_pb2 as rs
from proxyvote.wire import convert

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
METHOD = "/proxyvote.v1.RecommendationService/Recommend"
TODAY = dt.date(2020, 5, 20)

RPC_TARGET = 0.5  # distinct-meeting sync real >= 0.5 x echo (issue 7)
KINDS = ("distinct", "repeated")
ENGINE_TARGET = 1 / 3  # engine >= 1/3 x hand-written


# --- RPC ------------------------------------------------------------------------


class ServerProcess:
    """A benchmark server in a child process on a loopback port. The child prints
    "PORT <n> KEY <k>" once serving ("-" when it checks no key) and stops when its stdin
    closes, so the parent cannot leave it running by accident."""

    def __init__(self, label: str, argv: list[str]):
        self.mode = label
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()  # blocks until the server is up (or has died)
        if not line.startswith("PORT "):
            self.stop()
            raise RuntimeError(f"{label} server did not start (exit {self.proc.poll()})")
        _, port, _, key = line.split()
        self.address = f"127.0.0.1:{int(port)}"
        # Every server gets an authorization header of the same size; only the real ones check it.
        self.metadata = (("authorization", f"Bearer {key if key != '-' else 'pvk_' + 'x' * 43}"),)

    @classmethod
    def rpc(cls, mode: str, workers: int, payload_file: Path) -> ServerProcess:
        """One of bench/rpc_servers.py's servers."""
        argv = [sys.executable, str(BENCH / "rpc_servers.py"), mode, "--workers", str(workers)]
        return cls(mode, argv + ["--payload", str(payload_file)])

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
    channel: grpc.Channel,
    requests: list[bytes],
    inflight: int,
    expect_size: int | None,
    metadata=(),
) -> float:
    """Seconds to send every request with at most ``inflight`` outstanding (futures).

    ``expect_size``: every response must have that many bytes; None: any non-empty response.
    """
    call = channel.unary_unary(METHOD)  # no (de)serializers: the client's cost is the same for both servers
    slots = threading.BoundedSemaphore(inflight)
    finished = threading.Event()
    lock = threading.Lock()
    state = {"left": len(requests), "errors": [], "bad_size": 0}

    def on_done(future):
        try:
            size = len(future.result())
            if size != expect_size if expect_size is not None else size == 0:
                state["bad_size"] += 1
        except grpc.RpcError as exc:
            state["errors"].append(f"{exc.code()}: {exc.details()}")
        slots.release()
        with lock:
            state["left"] -= 1
            if state["left"] == 0:
                finished.set()

    start = time.perf_counter()
    for request in requests:
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


def response_bytes(recommender: Recommender, request: rs.RecommendRequest) -> bytes:
    """What the real server answers (decided in process; the decision id has its stored length)."""
    decision = recommender.decide(convert.recommend_command(request), TODAY)
    response = convert.decision_to_proto(decision, request.request_id)
    response.decision_id = "d_" + "0" * 32
    return response.SerializeToString()


class Traffic:
    """The two kinds of traffic: one request over and over, or a distinct meeting in every call."""

    def __init__(self, args):
        recommender = load_recommender(Settings.load({}).policy_dir)
        repeated = workload.rpc_request()
        self.repeated = repeated.SerializeToString()
        self.distinct = workload.DistinctRequests(issuers=args.issuers, seed=args.seed)
        # The echo servers answer every call with one real response: for distinct
        # traffic, the response of median size among a sample of distinct requests.
        sample = [self.distinct.request() for _ in range(101)]
        sizes = sorted((len(response_bytes(recommender, r)), i) for i, r in enumerate(sample))
        self.payloads = {
            "repeated": response_bytes(recommender, repeated),
            "distinct": response_bytes(recommender, sample[sizes[len(sizes) // 2][1]]),
        }
        self.sizes = {
            "repeated": {
                "request_bytes": len(self.repeated),
                "response_bytes": len(self.payloads["repeated"]),
            },
            "distinct": {
                "request_bytes_mean": round(statistics.mean(len(r.SerializeToString()) for r in sample)),
                "response_bytes_min": sizes[0][0],
                "response_bytes_median": sizes[len(sizes) // 2][0],
                "response_bytes_max": sizes[-1][0],
            },
        }

    def requests(self, kind: str, calls: int) -> list[bytes]:
        """Built before the clock starts, so the client's cost is not measured."""
        return [self.repeated] * calls if kind == "repeated" else self.distinct.batch(calls)


def bench_rpc(args) -> dict:
    traffic = Traffic(args)
    RESULTS.mkdir(exist_ok=True)
    payload_files = {}
    for kind, payload in traffic.payloads.items():
        payload_files[kind] = RESULTS / f"echo-payload-{kind}.bin"
        payload_files[kind].write_bytes(payload)

    families = ["sync"] + (["aio"] if args.aio else [])
    # One server process per (server, kind of traffic): a real server's memo and
    # database see one kind of traffic only.
    runs = [(f"{family}-{role}", kind) for kind in KINDS for family in families for role in ("echo", "real")]
    calls = {run: args.echo_calls if run[0].endswith("echo") else args.real_calls for run in runs}
    servers: dict[tuple[str, str], ServerProcess] = {}
    samples: dict[tuple[str, str], list[dict]] = {run: [] for run in runs}

    def expect(run):
        mode, kind = run
        return None if (kind == "distinct" and mode.endswith("real")) else len(traffic.payloads[kind])

    try:
        for run in runs:
            servers[run] = ServerProcess.rpc(run[0], args.workers, payload_files[run[1]])
        channels = {run: grpc.insecure_channel(servers[run].address) for run in runs}
        for run in runs:  # warm-up: connections, imports, classification of the workload's wordings
            warm = traffic.requests(run[1], max(calls[run] // 10, args.inflight))
            drive(channels[run], warm, args.inflight, expect(run), servers[run].metadata)
        # Interleaved repetitions, so a slow moment of the machine hits every server alike.
        for _ in range(args.repeats):
            for run in runs:
                requests = traffic.requests(run[1], calls[run])
                cpu0 = servers[run].cpu_seconds()
                seconds = drive(channels[run], requests, args.inflight, expect(run), servers[run].metadata)
                server_cpu = servers[run].cpu_seconds() - cpu0
                samples[run].append(
                    {
                        "calls": calls[run],
                        "seconds": seconds,
                        "calls_per_s": calls[run] / seconds,
                        "server_cpu_ms_per_call": 1000 * server_cpu / calls[run],
                        "server_cores_busy": server_cpu / seconds,
                    }
                )
        for channel in channels.values():
            channel.close()
    finally:
        for server in servers.values():
            server.stop()

    out = {
        "items": workload.RPC_ITEMS,
        "issuers": args.issuers,
        "workers": args.workers,
        "inflight": args.inflight,
        "repeats": args.repeats,
        "kinds": {},
    }
    for kind in KINDS:
        block = {**traffic.sizes[kind], "servers": {}}
        for (mode, k), values in samples.items():
            if k != kind:
                continue
            rates = [v["calls_per_s"] for v in values]
            block["servers"][mode] = {
                "calls": values[0]["calls"],
                "calls_per_s_median": statistics.median(rates),
                "calls_per_s_best": max(rates),
                "calls_per_s_all": rates,
                "server_cpu_ms_per_call": statistics.median(v["server_cpu_ms_per_call"] for v in values),
                "server_cores_busy": statistics.median(v["server_cores_busy"] for v in values),
            }
        for family in families:
            s = block["servers"]
            block[f"ratio_{family}_real_over_echo"] = (
                s[f"{family}-real"]["calls_per_s_median"] / s[f"{family}-echo"]["calls_per_s_median"]
            )
        out["kinds"][kind] = block
    out["target"] = RPC_TARGET
    out["handler_in_process"] = handler_in_process(args, traffic)
    return out


def handler_in_process(args, traffic: Traffic) -> dict:
    """The real server's work per call without gRPC: parse, convert, decide, store, serialise.

    Sequential calls in this process on a fresh database, so each decision is
    committed alone (no group commit) and the figure is an upper bound of the
    handler's cost. With --profile, the distinct calls run under cProfile.
    """
    import tempfile

    from proxyvote.app.wiring import build_app
    from proxyvote.store.schema import upgrade

    out = {}
    with tempfile.TemporaryDirectory(prefix="proxyvote-bench-") as folder:
        url = f"sqlite:///{folder}/proxyvote.db"
        upgrade(url)
        app = build_app(Settings.load({}, database_url=url))
        try:
            tenant, _ = app.store.tenants.create("bench")

            def handle(request: bytes) -> bytes:
                command = convert.recommend_command(rs.RecommendRequest.FromString(request))
                return app.log.recommend(tenant, command, TODAY).response.SerializeToString()

            for kind in KINDS:
                for request in traffic.requests(kind, args.handler_calls // 4):  # warm-up
                    handle(request)
                requests = traffic.requests(kind, args.handler_calls)
                cpu0, start = time.process_time(), time.perf_counter()
                for request in requests:
                    handle(request)
                wall, cpu = time.perf_counter() - start, time.process_time() - cpu0
                out[kind] = {
                    "calls": len(requests),
                    "wall_ms_per_call": 1000 * wall / len(requests),
                    "cpu_ms_per_call": 1000 * cpu / len(requests),
                }
            if args.profile:
                # The store commits in its writer thread: profile it too (cProfile sees one thread).
                writer = app.store.decisions._writer
                write_batch, writer_profiler = writer._write_batch, cProfile.Profile()

                def profiled_write_batch(batch):
                    writer_profiler.enable()
                    try:
                        write_batch(batch)
                    finally:
                        writer_profiler.disable()

                writer._write_batch = profiled_write_batch
                requests = traffic.requests("distinct", args.handler_calls)
                out["profile_distinct"] = profile(
                    lambda: [handle(r) for r in requests], args.profile_lines, also=writer_profiler
                )
        finally:
            app.close()
    return out


# --- Engine -----------------------------------------------------------------------


def timed_passes(fn, passes: int) -> float:
    start = time.perf_counter()
    for _ in range(passes):
        fn()
    return time.perf_counter() - start


def bench_engine(args) -> dict:
    recommender = load_recommender(Settings.load({}).policy_dir)
    policy = recommender.policy(workload.POLICY)
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

    # Each wording once: with the caches emptied, every item is classified from scratch.
    wordings = list(
        {
            (i.title, i.text, i.proponent_kind, i.proponent_name, i.category): i
            for m, _ in meetings
            for i in m.items
        }.values()
    )
    long_items = long_input_items()

    def run_classify_cold():
        recommender.clear_caches()
        for item in wordings:
            recommender.classify(item)

    def run_classify_long():
        recommender.clear_caches()
        for item in long_items:
            recommender.classify(item)

    def run_classify_cached():
        # What the service does: Recommender.classify, memoised per wording.
        for meeting, _ in meetings:
            for item in meeting.items:
                recommender.classify(item)

    run_engine(), run_hand(), run_classify_cold(), run_classify_long(), run_classify_cached()  # warm-up
    names = ("engine", "engine_cold", "handwritten", "classify_cold", "classify_long", "classify_cached")
    rates = {name: [] for name in names}
    passes = {
        "engine": args.engine_passes,
        "engine_cold": args.engine_passes,
        "handwritten": args.hand_passes,
        "classify_cold": args.classify_passes,
        "classify_long": args.classify_passes,
        "classify_cached": args.engine_passes,
    }
    functions = {
        "engine": run_engine,
        "engine_cold": run_engine_cold,
        "handwritten": run_hand,
        "classify_cold": run_classify_cold,
        "classify_long": run_classify_long,
        "classify_cached": run_classify_cached,
    }
    counts = {name: items for name in names}
    counts["classify_cold"] = len(wordings)
    counts["classify_long"] = len(long_items)
    for _ in range(args.engine_repeats):  # interleaved, like the RPC runs
        for name in rates:
            if name == "classify_cached":
                run_classify_cached()  # untimed: the cold passes just emptied the cache
            rates[name].append(counts[name] * passes[name] / timed_passes(functions[name], passes[name]))

    out = {
        "meetings": len(meetings),
        "items": items,
        "distinct_wordings": len(wordings),
        "long_items": len(long_items),
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
        out["profile"] = profile(run_engine, args.profile_lines)
    return out


def long_input_items() -> list[BallotItem]:
    """Long titles and texts that could make the taxonomy's patterns backtrack
    (formerly a wall-clock assertion in tests/test_classify.py)."""
    words = "the board of directors shall report on the risks of human capital and audit " * 60
    long_title = ("Shareholder proposal regarding " + words)[:4000]
    long_text = ("RESOLVED " + "a " * 3000 + words * 4 + " -" * 2000)[:20000]
    return [
        BallotItem(f"long-{n}-{kind}", title, kind, text=text)
        for n, (title, text) in enumerate(
            ((long_title, long_text), ("x" * 4000, "y" * 20000), ("a " * 2000, ". " * 10000))
        )
        for kind in ("SHAREHOLDER", "MANAGEMENT")
    ]


def profile(function, lines: int, also: cProfile.Profile | None = None) -> dict:
    """cProfile of one call of ``function``: the functions with the most own time.

    cProfile sees only this thread; ``also`` is another thread's profile of the
    same time, added in (this thread's time waiting for it shows as ``acquire``).
    """
    profiler = cProfile.Profile()
    profiler.enable()
    function()
    profiler.disable()
    stats = pstats.Stats(profiler)
    if also is not None:
        stats.add(also)
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
    stats.stream = text
    stats.sort_stats("cumulative").print_stats(25)
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
            f"\nRPC  Recommend, {rpc['items']} items, human-rights-esg, decision log on; "
            f"{rpc['workers']} server threads, {rpc['inflight']} calls in flight, median of {rpc['repeats']}"
        )
        for kind, block in rpc["kinds"].items():
            if kind == "distinct":
                what = (
                    f"a distinct meeting per call ({rpc['issuers']} issuers), request "
                    f"~{block['request_bytes_mean']} B, response {block['response_bytes_min']}-"
                    f"{block['response_bytes_max']} B (echo returns {block['response_bytes_median']} B)"
                )
            else:
                what = (
                    f"the same request every call, request {block['request_bytes']} B, "
                    f"response {block['response_bytes']} B"
                )
            print(f"\n  {kind}: {what}")
            print(
                f"  {'server':<10} {'calls':>6} {'calls/s':>9} {'best':>9} "
                f"{'srv ms CPU/call':>16} {'srv cores':>10}"
            )
            for name, s in block["servers"].items():
                print(
                    f"  {name:<10} {s['calls']:>6} {s['calls_per_s_median']:>9.1f} "
                    f"{s['calls_per_s_best']:>9.1f} {s['server_cpu_ms_per_call']:>16.3f} "
                    f"{s['server_cores_busy']:>10.2f}"
                )
            for key, value in block.items():
                if key.startswith("ratio_"):
                    family = key.split("_")[1]
                    target = (
                        f"   (target >= {rpc['target']})" if kind == "distinct" and family == "sync" else ""
                    )
                    print(f"  {family} real / {family} echo = {value:.3f}{target}")
        handler = rpc.get("handler_in_process")
        if handler:
            print("\n  handler in process (parse, convert, decide, store one at a time, serialise):")
            for kind in KINDS:
                h = handler[kind]
                print(
                    f"    {kind:<9} {h['wall_ms_per_call']:.3f} ms/call wall, "
                    f"{h['cpu_ms_per_call']:.3f} ms/call CPU"
                )
            prof = handler.get("profile_distinct")
            if prof:
                print(f"\n  handler profile, distinct ({prof['total_s']:.3f} s under cProfile), by own time:")
                for row in prof["by_own_time"]:
                    print(f"    {row['own_pct']:>5.1f}%  {row['calls']:>7}  {row['function']}")
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
            ("classification, cold", "classify_cold"),
            ("classification, long", "classify_long"),
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
        print(
            f"  classification cold: {eng['distinct_wordings']} distinct wordings, caches emptied before "
            f"each pass; long: {eng['long_items']} items of 4,000-character titles and 20,000-character texts"
        )
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
    p.add_argument("--issuers", type=int, default=256, help="issuers the distinct meetings are drawn from")
    p.add_argument("--seed", type=int, default=7, help="seed of the distinct meetings")
    p.add_argument("--aio", action="store_true", help="also the grpc.aio servers")
    p.add_argument(
        "--handler-calls", type=int, default=400, help="calls per kind for the in-process handler figure"
    )
    p.add_argument("--real-calls", type=int, default=4000, help="calls per repetition, real servers")
    p.add_argument("--echo-calls", type=int, default=6000, help="calls per repetition, echo servers")
    p.add_argument("--repeats", type=int, default=5, help="RPC repetitions (median reported)")
    p.add_argument("--engine-repeats", type=int, default=5, help="engine repetitions (median reported)")
    p.add_argument("--engine-passes", type=int, default=4, help="workload passes per engine repetition")
    p.add_argument("--hand-passes", type=int, default=100, help="workload passes per hand-written repetition")
    p.add_argument(
        "--classify-passes", type=int, default=2, help="workload passes per classification repetition"
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="profile the engine even if it meets its target, and the RPC handler on distinct meetings",
    )
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
