"""End to end: the real server in its own process, a real channel, the real CLI."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
from proxyvote.v1 import enums_pb2
from proxyvote.v1 import recommendation_service_pb2 as rs
from proxyvote.v1 import recommendation_service_pb2_grpc as rs_grpc

from .conftest import EXAMPLES, ROOT, bad_request, meeting_message

pytestmark = pytest.mark.e2e
PROXYVOTE = [sys.executable, "-m", "proxyvote.cli"]
AMAZON_2020 = str(EXAMPLES / "meetings" / "amazon-2020-agm.json")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_serving(address: str, deadline: float) -> float:
    """Seconds until health says SERVING."""
    start = time.monotonic()
    with grpc.insecure_channel(address) as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        while time.monotonic() - start < deadline:
            try:
                reply = stub.Check(health_pb2.HealthCheckRequest(), timeout=0.2)
                if reply.status == health_pb2.HealthCheckResponse.SERVING:
                    return time.monotonic() - start
            except grpc.RpcError:
                time.sleep(0.02)
    raise AssertionError(f"server at {address} not SERVING within {deadline} s")


def migrated_env(directory) -> dict:
    """The environment of a server on a fresh SQLite database, with one tenant's key."""
    # One server process: several workers have their own test (tests/test_workers.py).
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{directory / 'proxyvote.db'}", PROXYVOTE_WORKERS="1")
    subprocess.run(PROXYVOTE + ["db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    created = subprocess.run(
        PROXYVOTE + ["tenant", "create", "e2e"], env=env, cwd=ROOT, check=True, capture_output=True, text=True
    )
    env["PROXYVOTE_API_KEY"] = created.stdout.split("API key, shown once: ")[1].strip()
    return env


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    address = f"127.0.0.1:{free_port()}"
    env = migrated_env(tmp_path_factory.mktemp("served"))
    env["PROXYVOTE_ADDR"] = address
    process = subprocess.Popen(
        PROXYVOTE + ["serve"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        startup = wait_serving(address, deadline=10)
        yield address, process, startup, env
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)


@pytest.fixture
def channel(served):
    with grpc.insecure_channel(served[0]) as ch:
        yield ch


@pytest.fixture
def auth(served):
    return (("authorization", f"Bearer {served[3]['PROXYVOTE_API_KEY']}"),)


def test_health_is_serving_for_every_service(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ("", "proxyvote.v1.RecommendationService", "proxyvote.v1.PolicyService"):
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_services(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    [reply] = list(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in reply.list_services_response.service}
    assert {
        "proxyvote.v1.RecommendationService",
        "proxyvote.v1.PolicyService",
        "proxyvote.v1.MemoService",
        "grpc.health.v1.Health",
    } <= names


def test_recommend_over_a_real_channel(channel, auth):
    stub = rs_grpc.RecommendationServiceStub(channel)
    reply = stub.Recommend(
        rs.RecommendRequest(meeting=meeting_message(), policy="human-rights-esg", as_of="2020-05-20"),
        timeout=10,
        metadata=auth,
    )
    assert reply.decision_id.startswith("d_")
    votes = {r.item_id: r.vote for r in reply.recommendations}
    assert votes["6"] == votes["7"] == enums_pb2.FOR


def test_stream_recommend_over_a_real_channel(channel, auth):
    stub = rs_grpc.RecommendationServiceStub(channel)
    requests = [
        rs.StreamRecommendRequest(
            request=rs.RecommendRequest(
                meeting=meeting_message(name), policy="board-aligned", request_id=name
            )
        )
        for name in ("amazon-2019-agm", "amazon-2020-agm", "amazon-2021-agm")
    ]
    replies = list(stub.StreamRecommend(iter(requests), timeout=20, metadata=auth))
    assert [r.request_id for r in replies] == ["amazon-2019-agm", "amazon-2020-agm", "amazon-2021-agm"]
    assert all(r.HasField("response") for r in replies)


def test_invalid_argument_carries_field_violations(channel, auth):
    meeting = meeting_message()
    meeting.items[3].item_id = meeting.items[2].item_id
    stub = rs_grpc.RecommendationServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Recommend(
            rs.RecommendRequest(meeting=meeting, policy="board-aligned"), timeout=10, metadata=auth
        )
    assert caught.value.code() is grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    bad = bad_request(status)
    assert [v.field for v in bad.field_violations] == ["meeting.items[3].item_id"]


def test_unknown_policy_is_not_found(channel, auth):
    stub = rs_grpc.RecommendationServiceStub(channel)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Recommend(
            rs.RecommendRequest(meeting=meeting_message(), policy="nope"), timeout=10, metadata=auth
        )
    assert caught.value.code() is grpc.StatusCode.NOT_FOUND


def test_calls_without_a_valid_key_are_unauthenticated_but_health_is_open(channel):
    stub = rs_grpc.RecommendationServiceStub(channel)
    for metadata in ((), (("authorization", "Bearer pvk_wrong"),)):
        with pytest.raises(grpc.RpcError) as caught:
            stub.Recommend(
                rs.RecommendRequest(meeting=meeting_message(), policy="board-aligned"),
                timeout=10,
                metadata=metadata,
            )
        assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED
    with pytest.raises(grpc.RpcError) as caught:
        list(stub.StreamRecommend(iter([]), timeout=10))
    assert caught.value.code() is grpc.StatusCode.UNAUTHENTICATED


def cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        PROXYVOTE + list(args), cwd=ROOT, capture_output=True, text=True, timeout=60, env=env
    )


def test_cli_gives_the_same_json_in_process_and_through_the_server(served):
    args = ["recommend", "--policy", "human-rights-esg", "--meeting", AMAZON_2020, "--format", "json"]
    local = cli(*args, "--as-of", "2020-05-20")
    remote = cli(*args, "--as-of", "2020-05-20", "--server", served[0], env=served[3])
    assert local.returncode == remote.returncode == 0, local.stderr + remote.stderr
    assert local.stdout == remote.stdout
    assert remote.stderr.startswith("stored as decision d_")
    document = json.loads(local.stdout)
    for r in document["recommendations"]:
        assert {
            "item_id",
            "vote",
            "npx_categories",
            "topic",
            "rule_id",
            "against_management",
            "needs_review",
            "rationale",
        } <= set(r)


def test_cli_reports_bad_input_in_one_line(served, tmp_path):
    broken = tmp_path / "broken.json"
    broken.write_text('{"meeting_id": "X", "items": [{"item_id": 1}')
    for args in (
        ["recommend", "--policy", "board-aligned", "--meeting", str(broken)],
        ["recommend", "--policy", "board-aligned", "--meeting", str(tmp_path / "missing.json")],
        ["recommend", "--policy", "nope", "--meeting", AMAZON_2020],
        ["recommend", "--policy", "nope", "--meeting", AMAZON_2020, "--server", served[0]],
        [
            "recommend",
            "--policy",
            "board-aligned",
            "--meeting",
            AMAZON_2020,
            "--server",
            served[0],
            "--api-key",
            "pvk_wrong",
        ],
    ):
        result = cli(*args, env=served[3])
        assert result.returncode == 2, args
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_server_is_serving_quickly_and_stops_gracefully_on_sigterm(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    env = migrated_env(tmp_path)
    env["PROXYVOTE_ADDR"] = address
    process = subprocess.Popen(
        PROXYVOTE + ["serve"], env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        startup = wait_serving(address, deadline=10)
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=15)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output
    assert "stopped" in output
    # Start-up time is reported, not asserted: timing belongs in benchmarks.
    print(f"SERVING after {startup:.2f} s")


def test_cli_memo_is_the_same_in_process_and_through_the_server(served):
    args = ["memo", "--policy", "human-rights-esg", "--meeting", AMAZON_2020, "--as-of", "2020-05-20"]
    local, remote = cli(*args), cli(*args, "--server", served[0], env=served[3])
    assert local.returncode == remote.returncode == 0, local.stderr + remote.stderr
    assert local.stdout == remote.stdout and local.stdout.startswith("# Voting memo: Amazon.com")


def test_an_unreachable_database_is_a_one_line_error(tmp_path):
    env = dict(os.environ, DATABASE_URL=f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/none")
    for args in (["db", "upgrade"], ["tenant", "create", "x"]):
        result = cli(*args, env=env)
        assert result.returncode == 2 and result.stderr.startswith("error: unavailable:"), result.stderr
        assert result.stderr.count("\n") == 1
