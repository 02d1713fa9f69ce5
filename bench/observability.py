"""What observability costs: calls/s of the real server with and without it, on the same traffic.

    .venv/bin/python bench/observability.py [--repeats 5] [--recommend-calls 1500] [--health-calls 6000]

Four configurations of ``create_server``, each in its own process (so the client
does not share the server's GIL), all alive for the whole run:

  bare     no request-id interceptor at all (the server before observability)
  ids      the default: request ids in and out, JSON-ready logs; metrics off
  metrics  ids + the Prometheus interceptor (calls, latency, in flight, votes, batches)
  otel     metrics + OpenTelemetry's gRPC server interceptor: a span per call, into a
           BatchSpanProcessor whose exporter drops them (what tracing costs the
           server, not the network to a collector)

Two kinds of traffic, sent as raw bytes so the client's cost is the same for all:
  recommend  Recommend, a distinct 20-item meeting in every call (bench/workload.py),
             decision log on; the same meetings to every configuration in a repetition
  health     grpc.health.v1.Health/Check: the cheapest call, where per-call overhead shows

Repetitions are interleaved (a slow moment of the machine hits every
configuration alike); medians are printed. Also the interceptor alone, in
process, on a no-op handler: microseconds per call. Writes
bench/results/observability.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import threading
import time
from pathlib import Path

import grpc
from run import ServerProcess  # the same child-server handling as make bench's

BENCH = Path(__file__).resolve().parent
RESULTS = BENCH / "results"
RECOMMEND = "/proxyvote.v1.RecommendationService/Recommend"
HEALTH = "/grpc.health.v1.Health/Check"
CONFIGS = ("bare", "ids", "metrics", "otel")
TODAY = dt.date(2020, 5, 20)


# --- The server side ----------------------------------------------------------------


def serve(config: str) -> None:
    """One configuration's server: prints "PORT <n> KEY <key>", stops when stdin closes."""
    import tempfile

    from proxyvote.api import server as server_module
    from proxyvote.app.wiring import build_app
    from proxyvote.settings import Settings
    from proxyvote.store.schema import upgrade

    url = f"sqlite:///{tempfile.mkdtemp(prefix='proxyvote-bench-obs-')}/proxyvote.db"
    upgrade(url)
    # Calls in flight well above the client's, so nothing is shed.
    app = build_app(Settings.load({}, database_url=url, max_concurrent_rpcs=64))
    _, key = app.store.tenants.create("bench")
    if config == "bare":

        class PassThrough(grpc.ServerInterceptor):
            def __init__(self, metrics=None):
                pass

            def intercept_service(self, continuation, handler_call_details):
                return continuation(handler_call_details)

        server_module.RequestInterceptor = PassThrough
    if config == "otel":
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

        class Dropped(SpanExporter):
            def export(self, spans):
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Dropped()))
        trace.set_tracer_provider(provider)  # otel_interceptor uses the process's provider
    server = server_module.create_server(
        "127.0.0.1:0",
        app,
        today=lambda: TODAY,
        metrics=config in ("metrics", "otel"),
        otel=config == "otel",
    )
    server.start()
    print(f"PORT {server.port} KEY {key}", flush=True)
    sys.stdin.read()
    server.stop(0)
    app.close()


# --- The client side ----------------------------------------------------------------


def drive(channel: grpc.Channel, method: str, requests: list[bytes], inflight: int, metadata) -> float:
    """Seconds to send every request with at most ``inflight`` outstanding; any error stops the run."""
    call = channel.unary_unary(method)
    slots = threading.BoundedSemaphore(inflight)
    finished = threading.Event()
    lock = threading.Lock()
    state = {"left": len(requests), "errors": []}

    def on_done(future):
        try:
            future.result()
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
    if not finished.wait(timeout=600):
        raise RuntimeError("calls did not finish within 600 s")
    elapsed = time.perf_counter() - start
    if state["errors"]:
        raise RuntimeError(f"{len(state['errors'])} errors, e.g. {state['errors'][:3]}")
    return elapsed


