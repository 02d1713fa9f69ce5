"""HTML and PDF memos: hostile caller text stays text in a real browser, the PDF opens, the disclosure.

Chromium (``/usr/bin/chromium``) and poppler-utils come from the Makefile (``make
system-packages``). Without them these tests skip, except under CI (CI=true),
where they fail: CI must run them for real.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace

import pytest
from proxyvote.core.model import (
    ConditionResult,
    EvidenceRecord,
    EvidenceSource,
    RecommendCommand,
    RuleEvaluation,
    parse_date,
)
from proxyvote.memo.render import (
    FORMAT_HTML,
    FORMAT_PDF,
    HTML,
    PDF,
    VARIANT_DISCLOSURE,
    VARIANT_FULL,
)
from proxyvote.wire import convert

from .conftest import TODAY, example_evidence, example_meeting, meeting_message, memo_renderer

CHROMIUM = "/usr/bin/chromium"
PWNED = "pwned"
SCRIPT = f"<script>document.title='{PWNED}'</script>"
IMG = f"<img src=x onerror=\"document.title='{PWNED}'\">"
JS_LINK = f"<a href=\"javascript:document.title='{PWNED}'\">click</a> [click](javascript:alert(1))"
STYLE_BREAK = f"</style><script>document.title='{PWNED}'</script><style>"
MARKDOWN = "**bold** _em_ # Heading | cell | `code` ![img](x.png) <!-- comment -->"
IFRAME = "<iframe src=\"javascript:parent.document.title='pwned'\"></iframe><svg onload=alert(1)>"
LONG = "L" * 99_990 + "-LONG-END"
PAYLOADS = (SCRIPT, IMG, JS_LINK, STYLE_BREAK, MARKDOWN, IFRAME, LONG)
SHORT_PAYLOADS = PAYLOADS[:-1]  # meeting fields are validated (a title has at most 4000 characters)


def missing(tool: str, why: str):
    reason = f"{tool} is not installed ({why}); `make system-packages` installs it"
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run this for real: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium() -> str:
    if not os.access(CHROMIUM, os.X_OK):
        missing(CHROMIUM, "headless Chromium loads the memos")
    return CHROMIUM


def dump_dom(chromium: str, page: Path, tmp_path: Path) -> str:
    """The DOM after Chromium loaded the page and ran whatever scripts it would run."""
    profile = tmp_path / f"profile-{page.stem}"
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=3000",  # lets onerror/onload handlers fire before the dump
            "--dump-dom",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-2000:]
    return result.stdout.decode("utf-8")


class Dom(HTMLParser):
    """Elements (tag, attributes), the title, and the visible text of a page."""

    def __init__(self, source: str):
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict]] = []
        self.title = ""
        self._in = []
        self.text_parts: list[str] = []
        self.feed(source)
        self.close()
        self.text = "".join(self.text_parts)

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, dict(attrs)))
        self._in.append(tag)

    def handle_endtag(self, tag):
        if tag in self._in:
            while self._in and self._in.pop() != tag:
                pass

    def handle_data(self, data):
        if self._in and self._in[-1] == "title":
            self.title += data
        elif not (self._in and self._in[-1] in ("style", "script")):
            self.text_parts.append(data)

    def tags(self, name: str) -> list[dict]:
        return [attrs for tag, attrs in self.elements if tag == name]


# --- A decision whose every caller field is hostile -----------------------------------------------


def hostile_evidence(n: int, summary: str, publisher: str, url: str) -> EvidenceRecord:
    return EvidenceRecord(
        evidence_id=f"ev-{n}",
        issuer_name="Amazon.com, Inc.",
        issuer_ticker="AMZN",
        published=dt.date(2019, 1, n),
        topics=("facial_recognition",),
        kind="ALLEGATION" if n == 1 else "CONTROVERSY",
        status=("DISPUTED", "COMPANY_STATEMENT", "REPORTED")[n % 3],
        summary=summary,
        sources=(EvidenceSource(publisher=publisher, url=url),),
    )


# The caller-supplied fields a memo shows.
FIELDS = (
    "title",
    "proponent_name",
    "issuer_name",
    "ticker",
    "meeting_id",
    "rationale",
    "review_reason",
    "evidence_summary",
    "publisher",
    "value",
    "expression",
    "error",
    "topic",
)


def hostile_decision(recommender, fields: dict[str, str] | None = None):
    """The Amazon 2020 decision with caller text replaced: by ``fields`` (name -> text), else payloads."""
    f = dict.fromkeys(
        FIELDS,
        None,
    )
    f.update(fields or {})
    meeting = meeting_message()
    for n, item in enumerate(meeting.items):
        item.title = f["title"] or SHORT_PAYLOADS[n % len(SHORT_PAYLOADS)]
        item.proponent.name = f["proponent_name"] or SHORT_PAYLOADS[(n + 1) % len(SHORT_PAYLOADS)]
    meeting.issuer.name = f["issuer_name"] or f"Hostile {SCRIPT} Inc."
    meeting.issuer.ticker = f["ticker"] or "AM<q>ZN"
    meeting.meeting_id = f["meeting_id"] or "M-<q>1</q>"
    command = RecommendCommand(
        convert.meeting_from_proto(meeting), "human-rights-esg", parse_date("2020-05-20"), example_evidence()
    )
    decision = recommender.decide(command, TODAY)
    evidence = tuple(
        hostile_evidence(
            n,
            f["evidence_summary"] or PAYLOADS[n % len(PAYLOADS)],
            f["publisher"] or IMG,
            f"javascript:document.title='{PWNED}'" if n % 2 else "https://example.org/a?b=1&c=<x>",
        )
        for n in range(1, 4)
    )
    for n, r in enumerate(decision.recommendations):
        condition = ConditionResult(
            role="if",
            expression=f["expression"] or STYLE_BREAK,
            result="UNKNOWN",
            values=(("item.title", f["value"] or SCRIPT),),
            error=f["error"] or IMG,
        )
        r.outcome = dataclasses.replace(
            r.outcome,
            rationale=f["rationale"] or PAYLOADS[(n + 2) % len(PAYLOADS)],
            review_reason=f["review_reason"] or (JS_LINK if n % 3 == 0 else ""),
            trace=(RuleEvaluation(r.rule_id, "human-rights-esg", "FIRED", (condition,)),),
            cited=evidence,
        )
        if f["topic"]:
            r.classification = dataclasses.replace(r.classification, topic=f["topic"])
    return dataclasses.replace(decision, evidence=evidence)


def hostile_overrides(decision, analyst=IMG, reason=SCRIPT):
    first = decision.recommendations[0].item_id
    return [
        SimpleNamespace(
            item_id=first,
            vote="AGAINST",
            reason=reason,
            analyst=analyst,
            created_at=dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
        ),
        SimpleNamespace(
            item_id=first, vote="ABSTAIN", reason="earlier", analyst="x", created_at=dt.datetime(2026, 1, 1)
        ),
    ]


def write(tmp_path: Path, name: str, content: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(content)
    return path


# --- In a real browser -------------------------------------------------------------------------------


def test_the_browser_harness_sees_a_script_that_runs(chromium, tmp_path):
    """The control: without escaping, the same payload changes the title and leaves its elements."""
    page = write(
        tmp_path, "control.html", f"<!DOCTYPE html><title>before</title><p>{SCRIPT}{IMG}</p>".encode()
    )
    dom = Dom(dump_dom(chromium, page, tmp_path))
    assert dom.title == PWNED and dom.tags("img")


@pytest.mark.parametrize("variant", [VARIANT_FULL, VARIANT_DISCLOSURE])
def test_hostile_caller_text_runs_nothing_in_chromium_and_shows_as_text(
    recommender, chromium, tmp_path, variant
):
    decision = hostile_decision(recommender)
    content, content_type = memo_renderer().render(
        decision,
        FORMAT_HTML,
        hostile_overrides(decision),
        decision_id=f"d_{SCRIPT}",
        replay_differs_from=IMG,
        variant=variant,
    )
    assert content_type == HTML
    source = content.decode()
    expected_title = html.unescape(source.split("<title>", 1)[1].split("</title>", 1)[0])
    page = write(tmp_path, f"memo-{variant}.html", content)

    dom = Dom(dump_dom(chromium, page, tmp_path))

    assert dom.title == expected_title != PWNED  # no script ran
    assert not dom.tags("script") and not dom.tags("img") and not dom.tags("iframe") and not dom.tags("svg")
    assert not dom.tags("q")  # from the ticker and the meeting id
    handlers = [(tag, name) for tag, attrs in dom.elements for name in attrs if name.startswith("on")]
    assert handlers == []
    links = [a.get("href", "") for a in dom.tags("a")]
    assert all(h.startswith(("#", "https://")) for h in links), links
    assert len(dom.tags("style")) == 1  # the payload's </style> did not end or add one
    # What the payloads said is on the page, as text.
    for payload in (SCRIPT, IMG, JS_LINK, STYLE_BREAK, MARKDOWN, IFRAME, LONG):
        assert payload in dom.text, payload[:60]


def test_chromium_screenshots_the_hostile_memo(recommender, chromium, tmp_path):
    decision = hostile_decision(recommender)
    content, _ = memo_renderer().render(decision, FORMAT_HTML)
    page = write(tmp_path, "long.html", content)
    shot = tmp_path / "long.png"
    result = subprocess.run(
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile-shot'}",
            "--window-size=1000,1000",
            f"--screenshot={shot}",
            page.as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0 and shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- Escaping of every caller field, in the page source ------------------------------------------------

IN_DISCLOSURE = {"title", "proponent_name", "issuer_name", "ticker", "rationale"}


def marker(field: str) -> str:
    return f'<q data-field="{field}">x\'y</q>'


@pytest.mark.parametrize("field", FIELDS)
def test_every_caller_field_is_escaped_in_html(recommender, field):
    decision = hostile_decision(
        recommender, {name: f"plain {name}" for name in FIELDS} | {field: marker(field)}
    )
    escaped = html.escape(marker(field), quote=True).replace("&#x27;", "&#39;").replace("&quot;", "&#34;")
    for variant in (VARIANT_FULL, VARIANT_DISCLOSURE):
        page = memo_renderer().render(decision, FORMAT_HTML, variant=variant)[0].decode()
        assert "<q" not in page
        if variant == VARIANT_FULL or field in IN_DISCLOSURE:
            assert escaped in page, (field, variant)


def test_override_analyst_reason_decision_id_and_replay_note_are_escaped(recommender):
    decision = hostile_decision(recommender, {name: f"plain {name}" for name in FIELDS})
    overrides = hostile_overrides(decision, analyst=marker("analyst"), reason=marker("reason"))
    page = memo_renderer().html(decision, overrides, marker("decision"), marker("replay"))
    assert "<q" not in page
    for field in ("analyst", "reason", "decision", "replay"):
        assert html.escape(marker(field)).replace("&#x27;", "&#39;").replace("&quot;", "&#34;") in page
    disclosure = memo_renderer().html(decision, overrides, marker("decision"), variant=VARIANT_DISCLOSURE)
    assert "<q" not in disclosure and "&lt;q data-field=&#34;reason&#34;" in disclosure
    assert "data-field=&#34;decision" not in disclosure and "data-field=&#34;analyst" not in disclosure


def test_evidence_says_allegation_disputed_and_company_statement(recommender):
    page = memo_renderer().html(hostile_decision(recommender, {name: f"plain {name}" for name in FIELDS}))
    for tag in (
        '<span class="tag tag-warn">allegation</span>',
        '<span class="tag tag-warn">disputed</span>',
        '<span class="tag">company statement</span>',
    ):
        assert tag in page


def test_only_http_links_are_made_and_none_from_javascript_urls(recommender):
    page = memo_renderer().html(hostile_decision(recommender))
    assert 'href="javascript' not in page.lower()
    assert 'href="https://example.org/a?b=1&amp;c=&lt;x&gt;"' in page


# --- The full memo's content -------------------------------------------------------------------------


def amazon_decision(recommender):
    command = RecommendCommand(
        example_meeting(), "human-rights-esg", parse_date("2020-05-20"), example_evidence()
    )
    return recommender.decide(command, TODAY)


def test_html_memo_has_header_summary_sections_rules_and_footnotes(recommender):
    decision = amazon_decision(recommender)
    page = memo_renderer().html(decision, decision_id="d_123")
    for text in (
        "Amazon.com, Inc. (AMZN)",
        "human-rights-esg v3",
        decision.policy.content_hash[:12],
        "2020-05-20",
        decision.engine_version,
        "d_123",
        "<th>Against mgmt</th>",
        "<h2>Votes against management</h2>",
        "<h2>Needs a human</h2>",
        "<h2>Evidence cited</h2>",
        "HUMAN_RIGHTS_OR_HUMAN_CAPITAL",
        "facial_recognition",
        "<code>controversies(item.topics, 3).size() &gt; 0</code>",
        "evidence_used</code> =",
        'href="#fn-1"',
        "@media print",
        "break-inside: avoid",
    ):
        assert text in page, text
    assert "<script" not in page.lower() and "<link" not in page.lower()  # self-contained, no scripts


def test_html_memo_shows_the_latest_override_with_its_reason(recommender):
    decision = amazon_decision(recommender)
    overrides = [
        SimpleNamespace(
            item_id="7", vote="AGAINST", reason="Later view.", analyst="b", created_at=dt.datetime(2026, 2, 1)
        ),
        SimpleNamespace(
            item_id="7",
            vote="ABSTAIN",
            reason="Earlier view.",
            analyst="a",
            created_at=dt.datetime(2026, 1, 1),
        ),
    ]
    page = memo_renderer().html(decision, overrides)
    assert page.index("Earlier view.") < page.index("Later view.")
    latest = page.split("(in effect)", 1)[1]
    assert "AGAINST</span> instead of FOR, by b on 2026-02-01" in latest and "Later view." in latest
    row = next(line for line in page.splitlines() if 'href="#item-' in line and "facial recognition" in line)
    row_end = page.split(row, 1)[1].split("</tr>", 1)[0]
    assert '<span class="struck">FOR</span><span class="vote vote-AGAINST">AGAINST</span>' in row_end


# --- The disclosure ----------------------------------------------------------------------------------


def test_disclosure_puts_votes_against_management_first_and_keeps_internals_out(recommender):
    decision = amazon_decision(recommender)
    overrides = [  # 1a now against the board; 5 now with it
        SimpleNamespace(
            item_id="1a",
            vote="AGAINST",
            reason="Overboarded.",
            analyst="j.doe",
            created_at=dt.datetime(2026, 1, 1),
        ),
        SimpleNamespace(
            item_id="5",
            vote="AGAINST",
            reason="Already reported.",
            analyst="a",
            created_at=dt.datetime(2026, 1, 1),
        ),
    ]
    for memo_format in (FORMAT_HTML, 1):
        text = (
            memo_renderer()
            .render(decision, memo_format, overrides, "d_secret", variant=VARIANT_DISCLOSURE)[0]
            .decode()
        )
        order = [line.split("Item ", 1)[1].split(":", 1)[0] for line in text.splitlines() if "Item " in line]
        against = ["1a", "6", "7", "8", "9", "10", "14", "15", "16"]
        assert order[: len(against)] == against, order
        assert order[len(against) :] == [
            "1b",
            "1c",
            "1d",
            "1e",
            "1f",
            "1g",
            "1h",
            "1i",
            "1j",
            "2",
            "3",
            "4",
            "5",
        ]
        assert "Overboarded." in text and "Already reported." in text
        assert "human-rights-esg" in text and "version 3" in text
        for internal in (
            decision.policy.content_hash[:12],
            decision.taxonomy_hash[:12],
            decision.engine_version,
            "d_secret",
            "hr-technology-risk-assessment",  # a rule id
            "controversies(",
            "j.doe",  # analysts are not named
        ):
            assert internal not in text, internal
        assert text.count("Votes against management") == 1


# --- PDF ---------------------------------------------------------------------------------------------


def test_the_pdf_opens_and_page_one_has_glyphs(recommender, tmp_path):
    try:
        import weasyprint  # noqa: F401
    except OSError as exc:  # pango missing
        missing("pango", f"WeasyPrint cannot load it: {exc}")
    if not shutil.which("pdftoppm") or not shutil.which("pdftotext"):
        missing("poppler-utils", "pdftoppm renders the PDF")
    content, content_type = memo_renderer().render(amazon_decision(recommender), FORMAT_PDF)
    assert content_type == PDF and content.startswith(b"%PDF-")
    pdf = write(tmp_path, "memo.pdf", content)
    subprocess.run(
        [
            "pdftoppm",
            "-png",
            "-r",
            "40",
            "-f",
            "1",
            "-l",
            "1",
            "-singlefile",
            str(pdf),
            str(tmp_path / "page1"),
        ],
        check=True,
        timeout=120,
    )
    png = tmp_path / "page1.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    text = subprocess.run(
        ["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"], capture_output=True, check=True, timeout=120
    ).stdout.decode()
    assert "Amazon.com, Inc." in text and "Summary" in text  # real glyphs, not boxes
    from PIL import Image

    with Image.open(png) as image:
        dark = sum(image.convert("L").histogram()[:128])  # pixels darker than mid-grey
    assert dark > 500  # text was drawn


def test_a_hostile_pdf_renders_without_fetching_anything(recommender, tmp_path):
    try:
        import weasyprint  # noqa: F401
    except OSError as exc:
        missing("pango", f"WeasyPrint cannot load it: {exc}")
    decision = hostile_decision(
        recommender, {"title": "short title", "rationale": "short", "proponent_name": "x"}
    )
    content, _ = memo_renderer().render(decision, FORMAT_PDF, variant=VARIANT_DISCLOSURE)
    assert content.startswith(b"%PDF-")
