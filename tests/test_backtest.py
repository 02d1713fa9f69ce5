"""Backtests: the policy in force, the figures, determinism, storage, the RPC and the CLI."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from proxyvote.app import backtest as bt
from proxyvote.app.files import load_taxonomy
from proxyvote.app.synth import PROVENANCE, meetings_from_dicts, synth_meetings
from proxyvote.cli.main import main
from proxyvote.core.backtest import PolicyChoice, figures, run_backtest
from proxyvote.core.policy import read_policy
from proxyvote.core.policy_library import PolicyLibrary
from proxyvote.errors import NotFound, PolicyInvalid
from proxyvote.wire import convert

from tests.conftest import ROOT, bearer, example_meeting, servicers_under_test

POLICIES = ROOT / "policies"
AMAZON = [ROOT / "examples" / "meetings" / f"amazon-{y}-agm.json" for y in (2019, 2021)]
TWO = ["human-rights-esg", "board-aligned"]


@pytest.fixture(scope="module")
def taxonomy():
    return load_taxonomy(POLICIES)


@pytest.fixture(scope="module")
def spec(taxonomy):
    return _spec(taxonomy, TWO)


def _spec(taxonomy, references, evidence=(), with_rows=False):
    return bt.spec_for_files(POLICIES, references, evidence, with_rows=with_rows)


def _versioned(taxonomy, *dates):
    """A library of one policy, ``dated``, version n voting the n-th of FOR, AGAINST, ABSTAIN."""
    docs = []
    for n, date in enumerate(dates, start=1):
        when = f"effective_from: {date}\n" if date else ""
        vote = ("FOR", "AGAINST", "ABSTAIN")[n - 1]
        text = (
            f"id: dated\nversion: {n}\n{when}default:\n  vote: REFER\n"
            f"rules:\n  - id: all\n    vote: {vote}\n    why: Version {n}.\n"
        )
        docs.append(read_policy(text, f"dated-{n}.yaml", taxonomy))
    return PolicyLibrary.from_documents(docs)


# --- the policy in force -----------------------------------------------------


def test_the_version_in_force_is_the_highest_whose_date_has_come(taxonomy):
    library = _versioned(taxonomy, None, "2020-01-01", "2021-06-01")
    assert library.in_force("dated", dt.date(2019, 12, 31)).version == 1
    assert library.in_force("dated", dt.date(2020, 1, 1)).version == 2
    assert library.in_force("dated", dt.date(2021, 5, 31)).version == 2
    assert library.in_force("dated", dt.date(2030, 1, 1)).version == 3
    assert library.in_force("dated@1", dt.date(2030, 1, 1)).version == 1  # pinned


def test_no_version_in_force_before_the_first_date(taxonomy):
    library = _versioned(taxonomy, "2020-01-01")
    with pytest.raises(NotFound):
        library.in_force("dated", dt.date(2019, 1, 1))


def test_effective_from_is_validated_and_part_of_the_hash(taxonomy):
    base = "id: p\nversion: 1\n{}default:\n  vote: REFER\nrules: []\n"
    plain = PolicyLibrary.from_documents([read_policy(base.format(""), "p.yaml", taxonomy)]).get("p")
    dated = PolicyLibrary.from_documents(
        [read_policy(base.format("effective_from: 2025-02-01\n"), "p.yaml", taxonomy)]
    ).get("p")
    quoted = PolicyLibrary.from_documents(
        [read_policy(base.format('effective_from: "2025-02-01"\n'), "p.yaml", taxonomy)]
    ).get("p")
    assert dated.effective_from == dt.date(2025, 2, 1) and plain.effective_from is None
    assert dated.content_hash != plain.content_hash
    assert dated.content_hash == quoted.content_hash
    for bad in ("2025-02-30", "Feb 2025", "2025-02-01T10:00:00"):
        with pytest.raises(PolicyInvalid) as caught:
            read_policy(base.format(f"effective_from: {bad}\n"), "p.yaml", taxonomy)
        problem = caught.value.problems[0]
        # A date-like value that is no date fails in the YAML reader itself, without a path.
        assert "effective_from" in problem.path or "out of range" in problem.message


def test_a_backtest_decides_each_meeting_under_the_version_in_force_at_its_lead_date(taxonomy):
    library = _versioned(taxonomy, None, "2019-05-20")
    recommender = bt.Recommender(library, taxonomy)
    choice = PolicyChoice("dated", tuple(p for p in library.all()))
    meeting = example_meeting("amazon-2019-agm")  # 2019-05-22: as of 2019-05-15 with a 7-day lead
    early = figures(run_backtest([meeting], (choice,), recommender))
    late = figures(run_backtest([meeting], (choice,), recommender, lead_days=1))
    assert early["policies"][0]["versions_used"] == {"dated@1": 5}
    assert early["policies"][0]["votes"] == {"FOR": 5}
    assert late["policies"][0]["versions_used"] == {"dated@2": 5}
    assert late["policies"][0]["votes"] == {"AGAINST": 5}


# --- figures -------------------------------------------------------------------


def _amazon_figures(spec):
    meetings = [convert.meeting_from_json(p.read_text(encoding="utf-8")) for p in AMAZON]
    return bt.run_local(spec, bt.meeting_parts(meetings)).figures()


def test_amazon_human_rights_policy_agrees_with_both_advisers_on_both_rekognition_items(spec):
    result = _amazon_figures(spec)
    hr, board = result["policies"]
    assert hr["policy"] == "human-rights-esg" and board["policy"] == "board-aligned"
    # 2019 records ISS and Glass Lewis on three items: the ban, the study, climate.
    for adviser in ("ISS", "Glass Lewis"):
        assert hr["agreement_with_advisers"][adviser] == {
            "agree": 3,
            "disagree": 0,
            "total": 3,
            "referred": 0,
            "agreement_rate": 1.0,
        }
        assert board["agreement_with_advisers"][adviser]["agree"] == 1  # the ban: AGAINST, like the board
    flipped = {(f["meeting_id"], f["item_id"]): f["votes"] for f in result["flips"]}
    assert ("AMZN-2019-AGM", "6") not in flipped  # the outright ban: both AGAINST
    assert flipped[("AMZN-2019-AGM", "7")] == {"human-rights-esg": "FOR", "board-aligned": "AGAINST"}
    assert result["differences"][0]["items_differing"] == len(result["flips"])
    # Every item failed: the board-aligned policy sides with the outcome every time.
    assert board["agreement_with_outcome"]["agree"] == board["agreement_with_outcome"]["total"] == 8
    assert board["against_management"]["count"] == 0
    assert hr["shareholder_proposals"]["all"]["items"] == 8


def test_figures_count_votes_by_category_topic_and_year(spec):
    hr = _amazon_figures(spec)["policies"][0]
    assert sum(hr["votes"].values()) == hr["items"] == 8
    assert sum(sum(v.values()) for v in hr["votes_by_year"].values()) == 8
    assert set(hr["votes_by_year"]) == {"2019", "2021"}
    assert hr["votes_by_topic"]["facial_recognition"] == {"AGAINST": 1, "FOR": 2}
    assert "HUMAN_RIGHTS_OR_HUMAN_CAPITAL" in hr["votes_by_category"]


def test_the_same_meetings_give_the_same_figures_however_they_are_cut(spec):
    meetings = meetings_from_dicts(synth_meetings(120, seed=5))
    whole = bt.run_local(spec, bt.meeting_parts(meetings, per_part=1000)).figures()
    cut = bt.run_local(spec, bt.meeting_parts(list(reversed(meetings)), per_part=7)).figures()
    assert json.dumps(whole, sort_keys=True) == json.dumps(cut, sort_keys=True)
    assert whole["items"] == sum(len(m.items) for m in meetings)
    assert whole["flips"] == sorted(whole["flips"], key=lambda f: (f["meeting_date"], f["meeting_id"]))


def test_synthetic_meetings_say_so_and_read_as_the_validating_converter_reads_them():
    dicts = list(synth_meetings(40, seed=1))
    assert dicts == list(synth_meetings(40, seed=1))
    assert all(m["provenance"] == PROVENANCE and "SYNTHETIC" in PROVENANCE for m in dicts)
    kinds = {i["proponent"]["kind"] for m in dicts for i in m["items"]}
    assert kinds == {"MANAGEMENT", "SHAREHOLDER"}
    fast = meetings_from_dicts(dicts)
    assert fast == [convert.meeting_from_json(json.dumps(m)) for m in dicts]


def test_a_worker_refuses_a_policy_that_does_not_compile_to_its_hash(spec):
    label, versions = spec.choices[0]
    forged = versions[0].__class__(**{**versions[0].__dict__, "content_hash": "0" * 64})
    bad = bt.WorkSpec(
        spec.taxonomy_text,
        "taxonomy.yaml",
        spec.taxonomy_hash,
        ((label, (forged,)),),
        model_text=spec.model_text,
    )
    with pytest.raises(PolicyInvalid):
        bt.prepare(bad)


# --- Dask ----------------------------------------------------------------------


def test_a_local_cluster_gives_exactly_the_figures_of_the_in_process_run(spec, tmp_path):
    path = tmp_path / "synth.jsonl"
    main(["synth", "--meetings", "300", "--seed", "11", "--output", str(path)])
    parts = bt.file_parts(path, 6)
    assert sum(p.size for p in parts) == 300
    local = bt.run_local(spec, parts)
    seen = []
    on_cluster = bt.run_dask(
        spec, parts, workers=2, processes=True, progress=lambda d, t: seen.append((d, t))
    )
    assert json.dumps(on_cluster.figures(), sort_keys=True) == json.dumps(local.figures(), sort_keys=True)
    assert seen[-1] == (300, 300)


# --- stored runs and the RPC -----------------------------------------------------


def _import_amazon(app):
    app.store.meetings.import_meetings(
        "", [convert.meeting_from_json(p.read_text(encoding="utf-8")) for p in AMAZON]
    )


def test_a_stored_run_gives_the_same_figures_when_run_again(sqlite_app):
    _import_amazon(sqlite_app)
    backtests = bt.Backtests.from_app(sqlite_app)
    first, _ = backtests.run("", TWO)
    second, _ = backtests.run("", TWO)
    assert first.backtest_id != second.backtest_id
    assert first.figures == second.figures and first.figures_hash == second.figures_hash
    stored = backtests.get("", first.backtest_id)
    assert stored.figures == first.figures and stored.inputs == first.inputs
    assert stored.inputs["selection"]["meetings"] == 2
    assert [p["policy"] for p in stored.inputs["policies"]] == TWO
    assert all(len(v["content_hash"]) == 64 for p in stored.inputs["policies"] for v in p["versions"])
    assert stored.inputs["engine"].startswith("proxyvote-backtest/")


def test_run_backtest_streams_progress_then_the_summary_and_get_reads_it(sqlite_app):
    from proxyvote.v1 import backtest_service_pb2 as bs

    _import_amazon(sqlite_app)
    _, key = sqlite_app.store.tenants.create("analyst")
    server = servicers_under_test(sqlite_app)
    service = bs.DESCRIPTOR.services_by_name["BacktestService"]
    rpc = server.invoke_unary_stream(
        service.methods_by_name["RunBacktest"],
        bearer(key),
        bs.RunBacktestRequest(policies=TWO, date_to="2019-12-31"),
        None,
    )
    messages = []
    while True:
        message = rpc.take_response()
        if message is None:
            break
        messages.append(message)
        if message.HasField("summary"):
            break
    _, code, _ = rpc.termination()
    assert code.name == "OK"
    assert messages[-1].HasField("summary")
    assert messages[-2].progress.meetings_done == messages[-2].progress.meetings_total == 1
    summary = messages[-1].summary
    assert summary.meetings == 1 and summary.items == 5
    hr = summary.policies[0]
    assert hr.policy == "human-rights-esg"
    assert {a.party: (a.agree, a.disagree) for a in hr.advisers} == {"Glass Lewis": (3, 0), "ISS": (3, 0)}
    got = server.invoke_unary_unary(
        service.methods_by_name["GetBacktest"], bearer(key), bs.GetBacktestRequest(name=summary.name), None
    )
    response, _, code, _ = got.termination()
    assert code.name == "OK"
    assert response.backtest.figures_json == summary.figures_json
    missing = server.invoke_unary_unary(
        service.methods_by_name["GetBacktest"],
        bearer(key),
        bs.GetBacktestRequest(name="backtests/nope"),
        None,
    )
    assert missing.termination()[2].name == "NOT_FOUND"


def test_run_backtest_names_every_bad_field(sqlite_app):
    from proxyvote.v1 import backtest_service_pb2 as bs

    _, key = sqlite_app.store.tenants.create("analyst")
    server = servicers_under_test(sqlite_app)
    method = bs.DESCRIPTOR.services_by_name["BacktestService"].methods_by_name["RunBacktest"]
    rpc = server.invoke_unary_stream(
        method, bearer(key), bs.RunBacktestRequest(date_from="2019-13-01", lead_days=-1), None
    )
    _, code, details = rpc.termination()
    assert code.name == "INVALID_ARGUMENT"
    # A request for thousands of policies (each a pass over every meeting) is refused up front.
    rpc = server.invoke_unary_stream(
        method, bearer(key), bs.RunBacktestRequest(policies=["human-rights-esg"] * 51), None
    )
    _, code, details = rpc.termination()
    assert code.name == "INVALID_ARGUMENT" and "policies" in details


# --- the CLI -----------------------------------------------------------------------


def test_cli_backtest_over_files_prints_json_and_writes_rows_and_a_report(tmp_path, capsys):
    pytest.importorskip("pyarrow")
    out, csv, report = tmp_path / "rows.parquet", tmp_path / "rows.csv", tmp_path / "report.html"
    args = ["backtest", *sum((["--policy", p] for p in TWO), [])]
    args += sum((["--meetings", str(p)] for p in AMAZON), [])
    assert main(args + ["--format", "json", "--output", str(out), "--report", str(report)]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [p["policy"] for p in printed["policies"]] == TWO
    assert printed["inputs"]["selection"]["source"] == "files"
    import pandas as pd

    rows = pd.read_parquet(out)
    assert len(rows) == 2 * 8
    assert set(rows["policy"]) == set(TWO)
    assert main(args + ["--from", "2021-01-01", "--output", str(csv)]) == 0
    assert "1 meetings, 3 items" in capsys.readouterr().out
    assert len(pd.read_csv(csv)) == 2 * 3
    html = report.read_text(encoding="utf-8")
    assert "<svg" in html and "human-rights-esg" in html and "Shareholder proposal" in html


def test_cli_synth_is_deterministic(tmp_path):
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    assert main(["synth", "--meetings", "25", "--seed", "4", "-o", str(a)]) == 0
    assert main(["synth", "--meetings", "25", "--seed", "4", "-o", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    assert len(a.read_text().splitlines()) == 25
    assert Path(a).read_text().count(PROVENANCE) == 25


def test_npx_filings_give_agreement_with_each_filer(sqlite_app):
    from proxyvote.app.meeting_import import MeetingImporter, read_source_files

    npx = ROOT.parent / "shared" / "data" / "npx"
    if not (npx / "KIM_LLC_proxy_votes.xml").exists():
        pytest.skip("the shared N-PX files are not here")
    files = [str(npx / "KIM_LLC_proxy_votes.xml"), str(npx / "records-dev.jsonl")]
    MeetingImporter(sqlite_app.store.meetings).import_shared(read_source_files(files))
    stored, _ = bt.Backtests.from_app(sqlite_app).run("", TWO)
    for p in stored.figures["policies"]:
        filers = p["agreement_with_investors"]
        assert len(filers) >= 2 and "KIM_LLC_proxy_votes" in filers
        assert all(a["total"] == a["agree"] + a["disagree"] for a in filers.values())
        assert sum(a["total"] + a["referred"] for a in filers.values()) > 0


def test_the_catalog_gives_a_tenants_version_in_force(sqlite_app):
    catalog = sqlite_app.catalog
    tenant, _ = sqlite_app.store.tenants.create("dated-policies")
    text = (
        "id: dated\nversion: {n}\n{when}default:\n  vote: REFER\n"
        "rules:\n  - id: all\n    vote: FOR\n    why: All.\n"
    )
    catalog.create(tenant, text.format(n=1, when=""), "dated.yaml")
    catalog.update(tenant, "dated", 1, text.format(n=2, when="effective_from: 2020-01-01\n"), "dated.yaml")
    assert catalog.in_force("dated", dt.date(2019, 12, 31), tenant).version == 1
    assert catalog.in_force("dated", dt.date(2020, 1, 1), tenant).version == 2
    assert catalog.in_force("dated@1", dt.date(2024, 1, 1), tenant).version == 1
    with pytest.raises(NotFound):
        catalog.in_force("dated", dt.date(2020, 1, 1), "another-tenant")
