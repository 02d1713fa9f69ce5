"""VotingChoiceService over a real server: programmes, accounts, plans and exports are the
calling tenant's own, the plan equals the holdings and the local `VotePlans.make`, the exports
read back to the plan, and the CLI with --server prints what local mode prints."""

from __future__ import annotations

import csv
import datetime as dt
import re
from collections import defaultdict
from decimal import Decimal

import grpc
import pytest
from proxyvote.app.synth import synth_accounts, write_accounts
from proxyvote.v1 import voting_choice_service_pb2 as vc
from proxyvote.v1 import voting_choice_service_pb2_grpc as vc_grpc
from proxyvote.wire import npx, seev
from proxyvote.wire.convert import VOTE_NAMES

from tests.conftest import TODAY, bad_request, bearer, example_meeting, meeting_message

pytestmark = pytest.mark.e2e

ISIN = "US0231351067"
THREE = ("human-rights-esg", "governance-baseline", "board-aligned")
MEETING = "examples/meetings/amazon-2020-agm.json"
HELD_FROM = dt.date(2020, 1, 2)


@pytest.fixture
def rpc(running_server):
    with grpc.insecure_channel(running_server.address) as channel:
        yield vc_grpc.VotingChoiceServiceStub(channel), running_server


def accounts_csv(tmp_path, n: int = 400, seed: int = 5, name: str = "accounts.csv"):
    path = tmp_path / name
    write_accounts(synth_accounts(n, ISIN, THREE, seed, HELD_FROM), str(path))
    return path


def holdings(path) -> Decimal:
    lines = [line for line in path.read_text().splitlines() if not line.startswith("#")]
    return sum((Decimal(r["shares"]) for r in csv.DictReader(lines) if r["security"]), Decimal(0))


def define(stub, key, name="choice", policies=THREE, default="board-aligned"):
    return stub.DefineProgramme(
        vc.DefineProgrammeRequest(name=name, policies=policies, default_policy=default),
        metadata=bearer(key),
        timeout=30,
    )


def import_accounts(stub, key, path, programme="choice"):
    return stub.ImportAccounts(
        vc.ImportAccountsRequest(programme=programme, file_name=path.name, content=path.read_bytes()),
        metadata=bearer(key),
        timeout=60,
    )


def plan_amazon(stub, key, programme="choice"):
    request = vc.PlanVotesRequest(meeting=meeting_message(), programme=programme)
    return stub.PlanVotes(request, metadata=bearer(key), timeout=120).plan


def code_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as raised:
        call()
    return raised.value.code()


def planned(rpc, tmp_path):
    stub, server = rpc
    define(stub, server.key)
    path = accounts_csv(tmp_path)
    import_accounts(stub, server.key, path)
    return stub, server, path, plan_amazon(stub, server.key)


def test_two_tenants_define_programmes_of_one_name_and_see_only_their_own(rpc, tmp_path):
    stub, server = rpc
    _, other_key = server.app.store.tenants.create("other")
    mine = define(stub, server.key)
    theirs = define(stub, other_key, policies=THREE[1:], default="governance-baseline")
    assert (mine.outcome, mine.programme.version, list(mine.programme.policies)) == (
        "created",
        1,
        list(THREE),
    )
    assert (theirs.outcome, theirs.programme.version) == ("created", 1)  # not a new version of mine
    assert define(stub, server.key).outcome == "unchanged"

    import_accounts(stub, server.key, accounts_csv(tmp_path))
    plan = plan_amazon(stub, server.key)
    assert plan.programme.policies == list(THREE)
    # The other tenant's programme of that name has no accounts; my plan is not theirs to read.
    assert code_of(lambda: plan_amazon(stub, other_key)) == grpc.StatusCode.INVALID_ARGUMENT
    for call in (
        lambda: stub.GetPlan(vc.GetPlanRequest(plan_id=plan.plan_id), metadata=bearer(other_key)),
        lambda: stub.ReplayPlan(vc.ReplayPlanRequest(plan_id=plan.plan_id), metadata=bearer(other_key)),
        lambda: list(
            stub.ExportSeev004(vc.ExportSeev004Request(plan_id=plan.plan_id), metadata=bearer(other_key))
        ),
        lambda: stub.ExportNpx(
            vc.ExportNpxRequest(programme="choice", period_year=2020), metadata=bearer(other_key)
        ),
    ):
        assert code_of(call) == grpc.StatusCode.NOT_FOUND


