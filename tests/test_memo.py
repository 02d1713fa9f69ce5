"""The Markdown memo: what a stewardship team needs, and caller text rendered inert."""

from __future__ import annotations

import re

from proxyvote import convert
from proxyvote.memo import MemoRenderer, md

from .conftest import TODAY, evidence_messages, meeting_message


def memo_for(recommender, meeting, as_of="2020-05-20", evidence=()):
    decision = recommender.decide(
        meeting, "human-rights-esg", as_of, convert.evidence_from_proto(list(evidence)), TODAY
    )
    return MemoRenderer().markdown(decision)


def test_memo_has_a_summary_table_decisions_rules_and_the_policy(recommender):
    text = memo_for(recommender, meeting_message())
    assert "| Item | Proposal | Proponent | Board | Our vote | Against management |" in text
    assert "human-rights-esg v1" in text and "Evidence as of | 2020-05-20" in text
    assert "### Item 7:" in text and "Rule: `hr-technology-risk-assessment`" in text
    assert "- Item 6: FOR where the board recommends AGAINST" in text


def test_memo_cites_dated_evidence_as_footnotes(recommender):
    text = memo_for(recommender, meeting_message(), evidence=evidence_messages())
    assert "## Evidence cited" in text
    assert "published 2019-07-17" in text and "amzn-2019-07-palantir-ice-hosting" in text
    assert "2024-06" not in text


def test_items_needing_review_are_listed(recommender):
    meeting = meeting_message()
    meeting.items[0].title = "Quux frobnication of the widget"
    text = memo_for(recommender, meeting)
    assert "## Needs a human" in text and "could not place" in text


def test_hostile_titles_cannot_break_the_table_or_inject_markup(recommender):
    meeting = meeting_message()
    meeting.items[0].title = "Elect | Director <script>alert(1)</script> [x](javascript:y) `code`\n# Heading"
    text = memo_for(recommender, meeting)
    assert "<script>" not in text and "[x](javascript" not in text and r"\[x\](javascript" in text
    assert "\n# Heading" not in text
    row = next(line for line in text.splitlines() if line.startswith("| 1a |"))
    cells = re.split(r"(?<!\\)\|", row)[1:-1]
    assert len(cells) == 6  # the pipe in the title is escaped, so the row keeps its cells


def test_md_filter_escapes_markdown_and_joins_lines():
    assert md("a|b *c* <d>\n# e") == r"a\|b \*c\* \<d\> \# e"
