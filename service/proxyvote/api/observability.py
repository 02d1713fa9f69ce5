"""What the server is doing: Prometheus metrics, request ids, JSON logs, optional OpenTelemetry.

- ``RequestInterceptor`` is the outermost server interceptor. Every call gets a
  request id (the caller's ``x-request-id``, else a new one), held in
  ``grpc_errors.REQUEST_ID`` while the call runs (so error details and every
  log line of the call carry it) and returned in the trailing metadata, merged
  with whatever else the call put there (``grpc-status-details-bin``). With
  ``Metrics`` it also counts calls and times them by method and status code,
  keeps the number of calls in flight and counts the items decided by vote.
- ``Metrics`` owns its own registry (several servers may live in one process,
  as in the tests). What is cheap to read at scrape time (cache statistics,
  the decision writer's queue) is read then, by a collector, not counted on
  the hot path. ``start_http`` serves it on its own port.
- ``configure_logging`` writes one JSON object per line (or text), with the
  request id of the call that logged.
- ``otel_interceptor`` imports OpenTelemetry only when asked for
  (``PROXYVOTE_OTEL=1``, ``pip install 'proxyvote[otel]'``).

The metrics (``PROXYVOTE_METRICS_ADDR``, ``curl HOST:PORT/metrics``):

  grpc_server_handled_total{grpc_service,grpc_method,grpc_code}     calls completed
  grpc_server_handling_seconds{grpc_service,grpc_method,grpc_code}  latency histogram
  grpc_server_in_flight                          calls being served (queue depth)
  proxyvote_decisions_total{vote}                items decided (Recommend, StreamRecommend, RecommendPolicies)
  proxyvote_decision_batch_size                  decisions per group commit (histogram)
  proxyvote_decision_writer_queue                decisions waiting for the writer
  proxyvote_cache_{hits,misses,evictions}_total{cache}, proxyvote_cache_{entries,bytes}{cache}
      cache: classification, policy_outcomes, policies_compiled, evidence, response_parts
      (hit rate: rate(hits) / (rate(hits) + rate(misses)); only what a cache counts is shown)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable

import grpc

from proxyvote.api.grpc_errors import REQUEST_ID, REQUEST_ID_HEADER, clean_request_id
from proxyvote.errors import ConfigurationError
from proxyvote.v1 import enums_pb2

log = logging.getLogger("proxyvote.rpc")

RECOMMEND = "/proxyvote.v1.RecommendationService/Recommend"
STREAM_RECOMMEND = "/proxyvote.v1.RecommendationService/StreamRecommend"
RECOMMEND_POLICIES = "/proxyvote.v1.RecommendationService/RecommendPolicies"
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
# Codes that say the server (or what it depends on) failed, rather than the caller.
SERVER_FAULTS = frozenset(
    {
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)
# A failed call is logged at INFO (the caller's fault), WARNING for the server's faults, and
# DEBUG when shed: shed calls are counted by the metrics (overload is no time for more work).
LOG_LEVELS = {code: logging.WARNING for code in SERVER_FAULTS} | {
    grpc.StatusCode.RESOURCE_EXHAUSTED: logging.DEBUG
}


# --- Metrics ----------------------------------------------------------------------


class Metrics:
    """The server's Prometheus metrics, in a registry of their own.

    ``prometheus_client`` is imported here, only when metrics are on (start-up time).
    """

    def __init__(self, app=None):
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

        self.registry = CollectorRegistry(auto_describe=True)
        labels = ("grpc_service", "grpc_method", "grpc_code")
        self.handled = Counter(
            "grpc_server_handled", "RPCs completed, by method and status code", labels, registry=self.registry
        )
        self.latency = Histogram(
            "grpc_server_handling_seconds",
            "RPC duration (a stream: until its last message), by method and status code",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "grpc_server_in_flight",
            "RPCs being served now (queue depth of the server)",
            registry=self.registry,
        )
        self.decisions = Counter(
            "proxyvote_decisions",
            "Ballot items decided by Recommend, StreamRecommend and RecommendPolicies, by vote",
            ("vote",),
            registry=self.registry,
        )
        self.batch_size = Histogram(
            "proxyvote_decision_batch_size",
            "Decisions written per group commit of the decision log",
            buckets=BATCH_BUCKETS,
            registry=self.registry,
        )
        self._votes = {
            number: self.decisions.labels(name) for name, number in enums_pb2.Vote.items() if number
        }
        self._methods: dict[tuple[str, grpc.StatusCode], tuple] = {}
        self._http = None
        if app is not None:
            self.registry.register(AppCollector(app))
            app.store.decisions.on_batch = self.batch_size.observe

    def method(self, method: str, code: grpc.StatusCode) -> tuple:
        """The (counter, histogram) children of a method and code, made once."""
        key = (method, code)
        found = self._methods.get(key)
        if found is None:
            service, _, name = method.lstrip("/").rpartition("/")
            found = (
                self.handled.labels(service, name, code.name),
                self.latency.labels(service, name, code.name),
            )
            self._methods[key] = found
        return found

    def count_votes(self, recommendations: Iterable) -> None:
        tally: dict[int, int] = {}
        for r in recommendations:
            tally[r.vote] = tally.get(r.vote, 0) + 1
        for vote, n in tally.items():
            child = self._votes.get(vote)
            if child is not None:
                child.inc(n)

    def start_http(self, addr: str) -> int | None:
        """Serves /metrics on ``addr`` (HOST:PORT; port 0 picks one) in a daemon thread; the port.

        None when the address is taken: with ``--workers N`` every worker is told the
        same address, and only the first to bind serves its metrics (the others log it).
        """
        from prometheus_client import start_http_server

        host, _, port = addr.rpartition(":")
        host = host.strip("[]") or "127.0.0.1"
        if not port.isdigit():
            raise ConfigurationError(f"PROXYVOTE_METRICS_ADDR={addr!r}: expected HOST:PORT")
        try:
            server, _thread = start_http_server(int(port), host, registry=self.registry)
        except OSError as exc:
            logging.getLogger(__name__).warning("metrics not served on %s: %s", addr, exc.strerror or exc)
            return None
        self._http = server
        logging.getLogger(__name__).info("metrics on http://%s:%d/metrics", host, server.server_port)
        return server.server_port

    def stop_http(self) -> None:
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None


@dataclasses.dataclass
class CacheFigures:
    """What a cache tells at scrape time; None where it does not count it."""

    hits: int | None = None
    misses: int | None = None
    entries: int = 0
    bytes: int | None = None
    evictions: int | None = None

    def __add__(self, other: CacheFigures) -> CacheFigures:
        def plus(a, b):
            return None if a is None and b is None else (a or 0) + (b or 0)

        return CacheFigures(
            plus(self.hits, other.hits),
            plus(self.misses, other.misses),
            self.entries + other.entries,
            plus(self.bytes, other.bytes),
            plus(self.evictions, other.evictions),
        )


def cache_figures(cache) -> CacheFigures | None:
    """An lru_cache (cache_info), a cache with ``stats`` (hits, misses, evictions) and
    ``bytes``, or a plain dict (entries only); None for anything else."""
    info = _call(cache, "cache_info")
    if info is not None:
        return CacheFigures(info.hits, info.misses, info.currsize)
    stats = getattr(cache, "stats", None)
    if stats is not None and hasattr(stats, "hits"):
        return CacheFigures(
            stats.hits,
            stats.misses,
            len(cache),
            getattr(cache, "bytes", None),
            getattr(stats, "evictions", None),
        )
    if isinstance(cache, dict):
        return CacheFigures(entries=len(cache))
    return None


def _first(obj, *names: str):
    """The first of ``obj``'s attributes that is a cache this module can read."""
    for name in names:
        found = getattr(obj, name, None)
        if found is not None and cache_figures(found) is not None:
            return found
    return None


