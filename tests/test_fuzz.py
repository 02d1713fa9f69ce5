"""Hostile input at volume: Hypothesis-generated requests to every RPC of a real server.

The server is ``create_server`` on a loopback port, over a fresh database.
Every method reflection lists gets requests generated from its descriptor
(unicode, control characters and huge strings, unknown enum numbers, nested
and repeated messages, dates that are no dates), mutations of valid requests,
and raw random bytes; ``PolicyService`` gets generated YAML (malformed, huge,
deeply nested, invalid and expensive CEL) and ``MemoService`` generated Jinja.
No answer may be INTERNAL or UNKNOWN (or UNIMPLEMENTED, UNAVAILABLE,
DEADLINE_EXCEEDED, or a shed call: they go one at a time), and every
INVALID_ARGUMENT names a field in a ``google.rpc.BadRequest``. The server
answers health checks at the end.

``PROXYVOTE_FUZZ_EXAMPLES`` is the number of requests in all, shared between
SQLite and PostgreSQL (default 500, for ``make test``); ``make fuzz`` sends
10,000. docs/fuzzing.md has what is generated and what was found.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import time
from collections import Counter
from pathlib import Path

import grpc
import pytest
import yaml
from google.protobuf import descriptor_pool, message_factory
from google.protobuf.descriptor import FieldDescriptor
from google.rpc import error_details_pb2, status_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import ProtoReflectionDescriptorDatabase
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from proxyvote.api.server import create_server
from proxyvote.app.wiring import build_app
from proxyvote.core.paging import encode_offset
from proxyvote.settings import Settings
from proxyvote.store.schema import upgrade
from proxyvote.v1 import (
    decision_service_pb2,
    evidence_service_pb2,
    meeting_service_pb2,
    memo_service_pb2,
    policy_service_pb2,
    recommendation_service_pb2,
    voting_choice_service_pb2,
)

from tests.conftest import (
    EXAMPLES,
    TODAY,
    _drop_postgres,
    _postgres_or_skip,
    evidence_messages,
    meeting_message,
)

pytestmark = pytest.mark.e2e

EXAMPLES_TOTAL = int(os.environ.get("PROXYVOTE_FUZZ_EXAMPLES", "500"))
# How the total is shared: generated messages to every method, raw bytes,
# policy documents, memo templates.
SHARES = {"messages": 0.6, "raw": 0.1, "policies": 0.25, "templates": 0.1}  # a little over 1: some
# generators run out of distinct requests early (an empty message has one)
CALL_TIMEOUT = 60.0
FORBIDDEN = {
    grpc.StatusCode.INTERNAL,
    grpc.StatusCode.UNKNOWN,
    grpc.StatusCode.UNIMPLEMENTED,
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.DATA_LOSS,
}
_CODES = {code.value[0]: code for code in grpc.StatusCode}


# Each database gets its share of the total; SQLite always, PostgreSQL when reachable (as conftest).
DATABASES = ["sqlite", "postgresql"]


def examples(share: str) -> int:
    return max(10, round(EXAMPLES_TOTAL * SHARES[share] / len(DATABASES)))


def fuzz_settings(share: str):
    return settings(
        max_examples=examples(share),
        deadline=None,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )


# --- the server --------------------------------------------------------------------


class Served:
    """A real server on a fresh database, its channel, a tenant's key and what was seeded."""

    def __init__(self, url: str):
        self.url = url
        upgrade(url)
        self.app = build_app(Settings.load({}, database_url=url))
        _, self.key = self.app.store.tenants.create("fuzz")
        self.server = create_server("127.0.0.1:0", self.app, today=lambda: TODAY)
        self.server.start()
        self.channel = grpc.insecure_channel(
            f"127.0.0.1:{self.server.port}",
            options=[("grpc.max_send_message_length", -1), ("grpc.max_receive_message_length", -1)],
        )
        self.metadata = (("authorization", f"Bearer {self.key}"),)
        self.sent = Counter()  # requests by test
        self.codes = Counter()  # (method, code)
        self.errors: list[str] = []  # what the server logged as unexpected
        self.methods = list(listed_methods(self.channel))

    def close(self) -> None:
        self.channel.close()
        self.server.stop(None)
        self.app.close()


class _Collect(logging.Handler):
    def __init__(self, into: list[str]):
        super().__init__(logging.ERROR)
        self.into = into

    def emit(self, record):
        self.into.append(record.getMessage()[:300])


class Method:
    def __init__(self, service, method):
        self.service = service.full_name
        self.name = method.name
        self.path = f"/{service.full_name}/{method.name}"
        self.descriptor = method
        self.input = method.input_type
        self.request_class = message_factory.GetMessageClass(method.input_type)
        self.response_class = message_factory.GetMessageClass(method.output_type)
        self.client_streaming = method.client_streaming
        self.server_streaming = method.server_streaming

    def __repr__(self):
        return self.path


def listed_methods(channel):
    database = ProtoReflectionDescriptorDatabase(channel)
    pool = descriptor_pool.DescriptorPool(database)
    for name in sorted(database.get_services()):
        service = pool.FindServiceByName(name)
        for method in service.methods:
            yield Method(service, method)


@pytest.fixture(scope="module", params=DATABASES)
def served(request, tmp_path_factory, pytestconfig):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'fuzz.db'}"
    else:
        url = _postgres_or_skip()
    served = Served(url)
    handler = _Collect(served.errors)
    logging.getLogger("proxyvote").addHandler(handler)
    seed(served)
    started = time.monotonic()
    try:
        yield served
    finally:
        logging.getLogger("proxyvote").removeHandler(handler)
        elapsed = time.monotonic() - started
        total = sum(served.sent.values())
        parts = ", ".join(f"{name} {count}" for name, count in sorted(served.sent.items()))
        by_code = Counter()
        for (_, code), count in served.codes.items():
            by_code[code] += count
        capture = pytestconfig.pluginmanager.getplugin("capturemanager")
        with capture.global_and_fixture_disabled():
            print(f"\nfuzz ({request.param}): {total} requests in {elapsed:.0f} s ({parts})")
            print("fuzz: answers " + ", ".join(f"{c} {n}" for c, n in by_code.most_common()))
        served.close()
        if request.param == "postgresql":
            _drop_postgres(url)


