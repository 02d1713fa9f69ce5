"""Observability on a real server: Prometheus metrics over HTTP, request ids in and out, JSON logs."""

from __future__ import annotations

import datetime as dt
import io
import json
import logging
import urllib.request

import grpc
import pytest
from google.rpc import error_details_pb2, status_pb2
from prometheus_client.parser import text_string_to_metric_families
from proxyvote.api.observability import log_handler
from proxyvote.api.server import create_server
from proxyvote.app.wiring import build_app
from proxyvote.errors import ConfigurationError
from proxyvote.settings import Settings
from proxyvote.store.schema import upgrade
from proxyvote.v1 import decision_service_pb2 as ds
from proxyvote.v1 import decision_service_pb2_grpc
from proxyvote.v1 import recommendation_service_pb2 as rs
from proxyvote.v1 import recommendation_service_pb2_grpc as rs_grpc

from tests.conftest import meeting_message

pytestmark = pytest.mark.e2e

RECOMMEND = {"grpc_service": "proxyvote.v1.RecommendationService", "grpc_method": "Recommend"}
GET_DECISION = {"grpc_service": "proxyvote.v1.DecisionService", "grpc_method": "GetDecision"}


@pytest.fixture
def served(tmp_path):
    """A started server with metrics, its metrics port, a channel and a tenant's key."""
    url = f"sqlite:///{tmp_path / 'proxyvote.db'}"
    upgrade(url)
    app = build_app(Settings.load({}, database_url=url))
    _, key = app.store.tenants.create("observed")
    server = create_server("127.0.0.1:0", app, today=lambda: dt.date(2026, 11, 23), metrics=True)
    server.start()
    metrics_port = server.metrics.start_http("127.0.0.1:0")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            yield channel, key, metrics_port
    finally:
        server.metrics.stop_http()
        server.stop(None)
        app.close()


def auth(key: str, request_id: str | None = None):
    metadata = [("authorization", f"Bearer {key}")]
    if request_id is not None:
        metadata.append(("x-request-id", request_id))
    return tuple(metadata)


def recommend_request(policy: str = "human-rights-esg") -> rs.RecommendRequest:
    return rs.RecommendRequest(meeting=meeting_message(), policy=policy, as_of="2020-05-20")


def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample on the metrics port: (name, sorted labels) -> value."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        assert response.status == 200
        text = response.read().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples, name: str, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def by_vote(samples) -> dict[str, float]:
    found = samples.items()
    return {dict(labels)["vote"]: n for (name, labels), n in found if name == "proxyvote_decisions_total"}


def test_the_metrics_port_shows_calls_latency_votes_batches_caches_and_queues(served):
    channel, key, metrics_port = served
    recommend = rs_grpc.RecommendationServiceStub(channel).Recommend
    items = len(recommend_request().meeting.items)
    for _ in range(3):
        recommend(recommend_request(), timeout=30, metadata=auth(key))
    with pytest.raises(grpc.RpcError) as missing:
        decision_service_pb2_grpc.DecisionServiceStub(channel).GetDecision(
            ds.GetDecisionRequest(decision_id="d_nope"), timeout=10, metadata=auth(key)
        )
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as anonymous:
        recommend(recommend_request(), timeout=10)
    assert anonymous.value.code() == grpc.StatusCode.UNAUTHENTICATED

    samples = scrape(metrics_port)

    assert value(samples, "grpc_server_handled_total", **RECOMMEND, grpc_code="OK") == 3
    assert value(samples, "grpc_server_handled_total", **RECOMMEND, grpc_code="UNAUTHENTICATED") == 1
    assert value(samples, "grpc_server_handled_total", **GET_DECISION, grpc_code="NOT_FOUND") == 1
    assert value(samples, "grpc_server_handling_seconds_count", **RECOMMEND, grpc_code="OK") == 3
    assert value(samples, "grpc_server_handling_seconds_bucket", **RECOMMEND, grpc_code="OK", le="+Inf") == 3
    assert value(samples, "grpc_server_handling_seconds_sum", **RECOMMEND, grpc_code="OK") > 0
    assert value(samples, "grpc_server_in_flight") == 0

    votes = by_vote(samples)
    assert sum(votes.values()) == 3 * items  # every item of the three stored decisions, none of the failures
    assert votes["FOR"] > 0

    assert value(samples, "proxyvote_decision_batch_size_sum") == 3  # three decisions written
    assert value(samples, "proxyvote_decision_batch_size_count") == 3  # one at a time: sequential calls
    assert value(samples, "proxyvote_decision_batch_size_bucket", le="1.0") == 3
    assert value(samples, "proxyvote_decision_writer_queue") == 0

    # The same meeting three times: its wordings were classified once, then found.
    assert value(samples, "proxyvote_cache_hits_total", cache="classification") >= 2 * items
    assert value(samples, "proxyvote_cache_entries", cache="classification") > 0
    assert value(samples, "proxyvote_cache_entries", cache="policy_outcomes") > 0
    assert ("proxyvote_cache_entries", (("cache", "evidence"),)) in samples