def test_plan_totals_equal_the_holdings_and_the_local_plan(rpc, tmp_path, sqlite_app):
    from proxyvote.app.accounts import Programmes
    from proxyvote.app.vote_plans import VotePlans
    from proxyvote.store import SHARED

    stub, server, path, plan = planned(rpc, tmp_path)
    held = holdings(path)
    assert Decimal(plan.total_shares) == held and plan.accounts == 400
    for item in plan.items:
        votes = sum((Decimal(s.shares) for s in item.shares_by_vote), Decimal(0))
        assert Decimal(item.total) == held == votes + Decimal(item.referred_shares)

    # Differential: the local VotePlans.make over the same file gives the same figures.
    Programmes.from_app(sqlite_app).define(SHARED, "choice", THREE, "board-aligned")
    Programmes.from_app(sqlite_app).import_accounts(SHARED, "choice", path.name, path.read_bytes())
    local = VotePlans.from_app(sqlite_app).make(SHARED, example_meeting(), "choice", TODAY).plan
    assert [
        (
            i.item_id,
            [(VOTE_NAMES[s.vote], Decimal(s.shares)) for s in i.shares_by_vote],
            Decimal(i.referred_shares),
        )
        for i in plan.items
    ] == [(i.item_id, list(i.shares_by_vote), i.referred_shares) for i in local.items]
    assert [
        (p.policy, p.accounts, Decimal(p.shares), [VOTE_NAMES[v] for v in p.votes]) for p in plan.policies
    ] == [(p.policy, p.accounts, p.shares, list(p.votes)) for p in local.policies]

    # Read back and replayed: the same plan, identical.
    got = stub.GetPlan(vc.GetPlanRequest(plan_id=plan.plan_id), metadata=bearer(server.key))
    assert got.plan == plan and not got.accounts
    replay = stub.ReplayPlan(vc.ReplayPlanRequest(plan_id=plan.plan_id), metadata=bearer(server.key))
    assert replay.identical and {d.decision_id for d in replay.decisions} == {
        p.decision_id for p in plan.policies
    }
    # The accounts, paged, hold every share.
    shares, token, pages = Decimal(0), "", 0
    while True:
        page = stub.GetPlan(
            vc.GetPlanRequest(plan_id=plan.plan_id, account_page_size=150, account_page_token=token),
            metadata=bearer(server.key),
        )
        shares += sum((Decimal(a.shares) for a in page.accounts), Decimal(0))
        pages += 1
        token = page.next_account_page_token
        if not token:
            break
    assert (shares, pages) == (held, 3)
    # A stored meeting by its id plans the same.
    from proxyvote.v1 import meeting_service_pb2, meeting_service_pb2_grpc

    meetings = meeting_service_pb2_grpc.MeetingServiceStub(grpc.insecure_channel(server.address))
    meetings.ImportMeetings(
        meeting_service_pb2.ImportMeetingsRequest(
            files=[meeting_service_pb2.MeetingFile(name="amazon.json", content=open(MEETING, "rb").read())]
        ),
        metadata=bearer(server.key),
    )
    again = stub.PlanVotes(
        vc.PlanVotesRequest(meeting_ref="AMZN-2020-AGM", programme="choice"), metadata=bearer(server.key)
    )
    assert again.plan.items == plan.items and again.plan.plan_id != plan.plan_id