def in_process(calls: int = 50_000) -> dict:
    """Microseconds an interceptor adds to one unary call (intercept, then call), on a
    handler that returns a 20-item RecommendResponse at once: no gRPC, no work."""
    import collections

    from proxyvote.api.observability import Metrics, RequestInterceptor
    from proxyvote.v1 import recommendation_service_pb2 as rs

    sys.path.insert(0, str(BENCH))
    import workload

    metadatum = collections.namedtuple("Metadatum", "key value")  # as grpc hands them over

    class Context:
        def __init__(self):
            self._trailing = None

        def code(self):
            return None

        def details(self):
            return None

        def is_active(self):
            return True

        def trailing_metadata(self):
            return self._trailing

        def set_trailing_metadata(self, metadata):
            self._trailing = metadata

        def invocation_metadata(self):
            return Details.invocation_metadata

        def peer(self):
            return "ipv4:127.0.0.1:40000"

    class Details:
        method = RECOMMEND
        invocation_metadata = (metadatum("authorization", "Bearer x"), metadatum("x-request-id", "bench-1"))

    response = rs.RecommendResponse(recommendations=[{"vote": 1 + i % 3} for i in range(workload.RPC_ITEMS)])
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: response)

    def continuation(details):
        return handler

    class NoInterceptor:
        def intercept_service(self, continuation, details):
            return continuation(details)

    def seconds_per_call(interceptor) -> float:
        context, best = Context(), float("inf")
        for _ in range(3):
            start = time.perf_counter()
            for _ in range(calls):
                interceptor.intercept_service(continuation, Details()).unary_unary(None, context)
            best = min(best, time.perf_counter() - start)
        return best / calls

    interceptors = {"ids": RequestInterceptor(None), "metrics": RequestInterceptor(Metrics())}
    try:
        from opentelemetry import trace
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult
        from proxyvote.api.observability import otel_interceptor

        class Dropped(SpanExporter):
            def export(self, spans):
                return SpanExportResult.SUCCESS

        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(Dropped()))
        trace.set_tracer_provider(provider)
        interceptors["otel alone"] = otel_interceptor()
    except ImportError:
        pass
    bare = seconds_per_call(NoInterceptor())
    return {name: {"us_per_call": 1e6 * (seconds_per_call(i) - bare)} for name, i in interceptors.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--serve", choices=CONFIGS, help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--recommend-calls", type=int, default=1500)
    parser.add_argument("--health-calls", type=int, default=6000)
    parser.add_argument("--inflight", type=int, default=16)
    parser.add_argument("--configs", default=",".join(CONFIGS))
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0

    sys.path.insert(0, str(BENCH))
    import workload
    from grpc_health.v1 import health_pb2

    configs = [c for c in args.configs.split(",") if c]
    distinct = workload.DistinctRequests()
    health = health_pb2.HealthCheckRequest(service="").SerializeToString()
    servers = {c: ServerProcess(c, [sys.executable, __file__, "--serve", c]) for c in configs}
    samples = {(c, kind): [] for c in configs for kind in ("recommend", "health")}
    try:
        channels = {c: grpc.insecure_channel(s.address) for c, s in servers.items()}
        warm = distinct.batch(max(200, args.recommend_calls // 10))
        for c in configs:
            drive(channels[c], RECOMMEND, warm, args.inflight, servers[c].metadata)
            drive(channels[c], HEALTH, [health] * 500, args.inflight, ())
        for repeat in range(args.repeats):
            traffic = {
                "recommend": (RECOMMEND, distinct.batch(args.recommend_calls)),
                "health": (HEALTH, [health] * args.health_calls),
            }
            for kind, (method, requests) in traffic.items():
                for c in configs:
                    cpu = servers[c].cpu_seconds()
                    seconds = drive(channels[c], method, requests, args.inflight, servers[c].metadata)
                    cpu = servers[c].cpu_seconds() - cpu
                    samples[(c, kind)].append(
                        {"calls_per_s": len(requests) / seconds, "cpu_us_per_call": 1e6 * cpu / len(requests)}
                    )
            print(f"repetition {repeat + 1} of {args.repeats} done", file=sys.stderr)
        for channel in channels.values():
            channel.close()
    finally:
        for server in servers.values():
            server.stop()

    results = {"configs": {}, "in_process": in_process()}
    for (c, kind), values in samples.items():
        rates = [v["calls_per_s"] for v in values]
        results["configs"].setdefault(c, {})[kind] = {
            "calls_per_s_median": statistics.median(rates),
            "calls_per_s_all": rates,
            "server_cpu_us_per_call_median": statistics.median(v["cpu_us_per_call"] for v in values),
        }
    results["setup"] = {
        "repeats": args.repeats,
        "recommend_calls": args.recommend_calls,
        "health_calls": args.health_calls,
        "inflight": args.inflight,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "observability.json").write_text(json.dumps(results, indent=2))

    base = results["configs"].get("ids") or next(iter(results["configs"].values()))
    print("config    recommend calls/s (x ids)  CPU us/call  health calls/s (x ids)  CPU us/call")
    for c, kinds in results["configs"].items():
        r, h = kinds["recommend"], kinds["health"]
        r_ratio = r["calls_per_s_median"] / base["recommend"]["calls_per_s_median"]
        h_ratio = h["calls_per_s_median"] / base["health"]["calls_per_s_median"]
        r_cpu, h_cpu = r["server_cpu_us_per_call_median"], h["server_cpu_us_per_call_median"]
        print(
            f"{c:8}  {r['calls_per_s_median']:>15,.0f} ({r_ratio:.3f})  {r_cpu:>11,.0f}"
            f"  {h['calls_per_s_median']:>12,.0f} ({h_ratio:.3f})  {h_cpu:>11,.0f}"
        )
    for name, figures in results["in_process"].items():
        print(f"in process, interceptor '{name}': {figures['us_per_call']:.1f} us per call")
    return 0


if __name__ == "__main__":
    sys.exit(main())