# Seeded state, so generated requests can reach past "not found".
SEEDS: dict[str, list[bytes]] = {}
DECISION_IDS: list[str] = []
ITEM_IDS = ["1a", "1b", "4", "5", "10", "1", ""]
POLICY_REFS = [
    "human-rights-esg",
    "human-rights-esg@1",
    "human-rights-esg@3",
    "policies/governance-baseline",
    "board-aligned@99",
    "fuzz-own",
    "fuzz-own@1",
    "human-rights-esg@0",
    "human-rights-esg@-1",
    "human-rights-esg@99999999999999999999999",
    "@",
    "@1",
    "a@b@c",
    "policies/",
    "policies/policies/x",
]
OWN_POLICY = """\
id: fuzz-own
version: 1
extends: human-rights-esg
default: {vote: REFER, why: Nothing decided.}
rules:
  - id: fuzz-rule
    when: {proponent: SHAREHOLDER}
    if: item.title.size() > 3
    vote: FOR
    why: For $issuer.
"""
TEMPLATE = (
    "<h1>{{ meeting.issuer.name }}</h1>{% for i in items %}<p>{{ i.title }}: {{ i.vote }}</p>{% endfor %}"
)


ACCOUNTS_CSV = (
    b"# SYNTHETIC\n"
    b"account_id,custodian_account,policy,effective_date,security,shares,as_of\n"
    b"SYN-1,SYN-C1,human-rights-esg,2020-01-02,US0231351067,120,2020-01-02\n"
    b"SYN-2,SYN-C1,,2020-01-02,US0231351067,35.125,2020-01-02\n"
    b"SYN-3,SYN-C2,board-aligned,2020-01-02,US0231351067,7,2020-01-02\n"
)


def seed(served: Served) -> None:
    """A decision to read, override and replay, a policy of the tenant's own, a template."""
    DECISION_IDS.clear()
    meeting = meeting_message()
    evidence = evidence_messages()
    request = recommendation_service_pb2.RecommendRequest(
        meeting=meeting, policy="human-rights-esg", as_of="2020-05-20", evidence=evidence[:3]
    )
    stub = served.channel.unary_unary(
        "/proxyvote.v1.RecommendationService/Recommend",
        request_serializer=lambda m: m.SerializeToString(),
        response_deserializer=recommendation_service_pb2.RecommendResponse.FromString,
    )
    for policy in ("human-rights-esg", "governance-baseline"):
        request.policy = policy
        DECISION_IDS.append(stub(request, metadata=served.metadata).decision_id)
    unary = served.channel.unary_unary
    unary("/proxyvote.v1.PolicyService/CreatePolicy")(
        policy_service_pb2.CreatePolicyRequest(source=OWN_POLICY, filename="own.yaml").SerializeToString(),
        metadata=served.metadata,
    )
    unary("/proxyvote.v1.MemoService/UploadMemoTemplate")(
        memo_service_pb2.UploadMemoTemplateRequest(name="fuzz-memo", source=TEMPLATE).SerializeToString(),
        metadata=served.metadata,
    )
    meeting_file = (EXAMPLES / "meetings" / "amazon-2019-agm.json").read_bytes()
    programme = voting_choice_service_pb2.DefineProgrammeRequest(
        name="fuzz-choice", policies=["human-rights-esg", "board-aligned"], default_policy="board-aligned"
    )
    accounts = voting_choice_service_pb2.ImportAccountsRequest(
        programme="fuzz-choice", file_name="accounts.csv", content=ACCOUNTS_CSV
    )
    plan_votes = voting_choice_service_pb2.PlanVotesRequest(meeting=meeting, programme="fuzz-choice")
    unary("/proxyvote.v1.VotingChoiceService/DefineProgramme")(
        programme.SerializeToString(), metadata=served.metadata
    )
    unary("/proxyvote.v1.VotingChoiceService/ImportAccounts")(
        accounts.SerializeToString(), metadata=served.metadata
    )
    plan_id = voting_choice_service_pb2.PlanVotesResponse.FromString(
        unary("/proxyvote.v1.VotingChoiceService/PlanVotes")(
            plan_votes.SerializeToString(), metadata=served.metadata
        )
    ).plan.plan_id
    request.policy = "human-rights-esg"
    seeds = {
        "proxyvote.v1.VotingChoiceService/DefineProgramme": [programme],
        "proxyvote.v1.VotingChoiceService/ImportAccounts": [accounts],
        "proxyvote.v1.VotingChoiceService/PlanVotes": [plan_votes],
        "proxyvote.v1.VotingChoiceService/GetPlan": [
            voting_choice_service_pb2.GetPlanRequest(plan_id=plan_id, account_page_size=2)
        ],
        "proxyvote.v1.VotingChoiceService/ReplayPlan": [
            voting_choice_service_pb2.ReplayPlanRequest(plan_id=plan_id)
        ],
        "proxyvote.v1.VotingChoiceService/ExportSeev004": [
            voting_choice_service_pb2.ExportSeev004Request(plan_id=plan_id)
        ],
        "proxyvote.v1.VotingChoiceService/ExportNpx": [
            voting_choice_service_pb2.ExportNpxRequest(programme="fuzz-choice", period_year=2020)
        ],
        "proxyvote.v1.VotingChoiceService/ListProgrammes": [
            voting_choice_service_pb2.ListProgrammesRequest(page_size=1)
        ],
        "proxyvote.v1.VotingChoiceService/ListPlans": [
            voting_choice_service_pb2.ListPlansRequest(
                programme="fuzz-choice",
                date_from="2020-01-01",
                date_to="2020-12-31",
                meeting_id=meeting.meeting_id,
                page_size=1,
            )
        ],
        "proxyvote.v1.RecommendationService/Recommend": [request],
        "proxyvote.v1.RecommendationService/RecommendPolicies": [
            recommendation_service_pb2.RecommendPoliciesRequest(
                meeting=meeting,
                policies=["human-rights-esg", "board-aligned"],
                as_of="2020-05-20",
                evidence=evidence[:3],
            )
        ],
        "proxyvote.v1.RecommendationService/StreamRecommend": [
            recommendation_service_pb2.StreamRecommendRequest(request=request)
        ],
        "proxyvote.v1.MemoService/RenderMemo": [
            memo_service_pb2.RenderMemoRequest(
                meeting=meeting, policy="human-rights-esg", as_of="2020-05-20", format=2
            ),
            memo_service_pb2.RenderMemoRequest(decision_id=DECISION_IDS[0], format=1, variant=2),
            memo_service_pb2.RenderMemoRequest(decision_ids=DECISION_IDS[:2], format=2, variant=3),
        ],
        "proxyvote.v1.MemoService/UploadMemoTemplate": [
            memo_service_pb2.UploadMemoTemplateRequest(name="fuzz-memo", source=TEMPLATE)
        ],
        "proxyvote.v1.DecisionService/GetDecision": [
            decision_service_pb2.GetDecisionRequest(decision_id=DECISION_IDS[0])
        ],
        "proxyvote.v1.DecisionService/ReplayDecision": [
            decision_service_pb2.ReplayDecisionRequest(decision_id=DECISION_IDS[1])
        ],
        "proxyvote.v1.DecisionService/OverrideRecommendation": [
            decision_service_pb2.OverrideRecommendationRequest(
                decision_id=DECISION_IDS[0], item_id="4", vote=1, reason="fuzz", analyst="fuzzer"
            )
        ],
        "proxyvote.v1.EvidenceService/ImportEvidence": [
            evidence_service_pb2.ImportEvidenceRequest(records=evidence[:2])
        ],
        "proxyvote.v1.EvidenceService/ListEvidence": [
            evidence_service_pb2.ListEvidenceRequest(issuer_ticker="AMZN", as_of="2021-01-01", page_size=2)
        ],
        "proxyvote.v1.PolicyService/UpdatePolicy": [
            policy_service_pb2.UpdatePolicyRequest(
                name="fuzz-own", expected_version=1, source=OWN_POLICY.replace("version: 1", "version: 2")
            )
        ],
        "proxyvote.v1.PolicyService/DiffPolicies": [
            policy_service_pb2.DiffPoliciesRequest(base="human-rights-esg", target="fuzz-own")
        ],
        "proxyvote.v1.MeetingService/ImportMeetings": [
            meeting_service_pb2.ImportMeetingsRequest(
                files=[meeting_service_pb2.MeetingFile(name="amazon-2019.json", content=meeting_file)]
            )
        ],
        "proxyvote.v1.MeetingService/ListMeetings": [
            meeting_service_pb2.ListMeetingsRequest(date_from="2019-01-01", issuer="Amazon", page_size=1)
        ],
    }
    for path, messages in seeds.items():
        SEEDS[path] = [m.SerializeToString() for m in messages]


