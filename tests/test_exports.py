"""`proxyvote export`: a stored vote plan leaves as seev.004 instructions and as the N-PX vote table,
and both read back to the plan's quantities."""

from __future__ import annotations

import csv
import json
from collections import defaultdict
from decimal import Decimal

from proxyvote.cli.main import main
from proxyvote.wire import npx, seev

from tests.conftest import cli_programme

MEETING = "examples/meetings/amazon-2020-agm.json"


def planned(tmp_path, capsys):
    env, accounts = cli_programme(tmp_path, accounts=2500, seed=8)
    assert main(["accounts", "import", str(accounts), "--programme", "choice"], env) == 0
    capsys.readouterr()
    assert main(["plan", "--meeting", MEETING, "--programme", "choice", "--format", "json"], env) == 0
    return env, json.loads(capsys.readouterr().out), accounts


def custodian_accounts(accounts_csv) -> set[str]:
    lines = [line for line in accounts_csv.read_text().splitlines() if not line.startswith("#")]
    return {row["custodian_account"] for row in csv.DictReader(lines)}


def test_seev004_export_gives_one_instruction_per_custodian_account_adding_up_to_the_plan(tmp_path, capsys):
    env, plan, accounts = planned(tmp_path, capsys)
    out = tmp_path / "seev"
    assert main(["export", "seev004", "--plan", plan["plan_id"], "--output-dir", str(out)], env) == 0
    files = sorted(out.glob("*.seev004.xml"))
    custodians = custodian_accounts(accounts)
    assert len(custodians) >= 2 and len(files) == len(custodians)
    totals: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for path in files:
        read = seev.read_meeting_instruction(path.read_bytes(), path.name)
        assert read.plan_id == plan["plan_id"]
        assert set(read.decision_ids.values()) == {p["decision_id"] for p in plan["policies"]}
        for label, votes in read.votes.items():
            for vote, quantity in votes.items():
                totals[label][vote] += quantity
    labels = {i["item_id"]: i for i in plan["items"]}
    assert set(totals) == set(labels)
    for item_id, item in labels.items():
        assert dict(totals[item_id]) == {v: Decimal(s) for v, s in item["shares_by_vote"]}

    # by meeting and programme: the meeting's latest plan, the same instructions
    again = tmp_path / "again"
    args = ["export", "seev004", "--meeting", plan["meeting_id"], "--programme", "choice"]
    assert main([*args, "--output-dir", str(again)], env) == 0
    assert [p.read_bytes() for p in sorted(again.glob("*.xml"))] == [p.read_bytes() for p in files]


def test_npx_export_writes_the_period_vote_table_that_reads_back_to_the_plan(tmp_path, capsys):
    env, plan, _ = planned(tmp_path, capsys)
    out = tmp_path / "npx.xml"
    args = ["export", "npx", "--programme", "choice", "--period", "2020", "--output", str(out)]
    assert main(args, env) == 0
    rows = npx.rows_from_xml(out.read_bytes(), "npx.xml", "Fund", "test")
    items = [i for i in plan["items"] if i["shares_by_vote"]]
    assert len(rows) == len(items)
    for row, item in zip(rows, items, strict=True):
        assert {lot.how_voted: lot.exact_shares for lot in row.lots} == {
            v: Decimal(s) for v, s in item["shares_by_vote"]
        }
    # a period without the meeting has nothing to report
    capsys.readouterr()
    empty = [
        "export",
        "npx",
        "--programme",
        "choice",
        "--period",
        "2022",
        "--output",
        str(tmp_path / "e.xml"),
    ]
    assert main(empty, env) != 0
    assert "no plans of programme choice" in capsys.readouterr().err
