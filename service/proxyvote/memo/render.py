"""The memo renderer: decisions in, a document people read out.

One Jinja environment for the trusted templates, built once per renderer,
with StrictUndefined so a missing field fails loudly instead of rendering
blank. Caller text (titles, names, evidence summaries, rationales)
is never marked safe: the ``.html`` templates are autoescaped, and the Markdown
ones pass it through the ``md`` filter, which makes Markdown syntax inert.

Formats (``MemoFormat`` in memo_service.proto): Markdown, HTML (a
self-contained page, inline CSS, no scripts) and PDF (that HTML printed by
WeasyPrint, imported only when a PDF is asked for). Variants (``MemoVariant``):
the full memo, the short public disclosure, and the perspectives memo (one
meeting under several policies, a column each: ``render_perspectives``).
"""

from __future__ import annotations

import datetime as dt
import re
from urllib.parse import urlsplit

import jinja2

from proxyvote.core.engine import against_management
from proxyvote.core.model import NO_RECOMMENDATION, MeetingDecision
from proxyvote.errors import FieldViolation, InvalidArgument

MARKDOWN = "text/markdown; charset=utf-8"
HTML = "text/html; charset=utf-8"
PDF = "application/pdf"

# The enum numbers of memo_service.proto (tests check they match the stubs).
FORMAT_UNSPECIFIED, FORMAT_MARKDOWN, FORMAT_HTML, FORMAT_PDF = 0, 1, 2, 3
VARIANT_UNSPECIFIED, VARIANT_FULL, VARIANT_DISCLOSURE, VARIANT_PERSPECTIVES = 0, 1, 2, 3
FORMATS = {"md": FORMAT_MARKDOWN, "html": FORMAT_HTML, "pdf": FORMAT_PDF}
VARIANTS = {"full": VARIANT_FULL, "disclosure": VARIANT_DISCLOSURE, "perspectives": VARIANT_PERSPECTIVES}

# (format, variant) -> template; unspecified means Markdown and the full memo.
_TEMPLATES = {
    (FORMAT_MARKDOWN, VARIANT_FULL): "memo.md.j2",
    (FORMAT_MARKDOWN, VARIANT_DISCLOSURE): "disclosure.md.j2",
    (FORMAT_HTML, VARIANT_FULL): "memo.html.j2",
    (FORMAT_HTML, VARIANT_DISCLOSURE): "disclosure.html.j2",
    (FORMAT_MARKDOWN, VARIANT_PERSPECTIVES): "perspectives.md.j2",
    (FORMAT_HTML, VARIANT_PERSPECTIVES): "perspectives.html.j2",
}

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~!])")
_EPOCH = dt.datetime.min.replace(tzinfo=dt.UTC)