# --- calling any method, and judging the answer -------------------------------------


def violation_fields(trailing) -> list[str] | None:
    """The BadRequest field names of a status trailer, or None without one."""
    for key, value in trailing or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                bad = error_details_pb2.BadRequest()
                if detail.Unpack(bad):
                    return [v.field for v in bad.field_violations]
    return None


def judge(served: Served, method: str, code: grpc.StatusCode, details: str, fields) -> None:
    served.codes[(method, code.name)] += 1
    assert code not in FORBIDDEN, (
        f"{method} answered {code.name}: {details}; server log: {served.errors[-3:]}"
    )
    # Calls go one at a time: shedding would mean the server lost count of its calls in flight.
    assert not (code == grpc.StatusCode.RESOURCE_EXHAUSTED and "overloaded" in (details or "")), (
        f"{method} was shed with nothing else in flight: {details}"
    )
    if code == grpc.StatusCode.INVALID_ARGUMENT:
        assert fields, f"{method}: INVALID_ARGUMENT names no field: {details}"
        assert all(f.strip() for f in fields), f"{method}: INVALID_ARGUMENT with an empty field: {details}"


def call(served: Served, method: Method, requests: list[bytes], test: str, metadata=None) -> grpc.StatusCode:
    """Sends serialised requests (one, or a stream) and judges every answer."""
    served.sent[test] += 1
    metadata = served.metadata if metadata is None else metadata
    channel = served.channel
    in_band = []
    try:
        if method.client_streaming and method.server_streaming:
            responses = channel.stream_stream(method.path)(
                iter(requests), metadata=metadata, timeout=CALL_TIMEOUT
            )
            in_band = [method.response_class.FromString(r) for r in responses]
        elif method.server_streaming:
            responses = channel.unary_stream(method.path)(
                requests[0], metadata=metadata, timeout=CALL_TIMEOUT
            )
            if method.name == "Watch":  # a watch streams until cancelled: its first answer is enough
                next(responses, None)
                responses.cancel()
            else:
                for _ in responses:
                    pass
        elif method.client_streaming:
            channel.stream_unary(method.path)(iter(requests), metadata=metadata, timeout=CALL_TIMEOUT)
        else:
            channel.unary_unary(method.path)(requests[0], metadata=metadata, timeout=CALL_TIMEOUT)
    except grpc.RpcError as exc:
        if exc.code() == grpc.StatusCode.CANCELLED and method.name == "Watch":
            return exc.code()
        judge(served, method.path, exc.code(), exc.details(), violation_fields(exc.trailing_metadata()))
        return exc.code()
    served.codes[(method.path, "OK")] += 1
    for response in in_band:  # StreamRecommend reports each request's error in its answer
        if response.DESCRIPTOR.name == "StreamRecommendResponse" and response.HasField("error"):
            error = response.error
            judge(
                served,
                method.path + " (in-band)",
                _CODES.get(error.code, grpc.StatusCode.UNKNOWN),
                error.message,
                [v.field for v in error.field_violations],
            )
    return grpc.StatusCode.OK


def assert_still_serving(served: Served) -> None:
    check = served.channel.unary_unary("/grpc.health.v1.Health/Check")
    assert check(b"", timeout=10) == b"\x08\x01"  # status: SERVING


# --- strategies from descriptors ------------------------------------------------------

