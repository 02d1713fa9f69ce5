"""Voting choice: programmes, accounts (choice versions, holdings), vote plans, on SQLite and PostgreSQL.

Every account, custodian and holding here is synthetic (ids SYN-... or made up inline).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections import defaultdict
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from proxyvote.app.accounts import Programmes, parse_shares, read_accounts
from proxyvote.app.synth import ACCOUNT_PROVENANCE, synth_accounts, write_accounts
from proxyvote.app.vote_plans import VotePlans
from proxyvote.cli.main import main
from proxyvote.core.model import REFER, VOTES, RecommendCommand
from proxyvote.core.vote_plan import (
    AccountChoice,
    AccountPosition,
    Holding,
    Programme,
    check_totals,
    plan_votes,
    positions_at,
    security_problem,
)
from proxyvote.errors import AccountsFileInvalid, InvalidArgument, NotFound
from proxyvote.store import SHARED

from .conftest import TODAY, cli_programme, example_meeting, retitled

THREE = ("human-rights-esg", "governance-baseline", "board-aligned")
ISIN = "US0231351067"  # the demo meeting's issuer (in examples/meetings/amazon-2020-agm.json)
CUSIP = "023135106"
HEADER = "account_id,custodian_account,policy,effective_date,security,shares,as_of\n"


def programmes(app) -> Programmes:
    return Programmes(app.store.programmes, lambda tenant, policy: app.catalog.entry(tenant, policy))


def define(app, name="choice", policies=THREE, default="board-aligned", tenant=SHARED):
    return programmes(app).define(tenant, name, policies, default)


def import_text(app, text: str, name="accounts.csv", programme="choice", tenant=SHARED):
    return programmes(app).import_accounts(tenant, programme, name, text.encode())


def synthetic_csv(tmp_path, n=10_000, seed=20, as_of=dt.date(2020, 1, 2)):
    path = tmp_path / "accounts.csv"
    rows = list(synth_accounts(n, ISIN, THREE, seed, as_of))
    write_accounts(rows, str(path))
    return path, rows


def in_force_policy(rows, record_date, default) -> dict[str, tuple[str, Decimal]]:
    """The reference reading of a synthetic file: per account, the latest choice on or before the
    record date ("" = default) and its shares (one holding each in these files)."""
    latest: dict[str, tuple[dt.date, str]] = {}
    shares: dict[str, Decimal] = {}
    for row in rows:
        date = dt.date.fromisoformat(row["effective_date"])
        if date <= record_date and (row["account_id"] not in latest or date > latest[row["account_id"]][0]):
            latest[row["account_id"]] = (date, row["policy"])
        if row["security"]:
            shares[row["account_id"]] = Decimal(row["shares"])
    return {a: (latest[a][1] or default, s) for a, s in shares.items()}


# --- the done-when case -------------------------------------------------------------------------------


def test_amazon_2020_with_10000_synthetic_accounts_splits_items_6_and_7_by_the_shares_whose_policy_voted_for(
    app, tmp_path
):
    meeting = example_meeting("amazon-2020-agm")
    assert meeting.issuer.isin == ISIN
    define(app)
    path, rows = synthetic_csv(tmp_path)
    assert all(r["account_id"].startswith("SYN-") and r["note"] == "SYNTHETIC" for r in rows)
    import_text(app, path.read_text())

    stored = VotePlans.from_app(app).make(SHARED, meeting, "choice", TODAY)
    plan = stored.plan

    # Independently: each policy's own decision, and the synthetic file read by the reference above.
    accounts = in_force_policy(rows, meeting.record_date, "board-aligned")
    held = sum(s for _, s in accounts.values())
    assert len(plan.accounts) == len(accounts) == 10_000
    votes = {
        policy: {
            r.item_id: r.vote
            for r in app.log.decide(
                SHARED, RecommendCommand(meeting, policy, stored.as_of), TODAY
            ).recommendations
        }
        for policy in THREE
    }
    for item in plan.items:
        assert item.total == held  # every share, exactly: no rounding
        expected = defaultdict(Decimal)
        for policy, shares in accounts.values():
            expected[votes[policy][item.item_id]] += shares
        assert dict(item.shares_by_vote) == {v: s for v, s in expected.items() if v != REFER and s}
        assert item.referred_shares == expected.get(REFER, Decimal(0))
    for item_id in ("6", "7"):
        item = next(i for i in plan.items if i.item_id == item_id)
        voted_for = sum((s for p, s in accounts.values() if votes[p][item_id] == "FOR"), Decimal(0))
        assert 0 < voted_for < held  # a real split
        assert item.shares("FOR") == voted_for
        assert item.shares("AGAINST") == held - voted_for
        assert item.shares("FOR") / item.total == voted_for / held
    check_totals(plan)


# --- choices, versions, defaults -------------------------------------------------------------------------


def test_a_later_choice_is_a_new_version_and_the_record_date_picks_the_one_in_force(app):
    define(app)
    import_text(app, HEADER + f"SYN-A,SYN-C1,human-rights-esg,2020-01-01,{ISIN},100,2020-01-01\n")
    summary = import_text(app, HEADER + "SYN-A,SYN-C1,governance-baseline,2020-06-01,,,\n").summary
    assert (summary.accounts_changed, summary.choices_added) == (1, 1)
    choices, _ = app.store.programmes.choices_and_holdings(SHARED, "choice", [ISIN], dt.date(2021, 1, 1))
    assert sorted((c.effective_date, c.policy) for c in choices) == [
        (dt.date(2020, 1, 1), "human-rights-esg"),
        (dt.date(2020, 6, 1), "governance-baseline"),
    ]
    programme = app.store.programmes.get(SHARED, "choice").programme
    plans = VotePlans.from_app(app)
    meeting = example_meeting("amazon-2020-agm")  # record date 2020-03-30
    assert plans.positions(SHARED, programme, meeting).positions[0].policy == "human-rights-esg"
    later = meeting.__class__(**{**_fields(meeting), "record_date": dt.date(2020, 7, 1)})
    assert plans.positions(SHARED, programme, later).positions[0].policy == "governance-baseline"


def _fields(value) -> dict:
    return {f: getattr(value, f) for f in value.__slots__}


def test_a_changed_choice_on_a_stored_date_is_refused_and_nothing_is_stored(app):
    define(app)
    import_text(app, HEADER + f"SYN-A,SYN-C1,human-rights-esg,2020-01-01,{ISIN},100,2020-01-01\n")
    with pytest.raises(AccountsFileInvalid) as error:
        import_text(
            app,
            HEADER
            + f"SYN-B,SYN-C1,board-aligned,2020-01-01,{ISIN},7,2020-01-01\n"
            + f"SYN-A,SYN-C1,board-aligned,2020-01-01,{ISIN},100,2020-01-01\n",
        )
    assert [v.field for v in error.value.violations] == ["accounts.csv:line 3"]
    assert "never overwritten" in error.value.violations[0].description
    assert app.store.programmes.count_accounts(SHARED, "choice") == 1  # SYN-B was not stored either


def test_accounts_without_a_choice_and_a_choice_no_longer_offered_follow_the_default():
    programme = Programme("p", ("a", "b"), "b")
    day = dt.date(2024, 3, 1)
    choices = [
        AccountChoice("SYN-1", "C", "a", dt.date(2024, 1, 1)),
        AccountChoice("SYN-2", "C", "", dt.date(2024, 1, 1)),  # no choice
        AccountChoice("SYN-3", "C", "withdrawn-policy", dt.date(2024, 1, 1)),
        AccountChoice("SYN-4", "C", "a", dt.date(2024, 5, 1)),  # not yet in force
        AccountChoice("SYN-5", "C", "a", dt.date(2024, 1, 1)),
    ]
    holdings = [Holding(f"SYN-{i}", ISIN, dt.date(2024, 1, 1), Decimal(10 * i)) for i in range(1, 6)]
    holdings.append(Holding("SYN-5", ISIN, dt.date(2024, 2, 1), Decimal(0)))  # sold before the record date
    found = positions_at(programme, day, choices, holdings)
    assert [(p.account_id, p.policy, p.chose, p.shares) for p in found.positions] == [
        ("SYN-1", "a", True, 10),
        ("SYN-2", "b", False, 20),
        ("SYN-3", "b", False, 30),
        ("SYN-4", "b", False, 40),
    ]
    assert found.not_offered == (("SYN-3", "withdrawn-policy"),)


def test_a_programme_that_stops_offering_a_policy_sends_its_accounts_to_the_default_and_says_so(app):
    define(app)
    import_text(app, HEADER + f"SYN-A,SYN-C1,human-rights-esg,2020-01-01,{ISIN},100,2020-01-01\n")
    stored, what = define(app, policies=("governance-baseline", "board-aligned"))
    assert (stored.version, what) == (2, "new version")
    plan = VotePlans.from_app(app).make(SHARED, example_meeting("amazon-2020-agm"), "choice", TODAY)
    assert plan.not_offered == (("SYN-A", "human-rights-esg"),)
    assert [(a.policy, a.chose) for a in plan.plan.accounts] == [("board-aligned", False)]
    assert plan.programme_version == 2
    assert define(app, policies=("governance-baseline", "board-aligned"))[1] == "unchanged"


def test_a_programme_offering_an_unknown_policy_or_a_default_it_does_not_offer_is_refused(app):
    with pytest.raises(InvalidArgument) as error:
        programmes(app).define(SHARED, "p", ("human-rights-esg", "no-such-policy"), "board-aligned")
    fields = [(v.field, v.description) for v in error.value.violations]
    assert ("default", "'board-aligned' is not among the policies on offer") in fields
    assert ("policy", "'no-such-policy': no such policy") in fields
    with pytest.raises(NotFound):
        app.store.programmes.get(SHARED, "p")


# --- REFER, the file format, idempotence ---------------------------------------------------------------


def test_accounts_whose_policy_refers_an_item_are_counted_apart(app):
    define(app)
    import_text(
        app,
        HEADER
        + f"SYN-A,SYN-C1,human-rights-esg,2020-01-01,{ISIN},100.5,2020-01-01\n"
        + f"SYN-B,SYN-C1,governance-baseline,2020-01-01,{ISIN},20,2020-01-01\n"
        + f"SYN-C,SYN-C2,board-aligned,2020-01-01,{CUSIP},3,2020-01-01\n",
    )
    # An item no policy can classify: the two policies that refer what they cannot decide do.
    meeting = retitled(
        example_meeting("amazon-2020-agm"), 13, "Synthetic item: approve the zorbling of the ledger"
    )
    plan = VotePlans.from_app(app).make(SHARED, meeting, "choice", TODAY).plan
    item = plan.items[13]
    assert item.referred_shares == Decimal("120.5")
    assert item.referred_accounts == 2
    assert item.referred_policies == ("governance-baseline", "human-rights-esg")
    assert dict(item.shares_by_vote) == {"AGAINST": Decimal(3)}
    assert item.total == Decimal("123.5")


def test_importing_the_same_file_twice_changes_nothing(app, tmp_path):
    define(app)
    path, _ = synthetic_csv(tmp_path, n=300, seed=3)
    first = import_text(app, path.read_text()).summary
    assert (first.accounts_added, first.holdings_added) == (300, 300)
    again = import_text(app, path.read_text()).summary
    assert (again.accounts_added, again.accounts_changed, again.accounts_unchanged) == (0, 0, 300)
    assert (again.choices_added, again.holdings_added) == (0, 0)


def test_a_bad_csv_reports_every_bad_line_and_column_and_stores_nothing(app):
    define(app)
    text = (
        f"# synthetic test file\n{HEADER}"
        f"SYN-1,SYN-C1,human-rights-esg,2020-01-01,{ISIN},10,2020-01-01\n"  # line 3: good
        f"SYN-2,SYN-C1,no-such-policy,2020-01-01,{ISIN},-1,2020-01-01\n"  # line 4: policy, shares
        f"SYN-3,,board-aligned,2020-02-30,{ISIN},NaN,2020-01-01\n"  # line 5: custodian, date, shares
        f"SYN-4,SYN-C1,board-aligned,2020-01-01,US0231351068,1.5,2020-01-01\n"  # line 6: check digit
        f"SYN-5,SYN-C1,board-aligned,2020-01-01,{ISIN},1e400,\n"  # line 7: shares, as_of
        f"SYN-6,SYN-C1,board-aligned\n"  # line 8: cells
        f"SYN-7\x01,SYN-C1,board-aligned,2020-01-01,{ISIN},1,2020-01-01\n"  # line 9: a control character
    )
    with pytest.raises(AccountsFileInvalid) as error:
        import_text(app, text)
    fields = [v.field for v in error.value.violations]
    assert fields == [
        "accounts.csv:line 4: policy",
        "accounts.csv:line 4: shares",
        "accounts.csv:line 5: custodian_account",
        "accounts.csv:line 5: effective_date",
        "accounts.csv:line 5: shares",
        "accounts.csv:line 6: security",
        "accounts.csv:line 7: shares",
        "accounts.csv:line 7: as_of",
        "accounts.csv:line 8",
        "accounts.csv:line 9: account_id",
    ]
    assert app.store.programmes.count_accounts(SHARED, "choice") == 0


def test_shares_are_exact_decimals_never_floats():
    assert parse_shares("0.1") + parse_shares("0.2") == Decimal("0.3")
    for bad in ("-1", "NaN", "inf", "1,000", "", 0.5):
        with pytest.raises(ValueError):
            parse_shares(bad)


def test_a_csv_cell_the_reader_cannot_read_is_the_files_problem_at_its_line():
    # Found by tests/test_fuzz.py: csv.Error (a cell over 128 KiB) came back as INTERNAL.
    content = (
        "account_id,custodian_account,policy,effective_date,security,shares,as_of\n"
        "A1,C1,b,2020-01-02,US0231351067,1,2020-01-02\n"
        f'A2,C1,b,2020-01-02,US0231351067,"{"9" * 200_000}",2020-01-02\n'
    ).encode()
    with pytest.raises(AccountsFileInvalid) as error:
        read_accounts("big.csv", content, Programme("p", ("a", "b"), "b"))
    [violation] = error.value.violations
    assert violation.field == "big.csv:line 3" and "field limit" in violation.description


def test_a_parquet_file_imports_like_the_csv_and_a_float_shares_column_is_refused(app, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    define(app)
    rows = list(synth_accounts(50, ISIN, THREE, 5, dt.date(2020, 1, 2)))
    write_accounts(rows, str(tmp_path / "a.parquet"))
    write_accounts(rows, str(tmp_path / "a.csv"))
    assert pq.read_schema(tmp_path / "a.parquet").metadata[b"provenance"].decode() == ACCOUNT_PROVENANCE
    programme = app.store.programmes.get(SHARED, "choice").programme
    from_parquet = read_accounts("a.parquet", (tmp_path / "a.parquet").read_bytes(), programme)
    from_csv = read_accounts("a.csv", (tmp_path / "a.csv").read_bytes(), programme)
    assert [v for _, v in from_parquet.holdings] == [v for _, v in from_csv.holdings]
    assert [v for _, v in from_parquet.choices] == [v for _, v in from_csv.choices]
    table = pq.read_table(tmp_path / "a.parquet")
    floats = table.set_column(5, "shares", pa.array([1.5] * table.num_rows, pa.float64()))
    pq.write_table(floats, tmp_path / "f.parquet")
    with pytest.raises(AccountsFileInvalid) as error:
        read_accounts("f.parquet", (tmp_path / "f.parquet").read_bytes(), programme)
    assert error.value.violations[0].field == "f.parquet: shares"


def test_securities_are_isins_or_cusips_with_their_check_digits():
    assert security_problem(ISIN) is None and security_problem(CUSIP) is None
    assert "check digit" in security_problem("US0231351068")
    assert "check digit" in security_problem("023135107")
    assert security_problem("AMZN") is not None


# --- stored plans ---------------------------------------------------------------------------------------


def test_a_stored_plan_reads_back_whole_and_replays_identically(app, tmp_path):
    define(app)
    path, _ = synthetic_csv(tmp_path, n=500, seed=9)
    import_text(app, path.read_text())
    plans = VotePlans.from_app(app)
    made = plans.make(SHARED, example_meeting("amazon-2020-agm"), "choice", TODAY)
    got = plans.get(SHARED, made.plan_id)
    assert got.plan == made.plan
    assert got.meeting == made.meeting
    assert set(got.decision_ids) == {p.policy for p in made.plan.policies}
    totals_only = plans.get(SHARED, made.plan_id, accounts=False)  # what an N-PX table reads
    assert totals_only.plan.items == made.plan.items and totals_only.plan.policies == made.plan.policies
    assert totals_only.plan.accounts == ()
    replay = plans.replay(SHARED, made.plan_id)
    assert replay.identical and replay.differing_item_ids == ()
    assert all(same for _, _, same in replay.decisions)
    listed = plans.list(SHARED, "choice", dt.date(2020, 5, 1), dt.date(2020, 6, 30))
    assert [s.plan_id for s in listed] == [made.plan_id]
    assert plans.list(SHARED, "choice", dt.date(2021, 1, 1)) == []
    with pytest.raises(NotFound):
        plans.get("another-tenant", made.plan_id)


def test_a_meeting_no_account_holds_is_refused(app):
    define(app)
    with pytest.raises(InvalidArgument, match="no account of choice holds"):
        VotePlans.from_app(app).make(SHARED, example_meeting("amazon-2020-agm"), "choice", TODAY)


# --- the command line, end to end -----------------------------------------------------------------------


def test_plan_via_the_cli_end_to_end(tmp_path, capsys):
    env, accounts = cli_programme(tmp_path, accounts=2000, seed=4)
    assert accounts.read_text().startswith(f"# {ACCOUNT_PROVENANCE}")
    assert main(["accounts", "import", str(accounts), "--programme", "choice"], env) == 0
    assert "accounts added 2000" in capsys.readouterr().out
    assert main(["accounts", "import", str(accounts), "--programme", "choice"], env) == 0
    assert "unchanged 2000" in capsys.readouterr().out
    meeting = "examples/meetings/amazon-2020-agm.json"
    rows_path = tmp_path / "rows.csv"
    args = [
        "plan",
        "--meeting",
        meeting,
        "--programme",
        "choice",
        "--format",
        "json",
        "--output",
        str(rows_path),
    ]
    assert main(args, env) == 0
    doc = json.loads(capsys.readouterr().out)
    rows = list(csv.DictReader(io.StringIO(rows_path.read_text())))
    assert len(rows) == 2000 * len(doc["item_ids"])
    by_item: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for row in rows:
        by_item[row["item_id"]][row["vote"]] += Decimal(row["shares"])
    for item in doc["items"]:
        assert dict(by_item[item["item_id"]]) == {v: Decimal(s) for v, s in item["shares_by_vote"]}
    assert main(["plan", "--replay", doc["plan_id"]], env) == 0
    assert f"plan {doc['plan_id']}: identical" in capsys.readouterr().out
    assert main(["plan", "--meeting", meeting, "--programme", "choice"], env) == 0
    table = capsys.readouterr().out
    assert "2000 accounts" in table and "REFER shares" in table

    bad = tmp_path / "bad.csv"
    bad.write_text(HEADER + "SYN-X,SYN-C,nope,2020-01-01,,,\nSYN-Y,SYN-C,board-aligned,soon,,,\n")
    assert main(["accounts", "import", str(bad), "--programme", "choice"], env) == 2
    err = capsys.readouterr().err
    assert f"{bad}:line 2: policy" in err and f"{bad}:line 3: effective_date" in err
    assert "nothing was stored" in err


# --- the plan against a plain reference ------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_decisions(recommender):
    meeting = retitled(
        example_meeting("amazon-2020-agm"), 13, "Synthetic item: approve the zorbling of the ledger"
    )
    return {p: recommender.decide(RecommendCommand(meeting, p, dt.date(2020, 5, 20)), TODAY) for p in THREE}


shares_strategy = st.decimals(min_value=0, max_value=10**9, places=3, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(THREE), shares_strategy), min_size=1, max_size=60))
def test_plan_votes_equals_a_plain_per_account_loop(three_decisions, accounts):
    positions = [
        AccountPosition(f"SYN-{i}", policy, shares, True, f"SYN-C{i % 3}")
        for i, (policy, shares) in enumerate(accounts)
    ]
    followed = {p.policy for p in positions}
    decisions = {p: d for p, d in three_decisions.items() if p in followed}
    programme = Programme("p", THREE, THREE[2])
    plan = plan_votes(programme, ISIN, None, decisions, {p: f"d-{p}" for p in decisions}, positions)

    # The reference: every account, every item, one at a time.
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    referred_accounts: dict[str, int] = defaultdict(int)
    for position in positions:
        for rec in decisions[position.policy].recommendations:
            totals[rec.item_id][rec.vote] += position.shares
            referred_accounts[rec.item_id] += rec.vote == REFER
    held = sum((p.shares for p in positions), Decimal(0))
    for item in plan.items:
        expected = totals[item.item_id]
        assert dict(item.shares_by_vote) == {v: s for v, s in expected.items() if v in VOTES and s}
        assert item.referred_shares == expected.get(REFER, Decimal(0))
        assert item.referred_accounts == referred_accounts[item.item_id]
        assert item.total == held
    instructions = list(plan.instructions())
    assert len(instructions) == len(positions) * len(plan.item_ids)
    check_totals(plan)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from(("a", "b", "", "gone")), st.integers(0, 60)), max_size=40
    ),
    st.lists(st.tuples(st.integers(0, 5), st.integers(0, 60), st.integers(0, 50)), max_size=40),
    st.integers(0, 60),
)
def test_positions_at_equals_a_plain_reference(choices, holdings, day):
    start = dt.date(2024, 1, 1)
    programme = Programme("p", ("a", "b"), "a")
    record_date = start + dt.timedelta(days=day)
    values = [AccountChoice(f"SYN-{a}", f"SYN-C{a}", p, start + dt.timedelta(days=d)) for a, p, d in choices]
    held = [Holding(f"SYN-{a}", ISIN, start + dt.timedelta(days=d), Decimal(n)) for a, d, n in holdings]
    # Keep one version per account and date and one holding per account and date, as the store does.
    values = list({(c.account_id, c.effective_date): c for c in values}.values())
    held = list({(h.account_id, h.as_of): h for h in held}.values())
    found = positions_at(programme, record_date, values, held)

    expected = []
    for account in sorted({h.account_id for h in held}):
        past = [h for h in held if h.account_id == account and h.as_of <= record_date]
        if not past or not max(past, key=lambda h: h.as_of).shares:
            continue
        mine = [c for c in values if c.account_id == account and c.effective_date <= record_date]
        policy = max(mine, key=lambda c: c.effective_date).policy if mine else ""
        expected.append((account, policy if policy in ("a", "b") else "a", policy in ("a", "b")))
    assert [(p.account_id, p.policy, p.chose) for p in found.positions] == expected


def test_stored_positions_carry_a_format_marker_and_another_format_is_refused():
    import json
    import zlib

    from proxyvote.app.vote_plans import canonical, decode_positions, encode_positions

    positions = (
        AccountPosition("SYN-1", "a", Decimal("35.125"), True, "SYN-C1"),
        AccountPosition("SYN-2", "b", Decimal("1200"), False, "SYN-C2"),
    )
    assert decode_positions(encode_positions(positions, [("SYN-2", "gone")])) == (
        positions,
        (("SYN-2", "gone"),),
    )
    legacy = {"accounts": [["SYN-1", "SYN-C1", "a", 1, "35.125"]], "not_offered": []}
    assert decode_positions(zlib.compress(canonical(legacy).encode()))[0] == positions[:1]
    unknown = zlib.compress(json.dumps({"format": "positions/9", "not_offered": []}).encode())
    with pytest.raises(ValueError, match="positions/9"):
        decode_positions(unknown)