class AppCollector:
    """Read at scrape time: the caches' statistics and the decision writer's queue.

    Reads the objects' internals defensively: a cache that is not there (or has
    changed shape) is left out rather than failing the scrape.
    """

    def __init__(self, app):
        self._app = app

    def describe(self):
        return []

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        hits = CounterMetricFamily(
            "proxyvote_cache_hits", "Cache lookups answered from the cache", labels=["cache"]
        )
        misses = CounterMetricFamily(
            "proxyvote_cache_misses", "Cache lookups that had to compute", labels=["cache"]
        )
        evictions = CounterMetricFamily(
            "proxyvote_cache_evictions", "Entries dropped to stay within the budget", labels=["cache"]
        )
        entries = GaugeMetricFamily("proxyvote_cache_entries", "Entries held by each cache", labels=["cache"])
        size = GaugeMetricFamily(
            "proxyvote_cache_bytes", "Estimated bytes held by each cache", labels=["cache"]
        )
        for name, figures in self.caches().items():
            if figures.hits is not None:
                hits.add_metric([name], figures.hits)
                misses.add_metric([name], figures.misses or 0)
            if figures.evictions is not None:
                evictions.add_metric([name], figures.evictions)
            if figures.bytes is not None:
                size.add_metric([name], figures.bytes)
            entries.add_metric([name], figures.entries)
        yield from (hits, misses, evictions, entries, size)
        queued = _call(self._app.store.decisions, "queued")
        if queued is not None:
            yield GaugeMetricFamily(
                "proxyvote_decision_writer_queue", "Decisions waiting for the decision writer", value=queued
            )

    def caches(self) -> dict[str, CacheFigures]:
        app, found = self._app, {}
        classification = _first(app.recommender, "classification_cache", "_classify_wording")
        if classification is not None:
            found["classification"] = cache_figures(classification)
        compiled = getattr(app.catalog, "_compiled", None)
        if compiled is not None and cache_figures(compiled) is not None:
            found["policies_compiled"] = cache_figures(compiled)
            values = compiled.values() if isinstance(compiled, dict) else ()
            memos = {id(m): m for e in list(values) if (m := getattr(e.policy, "outcomes", None)) is not None}
            outcomes = [f for m in memos.values() if (f := cache_figures(m)) is not None]
            if outcomes:
                found["policy_outcomes"] = sum(outcomes[1:], outcomes[0])
        evidence = _first(app.evidence, "_about", "about_cache", "_cache")
        if evidence is not None:
            found["evidence"] = cache_figures(evidence)
        from proxyvote.wire import convert

        parts = [f for c in list(getattr(convert, "_CACHES", ())) if (f := cache_figures(c)) is not None]
        if parts:  # the serialised response parts wire/convert keeps
            found["response_parts"] = sum(parts[1:], parts[0])
        return found


