"""Every core: several server processes on one port share the work and one audit chain."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format
from proxyvote.v1 import decision_service_pb2 as ds
from proxyvote.v1 import decision_service_pb2_grpc as ds_grpc
from proxyvote.v1 import meeting_pb2
from proxyvote.v1 import recommendation_service_pb2 as rs
from proxyvote.v1 import recommendation_service_pb2_grpc as rs_grpc

from tests.test_e2e import PROXYVOTE, ROOT, free_port, wait_serving

pytestmark = pytest.mark.e2e
MEETING = Path(__file__).resolve().parents[1] / "examples" / "meetings" / "amazon-2020-agm.json"
WORKERS = 2
CALLS = 24


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def test_workers_on_one_port_serve_every_call_keep_one_chain_and_stop_on_sigterm(tmp_path):
    address = f"127.0.0.1:{free_port()}"
    env = dict(os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'proxyvote.db'}", PROXYVOTE_ADDR=address)
    subprocess.run(PROXYVOTE + ["db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    created = subprocess.run(
        PROXYVOTE + ["tenant", "create", "workers"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    metadata = (("authorization", "Bearer " + created.stdout.split("API key, shown once: ")[1].strip()),)
    supervisor = subprocess.Popen(
        PROXYVOTE + ["serve", "--workers", str(WORKERS)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_serving(address, deadline=30)
        workers = children(supervisor.pid)
        assert len(workers) == WORKERS
        meeting = json_format.Parse(MEETING.read_text(), meeting_pb2.Meeting())
        for n in range(CALLS):
            meeting.meeting_id = f"AMZN-{n}"
            # A new connection each time: the kernel spreads connections over the workers.
            with grpc.insecure_channel(address) as channel:
                request = rs.RecommendRequest(meeting=meeting, policy="human-rights-esg", as_of="2020-05-20")
                response = rs_grpc.RecommendationServiceStub(channel).Recommend(
                    request, metadata=metadata, timeout=30
                )
                assert response.decision_id
        with grpc.insecure_channel(address) as channel:
            verified = ds_grpc.DecisionServiceStub(channel).VerifyAuditLog(
                ds.VerifyAuditLogRequest(), metadata=metadata, timeout=30
            )
        assert verified.ok and verified.checked == CALLS
        supervisor.send_signal(signal.SIGTERM)
        output, _ = supervisor.communicate(timeout=30)
    finally:
        if supervisor.poll() is None:
            supervisor.kill()
            supervisor.wait(timeout=10)
    assert supervisor.returncode == 0, output
    time.sleep(0.2)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists() and "zombie" not in _state(pid)]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


def test_workers_need_a_fixed_port(tmp_path):
    env = dict(
        os.environ, DATABASE_URL=f"sqlite:///{tmp_path / 'proxyvote.db'}", PROXYVOTE_ADDR="127.0.0.1:0"
    )
    subprocess.run(PROXYVOTE + ["db", "upgrade"], env=env, cwd=ROOT, check=True, capture_output=True)
    result = subprocess.run(
        PROXYVOTE + ["serve", "--workers", "2"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "needs a fixed port" in result.stderr


def test_each_worker_serves_its_metrics_on_its_own_port():
    from proxyvote.api.workers import _metrics_flag

    assert [_metrics_flag("127.0.0.1:9100", n) for n in range(2)] == [
        ["--metrics-addr", "127.0.0.1:9100"],
        ["--metrics-addr", "127.0.0.1:9101"],
    ]
    assert _metrics_flag("", 1) == []
