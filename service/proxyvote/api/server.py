"""The gRPC server: create_server for tests and tools, serve for the command line."""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent import futures

import grpc
from google.protobuf.internal import api_implementation
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from proxyvote.api.auth import Authenticator, AuthInterceptor
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

    def stop(self, grace: float | None) -> None:
        self.mark_serving(False)
        self.grpc.stop(grace).wait()


def create_server(
    addr: str,
    app: App,
    max_workers: int | None = None,
    today=utc_today,
    transport: ServerTransport | None = None,
) -> Server:
    """A server bound to ``addr``, not started; port 0 picks a free one.

    ``transport`` defaults to plaintext, which binds only on loopback.
    """
    auth = Authenticator(app.store.tenants.for_key)
    grpc_server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers or 2 * (os.cpu_count() or 1) + 2),
        interceptors=[AuthInterceptor(auth)],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    offered = services(app, auth, today)
    for service in offered:
        service.register(service.servicer, grpc_server)
    port = (transport or ServerTransport()).bind(grpc_server, addr)
    return Server(grpc_server, port, offered)


def serve(settings: Settings) -> None:
    """Serves until SIGTERM or SIGINT, then drains in-flight calls for ``settings.grace`` seconds."""
    if api_implementation.Type() != "upb":
        log.warning("protobuf backend is %s, not upb: expect lower throughput", api_implementation.Type())
    transport = ServerTransport.from_settings(settings)  # fail fast on a bad TLS setting
    app = build_app(settings)
    server = create_server(settings.addr, app, settings.max_workers or None, transport=transport)
    server.start()
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
    server.stop(settings.grace)
    app.close()
    log.info("stopped")
