"""A call whose deadline has passed is neither decided nor stored; a cancelled stream stops work."""

from __future__ import annotations

import datetime as dt
import threading
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format
from proxyvote.api.server import create_server
from proxyvote.app.wiring import build_app
from proxyvote.errors import DeadlineExceeded
from proxyvote.settings import Settings
from proxyvote.store.schema import upgrade
from proxyvote.v1 import meeting_pb2
from proxyvote.v1 import recommendation_service_pb2 as rs
from proxyvote.v1 import recommendation_service_pb2_grpc as rs_grpc
from proxyvote.wire import convert

MEETING = Path(__file__).resolve().parents[1] / "examples" / "meetings" / "amazon-2020-agm.json"
TODAY = dt.date(2026, 11, 23)


@pytest.fixture
def app(tmp_path):
    url = f"sqlite:///{tmp_path / 'proxyvote.db'}"
    upgrade(url)
    built = build_app(Settings.load({}, database_url=url))
    yield built
    built.close()


def request(meeting_id: str = "AMZN-2020-AGM") -> rs.RecommendRequest:
    meeting = json_format.Parse(MEETING.read_text(), meeting_pb2.Meeting())
    meeting.meeting_id = meeting_id
    return rs.RecommendRequest(meeting=meeting, policy="human-rights-esg", as_of="2020-05-20")


def test_a_command_past_its_deadline_is_not_decided_or_stored(app):
    tenant, _ = app.store.tenants.create("late")
    command = convert.recommend_command(request())
    with pytest.raises(DeadlineExceeded):
        app.log.recommend(tenant, command, TODAY, deadline=time.monotonic() - 0.001)
    assert app.store.decisions.all(tenant) == []
    # The same command in time is stored.
    app.log.recommend(tenant, command, TODAY, deadline=time.monotonic() + 30)
    assert len(app.store.decisions.all(tenant)) == 1


def test_a_decision_whose_deadline_passes_while_it_waits_for_the_writer_is_not_stored(app, monkeypatch):
    tenant, _ = app.store.tenants.create("queued")
    command = convert.recommend_command(request())
    writer = app.store.decisions._writer
    original = writer._write_batch

    def slow_batch(batch):
        time.sleep(0.3)  # the commit before this one takes long
        original(batch)

    monkeypatch.setattr(writer, "_write_batch", slow_batch)
    with pytest.raises(DeadlineExceeded):
        app.log.recommend(tenant, command, TODAY, deadline=time.monotonic() + 0.1)
    assert app.store.decisions.all(tenant) == []


@pytest.fixture
def served(app):
    _, key = app.store.tenants.create("caller")
    server = create_server("127.0.0.1:0", app, today=lambda: TODAY)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield app, rs_grpc.RecommendationServiceStub(channel), (("authorization", f"Bearer {key}"),), key
    finally:
        server.stop(None)


def test_a_call_that_arrives_after_its_deadline_stores_nothing(served):
    app, stub, metadata, key = served
    tenant = app.store.tenants.for_key(key)
    with pytest.raises(grpc.RpcError) as failure:
        stub.Recommend(request(), metadata=metadata, timeout=0.0005)
    assert failure.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    time.sleep(0.5)  # anything the server still did would be stored by now
    assert app.store.decisions.all(tenant) == []


def test_a_cancelled_stream_stops_deciding(served):
    app, stub, metadata, key = served
    tenant = app.store.tenants.for_key(key)
    answered = threading.Event()

    def requests():
        for n in range(40):
            yield rs.StreamRecommendRequest(request=request(f"M-{n}"))
            if n == 1:
                answered.wait(10)  # hold the stream until the first answers came back
            time.sleep(0.02)

    call = stub.StreamRecommend(requests(), metadata=metadata, timeout=30)
    first = next(call)
    assert first.response.recommendations
    answered.set()
    call.cancel()
    time.sleep(1.0)
    stored = len(app.store.decisions.all(tenant))
    assert 1 <= stored < 40
    time.sleep(0.5)
    assert len(app.store.decisions.all(tenant)) == stored  # nothing more after the cancel