def test_the_stream_counts_its_votes_and_returns_the_request_id(served):
    channel, key, metrics_port = served
    requests = [rs.StreamRecommendRequest(request=recommend_request()) for _ in range(2)]
    responses = rs_grpc.RecommendationServiceStub(channel).StreamRecommend(
        iter(requests), timeout=30, metadata=auth(key, "stream-1")
    )
    assert all(r.HasField("response") for r in responses)
    assert ("x-request-id", "stream-1") in responses.trailing_metadata()
    samples = scrape(metrics_port)
    stream = {"grpc_service": "proxyvote.v1.RecommendationService", "grpc_method": "StreamRecommend"}
    assert value(samples, "grpc_server_handled_total", **stream, grpc_code="OK") == 1
    assert sum(by_vote(samples).values()) == 2 * len(requests[0].request.meeting.items)


def error_info(error: grpc.RpcError) -> error_details_pb2.ErrorInfo:
    trailing = dict(error.trailing_metadata())
    status = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    return info


def test_the_callers_request_id_comes_back_on_success_and_on_error_and_is_logged(served):
    channel, key, _ = served
    logger = logging.getLogger("proxyvote")
    lines = io.StringIO()
    handler = log_handler("json", lines)
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        _, call = rs_grpc.RecommendationServiceStub(channel).Recommend.with_call(
            recommend_request(), timeout=30, metadata=auth(key, "abc")
        )
        assert ("x-request-id", "abc") in call.trailing_metadata()

        with pytest.raises(grpc.RpcError) as failed:
            rs_grpc.RecommendationServiceStub(channel).Recommend(
                recommend_request(policy="no-such-policy"), timeout=30, metadata=auth(key, "abc")
            )
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    error = failed.value
    assert error.code() == grpc.StatusCode.NOT_FOUND
    # Both trailers: the request id beside the status details, which name the same id.
    assert ("x-request-id", "abc") in error.trailing_metadata()
    assert error_info(error).metadata["request_id"] == "abc"

    logged = [json.loads(line) for line in lines.getvalue().splitlines()]
    errors = [entry for entry in logged if entry.get("code") == "NOT_FOUND"]
    assert len(errors) == 1, logged
    assert errors[0]["request_id"] == "abc"
    assert errors[0]["method"] == "/proxyvote.v1.RecommendationService/Recommend"
    assert errors[0]["level"] == "INFO" and errors[0]["duration_ms"] > 0


def test_without_a_request_id_one_is_made_and_the_error_names_the_same_one(served):
    channel, key, _ = served
    with pytest.raises(grpc.RpcError) as failed:
        decision_service_pb2_grpc.DecisionServiceStub(channel).GetDecision(
            ds.GetDecisionRequest(decision_id="d_nope"), timeout=10, metadata=auth(key)
        )
    returned = dict(failed.value.trailing_metadata())["x-request-id"]
    assert len(returned) == 32
    assert error_info(failed.value).metadata["request_id"] == returned
    # A hostile id is cleaned and bounded, as the error details always did.
    _, call = rs_grpc.RecommendationServiceStub(channel).Recommend.with_call(
        recommend_request(), timeout=30, metadata=auth(key, "a b<c>;" + "x" * 200)
    )
    assert dict(call.trailing_metadata())["x-request-id"] == "abc" + "x" * 97


