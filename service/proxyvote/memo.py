"""The memo renderer: decisions in, a document people read out.

One Jinja environment, built once, with StrictUndefined so a missing field fails
loudly instead of rendering blank. Text from callers (titles, names, evidence
summaries) goes through the ``md`` filter, which makes Markdown syntax inert.
"""

from __future__ import annotations

import re
from pathlib import Path

import jinja2

from .errors import FieldViolation, InvalidArgument
from .model import MeetingDecision
from .recommender import repository_root

MARKDOWN = "text/markdown; charset=utf-8"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|#~!])")


def md(value: object) -> str:
    """Caller text as inert Markdown on one line: no markup, links, HTML or table breaks."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(r"\\\1", text)


def default_template_dir() -> Path:
    return repository_root() / "reports" / "templates"


class MemoRenderer:
    def __init__(self, template_dir: Path | None = None):
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(template_dir or default_template_dir())),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(["html", "htm", "xml"]),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
        self._env.filters["md"] = md
        self._markdown = self._env.get_template("memo.md.j2")

    def markdown(
        self,
        decision: MeetingDecision,
        overrides=(),
        decision_id: str = "",
        replay_differs_from: str | None = None,
    ) -> str:
        """The memo; ``overrides`` are analysts' votes on items of a stored decision (latest wins)."""
        items = {item.item_id: item for item in decision.meeting.items}
        by_item: dict[str, list] = {}
        for override in overrides:
            by_item.setdefault(override.item_id, []).append(override)
        rows = [(items[r.item_id], r) for r in decision.recommendations]
        evidence = {e.evidence_id: e for e in decision.evidence}
        footnotes = {
            eid: n for n, eid in enumerate(sorted(evidence, key=lambda i: (evidence[i].published, i)), 1)
        }
        return self._markdown.render(
            d=decision,
            decision_id=decision_id,
            overrides=by_item,
            replay_differs_from=replay_differs_from,
            rows=rows,
            evidence=evidence,
            footnotes=footnotes,
            against=[(i, r) for i, r in rows if r.against_management],
            review=[(i, r) for i, r in rows if r.needs_review],
        )

    def render(
        self,
        decision: MeetingDecision,
        memo_format: int = 0,
        overrides=(),
        decision_id: str = "",
        replay_differs_from: str | None = None,
    ) -> tuple[bytes, str]:
        """(content, content type). Format 0 or 1 is Markdown (memo_service.proto)."""
        if memo_format not in (0, 1):
            raise InvalidArgument([FieldViolation("format", f"unsupported memo format {memo_format}")])
        text = self.markdown(decision, overrides, decision_id, replay_differs_from)
        return text.encode("utf-8"), MARKDOWN
