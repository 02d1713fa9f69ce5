"""The Markdown memo: what a stewardship team needs, and caller text rendered inert."""

from __future__ import annotations

import re

from proxyvote.core.model import RecommendCommand, parse_date
from proxyvote.memo.render import md

from .conftest import TODAY, example_evidence, example_meeting, meeting_message, memo_renderer, retitled


def memo_for(recommender, meeting, as_of="2020-05-20", evidence=()):
    command = RecommendCommand(meeting, "human-rights-esg", parse_date(as_of), tuple(evidence))
    return memo_renderer().markdown(recommender.decide(command, TODAY))


def test_memo_has_a_summary_table_decisions_rules_and_the_policy(recommender):
    text = memo_for(recommender, example_meeting())
    assert "| Item | Proposal | Proponent | Board | Our vote | Against management |" in text
    assert "human-rights-esg v3" in text and "Evidence as of | 2020-05-20" in text
    assert "### Item 7:" in text and "Rule: `hr-technology-risk-assessment`" in text
    assert "- Item 6: FOR where the board recommends AGAINST" in text


def test_memo_cites_dated_evidence_as_footnotes(recommender):
    text = memo_for(recommender, example_meeting(), evidence=example_evidence())
    assert "## Evidence cited" in text
    assert "published 2019-07-17" in text and "amzn-2019-07-palantir-ice-hosting" in text
    assert "2024-06" not in text


def test_items_needing_review_are_listed(recommender):
    meeting = retitled(example_meeting(), 0, "Quux frobnication of the widget")
    text = memo_for(recommender, meeting)
    assert "## Needs a human" in text and "could not place" in text


def test_hostile_titles_cannot_break_the_table_or_inject_markup(recommender):
    meeting = retitled(
        example_meeting(), 0, "Elect | Director <script>alert(1)</script> [x](javascript:y) `code`\n# Heading"
    )
    text = memo_for(recommender, meeting)
    assert "<script>" not in text and "[x](javascript" not in text and r"\[x\](javascript" in text
    assert "\n# Heading" not in text
    row = next(line for line in text.splitlines() if line.startswith("| 1a |"))
    cells = re.split(r"(?<!\\)\|", row)[1:-1]
    assert len(cells) == 6  # the pipe in the title is escaped, so the row keeps its cells


def test_md_filter_escapes_markdown_and_joins_lines():
    assert md("a|b *c* <d>\n# e") == r"a\|b \*c\* \<d\> \# e"


# --- Formats and variants through the servicer and the command line ---


def test_memo_enum_numbers_match_the_proto():
    from proxyvote.memo import render as memo
    from proxyvote.v1 import memo_service_pb2 as ms

    assert (memo.FORMAT_MARKDOWN, memo.FORMAT_HTML, memo.FORMAT_PDF) == (
        ms.MEMO_FORMAT_MARKDOWN,
        ms.MEMO_FORMAT_HTML,
        ms.MEMO_FORMAT_PDF,
    )
    assert (memo.VARIANT_FULL, memo.VARIANT_DISCLOSURE) == (ms.MEMO_VARIANT_FULL, ms.MEMO_VARIANT_DISCLOSURE)


def test_render_keeps_its_positional_signature_and_defaults_to_the_markdown_memo(recommender):
    command = RecommendCommand(example_meeting(), "human-rights-esg", parse_date("2020-05-20"))
    decision = recommender.decide(command, TODAY)
    content, content_type = memo_renderer().render(decision, 0, (), "", None)
    assert content_type == "text/markdown; charset=utf-8" and content.decode() == memo_renderer().markdown(
        decision
    )


def test_render_memo_passes_format_and_variant_through(sqlite_app):
    import grpc
    from proxyvote.v1 import memo_service_pb2 as ms

    from .conftest import call, servicers_under_test

    _, key = sqlite_app.store.tenants.create("memo-formats")
    server = servicers_under_test(sqlite_app)
    base = dict(meeting=meeting_message(), policy="human-rights-esg", as_of="2020-05-20")
    html, code, details, _ = call(
        server, "MemoService/RenderMemo", ms.RenderMemoRequest(**base, format=ms.MEMO_FORMAT_HTML), key
    )
    assert code is grpc.StatusCode.OK, details
    assert html.content_type == "text/html; charset=utf-8" and html.content.startswith(b"<!DOCTYPE html>")
    disclosure, code, details, _ = call(
        server,
        "MemoService/RenderMemo",
        ms.RenderMemoRequest(**base, variant=ms.MEMO_VARIANT_DISCLOSURE),
        key,
    )
    assert code is grpc.StatusCode.OK, details
    assert disclosure.content.startswith(b"# Proxy voting disclosure: Amazon.com")


def test_unknown_memo_format_or_variant_is_invalid_argument_with_field_violations(sqlite_app):
    import grpc
    from google.rpc import status_pb2
    from proxyvote.v1 import memo_service_pb2 as ms

    from .conftest import bad_request, call, servicers_under_test

    _, key = sqlite_app.store.tenants.create("memo-bad-enums")
    server = servicers_under_test(sqlite_app)
    request = ms.RenderMemoRequest(meeting=meeting_message(), policy="human-rights-esg", format=9, variant=7)
    _, code, _, trailing = call(server, "MemoService/RenderMemo", request, key)
    assert code is grpc.StatusCode.INVALID_ARGUMENT
    status = status_pb2.Status.FromString(trailing["grpc-status-details-bin"])
    bad = bad_request(status)
    assert {v.field for v in bad.field_violations} == {"format", "variant"}


def cli_memo(*extra):
    from .conftest import EXAMPLES

    return [
        "memo",
        "--policy",
        "human-rights-esg",
        "--meeting",
        str(EXAMPLES / "meetings" / "amazon-2020-agm.json"),
        "--as-of",
        "2020-05-20",
        *extra,
    ]


def test_cli_memo_writes_html_and_disclosure_to_stdout_or_a_file(capsysbinary, tmp_path):
    from proxyvote.cli import main as cli_main

    assert cli_main(cli_memo("--format", "html")) == 0
    assert capsysbinary.readouterr().out.startswith(b"<!DOCTYPE html>")
    out = tmp_path / "disclosure.md"
    assert cli_main(cli_memo("--variant", "disclosure", "--output", str(out))) == 0
    assert out.read_text().startswith("# Proxy voting disclosure: Amazon.com")
    assert cli_main(cli_memo()) == 0
    assert capsysbinary.readouterr().out.startswith(b"# Voting memo: Amazon.com")


def test_cli_refuses_a_pdf_for_a_terminal(capsys, monkeypatch):
    from proxyvote.cli import main as cli_main

    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    assert cli_main(cli_memo("--format", "pdf")) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "--output" in err and "\n" not in err


def test_cli_recommend_format_md_still_writes_the_markdown_memo(capsys):
    from proxyvote.cli import main as cli_main

    args = cli_memo()
    args[0] = "recommend"
    assert cli_main([*args, "--format", "md"]) == 0
    assert capsys.readouterr().out.startswith("# Voting memo: Amazon.com")
