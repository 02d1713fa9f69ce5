"""The gRPC server: create_server for tests and tools, serve for the command line."""

from __future__ import annotations

import logging
import signal
import threading
from concurrent import futures

import grpc
from google.protobuf.internal import api_implementation
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from proxyvote.api.auth import Authenticator, AuthInterceptor
from proxyvote.api.decoding import DecodingInterceptor
from proxyvote.api.health_monitor import DatabaseHealthMonitor
from proxyvote.api.observability import Metrics, RequestInterceptor, configure_logging, otel_interceptor
from proxyvote.api.overload import SPARE_THREADS, InFlight, OverloadInterceptor, method_arity
from proxyvote.api.servicers import utc_today
from proxyvote.api.services import Service, services
from proxyvote.api.transport import ServerTransport
from proxyvote.app.wiring import App, build_app
from proxyvote.settings import Settings

log = logging.getLogger("proxyvote.server")

MAX_MESSAGE_BYTES = 32 * 1024 * 1024


class HealthServicer(health.HealthServicer):
    """grpc.health.v1 with List, which the library's servicer leaves unimplemented."""

    def List(self, request, context):  # noqa: N802 (gRPC method name)
        with self._lock:
            statuses = dict(self._server_status)
        return health_pb2.HealthListResponse(
            statuses={name: health_pb2.HealthCheckResponse(status=s) for name, s in statuses.items()}
        )


class Server:
    """A bound, not yet started server and what it serves."""

    def __init__(self, grpc_server: grpc.Server, port: int, offered: tuple[Service, ...]):
        self.grpc = grpc_server
        self.port = port
        self.services = offered
        self.metrics: Metrics | None = None  # create_server sets it when metrics are on
        self.health = HealthServicer()
        health_pb2_grpc.add_HealthServicer_to_server(self.health, grpc_server)
        reflection.enable_server_reflection(
            tuple(s.name for s in offered) + (health.SERVICE_NAME, reflection.SERVICE_NAME), grpc_server
        )

    def start(self) -> None:
        self.grpc.start()
        self.mark_serving(True)

    def mark_serving(self, serving: bool) -> None:
        status = (
            health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
        )
        for name in ("",) + tuple(s.name for s in self.services):
            self.health.set(name, status)

    def set_database_available(self, available: bool) -> None:
        """Every service offered here needs the database: health follows it (api/health_monitor)."""
        self.mark_serving(available)

    def stop(self, grace: float | None) -> None:
        self.mark_serving(False)
        self.grpc.stop(grace).wait()


def create_server(
    addr: str,
    app: App,
    max_workers: int | None = None,
    today=utc_today,
    transport: ServerTransport | None = None,
    metrics: bool | None = None,
    otel: bool | None = None,
    reuse_port: bool = False,
) -> Server:
    """A server bound to ``addr``, not started; port 0 picks a free one.

    ``transport`` defaults to plaintext, which binds only on loopback. ``metrics``
    (default: ``PROXYVOTE_METRICS_ADDR`` is set) counts into ``Server.metrics``
    (``serve`` exposes them over HTTP); ``otel`` (default: ``PROXYVOTE_OTEL``) adds
    OpenTelemetry spans. Every call gets a request id either way (api/observability).
    """
    auth = Authenticator(app.store.tenants.for_key)
    counted = Metrics(app) if (bool(app.settings.metrics_addr) if metrics is None else metrics) else None
    traced = [otel_interceptor()] if (app.settings.otel if otel is None else otel) else []
    offered = services(app, auth, today)
    settings = app.settings
    in_flight = InFlight(max(1, settings.max_concurrent_rpcs))
    shedding = OverloadInterceptor(
        in_flight, settings.retry_after_ms / 1000, method_arity(s.descriptor for s in offered)
    )
    # More threads than admitted calls: an admitted call never waits for a thread,
    # and a refusal never waits behind admitted calls.
    threads = max(max_workers or settings.max_workers, in_flight.limit + SPARE_THREADS)
    grpc_server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=threads),
        interceptors=[
            RequestInterceptor(counted),
            shedding,
            *traced,
            AuthInterceptor(auth),
            DecodingInterceptor(),
        ],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.so_reuseport", 1 if reuse_port else 0),
        ],
        # A backstop: gRPC itself refuses past this, before any interceptor.
        maximum_concurrent_rpcs=threads + SPARE_THREADS,
    )
    for service in offered:
        service.register(service.servicer, grpc_server)
    port = (transport or ServerTransport()).bind(grpc_server, addr)
    server = Server(grpc_server, port, offered)
    server.metrics = counted
    return server


def serve(settings: Settings, reuse_port: bool = False) -> None:
    """Serves until SIGTERM or SIGINT, then drains in-flight calls for ``settings.grace`` seconds.

    ``reuse_port``: one of several worker processes on the same port (api/workers.py)."""
    configure_logging(settings.log_format)
    if api_implementation.Type() != "upb":
        log.warning("protobuf backend is %s, not upb: expect lower throughput", api_implementation.Type())
    transport = ServerTransport.from_settings(settings)  # fail fast on a bad TLS setting
    app = build_app(settings)
    server = create_server(
        settings.addr, app, settings.max_workers or None, transport=transport, reuse_port=reuse_port
    )
    server.start()
    if server.metrics is not None:
        server.metrics.start_http(settings.metrics_addr)

    def database_available(available: bool) -> None:
        app.store.database.mark_reachable(available)  # while down, calls fail at once (store/database.py)
        server.set_database_available(available)

    database_health = DatabaseHealthMonitor(app.store.database.ping, database_available)
    database_health.start()
    host = settings.addr.rsplit(":", 1)[0]
    log.info(
        "serving (%s) on %s:%d, database %s, policies %s",
        transport.mode,
        host,
        server.port,
        app.store.engine.url.render_as_string(hide_password=True),
        ", ".join(f"{e.policy.id}@{e.policy.version}" for e in app.catalog.latest("")),
    )
    stop = threading.Event()

    def on_signal(signum, frame):
        log.info("signal %d: draining for up to %.0f s", signum, settings.grace)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    database_health.stop()  # before draining: nothing may mark the server SERVING again
    server.stop(settings.grace)
    app.close()
    log.info("stopped")