TRICKY = [
    "",
    " ",
    "\x00",
    "\t\n\r",
    "\u202e\u200b\ufeff",
    "é",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢",
    "\ud7ff\ue000\uffff",
    "../../etc/passwd",
    "{{ 7*7 }}",
    "${issuer}",
    "' OR 1=1 --",
    "%s%n%x",
    "<script>alert(1)</script>",
    "null",
    "NaN",
    "-1",
    "0",
    "99999999999999999999999",
    "AMZN",
    "Amazon.com, Inc.",
    "backtests/",
    "backtests/x",
    "policies/human-rights-esg",
]
DATES = [
    "2020-05-20",
    "2019-05-22",
    "2021-01-01",
    "2025-02-30",
    "2024-02-29",
    "2023-02-29",
    "0000-00-00",
    "0001-01-01",
    "9999-12-31",
    "10000-01-01",
    "-2020-01-01",
    "2020-1-1",
    "20200101",
    "2020-05-20T00:00:00",
    "2020-05-20T25:00:00Z",
    "2020-W21",
    "2020-13-01",
    "yesterday",
    "٢٠٢٠-٠٥-٢٠",  # Arabic-Indic digits: isdigit() says yes
    "２０２０-０５-２０",  # full-width digits
    "2020-05-20\x00",
    " 2020-05-20",
]
HUGE_SIZES = [101, 201, 301, 4_001, 10_001, 200_001, 1_000_001]
HUGE_UNITS = ["a", "é", "\x00", "𝔘", " ", "\n", "-"]

control_text = st.text(alphabet=st.characters(max_codepoint=0x9F, categories=["Cc", "Zs"]), max_size=10)
any_text = st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=40)
huge_text = st.builds(lambda unit, n: unit * n, st.sampled_from(HUGE_UNITS), st.sampled_from(HUGE_SIZES))
generic_text = st.one_of(any_text, control_text, st.sampled_from(TRICKY), huge_text)
date_text = st.one_of(
    st.sampled_from(DATES),
    st.dates(min_value=dt.date(1, 1, 1)).map(dt.date.isoformat),
    st.from_regex(r"\A-?\d{1,5}-\d{1,3}-\d{1,3}\Z"),
    generic_text,
)
page_tokens = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70).map(encode_offset),
    st.sampled_from(["v1:", "djE6", "djE6LTE=", "djI6MQ==", "====", "!!!", "djE6MTAw\n"]),
    generic_text,
)


def text_for(field: FieldDescriptor):
    name = field.name
    if "date" in name or name in ("as_of", "published"):
        return date_text
    if name in ("policy", "base", "target", "policies", "extends") or (
        name == "name" and field.containing_type.name.endswith("PolicyRequest")
    ):
        return st.one_of(st.sampled_from(POLICY_REFS), generic_text)
    if name == "decision_id":
        return st.one_of(st.sampled_from(DECISION_IDS or ["x"]), generic_text)
    if name == "page_token":
        return page_tokens
    if name == "item_id":
        return st.one_of(st.sampled_from(ITEM_IDS), generic_text)
    if name == "template":
        return st.one_of(st.just("fuzz-memo"), generic_text)
    return generic_text


def bytes_for(field: FieldDescriptor):
    return st.one_of(st.binary(max_size=200), file_contents)


INT_EDGES = [0, 1, -1, 2, 50, 999, 1000, 1001, 366, 367, 2**31 - 1, -(2**31)]


def scalar_for(field: FieldDescriptor):
    t = field.type
    if t == FieldDescriptor.TYPE_STRING:
        return text_for(field)
    if t == FieldDescriptor.TYPE_BYTES:
        return bytes_for(field)
    if t == FieldDescriptor.TYPE_BOOL:
        return st.booleans()
    if t in (FieldDescriptor.TYPE_DOUBLE,):
        return st.floats()
    if t == FieldDescriptor.TYPE_FLOAT:
        return st.floats(width=32)
    if t in (FieldDescriptor.TYPE_INT32, FieldDescriptor.TYPE_SINT32, FieldDescriptor.TYPE_SFIXED32):
        return st.one_of(st.sampled_from(INT_EDGES), st.integers(-(2**31), 2**31 - 1))
    if t in (FieldDescriptor.TYPE_UINT32, FieldDescriptor.TYPE_FIXED32):
        return st.integers(0, 2**32 - 1)
    if t in (FieldDescriptor.TYPE_INT64, FieldDescriptor.TYPE_SINT64, FieldDescriptor.TYPE_SFIXED64):
        return st.one_of(st.sampled_from(INT_EDGES + [2**63 - 1, -(2**63)]), st.integers(-(2**63), 2**63 - 1))
    if t in (FieldDescriptor.TYPE_UINT64, FieldDescriptor.TYPE_FIXED64):
        return st.integers(0, 2**64 - 1)
    if t == FieldDescriptor.TYPE_ENUM:
        known = [v.number for v in field.enum_type.values]
        return st.one_of(st.sampled_from(known), st.sampled_from(known), st.integers(-(2**31), 2**31 - 1))
    raise AssertionError(f"no strategy for {field.full_name} (type {t})")


MAX_DEPTH = 4


def _is_map(field: FieldDescriptor) -> bool:
    return field.message_type is not None and field.message_type.GetOptions().map_entry


def _is_repeated(field: FieldDescriptor) -> bool:
    return field.is_repeated