def test_seev004_export_reads_back_to_the_plan(rpc, tmp_path):
    stub, server, _, plan = planned(rpc, tmp_path)
    replies = list(
        stub.ExportSeev004(vc.ExportSeev004Request(plan_id=plan.plan_id), metadata=bearer(server.key))
    )
    instructions = [r.instruction for r in replies if r.HasField("instruction")]
    summary = replies[-1].summary
    assert summary.plan_id == plan.plan_id and summary.instructions == len(instructions) >= 1
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for i in instructions:
        read = seev.read_meeting_instruction(i.xml, i.custodian_account)
        assert (read.plan_id, read.custodian_account) == (plan.plan_id, i.custodian_account)
        assert read.instruction_id == i.instruction_id
        for label, votes in read.votes.items():
            for vote, quantity in votes.items():
                totals[label][vote] += quantity
    for item in plan.items:
        assert dict(totals.get(item.item_id, {})) == {
            VOTE_NAMES[s.vote]: Decimal(s.shares) for s in item.shares_by_vote
        }
    # By meeting and programme: the meeting's latest plan, the same instructions.
    by_meeting = list(
        stub.ExportSeev004(
            vc.ExportSeev004Request(meeting_id="AMZN-2020-AGM", programme="choice"),
            metadata=bearer(server.key),
        )
    )
    assert by_meeting == replies


def test_npx_export_reads_back_through_the_npx_reader(rpc, tmp_path):
    stub, server, _, plan = planned(rpc, tmp_path)
    reply = stub.ExportNpx(
        vc.ExportNpxRequest(programme="choice", period_year=2020), metadata=bearer(server.key)
    )
    assert (reply.meetings, reply.period_start, reply.period_end) == (1, "2019-07-01", "2020-06-30")
    rows = npx.rows_from_xml(reply.xml, "table.xml", "fund", "export")
    voted = [i for i in plan.items if i.shares_by_vote]
    assert reply.rows == len(rows) == len(voted)
    assert len(reply.not_voted) == len(plan.items) - len(voted)
    for row, item in zip(rows, voted, strict=True):
        assert {lot.how_voted: lot.exact_shares for lot in row.lots} == {
            VOTE_NAMES[s.vote]: Decimal(s.shares) for s in item.shares_by_vote
        }
        assert row.shares_voted == sum((Decimal(s.shares) for s in item.shares_by_vote), Decimal(0))


def test_a_bad_accounts_file_is_invalid_argument_naming_each_line_and_stores_nothing(rpc, tmp_path):
    stub, server = rpc
    define(stub, server.key)
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "# SYNTHETIC\n"
        "account_id,custodian_account,policy,effective_date,security,shares,as_of\n"
        "A1,C1,board-aligned,2020-01-02,US0231351067,100,2020-01-02\n"
        "A2,C1,board-aligned,2020-01-02,US0231351067,-5,2020-01-02\n"
        "A3,C1,nobody,2020-01-02,US0231351067,7,2020-01-02\n"
        "A4,C1,,2020-13-02,US0231351067,7,2020-01-02\n"
    )
    with pytest.raises(grpc.RpcError) as raised:
        import_accounts(stub, server.key, bad)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    from grpc_status import rpc_status

    fields = [v.field for v in bad_request(rpc_status.from_call(raised.value)).field_violations]
    assert fields == ["bad.csv:line 4: shares", "bad.csv:line 5: policy", "bad.csv:line 6: effective_date"]
    assert server.app.store.programmes.count_accounts(server.tenant, "choice") == 0
    assert code_of(lambda: plan_amazon(stub, server.key)) == grpc.StatusCode.INVALID_ARGUMENT


def test_unknown_plan_and_programme_are_not_found(rpc):
    stub, server = rpc
    key = bearer(server.key)
    assert (
        code_of(lambda: stub.GetPlan(vc.GetPlanRequest(plan_id="nope"), metadata=key))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        code_of(lambda: stub.ReplayPlan(vc.ReplayPlanRequest(plan_id="nope"), metadata=key))
        == grpc.StatusCode.NOT_FOUND
    )
    assert (
        code_of(lambda: list(stub.ExportSeev004(vc.ExportSeev004Request(plan_id="nope"), metadata=key)))
        == grpc.StatusCode.NOT_FOUND
    )
    assert code_of(lambda: plan_amazon(stub, server.key, "nope")) == grpc.StatusCode.NOT_FOUND
    request = vc.ImportAccountsRequest(programme="nope", file_name="a.csv", content=b"x")
    assert code_of(lambda: stub.ImportAccounts(request, metadata=key)) == grpc.StatusCode.NOT_FOUND
    unknown_policy = lambda: define(stub, server.key, policies=("no-such-policy",), default="no-such-policy")  # noqa: E731
    assert code_of(unknown_policy) == grpc.StatusCode.INVALID_ARGUMENT


