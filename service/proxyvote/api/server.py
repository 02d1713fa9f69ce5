"""The gRPC server: create_server for tests and tools, serve for the command line."""

from __future__ import annotations

import logging
import os
import signal
import threading
from concurrent import futures
from pathlib import Path

import grpc
from google.protobuf.internal import api_implementation
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from proxyvote.api.auth import AuthInterceptor
from proxyvote.api.servicers import (
    DecisionServicer,
    MemoServicer,
    PolicyServicer,
    RecommendationServicer,
    utc_today,
)
from proxyvote.api.transport import ServerTransport
from proxyvote.app.wiring import App, build_app
from proxyvote.memo.render import MemoRenderer
from proxyvote.v1 import (
    decision_service_pb2,
    decision_service_pb2_grpc,
    evidence_service_pb2,
    memo_service_pb2,
    memo_service_pb2_grpc,
    policy_service_pb2,
    policy_service_pb2_grpc,
    recommendation_service_pb2,
    recommendation_service_pb2_grpc,
)

log = logging.getLogger("proxyvote.server")

DEFAULT_ADDR = "127.0.0.1:50051"
SERVICE_NAMES = (
    recommendation_service_pb2.DESCRIPTOR.services_by_name["RecommendationService"].full_name,
    policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"].full_name,
    memo_service_pb2.DESCRIPTOR.services_by_name["MemoService"].full_name,
    decision_service_pb2.DESCRIPTOR.services_by_name["DecisionService"].full_name,
    evidence_service_pb2.DESCRIPTOR.services_by_name["EvidenceService"].full_name,
)
MAX_MESSAGE_BYTES = 32 * 1024 * 1024


def create_server(
    addr: str,
    app: App,
    max_workers: int | None = None,
    today=utc_today,
    transport: ServerTransport | None = None,
) -> tuple[grpc.Server, int, health.HealthServicer]:
    """A server bound to ``addr``, not started; port 0 picks a free one.

    ``transport`` defaults to plaintext, which binds only on loopback.
    """
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=max_workers or 2 * (os.cpu_count() or 1) + 2),
        interceptors=[AuthInterceptor(app.auth)],
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
        ],
    )
    recommendation_service_pb2_grpc.add_RecommendationServiceServicer_to_server(
        RecommendationServicer(app.log, app.auth, today), server
    )
    policy_service_pb2_grpc.add_PolicyServiceServicer_to_server(PolicyServicer(app.catalog, app.auth), server)
    decision_service_pb2_grpc.add_DecisionServiceServicer_to_server(
        DecisionServicer(app.log, app.auth), server
    )
    memo_service_pb2_grpc.add_MemoServiceServicer_to_server(
        MemoServicer(app.log, MemoRenderer(), app.auth, today), server
    )
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        SERVICE_NAMES + (health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    port = (transport or ServerTransport()).bind(server, addr)
    return server, port, health_servicer


def mark_serving(health_servicer: health.HealthServicer, serving: bool = True) -> None:
    status = health_pb2.HealthCheckResponse.SERVING if serving else health_pb2.HealthCheckResponse.NOT_SERVING
    for name in ("",) + SERVICE_NAMES:
        health_servicer.set(name, status)


def serve(addr: str | None = None, policy_dir: str | None = None, grace: float = 5.0) -> None:
    """Serves until SIGTERM or SIGINT, then drains in-flight calls for ``grace`` seconds."""
    if api_implementation.Type() != "upb":
        log.warning("protobuf backend is %s, not upb: expect lower throughput", api_implementation.Type())
    addr = addr or os.environ.get("PROXYVOTE_ADDR", DEFAULT_ADDR)
    transport = ServerTransport.from_env(os.environ)  # fail fast on a bad TLS setting
    policy_dir = policy_dir or os.environ.get("PROXYVOTE_POLICY_DIR")
    app = build_app(policy_dir=Path(policy_dir) if policy_dir else None)
    server, port, health_servicer = create_server(addr, app, transport=transport)
    server.start()
    mark_serving(health_servicer)
    host = addr.rsplit(":", 1)[0]
    log.info(
        "serving (%s) on %s:%d, database %s, policies %s",
        transport.mode,
        host,
        port,
        app.store.engine.url.render_as_string(hide_password=True),
        ", ".join(f"{e.policy.id}@{e.policy.version}" for e in app.catalog.latest("")),
    )
    stop = threading.Event()

    def on_signal(signum, frame):
        log.info("signal %d: draining for up to %.0f s", signum, grace)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    stop.wait()
    mark_serving(health_servicer, False)
    server.stop(grace).wait()
    app.close()
    log.info("stopped")
