"""Two server processes on one database racing updates of one policy: none is lost."""

from __future__ import annotations

import os
import subprocess
import sys
import threading

import grpc
import pytest
from proxyvote.v1 import policy_service_pb2 as ps
from proxyvote.v1 import policy_service_pb2_grpc as ps_grpc

from .conftest import ROOT, bearer
from .test_e2e import free_port, wait_serving

pytestmark = pytest.mark.e2e

TEMPLATE = """\
id: raced
version: {version}
extends: governance-baseline
title: "{marker}"
default: {{vote: REFER}}
rules:
  - id: chair
    when: {{topics: [independent_chair]}}
    vote: FOR
    why: Written by {marker}.
"""
WRITERS = 4  # two per server
UPDATES_EACH = 5
MAX_ATTEMPTS = 200


def start_server(database_url: str) -> tuple[subprocess.Popen, str]:
    address = f"127.0.0.1:{free_port()}"
    env = dict(os.environ, DATABASE_URL=database_url, PROXYVOTE_ADDR=address, PROXYVOTE_WORKERS="1")
    process = subprocess.Popen(
        [sys.executable, "-m", "proxyvote.cli", "serve"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return process, address


def test_concurrent_updates_from_two_servers_are_all_kept_or_aborted(app, database_url):
    _, key = app.store.tenants.create("racers")
    servers = [start_server(database_url) for _ in range(2)]
    try:
        for _, address in servers:
            wait_serving(address, deadline=15)
        channels = [grpc.insecure_channel(address) for _, address in servers]
        stubs = [ps_grpc.PolicyServiceStub(channel) for channel in channels]
        created = stubs[0].CreatePolicy(
            ps.CreatePolicyRequest(source=TEMPLATE.format(version=1, marker="creator")),
            metadata=bearer(key),
            timeout=10,
        )
        assert created.policy.version == 1

        landed: list[tuple[int, str]] = []
        aborted: list[int] = []
        failures: list[str] = []
        lock = threading.Lock()

        def writer(n: int) -> None:
            stub = stubs[n % 2]
            done = 0
            for attempt in range(MAX_ATTEMPTS):
                if done == UPDATES_EACH:
                    return
                current = stub.GetPolicy(ps.GetPolicyRequest(name="raced"), metadata=bearer(key), timeout=10)
                marker = f"writer {n} update {done} attempt {attempt}"
                version = current.policy.version
                try:
                    stub.UpdatePolicy(
                        ps.UpdatePolicyRequest(
                            name="raced",
                            expected_version=version,
                            source=TEMPLATE.format(version=version + 1, marker=marker),
                        ),
                        metadata=bearer(key),
                        timeout=10,
                    )
                except grpc.RpcError as exc:
                    with lock:
                        if exc.code() is grpc.StatusCode.ABORTED:
                            aborted.append(n)
                        else:
                            failures.append(f"{exc.code().name}: {exc.details()}")
                    continue
                with lock:
                    landed.append((version + 1, marker))
                done += 1
            with lock:
                failures.append(f"writer {n} landed only {done} updates in {MAX_ATTEMPTS} attempts")

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not failures, failures
        assert len(landed) == WRITERS * UPDATES_EACH

        versions = []
        token = ""
        while True:
            page = stubs[1].ListPolicyVersions(
                ps.ListPolicyVersionsRequest(name="raced", page_token=token, page_size=7),
                metadata=bearer(key),
                timeout=10,
            )
            versions.extend(page.policies)
            token = page.next_page_token
            if not token:
                break
        # Every successful update is a version of its own, with its own content: none lost.
        assert [p.version for p in versions] == list(range(1, len(landed) + 2))
        by_version = {p.version: p.title for p in versions}
        for version, marker in landed:
            assert by_version[version] == marker
        print(f"{len(landed)} updates landed, {len(aborted)} aborted as stale")
        for channel in channels:
            channel.close()
    finally:
        for process, _ in servers:
            process.terminate()
        for process, _ in servers:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()


def test_concurrent_recommends_on_two_servers_form_one_unbroken_chain(app, database_url):
    from proxyvote.v1 import decision_service_pb2 as ds
    from proxyvote.v1 import decision_service_pb2_grpc as ds_grpc
    from proxyvote.v1 import recommendation_service_pb2 as rs
    from proxyvote.v1 import recommendation_service_pb2_grpc as rs_grpc

    from .conftest import meeting_message

    _, key = app.store.tenants.create("chain")
    servers = [start_server(database_url) for _ in range(2)]
    try:
        for _, address in servers:
            wait_serving(address, deadline=15)
        channels = [grpc.insecure_channel(address) for _, address in servers]
        request = rs.RecommendRequest(
            meeting=meeting_message(), policy="human-rights-esg", as_of="2020-05-20"
        )
        ids: list[str] = []
        errors: list[str] = []

        def caller(n: int) -> None:
            stub = rs_grpc.RecommendationServiceStub(channels[n % 2])
            for _ in range(10):
                try:
                    ids.append(stub.Recommend(request, metadata=bearer(key), timeout=30).decision_id)
                except grpc.RpcError as exc:
                    errors.append(f"{exc.code().name}: {exc.details()}")

        threads = [threading.Thread(target=caller, args=(n,)) for n in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        assert not errors and len(set(ids)) == 40
        verified = ds_grpc.DecisionServiceStub(channels[0]).VerifyAuditLog(
            ds.VerifyAuditLogRequest(), metadata=bearer(key), timeout=30
        )
        assert verified.ok and verified.checked == 40
        for channel in channels:
            channel.close()
    finally:
        for process, _ in servers:
            process.terminate()
            process.wait(timeout=15)