def plan_meeting(stub, key, meeting_id: str, meeting_date: str, programme: str = "choice") -> str:
    """A plan of the Amazon 2020 AGM renamed and moved (its record date, 2020-03-30, kept)."""
    meeting = meeting_message()
    meeting.meeting_id, meeting.meeting_date = meeting_id, meeting_date
    request = vc.PlanVotesRequest(meeting=meeting, programme=programme, as_of="2020-05-20")
    return stub.PlanVotes(request, metadata=bearer(key), timeout=120).plan.plan_id


def list_plans(stub, key, **filters) -> list[vc.PlanSummary]:
    """Every page of ListPlans, two plans a page."""
    plans, token = [], ""
    while True:
        reply = stub.ListPlans(
            vc.ListPlansRequest(page_size=2, page_token=token, **filters), metadata=bearer(key), timeout=30
        )
        plans.extend(reply.plans)
        token = reply.next_page_token
        if not token:
            return plans


def test_two_tenants_list_only_their_own_programmes_and_plans(rpc, tmp_path):
    stub, server = rpc
    _, other_key = server.app.store.tenants.create("other")
    define(stub, server.key, default="human-rights-esg")
    define(stub, server.key)  # version 2: another default
    define(stub, server.key, name="alpha", policies=THREE[2:], default="board-aligned")
    define(stub, other_key, default="governance-baseline")
    path = accounts_csv(tmp_path, n=30)
    import_accounts(stub, server.key, path)
    import_accounts(stub, other_key, path)
    mine = plan_meeting(stub, server.key, "M-1", "2020-05-27")
    theirs = plan_meeting(stub, other_key, "M-1", "2020-05-27")

    listed = stub.ListProgrammes(vc.ListProgrammesRequest(), metadata=bearer(server.key), timeout=30)
    assert [(p.name, p.version, p.default_policy) for p in listed.programmes] == [
        ("alpha", 1, "board-aligned"),
        ("choice", 2, "board-aligned"),
    ]
    assert list(listed.programmes[1].policies) == list(THREE) and listed.programmes[1].create_time
    assert (listed.total_size, listed.next_page_token) == (2, "")
    listed = stub.ListProgrammes(vc.ListProgrammesRequest(), metadata=bearer(other_key), timeout=30)
    assert [(p.name, p.version, p.default_policy) for p in listed.programmes] == [
        ("choice", 1, "governance-baseline")
    ]

    [plan] = list_plans(stub, server.key)
    assert (plan.plan_id, plan.programme, plan.programme_version) == (mine, "choice", 2)
    assert (plan.meeting_id, plan.meeting_date, plan.record_date, plan.security) == (
        "M-1",
        "2020-05-27",
        "2020-03-30",
        ISIN,
    )
    assert plan.accounts == 30 and len(plan.plan_hash) == 64 and plan.create_time.endswith("Z")
    whole = stub.GetPlan(vc.GetPlanRequest(plan_id=mine), metadata=bearer(server.key)).plan
    assert (plan.plan_hash, plan.create_time) == (whole.plan_hash, whole.create_time)
    assert [p.plan_id for p in list_plans(stub, other_key)] == [theirs]
    assert [p.plan_id for p in list_plans(stub, other_key, meeting_id="M-1", programme="choice")] == [theirs]


