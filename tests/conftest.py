"""Shared fixtures: the bundled policies, the example meetings and evidence."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import uuid
from pathlib import Path

import pytest
from proxyvote.app.files import load_recommender
from proxyvote.core.recommender import Recommender
from proxyvote.settings import Settings
from proxyvote.wire import convert

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TODAY = dt.date(2026, 11, 23)


def meeting_message(name: str = "amazon-2020-agm"):
    """An example meeting as the API's message."""
    return convert.meeting_message_from_json((EXAMPLES / "meetings" / f"{name}.json").read_text())


def example_meeting(name: str = "amazon-2020-agm"):
    """An example meeting as the domain value."""
    return convert.meeting_from_json((EXAMPLES / "meetings" / f"{name}.json").read_text())


def example_evidence():
    """The example evidence as domain records."""
    return convert.evidence_from_json((EXAMPLES / "evidence" / "amazon.json").read_text())


def evidence_messages():
    """The example evidence as the API's messages."""
    return [convert.evidence_to_proto(record) for record in example_evidence()]


def retitled(meeting, index: int, title: str):
    """The domain meeting with one item's title changed (domain values are immutable)."""
    items = list(meeting.items)
    items[index] = dataclasses.replace(items[index], title=title)
    return dataclasses.replace(meeting, items=tuple(items))


def memo_renderer():
    """The memo renderer over the bundled templates, as the app builds it."""
    from proxyvote.app.files import load_templates
    from proxyvote.memo.render import MemoRenderer

    return MemoRenderer(load_templates(Settings.load({}).template_dir))


def recommend(recommender: Recommender, request, today: dt.date = TODAY):
    """A RecommendRequest decided as the gRPC edge decides it: validated and converted once,
    decided by the core, the decision converted back to a RecommendResponse."""
    command = convert.recommend_command(request)
    return convert.decision_to_proto(recommender.decide(command, today), command.request_id)


@pytest.fixture(scope="session")
def recommender() -> Recommender:
    return load_recommender(Settings.load({}).policy_dir)


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
    from proxyvote.store.schema import upgrade

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

    built = build_app(Settings.load({}, database_url=database_url))
    yield built
    built.close()


def bearer(key: str) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {key}"),)


@pytest.fixture
def sqlite_app(tmp_path):
    """A service on a fresh SQLite database, for tests that are not about the database."""
    from proxyvote.app.wiring import build_app
    from proxyvote.store.schema import upgrade

    url = f"sqlite:///{tmp_path / 'proxyvote.db'}"
    upgrade(url)
    built = build_app(Settings.load({}, database_url=url))
    yield built
    built.close()


def servicers_under_test(app):
    """Every service of ``app`` (the server's own list) behind grpc_testing.

    No interceptor: servicers authenticate too.
    """
    import grpc_testing
    from proxyvote.api.auth import Authenticator
    from proxyvote.api.services import services

    auth = Authenticator(app.store.tenants.for_key)
    return grpc_testing.server_from_dictionary(
        {s.descriptor: s.servicer for s in services(app, auth, lambda: TODAY)},
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


def bad_request(status):
    """The one BadRequest detail of a google.rpc.Status (beside its ErrorInfo)."""
    from google.rpc import error_details_pb2

    found = []
    for detail in status.details:
        bad = error_details_pb2.BadRequest()
        if detail.Unpack(bad):
            found.append(bad)
    assert len(found) == 1, status.details
    return found[0]


@dataclasses.dataclass(frozen=True)
class Running:
    """A real server on a loopback port over a fresh SQLite database, with one tenant."""

    address: str
    app: object
    tenant: str
    key: str
    url: str


@pytest.fixture
def running_server(tmp_path):
    from proxyvote.api.server import create_server
    from proxyvote.app.wiring import build_app
    from proxyvote.store.schema import upgrade

    url = f"sqlite:///{tmp_path / 'proxyvote.db'}"
    upgrade(url)
    built = build_app(Settings.load({}, database_url=url))
    tenant, key = built.store.tenants.create("caller")
    server = create_server("127.0.0.1:0", built, today=lambda: TODAY)
    server.start()
    try:
        yield Running(f"127.0.0.1:{server.port}", built, tenant, key, url)
    finally:
        server.stop(None)
        built.close()


BUNDLED_POLICIES = ("human-rights-esg", "governance-baseline", "board-aligned")
AMAZON_ISIN = "US0231351067"  # the demo meeting's issuer (examples/meetings/amazon-2020-agm.json)


def cli_programme(tmp_path, accounts: int, seed: int) -> tuple[dict, Path]:
    """A migrated SQLite database with programme ``choice`` (the three bundled policies,
    default board-aligned) and a synthetic accounts file holding the Amazon ISIN, through
    the CLI: (the environment naming the database, the accounts file, not yet imported)."""
    from proxyvote.cli.main import main
    from proxyvote.store.schema import upgrade

    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade(url)
    env = {"DATABASE_URL": url}
    path = tmp_path / "accounts.csv"
    synth = ["synth", "accounts", "--accounts", str(accounts), "--security", AMAZON_ISIN]
    synth += ["--seed", str(seed), "-o", str(path)]
    assert main(synth + [a for p in BUNDLED_POLICIES for a in ("--policy", p)], env) == 0
    create = ["programme", "create", "choice", *(a for p in BUNDLED_POLICIES for a in ("--policy", p))]
    assert main(create + ["--default", BUNDLED_POLICIES[2]], env) == 0
    return env, path
