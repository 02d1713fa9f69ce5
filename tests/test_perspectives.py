"""The perspectives memo (one column per policy) and the command line under several policies."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re

import lxml.html
import pytest
from proxyvote import ENGINE_VERSION
from proxyvote.core.model import RecommendCommand
from proxyvote.memo.render import FORMAT_HTML, FORMAT_MARKDOWN, FORMAT_PDF, HTML, MARKDOWN
from proxyvote.v1 import memo_service_pb2 as ms

from tests.conftest import (
    EXAMPLES,
    TODAY,
    bad_request,
    call,
    example_evidence,
    example_meeting,
    meeting_message,
    memo_renderer,
    retitled,
    servicers_under_test,
)

BUNDLED = ("human-rights-esg", "governance-baseline", "board-aligned")
AMAZON_2020 = str(EXAMPLES / "meetings" / "amazon-2020-agm.json")
AS_OF = dt.date(2020, 5, 20)


@pytest.fixture(scope="module")
def decisions(recommender):
    policies = tuple(recommender.policy(p) for p in BUNDLED)
    return recommender.decide_many(example_meeting(), policies, AS_OF, example_evidence())


IDS = ("d_one", "d_two", "d_three")


def test_the_html_shows_every_policys_vote_rule_and_rationale_for_every_item(decisions):
    content, content_type = memo_renderer().render_perspectives(decisions, FORMAT_HTML, IDS)
    assert content_type == HTML
    page = lxml.html.fromstring(content)

    # Header: each policy's id, version, hash and decision id; the engine and taxonomy.
    policies = page.xpath("//table[@class='policies']/tbody/tr")
    assert len(policies) == 3
    for row, d, decision_id in zip(policies, decisions, IDS, strict=True):
        text = row.text_content()
        assert f"{d.policy.id} v{d.policy.version}" in " ".join(text.split())
        assert d.policy.content_hash[:16] in text and decision_id in text
    header = page.xpath("//header")[0].text_content()
    assert ENGINE_VERSION in header and decisions[0].taxonomy_hash[:12] in header

    # The side-by-side table: one row per item, one cell per policy, in the given order.
    rows = page.xpath("//table[@class='grid']/tbody/tr")
    assert [r.get("data-item") for r in rows] == [i.item_id for i in example_meeting().items]
    heads = [" ".join(th.text_content().split()) for th in page.xpath("//table[@class='grid']/thead/tr/th")]
    assert heads == ["Item"] + [f"{d.policy.id} v{d.policy.version}" for d in decisions]
    for n, row in enumerate(rows):
        cells = row.xpath("./td[contains(@class, 'cell')]")
        assert [c.get("data-policy") for c in cells] == list(BUNDLED)
        for cell, d in zip(cells, decisions, strict=True):
            r = d.recommendations[n]
            assert cell.xpath(".//span[contains(@class, 'vote')]")[0].text_content() == r.vote
            assert cell.xpath(".//code")[0].text_content() == r.rule_id
            rationale = cell.xpath(".//p[@class='rationale']")[0]
            assert rationale.text.strip() == r.rationale.strip()
            flagged = bool(cell.xpath(".//span[@class='flag']"))
            assert flagged == r.against_management and ("against" in cell.get("class")) == flagged
            assert bool(cell.xpath(".//span[@class='tag']")) == r.needs_review
            for eid in r.cited_evidence_ids:
                assert eid in cell.xpath(".//p[@class='cited']")[0].text_content()

    # The summary table agrees, item by item.
    summary = page.xpath("//table[@class='summary']/tbody/tr")
    for n, row in enumerate(summary):
        votes = [
            c.xpath(".//span[contains(@class, 'vote')]")[0].text
            for c in row.xpath("./td[@class='vote-cell']")
        ]
        assert votes == [d.recommendations[n].vote for d in decisions]
    # The policies differ on Amazon 2020 (human-rights-esg supports proposals the others oppose).
    assert page.xpath("//table[@class='grid']/tbody/tr[contains(@class, 'split')]")


def test_the_markdown_shows_every_policys_vote_for_every_item(decisions):
    content, content_type = memo_renderer().render_perspectives(decisions, FORMAT_MARKDOWN, IDS)
    assert content_type == MARKDOWN
    text = content.decode()
    for d, decision_id in zip(decisions, IDS, strict=True):
        assert f"| {d.policy.id} | {d.policy.version} | {d.policy.content_hash[:12]} |" in text
        assert decision_id.replace("_", "\\_") in text
    summary = text.split("## Summary")[1].split("\n## ")[0]
    rows = [line for line in summary.splitlines() if line.startswith("| ") and "---" not in line][1:]
    items = example_meeting().items
    assert len(rows) == len(items)
    for n, line in enumerate(rows):
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[0] == re.sub(r"([\\`*_\[\]<>|#~!])", r"\\\1", items[n].number or items[n].item_id)
        votes = [re.match(r"\*\*(\w+)\*\*", c).group(1) for c in cells[3:]]
        assert votes == [d.recommendations[n].vote for d in decisions]
    # Each item's section has each policy's line, with its rule.
    for n, item in enumerate(items):
        section = text.split(f"### Item {item.number}: ")[1].split("\n### ")[0]
        for d in decisions:
            r = d.recommendations[n]
            assert f"**{d.policy.id}@{d.policy.version}: {r.vote}**" in section
            assert f"Rule `{r.rule_id}`" in section


def test_caller_text_is_escaped_in_the_html(recommender):
    meeting = retitled(example_meeting(), 0, "<script>alert(1)</script>")
    policies = tuple(recommender.policy(p) for p in BUNDLED[:2])
    decided = recommender.decide_many(meeting, policies, AS_OF, ())
    content, _ = memo_renderer().render_perspectives(decided, FORMAT_HTML)
    assert b"<script>" not in content and b"&lt;script&gt;" in content


def test_decisions_of_different_meetings_are_refused(recommender, decisions):
    other = recommender.decide_many(
        dataclasses.replace(example_meeting(), meeting_id="OTHER"),
        (recommender.policy("board-aligned"),),
        AS_OF,
        (),
    )
    with pytest.raises(ValueError, match="different meetings"):
        memo_renderer().render_perspectives(decisions + other, FORMAT_HTML)


def test_the_pdf_prints(decisions):
    pytest.importorskip("weasyprint")
    try:
        content, _ = memo_renderer().render_perspectives(decisions, FORMAT_PDF)
    except OSError as exc:  # pango missing: `make system-packages`
        pytest.skip(f"WeasyPrint cannot load its libraries: {exc}")
    assert content.startswith(b"%PDF")


# --- RenderMemo ---


def test_render_memo_perspectives_of_stored_decisions_and_of_policies(sqlite_app):
    tenant, key = sqlite_app.store.tenants.create("t")
    command = RecommendCommand(example_meeting(), "", AS_OF, example_evidence(), "")
    recorded = sqlite_app.log.recommend_many(tenant, command, BUNDLED, TODAY)
    ids = [r.decision_id for r in recorded]
    server = servicers_under_test(sqlite_app)

    stored, code, _, _ = call(
        server,
        "MemoService/RenderMemo",
        ms.RenderMemoRequest(
            variant=ms.MEMO_VARIANT_PERSPECTIVES, decision_ids=ids, format=ms.MEMO_FORMAT_HTML
        ),
        key,
    )
    assert code.name == "OK", code
    page = lxml.html.fromstring(stored.content)
    assert [
        c.get("data-policy") for c in page.xpath("//table[@class='grid']/tbody/tr[1]/td[@data-policy]")
    ] == list(BUNDLED)
    assert all(i in page.xpath("//table[@class='policies']")[0].text_content() for i in ids)

    decided, code, _, _ = call(
        server,
        "MemoService/RenderMemo",
        ms.RenderMemoRequest(
            variant=ms.MEMO_VARIANT_PERSPECTIVES,
            meeting=meeting_message(),
            policies=BUNDLED,
            as_of="2020-05-20",
            evidence=[],
            format=ms.MEMO_FORMAT_HTML,
        ),
        key,
    )
    assert code.name == "OK", code
    # The same votes, decided now rather than replayed (no decision ids in the header).
    grid = "//table[@class='grid']//span[contains(@class, 'vote')]/text()"
    assert lxml.html.fromstring(decided.content).xpath(grid) == page.xpath(grid)


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        (dict(variant=3, decision_ids=["d_x", "d_x"]), "decision_ids[1]"),
        (dict(variant=3, meeting=None, policies=[]), "policies"),
        (dict(variant=3, meeting=None, policies=["board-aligned", "board-aligned"]), "policies[1]"),
        (dict(variant=3, meeting=None, policy="board-aligned"), "policy"),
        (dict(variant=3, meeting=None, policies=["board-aligned"], template="mine"), "template"),
        (dict(variant=1, meeting=None, policy="board-aligned", decision_ids=["d_x"]), "decision_ids"),
        (dict(variant=1, meeting=None, policy="board-aligned", policies=["board-aligned"]), "policies"),
    ],
)
def test_render_memo_perspectives_bad_requests_name_the_field(sqlite_app, request_fields, field):
    _, key = sqlite_app.store.tenants.create("t")
    if "meeting" in request_fields:
        request_fields["meeting"] = meeting_message()
    _, code, _, trailing = call(
        servicers_under_test(sqlite_app),
        "MemoService/RenderMemo",
        ms.RenderMemoRequest(**request_fields),
        key,
    )
    assert code.name == "INVALID_ARGUMENT"
    from google.rpc import status_pb2

    status = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
    assert [v.field for v in bad_request(status).field_violations] == [field]


def test_render_memo_refuses_stored_decisions_of_different_meetings(sqlite_app):
    tenant, key = sqlite_app.store.tenants.create("t")
    first = sqlite_app.log.recommend_many(
        tenant, RecommendCommand(example_meeting(), "", AS_OF, (), ""), ("board-aligned",), TODAY
    )[0]
    other = sqlite_app.log.recommend_many(
        tenant,
        RecommendCommand(example_meeting("amazon-2019-agm"), "", AS_OF, (), ""),
        ("board-aligned",),
        TODAY,
    )[0]
    _, code, _, trailing = call(
        servicers_under_test(sqlite_app),
        "MemoService/RenderMemo",
        ms.RenderMemoRequest(variant=3, decision_ids=[first.decision_id, other.decision_id]),
        key,
    )
    assert code.name == "INVALID_ARGUMENT"
    from google.rpc import status_pb2

    status = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
    assert [v.field for v in bad_request(status).field_violations] == ["decision_ids[1]"]


# --- The command line ---


def cli_args(*policies: str, extra=()) -> list[str]:
    args = ["recommend", "--meeting", AMAZON_2020, "--as-of", "2020-05-20", *extra]
    for p in policies:
        args += ["--policy", p]
    return args


def test_cli_table_has_a_column_per_policy_holding_each_single_policy_vote(capsys):
    from proxyvote.cli.main import main

    singles = {}
    for policy in BUNDLED:
        assert main(cli_args(policy, extra=("--format", "json"))) == 0
        singles[policy] = {r["item_id"]: r for r in json.loads(capsys.readouterr().out)["recommendations"]}

    assert main(cli_args(*BUNDLED)) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("item "))
    assert lines[header].split() == [
        "item",
        "board",
        "human-rights-esg@3",
        "governance-baseline@1",
        "board-aligned@1",
    ]
    rows = lines[header + 1 : header + 1 + len(singles["board-aligned"])]
    assert [r.split()[0] for r in rows] == list(singles["board-aligned"])
    for row in rows:
        item, _board, *cells = re.split(r"\s{2,}", row)
        for policy, cell in zip(BUNDLED, cells, strict=True):
            r = singles[policy][item]
            marks = ("!" if r["against_management"] else "") + ("?" if r["needs_review"] else "")
            assert cell == f"{r['vote']} {marks}".strip(), (item, policy)
    assert lines[-1] == "! against management  ? needs review"


def test_cli_json_has_one_entry_per_policy_and_a_duplicate_is_an_error(capsys):
    from proxyvote.cli.main import main

    assert main(cli_args(*BUNDLED, extra=("--format", "json"))) == 0
    document = json.loads(capsys.readouterr().out)
    assert [r["policy"]["id"] for r in document["responses"]] == list(BUNDLED)
    assert main(cli_args("board-aligned", "board-aligned")) == 2
    assert "given twice" in capsys.readouterr().err


def test_cli_through_the_server_prints_what_it_prints_in_process(running_server, capsys):
    from proxyvote.cli.main import main

    environ = {"PROXYVOTE_API_KEY": running_server.key}
    assert main(cli_args(*BUNDLED, extra=("--format", "json")), environ) == 0
    local = capsys.readouterr().out
    assert (
        main(cli_args(*BUNDLED, extra=("--format", "json", "--server", running_server.address)), environ) == 0
    )
    remote = capsys.readouterr()
    assert remote.out == local
    assert remote.err.startswith("stored as decisions d_") and remote.err.count("d_") == 3


def test_cli_memo_perspectives_in_process_and_through_the_server(running_server, capsysbinary):
    from proxyvote.cli.main import main

    environ = {"PROXYVOTE_API_KEY": running_server.key}
    args = ["memo", "--meeting", AMAZON_2020, "--as-of", "2020-05-20", "--variant", "perspectives"]
    for p in BUNDLED:
        args += ["--policy", p]
    assert main(args, environ) == 0
    local = capsysbinary.readouterr().out
    assert main([*args, "--server", running_server.address], environ) == 0
    assert capsysbinary.readouterr().out == local
    assert local.startswith(b"# Perspectives memo: Amazon.com")
    # Several policies without the variant: a one-line error.
    assert main([a for a in args if a not in ("--variant", "perspectives")], environ) == 2