def _set(draw, message, field: FieldDescriptor, depth: int) -> None:
    """Sets one field of ``message`` to a generated value."""
    name = field.name
    if _is_map(field):
        key_field, value_field = (
            field.message_type.fields_by_name["key"],
            field.message_type.fields_by_name["value"],
        )
        for _ in range(draw(st.integers(0, 3))):
            key = draw(scalar_for(key_field))
            if value_field.message_type is not None:
                getattr(message, name)[key].CopyFrom(draw(messages(value_field.message_type, depth + 1)))
            else:
                _assign(getattr(message, name), key, draw(scalar_for(value_field)))
        return
    if _is_repeated(field):
        many = draw(st.sampled_from([0, 1, 1, 2, 3, 3, 5, 1001, 10_001]))
        if many > 5:  # one element, many times: a long list costs little to generate
            n, many = many, 1
        else:
            n = 1
        target = getattr(message, name)
        for _ in range(many):
            if field.message_type is not None:
                value = draw(messages(field.message_type, depth + 1)) if depth < MAX_DEPTH else None
                if value is None:
                    return
                for _ in range(_copies(n, value.ByteSize())):
                    target.add().CopyFrom(value)
            else:
                value = draw(scalar_for(field))
                try:
                    target.extend([value] * _copies(n, len(value) if isinstance(value, str | bytes) else 8))
                except ValueError:  # a closed enum refuses unknown numbers
                    pass
        return
    if field.message_type is not None:
        if depth < MAX_DEPTH:
            getattr(message, name).CopyFrom(draw(messages(field.message_type, depth + 1)))
        return
    try:
        setattr(message, name, draw(scalar_for(field)))
    except ValueError:  # a closed enum refuses unknown numbers
        pass


MAX_COPIED_BYTES = 40_000_000  # past the server's 32 MiB limit, short of the test's memory