def test_list_plans_pages_return_every_plan_once_and_the_filters_apply(rpc, tmp_path):
    stub, server = rpc
    define(stub, server.key)
    define(stub, server.key, name="other")
    path = accounts_csv(tmp_path, n=30)
    import_accounts(stub, server.key, path)
    import_accounts(stub, server.key, path, programme="other")
    made = [
        ("M-3", "2021-05-26", plan_meeting(stub, server.key, "M-3", "2021-05-26")),
        ("M-1", "2020-05-27", plan_meeting(stub, server.key, "M-1", "2020-05-27")),
        ("M-2", "2020-06-15", plan_meeting(stub, server.key, "M-2", "2020-06-15")),
        ("M-1", "2020-05-27", plan_meeting(stub, server.key, "M-1", "2020-05-27")),  # planned again
        ("M-3", "2021-05-26", plan_meeting(stub, server.key, "M-3", "2021-05-26")),
    ]
    elsewhere = plan_meeting(stub, server.key, "M-2", "2020-06-15", programme="other")
    by_date = [plan_id for _, _, plan_id in sorted(made, key=lambda m: m[1])]  # stable: creation order

    def ids(**filters) -> list[str]:
        return [p.plan_id for p in list_plans(stub, server.key, **filters)]

    # Three pages of two, every plan once, by meeting date then creation.
    first = stub.ListPlans(vc.ListPlansRequest(page_size=2, programme="choice"), metadata=bearer(server.key))
    assert (len(first.plans), first.total_size, bool(first.next_page_token)) == (2, 5, True)
    assert ids(programme="choice") == by_date
    assert sorted(ids()) == sorted([*by_date, elsewhere])
    assert ids(programme="choice", date_from="2020-06-01") == by_date[2:]
    assert ids(programme="choice", date_to="2020-06-15") == by_date[:3]
    assert ids(date_from="2020-06-15", date_to="2020-06-15") == [by_date[2], elsewhere]
    assert ids(programme="choice", meeting_id="M-3") == by_date[3:]
    assert ids(programme="other") == [elsewhere]
    assert ids(programme="nope") == [] and ids(meeting_id="M-9") == []


def test_bad_list_filters_are_invalid_argument_naming_the_field(rpc):
    from grpc_status import rpc_status

    stub, server = rpc

    def fields(call, request) -> list[str]:
        with pytest.raises(grpc.RpcError) as raised:
            call(request, metadata=bearer(server.key), timeout=30)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        return [v.field for v in bad_request(rpc_status.from_call(raised.value)).field_violations]

    plans = stub.ListPlans
    assert fields(plans, vc.ListPlansRequest(date_from="2020-13-01")) == ["date_from"]
    assert fields(plans, vc.ListPlansRequest(date_to="tomorrow")) == ["date_to"]
    assert fields(plans, vc.ListPlansRequest(date_from="2021-01-01", date_to="2020-12-31")) == ["date_from"]
    assert fields(plans, vc.ListPlansRequest(page_token="not-a-token")) == ["page_token"]
    assert fields(plans, vc.ListPlansRequest(page_size=-1)) == ["page_size"]
    assert fields(plans, vc.ListPlansRequest(meeting_id="x" * 201)) == ["meeting_id"]
    assert fields(plans, vc.ListPlansRequest(date_to="2020-02-30", page_token="x")) == [
        "date_to",
        "page_token",
    ]
    assert fields(stub.ListProgrammes, vc.ListProgrammesRequest(page_token="not-a-token")) == ["page_token"]


IDS = re.compile(r"(PV)?(?<![0-9a-fA-F])[0-9a-fA-F]{30,}(?![0-9a-fA-F])")
TIMES = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z")


def masked(text: str, tmp_path) -> str:
    """Ids (plan, decision, instruction), creation times and folders differ between two databases."""
    text = TIMES.sub("TIME", text)
    return IDS.sub(
        "ID", text.replace(str(tmp_path / "local"), "DIR").replace(str(tmp_path / "remote"), "DIR")
    )


