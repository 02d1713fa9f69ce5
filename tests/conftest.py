"""Shared fixtures: the bundled policies, the example meetings and evidence."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from pathlib import Path

import pytest
from proxyvote.core.recommender import Recommender
from proxyvote.wire import convert

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TODAY = dt.date(2026, 11, 23)


def meeting_message(name: str = "amazon-2020-agm"):
    return convert.meeting_from_json((EXAMPLES / "meetings" / f"{name}.json").read_text())


def evidence_messages():
    return list(convert.evidence_file_from_json((EXAMPLES / "evidence" / "amazon.json").read_text()).records)


@pytest.fixture(scope="session")
def recommender() -> Recommender:
    return Recommender.from_directory()


# --- Databases: SQLite always, PostgreSQL when reachable (required under CI) ---

PG_URL = os.environ.get("PROXYVOTE_TEST_PG_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def _postgres_or_skip() -> str:
    """A fresh, empty PostgreSQL database for this test session."""
    import sqlalchemy

    admin = sqlalchemy.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            name = f"proxyvote_test_{uuid.uuid4().hex[:12]}"
            connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    except sqlalchemy.exc.OperationalError as exc:
        admin.dispose()
        reason = f"PostgreSQL not reachable at {PG_URL}: {str(exc).splitlines()[0]}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must test PostgreSQL for real; {reason}")
        pytest.skip(reason)
    admin.dispose()
    return PG_URL.rsplit("/", 1)[0] + f"/{name}"


def _drop_postgres(url: str) -> None:
    import sqlalchemy

    admin = sqlalchemy.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sqlalchemy.text(f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    """An empty, migrated database of each kind."""
    from proxyvote.store import upgrade

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'proxyvote.db'}"
        upgrade(url)
        yield url
        return
    url = _postgres_or_skip()
    try:
        upgrade(url)
        yield url
    finally:
        _drop_postgres(url)


@pytest.fixture
def app(database_url):
    from proxyvote.app.wiring import build_app

    built = build_app(database_url)
    yield built
    built.close()


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


@pytest.fixture
def sqlite_app(tmp_path):
    """A service on a fresh SQLite database, for tests that are not about the database."""
    from proxyvote.app.wiring import build_app
    from proxyvote.store import upgrade

    url = f"sqlite:///{tmp_path / 'proxyvote.db'}"
    upgrade(url)
    built = build_app(url)
    yield built
    built.close()


def servicers_under_test(app):
    """Every servicer of ``app`` behind grpc_testing (no interceptor: servicers authenticate too)."""
    import grpc_testing
    from proxyvote.api.servicers import (
        DecisionServicer,
        EvidenceServicer,
        MemoServicer,
        PolicyServicer,
        RecommendationServicer,
    )
    from proxyvote.memo.render import MemoRenderer
    from proxyvote.v1 import decision_service_pb2, evidence_service_pb2, memo_service_pb2, policy_service_pb2
    from proxyvote.v1 import recommendation_service_pb2 as rs

    return grpc_testing.server_from_dictionary(
        {
            rs.DESCRIPTOR.services_by_name["RecommendationService"]: RecommendationServicer(
                app.log, app.auth, lambda: TODAY
            ),
            policy_service_pb2.DESCRIPTOR.services_by_name["PolicyService"]: PolicyServicer(
                app.catalog, app.auth
            ),
            memo_service_pb2.DESCRIPTOR.services_by_name["MemoService"]: MemoServicer(
                app.log, MemoRenderer(), app.auth, lambda: TODAY
            ),
            decision_service_pb2.DESCRIPTOR.services_by_name["DecisionService"]: DecisionServicer(
                app.log, app.auth
            ),
            evidence_service_pb2.DESCRIPTOR.services_by_name["EvidenceService"]: EvidenceServicer(
                app.evidence, app.auth, lambda: TODAY
            ),
        },
        grpc_testing.strict_real_time(),
    )


def call(server, method: str, request, key: str):
    """A unary call by "Service/Method": (response, code, details, trailing metadata)."""
    from google.protobuf import descriptor_pool

    service_name, method_name = method.split("/")
    service = descriptor_pool.Default().FindServiceByName(f"proxyvote.v1.{service_name}")
    rpc = server.invoke_unary_unary(service.methods_by_name[method_name], bearer(key), request, None)
    response, trailing, code, details = rpc.termination()
    return response, code, details, dict(trailing)