def test_a_call_turned_away_by_authentication_carries_its_request_id(served):
    channel, _, _ = served
    with pytest.raises(grpc.RpcError) as denied:
        rs_grpc.RecommendationServiceStub(channel).Recommend(
            recommend_request(), timeout=10, metadata=(("x-request-id", "who"),)
        )
    assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert ("x-request-id", "who") in denied.value.trailing_metadata()


def test_metrics_are_off_unless_asked_for_and_request_ids_are_not(sqlite_app):
    server = create_server("127.0.0.1:0", sqlite_app, today=lambda: dt.date(2026, 11, 23))
    assert server.metrics is None  # PROXYVOTE_METRICS_ADDR unset
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            with pytest.raises(grpc.RpcError) as denied:
                rs_grpc.RecommendationServiceStub(channel).Recommend(
                    recommend_request(), timeout=10, metadata=(("x-request-id", "off"),)
                )
        assert ("x-request-id", "off") in denied.value.trailing_metadata()
    finally:
        server.stop(None)


def test_json_log_lines_carry_extras_and_exceptions_and_the_format_is_checked():
    lines = io.StringIO()
    handler = log_handler("json", lines)
    record = logging.LogRecord("proxyvote.x", logging.ERROR, __file__, 1, "failed %s", ("here",), None)
    record.code = "INTERNAL"
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    handler.handle(record)
    entry = json.loads(lines.getvalue())
    assert entry["message"] == "failed here" and entry["code"] == "INTERNAL" and entry["level"] == "ERROR"
    assert "ValueError: boom" in entry["exception"]
    assert "request_id" not in entry  # outside a call
    with pytest.raises(ConfigurationError, match="PROXYVOTE_LOG_FORMAT"):
        log_handler("yaml")


def test_opentelemetry_makes_a_span_per_call_when_switched_on(sqlite_app):
    pytest.importorskip("opentelemetry.instrumentation.grpc", reason="pip install 'proxyvote[otel]'")
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)  # once per process: otel_interceptor uses it
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    _, key = sqlite_app.store.tenants.create("traced")
    server = create_server("127.0.0.1:0", sqlite_app, today=lambda: dt.date(2026, 11, 23), otel=True)
    server.start()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            rs_grpc.RecommendationServiceStub(channel).Recommend(
                recommend_request(), timeout=30, metadata=auth(key, "traced-1")
            )
    finally:
        server.stop(None)
        exporter.shutdown()
    names = [span.name for span in exporter.get_finished_spans()]
    assert "/proxyvote.v1.RecommendationService/Recommend" in names


def test_a_taken_metrics_address_is_logged_not_fatal(served, caplog):
    """With --workers N every worker is given the same address: the first serves it."""
    from proxyvote.api.observability import Metrics

    _, _, metrics_port = served
    with caplog.at_level(logging.WARNING, logger="proxyvote.api.observability"):
        assert Metrics().start_http(f"127.0.0.1:{metrics_port}") is None
    assert "metrics not served on" in caplog.text


def test_cache_figures_read_lru_caches_byte_bounded_caches_and_dicts():
    import functools
    import types

    from proxyvote.api.observability import CacheFigures, cache_figures

    square = functools.lru_cache(maxsize=8)(lambda x: x * x)
    square(2), square(2), square(3)
    assert cache_figures(square) == CacheFigures(hits=1, misses=2, entries=2)

    class Bounded(dict):  # the shape of a cache bounded by bytes: stats, bytes, len
        stats = types.SimpleNamespace(hits=5, misses=2, evictions=1)
        bytes = 4096

    bounded = Bounded(a=1)
    assert cache_figures(bounded) == CacheFigures(5, 2, 1, 4096, 1)
    assert cache_figures({"a": 1, "b": 2}) == CacheFigures(entries=2)
    assert cache_figures(object()) is None
    assert cache_figures(bounded) + cache_figures({"b": 2}) == CacheFigures(5, 2, 2, 4096, 1)


def test_serving_imports_neither_prometheus_nor_opentelemetry_unless_asked_for():
    """Start-up time: both are imported by the server only when their setting is on."""
    import subprocess
    import sys

    code = (
        "import sys, proxyvote.api.server, proxyvote.cli.main; "
        "print(sorted(m for m in sys.modules if m.startswith(('prometheus_client', 'opentelemetry'))))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