def md(value: object) -> str:
    """Caller text as inert Markdown on one line: no markup, links, HTML or table breaks."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", text)


def vote_label(value: object) -> str:
    """``ONE_YEAR`` -> ``One year``; for readers rather than machines."""
    text = str(value)
    if text == NO_RECOMMENDATION:
        return "No recommendation"
    return text.replace("_", " ").capitalize()


def http_url(value: object) -> str:
    """The URL when it is http(s), else "" (no javascript:, data: or file: links)."""
    text = str(value).strip()
    try:
        scheme = urlsplit(text).scheme.lower()
    except ValueError:
        return ""
    return text if scheme in ("http", "https") else ""


def check_options(memo_format: int, variant: int) -> tuple[int, int]:
    """(format, variant) with the defaults filled in; InvalidArgument naming every unknown value."""
    violations = []
    if memo_format not in (FORMAT_UNSPECIFIED, FORMAT_MARKDOWN, FORMAT_HTML, FORMAT_PDF):
        violations.append(FieldViolation("format", f"unsupported memo format {memo_format}"))
    if variant not in (VARIANT_UNSPECIFIED, VARIANT_FULL, VARIANT_DISCLOSURE, VARIANT_PERSPECTIVES):
        violations.append(FieldViolation("variant", f"unsupported memo variant {variant}"))
    if violations:
        raise InvalidArgument(violations)
    return memo_format or FORMAT_MARKDOWN, variant or VARIANT_FULL


TEMPLATE_NAMES = tuple(_TEMPLATES.values())


def _environment(sources: dict[str, str]) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.DictLoader(sources),
        undefined=jinja2.StrictUndefined,
        # "memo.html.j2" ends in ".j2": name the double extensions, or nothing is escaped.
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "htm", "xml", "html.j2", "htm.j2", "xml.j2"),
            disabled_extensions=("md", "md.j2"),
            default_for_string=True,
            default=True,
        ),
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters["md"] = md
    env.filters["vote_label"] = vote_label
    env.filters["http_url"] = http_url
    return env


def _when(override) -> dt.datetime:
    created = getattr(override, "created_at", None)
    if created is None:
        return _EPOCH
    return created if created.tzinfo else created.replace(tzinfo=dt.UTC)


def _no_external_resources(url: str, *args, **kwargs):
    raise ValueError(f"memo PDFs load nothing from outside: {url[:80]}")


class MemoRenderer:
    """Renders with the trusted templates it is given (name -> source; the app's setup reads the files)."""

    def __init__(self, sources: dict[str, str]):
        missing = sorted(set(TEMPLATE_NAMES) - set(sources))
        if missing:
            raise ValueError(f"memo templates missing: {', '.join(missing)}")
        self._env = _environment(dict(sources))
        self._templates = {key: self._env.get_template(name) for key, name in _TEMPLATES.items()}

    def _context(self, decision: MeetingDecision, overrides, decision_id, replay_differs_from) -> dict:
        items = {item.item_id: item for item in decision.meeting.items}
        by_item: dict[str, list] = {}
        for override in sorted(overrides, key=_when):  # stable: same time keeps the given order
            by_item.setdefault(override.item_id, []).append(override)
        rows = [(items[r.item_id], r) for r in decision.recommendations]
        evidence = {e.evidence_id: e for e in decision.evidence}
        footnotes = {
            eid: n for n, eid in enumerate(sorted(evidence, key=lambda i: (evidence[i].published, i)), 1)
        }
        # What was cast: the latest override wins over the policy's vote.
        cast = []
        for item, r in rows:
            latest = by_item[r.item_id][-1] if r.item_id in by_item else None
            vote = latest.vote if latest else r.vote
            reason = latest.reason if latest else r.rationale
            cast.append((item, r, vote, against_management(vote, r.board_recommendation), reason, latest))
        return dict(
            d=decision,
            decision_id=decision_id,
            overrides=by_item,
            replay_differs_from=replay_differs_from,
            rows=rows,
            anchors={r.item_id: n for n, (_, r) in enumerate(rows, 1)},
            evidence=evidence,
            footnotes=footnotes,
            against=[(i, r) for i, r in rows if r.against_management],
            review=[(i, r) for i, r in rows if r.needs_review],
            # The disclosure: votes against management first, then the rest, each in ballot order.
            cast=[c for c in cast if c[3]] + [c for c in cast if not c[3]],
            cast_against=[c for c in cast if c[3]],
            cast_other=[c for c in cast if not c[3]],
        )

    def markdown(
        self,
        decision: MeetingDecision,
        overrides=(),
        decision_id: str = "",
        replay_differs_from: str | None = None,
        variant: int = VARIANT_FULL,
    ) -> str:
        """The memo; ``overrides`` are analysts' votes on items of a stored decision (latest wins)."""
        return self._text(FORMAT_MARKDOWN, variant, decision, overrides, decision_id, replay_differs_from)

    def html(
        self,
        decision: MeetingDecision,
        overrides=(),
        decision_id: str = "",
        replay_differs_from: str | None = None,
        variant: int = VARIANT_FULL,
    ) -> str:
        """The memo as one self-contained HTML page."""
        return self._text(FORMAT_HTML, variant, decision, overrides, decision_id, replay_differs_from)

    def _text(self, memo_format, variant, decision, overrides, decision_id, replay_differs_from) -> str:
        memo_format, variant = check_options(memo_format, variant)
        if variant == VARIANT_PERSPECTIVES:  # one decision is one column
            return self._perspectives(memo_format, (decision,), (decision_id,) if decision_id else ())
        template = self._templates[(memo_format, variant)]
        return template.render(self._context(decision, overrides, decision_id, replay_differs_from))

    def render(
        self,
        decision: MeetingDecision,
        memo_format: int = FORMAT_UNSPECIFIED,
        overrides=(),
        decision_id: str = "",
        replay_differs_from: str | None = None,
        variant: int = VARIANT_UNSPECIFIED,
    ) -> tuple[bytes, str]:
        """(content, content type). Format 0 or 1 is Markdown, 2 HTML, 3 PDF (memo_service.proto)."""
        memo_format, variant = check_options(memo_format, variant)
        return _as_format(
            memo_format,
            lambda text_format: self._text(
                text_format, variant, decision, overrides, decision_id, replay_differs_from
            ),
        )

    def render_perspectives(
        self,
        decisions: tuple[MeetingDecision, ...],
        memo_format: int = FORMAT_UNSPECIFIED,
        decision_ids: tuple[str, ...] = (),
    ) -> tuple[bytes, str]:
        """(content, content type) of the perspectives memo: one meeting under several
        policies, one column per decision, in the order given. ``decision_ids``, when the
        decisions are stored ones, one per decision."""
        memo_format, _ = check_options(memo_format, VARIANT_PERSPECTIVES)
        return _as_format(
            memo_format, lambda text_format: self._perspectives(text_format, decisions, decision_ids)
        )

    def _perspectives(self, memo_format: int, decisions, decision_ids) -> str:
        template = self._templates[(memo_format, VARIANT_PERSPECTIVES)]
        return template.render(perspectives_context(decisions, decision_ids))


def perspectives_context(decisions: tuple[MeetingDecision, ...], decision_ids: tuple[str, ...] = ()) -> dict:
    """What the perspectives templates show: per item, each policy's recommendation."""
    if not decisions:
        raise ValueError("a perspectives memo needs at least one decision")
    if decision_ids and len(decision_ids) != len(decisions):
        raise ValueError("one decision id per decision, or none")
    meeting = decisions[0].meeting
    for d in decisions[1:]:
        if d.meeting != meeting:
            raise ValueError(f"decisions of different meetings: {meeting.meeting_id}, {d.meeting.meeting_id}")
    by_item = [{r.item_id: r for r in d.recommendations} for d in decisions]
    evidence = {}
    for d in decisions:
        for e in d.evidence:
            evidence.setdefault(e.evidence_id, e)
    footnotes = {
        eid: n for n, eid in enumerate(sorted(evidence, key=lambda i: (evidence[i].published, i)), 1)
    }
    rows = []
    for item in meeting.items:
        cells = tuple(found[item.item_id] for found in by_item)
        rows.append(
            dict(
                item=item,
                board=cells[0].board_recommendation,
                cells=cells,
                split=len({c.vote for c in cells}) > 1,
                against=tuple(n for n, c in enumerate(cells) if c.against_management),
                review=tuple(n for n, c in enumerate(cells) if c.needs_review),
            )
        )
    columns = [
        dict(
            policy=d.policy,
            decision_id=decision_ids[n] if decision_ids else "",
            as_of=d.as_of,
            against=sum(1 for r in d.recommendations if r.against_management),
            review=sum(1 for r in d.recommendations if r.needs_review),
        )
        for n, d in enumerate(decisions)
    ]
    return dict(
        meeting=meeting,
        decisions=decisions,
        columns=columns,
        rows=rows,
        as_of=sorted({d.as_of for d in decisions}),
        engine_versions=sorted({d.engine_version for d in decisions}),
        taxonomy_hashes=sorted({d.taxonomy_hash for d in decisions}),
        evidence=evidence,
        footnotes=footnotes,
        split=[row for row in rows if row["split"]],
        against=[row for row in rows if row["against"]],
        review=[row for row in rows if row["review"]],
    )


def _as_format(memo_format: int, text_in) -> tuple[bytes, str]:
    """(content, content type) of a checked format: ``text_in(FORMAT_MARKDOWN or FORMAT_HTML)``
    gives the text; a PDF is the HTML printed."""
    if memo_format == FORMAT_MARKDOWN:
        return text_in(FORMAT_MARKDOWN).encode("utf-8"), MARKDOWN
    page = text_in(FORMAT_HTML)
    if memo_format == FORMAT_HTML:
        return page.encode("utf-8"), HTML
    return pdf_from_html(page), PDF


def pdf_from_html(page: str) -> bytes:
    """The HTML memo printed to PDF; fetches nothing (the memo is self-contained)."""
    import weasyprint  # lazily: it loads pango, which only the PDF path needs

    return weasyprint.HTML(string=page, url_fetcher=_no_external_resources).write_pdf()