def _call(obj, name: str):
    method = getattr(obj, name, None)
    return method() if callable(method) else None


# --- The interceptor ----------------------------------------------------------------


def request_id_from(metadata) -> str:
    for key, value in metadata or ():
        if key == REQUEST_ID_HEADER:
            cleaned = clean_request_id(value)
            if cleaned:
                return cleaned
    return uuid.uuid4().hex


class RequestInterceptor(grpc.ServerInterceptor):
    """Request id in, request id out, and (with ``metrics``) calls, latency, in-flight and votes."""

    def __init__(self, metrics: Metrics | None = None):
        self._metrics = metrics

    def intercept_service(self, continuation, handler_call_details):
        handler = continuation(handler_call_details)
        if handler is None:
            return None
        method = handler_call_details.method
        request_id = request_id_from(handler_call_details.invocation_metadata)
        metrics = self._metrics
        votes: Callable | None = None
        if metrics is not None and method == RECOMMEND:
            votes = lambda response: metrics.count_votes(response.recommendations)  # noqa: E731
        elif metrics is not None and method == STREAM_RECOMMEND:
            votes = lambda message: metrics.count_votes(message.response.recommendations)  # noqa: E731
        elif metrics is not None and method == RECOMMEND_POLICIES:
            votes = lambda response: metrics.count_votes(  # noqa: E731
                r for each in response.responses for r in each.recommendations
            )
        if handler.response_streaming:
            behavior = handler.unary_stream or handler.stream_stream
            wrapped = self._streaming(behavior, method, request_id, votes)
        else:
            behavior = handler.unary_unary or handler.stream_unary
            wrapped = self._unary(behavior, method, request_id, votes)
        make = {
            (False, False): grpc.unary_unary_rpc_method_handler,
            (False, True): grpc.unary_stream_rpc_method_handler,
            (True, False): grpc.stream_unary_rpc_method_handler,
            (True, True): grpc.stream_stream_rpc_method_handler,
        }[(handler.request_streaming, handler.response_streaming)]
        return make(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )

    def _unary(self, behavior, method: str, request_id: str, votes):
        def call(request, context):
            token = REQUEST_ID.set(request_id)
            self._begin()
            start = time.perf_counter()
            failed = True
            try:
                response = behavior(request, context)
                failed = False
                if votes is not None and context.code() in (None, grpc.StatusCode.OK):
                    votes(response)
                return response
            finally:
                self._end(context, method, request_id, start, failed)
                REQUEST_ID.reset(token)

        return call

    def _streaming(self, behavior, method: str, request_id: str, votes):
        def call(request_or_iterator, context):
            token = REQUEST_ID.set(request_id)
            self._begin()
            start = time.perf_counter()
            failed = True
            try:
                for message in behavior(request_or_iterator, context):
                    if votes is not None and message.HasField("response"):
                        votes(message)
                    yield message
                failed = False
            except GeneratorExit:  # the caller went away: grpc closes the stream
                failed = None
                raise
            finally:
                self._end(context, method, request_id, start, failed)
                try:
                    REQUEST_ID.reset(token)
                except ValueError:  # closed from another thread: its context is not ours
                    pass

        return call

    def _begin(self) -> None:
        if self._metrics is not None:
            self._metrics.in_flight.inc()

    def _end(self, context, method: str, request_id: str, start: float, failed: bool | None) -> None:
        """``failed``: raised (True), returned (False), closed by the caller going away (None)."""
        elapsed = time.perf_counter() - start
        code = context.code()
        if code is None or code is grpc.StatusCode.OK:
            if failed is None or not context.is_active():
                code = grpc.StatusCode.CANCELLED  # cancelled, or its deadline passed
            else:
                code = grpc.StatusCode.UNKNOWN if failed else grpc.StatusCode.OK
        elif not isinstance(code, grpc.StatusCode):
            code = grpc.StatusCode.UNKNOWN
        trailing = tuple(context.trailing_metadata() or ())
        if not any(key == REQUEST_ID_HEADER for key, _ in trailing):
            context.set_trailing_metadata(trailing + ((REQUEST_ID_HEADER, request_id),))
        if self._metrics is not None:
            self._metrics.in_flight.dec()
            counter, histogram = self._metrics.method(method, code)
            counter.inc()
            histogram.observe(elapsed)
        if code is not grpc.StatusCode.OK:
            log.log(
                LOG_LEVELS.get(code, logging.INFO),
                "%s %s in %.1f ms",
                method,
                code.name,
                elapsed * 1000,
                extra={"method": method, "code": code.name, "duration_ms": round(elapsed * 1000, 3)},
            )