def test_the_cli_with_server_prints_what_local_mode_prints(running_server, tmp_path, capsys):
    from proxyvote.cli.main import main
    from proxyvote.store.schema import upgrade

    local_url = f"sqlite:///{tmp_path / 'local.db'}"
    upgrade(local_url)
    path = accounts_csv(tmp_path)
    local_env = {"DATABASE_URL": local_url}
    remote_env = {"DATABASE_URL": local_url, "PROXYVOTE_API_KEY": running_server.key}
    server = ["--server", running_server.address]

    def run(argv, remote: bool) -> tuple[int, str, str]:
        code = main(argv + (server if remote else []), remote_env if remote else local_env)
        out, err = capsys.readouterr()
        return code, masked(out, tmp_path), masked(err, tmp_path)

    policies = [a for p in THREE for a in ("--policy", p)]
    commands = [
        ["programme", "create", "choice", *policies, "--default", "board-aligned"],
        ["accounts", "import", str(path), "--programme", "choice"],
        ["accounts", "import", str(path), "--programme", "choice"],
        ["plan", "--meeting", MEETING, "--programme", "choice"],
        ["plan", "--meeting", MEETING, "--programme", "choice", "--format", "json"],
        ["programme", "list"],
        ["programme", "list", "--format", "json"],
        ["plan", "list"],
        ["plan", "list", "--format", "json"],
        ["plan", "list", "--programme", "choice", "--from", "2020-05-27", "--to", "2020-05-27"],
        ["plan", "list", "--meeting", "AMZN-2020-AGM", "--programme", "choice", "--format", "json"],
        ["plan", "list", "--from", "2021-01-01"],
        ["plan", "list", "--from", "2021-01-01", "--to", "2020-01-01"],
    ]
    for argv in commands:
        assert run(argv, False) == run(argv, True), argv
    # The plan written per account, the replay and the exports.
    outputs = {}
    for remote in (False, True):
        where = tmp_path / ("remote" if remote else "local")
        where.mkdir()
        code, out, _ = run(
            ["plan", "--meeting", MEETING, "--programme", "choice", "--output", str(where / "rows.csv")],
            remote,
        )
        outputs[remote] = [code, out, (where / "rows.csv").read_text()]
        code, out, err = run(
            [
                "export",
                "npx",
                "--programme",
                "choice",
                "--period",
                "2020",
                "--output",
                str(where / "npx.xml"),
            ],
            remote,
        )
        outputs[remote] += [code, out, err, (where / "npx.xml").read_bytes()]
        code, out, err = run(
            [
                "export",
                "seev004",
                "--meeting",
                "AMZN-2020-AGM",
                "--programme",
                "choice",
                "--output-dir",
                str(where / "seev"),
            ],
            remote,
        )
        outputs[remote] += [code, out, err, sorted(p.name for p in (where / "seev").iterdir())]
    assert outputs[False] == outputs[True]
    code, out, _ = run(["plan", "list"], True)
    assert code == 0 and out.count("AMZN-2020-AGM") == 3 and out.endswith("3 plan(s)\n")
    assert run(["plan", "list"], False) == (code, out, "")
    assert outputs[True][0] == 0 and len(outputs[True][2].splitlines()) == 1 + 400 * len(
        example_meeting().items
    )

    # A replay: the same lines, ids aside.
    lines = {}
    for remote, url in ((False, local_url), (True, running_server.url)):
        from proxyvote.app.wiring import build_app
        from proxyvote.settings import Settings
        from proxyvote.store import SHARED

        app = build_app(Settings.load({}, database_url=url))
        try:
            owner = running_server.tenant if remote else SHARED
            plan_id = app.store.vote_plans.list(owner, "choice")[-1].plan_id
        finally:
            app.close()
        lines[remote] = run(["plan", "--replay", plan_id], remote)
    assert lines[False] == lines[True] and lines[True][0] == 0

    # A bad file: the same lines on stderr, status 2.
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "account_id,custodian_account,policy,effective_date,security,shares,as_of\nA,C,,2020-01-02,US0231351067,-1,2020-01-02\n"
    )
    assert run(["accounts", "import", str(bad), "--programme", "choice"], False) == run(
        ["accounts", "import", str(bad), "--programme", "choice"], True
    )
    code, _, err = run(["accounts", "import", str(bad), "--programme", "choice"], True)
    assert code == 2 and "line 2: shares" in err and "nothing was stored" in err
