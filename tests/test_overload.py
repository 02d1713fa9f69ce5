"""Past its limit of calls in flight a server refuses at once, with a retry hint; it never queues."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format
from google.rpc import error_details_pb2, status_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from proxyvote.api.server import create_server
from proxyvote.app.wiring import build_app
from proxyvote.settings import Settings
from proxyvote.store.schema import upgrade
from proxyvote.v1 import meeting_pb2
from proxyvote.v1 import recommendation_service_pb2 as rs
from proxyvote.v1 import recommendation_service_pb2_grpc as rs_grpc

MEETING = Path(__file__).resolve().parents[1] / "examples" / "meetings" / "amazon-2020-agm.json"
LIMIT = 2


@pytest.fixture
def busy_server(tmp_path):
    """A server admitting LIMIT calls, whose Recommends hold until ``release`` is set."""
    url = f"sqlite:///{tmp_path / 'proxyvote.db'}"
    upgrade(url)
    settings = Settings.load({}, database_url=url).replace(max_concurrent_rpcs=LIMIT, retry_after_ms=250)
    app = build_app(settings)
    _, key = app.store.tenants.create("busy")
    entered, release = threading.Semaphore(0), threading.Event()
    recommend = app.log.recommend

    def held(*args, **kwargs):
        entered.release()
        release.wait(30)
        return recommend(*args, **kwargs)

    object.__setattr__(app.log, "recommend", held)
    server = create_server("127.0.0.1:0", app, today=lambda: dt.date(2026, 11, 23))
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield channel, (("authorization", f"Bearer {key}"),), entered, release
    finally:
        release.set()
        server.stop(None)
        app.close()


def test_calls_past_the_limit_are_refused_at_once_with_a_retry_hint(busy_server):
    channel, metadata, entered, release = busy_server
    stub = rs_grpc.RecommendationServiceStub(channel)
    request = rs.RecommendRequest(
        meeting=json_format.Parse(MEETING.read_text(), meeting_pb2.Meeting()),
        policy="human-rights-esg",
        as_of="2020-05-20",
    )
    admitted = [stub.Recommend.future(request, metadata=metadata, timeout=30) for _ in range(LIMIT)]
    for _ in range(LIMIT):
        assert entered.acquire(timeout=10)  # both are being served, and held
    refused = [stub.Recommend.future(request, metadata=metadata, timeout=30) for _ in range(3)]
    # Every refusal arrives while the admitted calls are still held: nothing waited in a queue.
    for call in refused:
        with pytest.raises(grpc.RpcError) as failure:
            call.result(timeout=10)
        assert failure.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
        status = status_pb2.Status.FromString(
            dict(failure.value.trailing_metadata())["grpc-status-details-bin"]
        )
        retry = error_details_pb2.RetryInfo()
        assert any(d.Unpack(retry) for d in status.details)
        assert retry.retry_delay.ToMilliseconds() == 250
    assert not any(call.done() for call in admitted)
    # Health checks are never shed.
    health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    release.set()
    assert all(call.result(timeout=30).recommendations for call in admitted)
    # Once they are done, there is room again.
    release.set()
    assert stub.Recommend(request, metadata=metadata, timeout=30).recommendations


def test_calls_grpc_ends_before_their_handler_runs_leave_the_count(busy_server):
    # Found by tests/test_fuzz.py: a request over the size limit is refused by gRPC before the
    # handler runs, so its place in the count was never left; after LIMIT of them the server
    # refused every call, for good.
    channel, metadata, entered, release = busy_server
    release.set()
    oversized = b"\x0a\x80\x80\x80\x11" + b"a" * (34 * 1024 * 1024)  # one ~34 MiB field
    with grpc.insecure_channel(
        channel._channel.target().decode(), options=[("grpc.max_send_message_length", -1)]
    ) as big_channel:
        validate = big_channel.unary_unary("/proxyvote.v1.PolicyService/ValidatePolicy")
        for _ in range(LIMIT + 2):
            with pytest.raises(grpc.RpcError) as refused:
                validate(oversized, metadata=metadata, timeout=30)
            assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
            assert "overloaded" not in (refused.value.details() or "")
    with pytest.raises(grpc.RpcError) as answered:
        channel.unary_unary("/proxyvote.v1.PolicyService/ValidatePolicy")(b"", metadata=metadata, timeout=30)
    assert answered.value.code() == grpc.StatusCode.INVALID_ARGUMENT  # served, not shed