def _copies(n: int, size: int) -> int:
    """``n`` copies of an element of ``size`` bytes, as many as fit MAX_COPIED_BYTES (at least one)."""
    return max(1, min(n, MAX_COPIED_BYTES // max(size, 1)))


def _assign(mapping, key, value) -> None:
    try:
        mapping[key] = value
    except ValueError:
        pass


@st.composite
def messages(draw, descriptor, depth: int = 0):
    message = message_factory.GetMessageClass(descriptor)()
    for field in descriptor.fields:
        if draw(st.booleans()):
            _set(draw, message, field, depth)
    return message


@st.composite
def mutated(draw, descriptor, data: bytes, depth: int = 0):
    """A valid message with one to three fields changed, somewhere in its tree."""
    message = message_factory.GetMessageClass(descriptor).FromString(data)
    for _ in range(draw(st.integers(1, 3))):
        _mutate(draw, message, descriptor, depth)
    return message


def _mutate(draw, message, descriptor, depth: int) -> None:
    field = draw(st.sampled_from(list(descriptor.fields)))
    value = getattr(message, field.name)
    if _is_repeated(field) and not _is_map(field) and len(value) and field.message_type is not None:
        how = draw(st.sampled_from(["one", "one", "one", "drop", "copies", "add"]))
        if how == "one":
            _mutate(draw, value[draw(st.integers(0, len(value) - 1))], field.message_type, depth + 1)
        elif how == "drop":
            del value[draw(st.integers(0, len(value) - 1))]
        elif how == "copies":  # past every count limit
            element = value[draw(st.integers(0, len(value) - 1))]
            for _ in range(_copies(draw(st.sampled_from([2, 1001, 10_001])), element.ByteSize())):
                value.add().CopyFrom(element)
        else:
            _set(draw, message, field, depth)
        return
    if field.message_type is not None and not _is_repeated(field) and message.HasField(field.name):
        if draw(st.booleans()):
            _mutate(draw, value, field.message_type, depth + 1)
            return
    if draw(st.integers(0, 4)) == 0:
        message.ClearField(field.name)
        return
    if not _is_repeated(field) and field.message_type is None:
        message.ClearField(field.name)
    _set(draw, message, field, depth)


def requests_for(method: Method):
    generated = messages(method.input)
    seeds = SEEDS.get(method.path.lstrip("/"), [])
    if seeds:
        changed = st.sampled_from(seeds).flatmap(lambda data: mutated(method.input, data))
        merged = st.tuples(st.sampled_from(seeds), generated).map(
            lambda pair: _merged(method.request_class, *pair)
        )
        generated = st.one_of(generated, changed, changed, merged)
    if method.client_streaming:
        return st.lists(generated, min_size=0, max_size=4).map(lambda ms: [m.SerializeToString() for m in ms])
    return generated.map(lambda m: [m.SerializeToString()])


def _merged(cls, data: bytes, extra):
    message = cls.FromString(data)
    message.MergeFrom(extra)
    return message


# Meeting files: ours, truncated or changed; N-PX XML and JSON lines, also hostile.
_MEETING_FILE = (EXAMPLES / "meetings" / "amazon-2021-agm.json").read_bytes()
_NPX_XML = b"""<?xml version="1.0"?>
<proxyVoteTable xmlns="http://www.sec.gov/edgar/document/npxproxy/informationtable">
<proxyTable><issuerName>Amazon.com, Inc.</issuerName><cusip>023135106</cusip>
<meetingDate>05/26/2021</meetingDate><voteDescription>Elect Director</voteDescription>
<voteCategories><voteCategory><categoryType>DIRECTOR ELECTIONS</categoryType></voteCategory></voteCategories>
<voteSource>ISSUER</voteSource><sharesVoted>100</sharesVoted><sharesOnLoan>0</sharesOnLoan>
<vote><voteRecord><howVoted>FOR</howVoted><sharesVoted>100</sharesVoted>
<managementRecommendation>FOR</managementRecommendation></voteRecord></vote></proxyTable>
</proxyVoteTable>"""
_BILLION_LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(
        b'<!ENTITY lol%d "%s">' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b"]><proxyVoteTable><proxyTable><issuerName>&lol9;</issuerName></proxyTable></proxyVoteTable>"
)
_XXE = (
    b'<?xml version="1.0"?><!DOCTYPE t [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
    b"<proxyVoteTable><proxyTable><issuerName>&x;</issuerName></proxyTable></proxyVoteTable>"
)
_NPX_LINE = json.dumps(
    {
        "filer": "Fund",
        "issuer_name": "Amazon.com, Inc.",
        "meeting_date": "2021-05-26",
        "vote_description": "Elect Director",
        "how_voted": "FOR",
        "management_recommendation": "FOR",
    }
).encode()
HOSTILE_FILES = [
    _MEETING_FILE,
    b"[" + _MEETING_FILE + b"," + _MEETING_FILE + b"]",
    _NPX_XML,
    _BILLION_LAUGHS,
    _XXE,
    _NPX_LINE + b"\n" + _NPX_LINE,
    b"[" * 100_000 + b"]" * 100_000,
    b'{"a":' * 100_000 + b"1" + b"}" * 100_000,
    b"<a>" * 100_000,
    b"\xff\xfe" + "<proxyVoteTable/>".encode("utf-16-le"),
    b"\xef\xbb\xbf{",
    b"",
    b"{}",
    b"[]",
    b"[1, 2]",
    b'{"vote_description": 1}\n',
    b"<?xml version='1.0' encoding='nope'?><x/>",
    b"\x00" * 1000,
]


def _cut(data: bytes, at: float) -> bytes:
    return data[: int(len(data) * at)]


def _flip(data: bytes, at: float, byte: int) -> bytes:
    i = int(len(data) * at) % max(1, len(data))
    return data[:i] + bytes([byte]) + data[i + 1 :]


_fractions = st.floats(0, 1)
file_contents = st.one_of(
    st.sampled_from(HOSTILE_FILES),
    st.builds(_cut, st.sampled_from(HOSTILE_FILES[:6]), _fractions),
    st.builds(_flip, st.sampled_from(HOSTILE_FILES[:6]), _fractions, st.integers(0, 255)),
)


# --- 1. generated messages to every method -------------------------------------------------


def _static_method_paths() -> list[str]:
    """Every method this build serves, known before the server starts (to parametrize by)."""
    from grpc_health.v1 import health_pb2
    from grpc_reflection.v1alpha import reflection_pb2
    from proxyvote.v1 import backtest_service_pb2, voting_choice_service_pb2

    modules = (
        recommendation_service_pb2,
        policy_service_pb2,
        memo_service_pb2,
        decision_service_pb2,
        evidence_service_pb2,
        meeting_service_pb2,
        backtest_service_pb2,
        voting_choice_service_pb2,
        health_pb2,
        reflection_pb2,
    )
    return sorted(
        f"/{service.full_name}/{method.name}"
        for module in modules
        for service in module.DESCRIPTOR.services_by_name.values()
        for method in service.methods
    )


METHOD_PATHS = _static_method_paths()


def test_reflection_lists_every_fuzzed_method(served):
    assert sorted(m.path for m in served.methods) == METHOD_PATHS


@pytest.mark.parametrize("path", METHOD_PATHS)
def test_generated_requests(served, path):
    method = next(m for m in served.methods if m.path == path)
    strategy = requests_for(method)

    @settings(fuzz_settings("messages"), max_examples=max(3, -(-examples("messages") // len(METHOD_PATHS))))
    @given(requests=strategy)
    def run(requests):
        call(served, method, requests, "messages")

    run()
    assert_still_serving(served)


# --- 2. raw bytes to every method -------------------------------------------------------------


def test_raw_bytes_to_every_method(served):
    methods = served.methods

    @fuzz_settings("raw")
    @given(
        method=st.sampled_from(methods),
        payloads=st.lists(
            st.one_of(
                st.binary(max_size=300),
                st.sampled_from([b"\x0a\xff\xff\xff\xff\x0f", b"\x0a\x02\xc3\x28", b"\xff" * 20, b"\x08"]),
            ),
            min_size=1,
            max_size=3,
        ),
    )
    def run(method, payloads):
        call(served, method, payloads, "raw")

    run()
    assert_still_serving(served)


# --- 3. policy documents ---------------------------------------------------------------------------

NPX = ["DIRECTOR_ELECTIONS", "ENVIRONMENT_OR_CLIMATE", "HUMAN_RIGHTS_OR_HUMAN_CAPITAL", "OTHER", "NOPE"]
TOPICS = ["facial_recognition", "human_rights", "privacy", "climate", "no_such_topic"]
FLAGS = ["anti_esg", "no_such_flag"]
VOTES = ["FOR", "AGAINST", "ABSTAIN", "REFER", "WITH_BOARD", "NONE", "MAYBE", 1, None]
_LIST = "[" + ",".join(str(i) for i in range(200)) + "]"
CEL_ATOMS = [
    "item.title",
    "item.text",
    "item.topics",
    "item.flags",
    "item.proponent.kind",
    "item.npx_categories",
    "issuer.name",
    "meeting.meeting_date",
    "as_of",
    "1",
    "-9223372036854775808",
    "9223372036854775807",
    "1.5",
    "'x'",
    '"anti_esg"',
    "true",
    "null",
    "[1, 2, 3]",
    "{'a': 1}",
    "b'\\xff'",
    "item",
    "item.nope",
    "unknown_var",
    "controversies(item.topics, 3)",
    "company_actions(['privacy'], 99999999999)",
    "evidence(item.topics)",
    "controversies()",
]
CEL_EXPENSIVE = [
    # Nested comprehensions over 200-element lists: 8 million steps, and lists of lists in memory.
    f"{_LIST}.map(x, {_LIST}.map(y, {_LIST}.size())).size() > 0",
    f"{_LIST}.all(x, {_LIST}.all(y, {_LIST}.all(z, x + y + z >= 0)))",
    f"{_LIST}.exists(a, {_LIST}.exists(b, {_LIST}.exists(c, {_LIST}.exists(d, a + b + c + d < 0))))",
    "item.text.matches('(a+)+$')",
    "item.title.matches('(' + item.title + ')')",
    "item.text.matches('[')",
    "item.title + item.title + item.title + item.title != ''",
    "(" * 1500 + "true" + ")" * 1500,
    "!" * 3999 + "true",
    "-" * 3999 + "1 > 0",
    "[" * 1000 + "]" * 1000 + " == []",
    "1 / 0 == 1",
    "9223372036854775807 + 1 > 0",
    "timestamp('9999-99-99') > timestamp('2020-01-01T00:00:00Z')",
    "duration('999999999999999h') > duration('1s')",
    "size(item.text) > 0 && " * 150 + "true",
]


@st.composite
def cel_expressions(draw, depth: int = 0):
    if depth > 3 or draw(st.integers(0, 3)) == 0:
        return draw(st.one_of(st.sampled_from(CEL_ATOMS), st.sampled_from(CEL_EXPENSIVE), any_text))
    a = draw(cel_expressions(depth + 1))
    b = draw(cel_expressions(depth + 1))
    shape = draw(
        st.sampled_from(
            [
                "{a} && {b}",
                "{a} || {b}",
                "!{a}",
                "{a} == {b}",
                "{a} < {b}",
                "{a} + {b}",
                "{a} * {b}",
                "{a} / {b}",
                "{a} % {b}",
                "{a} ? {a} : {b}",
                "({a})",
                "{a}.size() > 0",
                "size({a})",
                "{a}.contains({b})",
                "{a}.startsWith({b})",
                "{a}.matches({b})",
                "{a} in {b}",
                "{a}.exists(x, x == {b})",
                "{a}.all(x, {b})",
                "{a}.map(x, {b})",
                "{a}.filter(x, {b})",
                "{a}.exists_one(x, {b})",
                "has({a}.f)",
                "int({a})",
                "double({a})",
                "string({a})",
                "timestamp({a})",
                "dyn({a})",
                "type({a}) == int",
                "{a}[{b}]",
                "{a}.{b}",
                "{a}(",
                "{a} {b}",
            ]
        )
    )
    return shape.format(a=a, b=b)


def _rule(draw, index: int) -> dict:
    rule: dict = {}
    keys = ("id", "vote", "why", "when", "if", "unless", "strength", "why_strong", "description", "other")
    for key in keys:
        if draw(st.integers(0, 9)) < (8 if key in ("id", "vote", "why") else 3):
            if key == "id":
                rule[key] = draw(st.one_of(st.just(f"rule-{index}"), st.just("rule-0"), generic_text))
            elif key == "vote":
                rule[key] = draw(st.sampled_from(VOTES))
            elif key in ("why", "why_strong", "description"):
                rule[key] = draw(
                    st.one_of(
                        st.sampled_from(["For $issuer.", "$nope", "$", "$$5", "${topic} and $cited", ""]),
                        generic_text,
                    )
                )
            elif key == "when":
                when: dict = {}
                if draw(st.booleans()):
                    when["categories"] = draw(st.lists(st.sampled_from(NPX), max_size=3))
                if draw(st.booleans()):
                    when["topics"] = draw(st.lists(st.sampled_from(TOPICS), max_size=3))
                if draw(st.booleans()):
                    when["proponent"] = draw(st.sampled_from(["SHAREHOLDER", "MANAGEMENT", "BOTH", 7]))
                if draw(st.booleans()):
                    when["flags"] = draw(st.lists(st.sampled_from(FLAGS), max_size=2))
                if draw(st.booleans()):
                    when["placed"] = draw(st.sampled_from([True, False, "yes", None]))
                rule[key] = when
            elif key in ("if", "unless"):
                rule[key] = draw(cel_expressions())
            elif key == "strength":
                rule[key] = {"strong": draw(cel_expressions())}
            else:
                rule[key] = draw(any_text)
    return rule


@st.composite
def policy_documents(draw):
    """A policy as a dict, mostly well formed, with the odd wrong type, value or key."""
    doc: dict = {
        "id": draw(
            st.one_of(st.just("fuzz-new"), st.just("fuzz-own"), st.just("human-rights-esg"), generic_text)
        ),
        "version": draw(
            st.one_of(st.just(1), st.just(2), st.integers(-5, 5), st.just(2**70), st.just("1"), st.just(1.5))
        ),
        "default": {
            "vote": draw(st.sampled_from(VOTES)),
            "why": draw(st.sampled_from(["Nothing.", "$issuer", ""])),
        },
    }
    if draw(st.booleans()):
        doc["extends"] = draw(st.sampled_from(["human-rights-esg", "fuzz-own", "fuzz-new", "nope", "", 5]))
    if draw(st.integers(0, 3)) == 0:
        doc["effective_from"] = draw(date_text)
    if draw(st.integers(0, 3)) == 0:
        doc["title"] = draw(generic_text)
    count = draw(st.sampled_from([0, 1, 2, 3, 5, 1001]))
    if count > 5:
        doc["rules"] = [{"id": f"r-{i}", "vote": "FOR", "why": "w"} for i in range(count)]
    else:
        doc["rules"] = [_rule(draw, i) for i in range(count)]
    for _ in range(draw(st.integers(0, 1))):  # a key dropped or one the schema does not know
        key = draw(st.sampled_from(["id", "version", "default", "rules", "unknown"]))
        if key in doc:
            del doc[key]
        else:
            doc[key] = draw(any_text)
    return doc


def _dump(doc) -> str:
    return yaml.safe_dump(doc, allow_unicode=True, sort_keys=False, width=10_000)


_POLICY_FILE = (Path(__file__).resolve().parents[1] / "policies" / "human-rights-esg.yaml").read_text()
MALFORMED_YAML = [
    "",
    " ",
    "---\n...\n",
    "- 1\n- 2",
    "id: x\nid: y\n",
    "a: &a [1]\nb: *a\n",
    "a: &a [x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a]\n"
    "c: &c [*b, *b, *b, *b, *b, *b, *b]\n",
    "!!python/object/apply:os.system ['true']",
    "id: !!binary aGVsbG8=\n",
    "effective_from: 2025-02-30\n",
    "effective_from: 2025-02-28T25:00:00\n",
    "version: 0x7fffffffffffffffffffffff\n",
    "version: .inf\n",
    "? [a, b]\n: c\n",
    "{a: 1, a: 2}",
    "\t- tab",
    "\x00\x01\x02",
    "\ufeffid: x",
    "'unterminated",
    "%YAML 9.9\n---\na: 1",
    "%TAG ! tag:evil.com,2000:\n---\n!x 1",
    "[" * 100 + "]" * 100,
    "[" * 10_000 + "]" * 10_000,
    "{a: " * 5_000 + "1" + "}" * 5_000,
    "".join(" " * i + "- \n" for i in range(0, 4000, 2)),
    "a:\n" + "".join("  " * i + "b:\n" for i in range(1, 3000)),
    "id: x\nrules: [" + ", ".join(f"{{id: r{i}, vote: FOR, why: w}}" for i in range(40_000)) + "]\n",
    "k" * 1_000_001,
    "key: " + "v" * 999_990,
    "\n".join(f"k{i}: {i}" for i in range(100_000)),
]


def _mangle(text: str, at: float, insert: str) -> str:
    i = int(len(text) * at)
    return text[:i] + insert + text[i:]


policy_sources = st.one_of(
    policy_documents().map(_dump),
    policy_documents().map(_dump),
    policy_documents().map(_dump),
    st.sampled_from(MALFORMED_YAML),
    st.builds(lambda text, at: text[: int(len(text) * at)], st.just(_POLICY_FILE), _fractions),
    st.builds(
        _mangle,
        st.one_of(st.just(_POLICY_FILE), policy_documents().map(_dump)),
        _fractions,
        st.one_of(st.sampled_from(["\t", ":", "- ", "{", "&a ", "*a", "\n  ", "'", "\x00", "!!"]), any_text),
    ),
    any_text,
)


def test_generated_policies(served):
    policy = {m.name: m for m in served.methods if m.service == "proxyvote.v1.PolicyService"}
    recommend = next(m for m in served.methods if m.name == "Recommend")
    base = recommendation_service_pb2.RecommendRequest.FromString(
        SEEDS["proxyvote.v1.RecommendationService/Recommend"][0]
    )
    created = []

    @fuzz_settings("policies")
    @given(
        source=policy_sources,
        filename=st.one_of(st.just("fuzz.yaml"), st.just(""), generic_text),
        rpc=st.sampled_from(["ValidatePolicy", "ValidatePolicy", "CreatePolicy", "UpdatePolicy"]),
    )
    def run(source, filename, rpc):
        if rpc == "CreatePolicy":  # a new id each time, so each stored policy is then used
            source = source.replace(
                "id: fuzz-new", f"id: fuzz-new-{len(served.sent)}-{sum(served.sent.values())}"
            )
        if rpc == "UpdatePolicy":
            request = policy_service_pb2.UpdatePolicyRequest(
                name="fuzz-own", expected_version=1, source=source, filename=filename
            )
        else:
            request = getattr(policy_service_pb2, f"{rpc}Request")(source=source, filename=filename)
        code = call(served, policy[rpc], [request.SerializeToString()], "policies")
        if rpc == "CreatePolicy" and code == grpc.StatusCode.OK:
            # A policy that was stored is used at once: its CEL runs on a real meeting.
            try:
                listed = policy_service_pb2.GetPolicyRequest(name=yaml.safe_load(source)["id"])
            except Exception:  # not YAML, or no id: nothing was stored
                return
            try:
                got = served.channel.unary_unary(
                    "/proxyvote.v1.PolicyService/GetPolicy",
                    response_deserializer=policy_service_pb2.GetPolicyResponse.FromString,
                )(listed.SerializeToString(), metadata=served.metadata, timeout=CALL_TIMEOUT)
            except grpc.RpcError:
                return
            ref = f"{got.policy.id}@{got.policy.version}"
            if ref in created:
                return
            created.append(ref)
            base.policy = ref
            call(served, recommend, [base.SerializeToString()], "policies")

    run()
    assert_still_serving(served)


# --- 4. memo templates --------------------------------------------------------------------------

JINJA_PIECES = [
    "{{ meeting.issuer.name }}",
    "{% for i in items %}{{ i.title|e }}{% endfor %}",
    "{% if items %}x{% else %}y{% endif %}",
    "{{ items|length }}",
    "{{ 'a' * 100001 }}",
    "{{ 'a' * 99999 }}",
    "{{ 9 ** 99 }}",
    "{{ 9 ** 9 ** 9 }}",
    "{{ range(10**9)|list|length }}",
    "{% for i in range(10**8) %}{% endfor %}",
    "{{ ''.__class__ }}",
    "{{ meeting['__class__'] }}",
    "{{ _private }}",
    "{{ items|attr('__class__') }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ self._TemplateReference__context }}",
    "{{ ''|format('%s' * 3, 1) }}",
    "{% include 'memo.html.j2' %}",
    "{% extends 'x' %}",
    "{% import 'x' as y %}",
    "{% macro m(n) %}{{ m(n) }}{% endmacro %}{{ m(1) }}",
    "{% set x = [1] %}{% for i in x %}{% do x.append(i) %}{% endfor %}",
    "{% raw %}{{ x }}{% endraw %}",
    "{{ unknown.attr.chain }}",
    "{{ meeting.issuer.name|replace('a', 'a' * 1000)|replace('a', 'a' * 1000) }}",
    "{{ 1/0 }}",
    "{{ '%s'|format(meeting) }}",
    "{{ x",
    "{% for %}",
    "{% endfor %}",
    "{#",
    "{{ " + "(" * 1_000 + "1" + ")" * 1_000 + " }}",
    "{% if 1 %}" * 500 + "{% endif %}" * 500,
    "{{ [" + "[" * 2_000 + "]" * 2_000 + "] }}",
    "{{ " + "a." * 10_000 + "b }}",
    "{{ 1" + " + 1" * 20_000 + " }}",
    "x" * 200_001,
    "<script>{{ items }}</script>",
]

template_sources = st.one_of(
    st.lists(st.one_of(st.sampled_from(JINJA_PIECES), any_text), min_size=1, max_size=4).map("".join),
    any_text,
    huge_text,
)
template_names = st.one_of(
    st.just("fuzz-memo"), st.just("fuzz-other"), st.from_regex(r"\A[a-z0-9][a-z0-9-]{0,120}\Z"), generic_text
)


def test_generated_templates(served):
    memo = {m.name: m for m in served.methods if m.service == "proxyvote.v1.MemoService"}
    renders = Counter()

    @fuzz_settings("templates")
    @given(source=template_sources, name=template_names)
    def run(source, name):
        upload = memo_service_pb2.UploadMemoTemplateRequest(name=name, source=source)
        call(served, memo["UploadMemoTemplate"], [upload.SerializeToString()], "templates")
        # Some of the stored ones are rendered (each render starts a process: not all).
        if name == "fuzz-other" and renders["n"] < max(3, examples("templates") // 20):
            renders["n"] += 1
            render = memo_service_pb2.RenderMemoRequest(decision_id=DECISION_IDS[0], template="fuzz-other")
            call(served, memo["RenderMemo"], [render.SerializeToString()], "templates")

    run()
    assert_still_serving(served)