# --- Logs -----------------------------------------------------------------------------

_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class RequestIdFilter(logging.Filter):
    """Adds the request id of the call being served (if any) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = REQUEST_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extras, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and value not in ("", None):
                entry[key] = value if isinstance(value, str | int | float | bool) else str(value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def __init__(self):
        super().__init__("%(asctime)s %(name)s %(levelname)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = getattr(record, "request_id", "")
        return f"{text} [request {request_id}]" if request_id else text


def log_handler(log_format: str, stream=None) -> logging.Handler:
    """A handler writing ``json`` or ``text`` lines, with request ids."""
    if log_format not in ("json", "text"):
        raise ConfigurationError(f"PROXYVOTE_LOG_FORMAT={log_format!r}: expected json or text")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(RequestIdFilter())
    return handler


def configure_logging(log_format: str, level: int = logging.INFO) -> None:
    """The process's logging, for ``serve``: replaces whatever handlers the root logger had."""
    logging.basicConfig(level=level, handlers=[log_handler(log_format)], force=True)


# --- OpenTelemetry ------------------------------------------------------------------


def otel_interceptor() -> grpc.ServerInterceptor:
    """OpenTelemetry's gRPC server interceptor (a span per call); imported only here.

    Uses the tracer provider the process already has (e.g. ``opentelemetry-instrument``
    or a test's), else makes one exporting over OTLP (the SDK reads its own
    ``OTEL_EXPORTER_OTLP_*`` variables) where the exporter is installed.
    """
    try:
        from opentelemetry import trace
        from opentelemetry.instrumentation.grpc import server_interceptor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError as exc:
        raise ConfigurationError(
            f"PROXYVOTE_OTEL=1 needs OpenTelemetry: pip install 'proxyvote[otel]' ({exc})"
        ) from None
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider(resource=Resource.create({"service.name": "proxyvote"}))
        try:
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        except ImportError:
            logging.getLogger(__name__).warning("no OTLP exporter installed: spans are made but not exported")
        else:
            provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
        trace.set_tracer_provider(provider)
    return server_interceptor(tracer_provider=provider)
