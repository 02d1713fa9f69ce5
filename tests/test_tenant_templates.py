"""Tenants' memo templates: rejected at upload when unsafe, rendered in a sandbox with limits."""

from __future__ import annotations

import pytest
from proxyvote.memo.tenant_templates import RenderFailed, TemplateRejected, check_template, render_template

CONTEXT = {
    "meeting": {"issuer": "Amazon.com, Inc."},
    "items": [{"title": "<script>alert(1)</script>", "vote": "FOR"}],
}


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ meeting.__class__ }}",
        "{{ meeting['__class__'] }}",
        "{{ cycler.__init__.__globals__ }}",
        "{% include 'memo.md.j2' %}",
        "{% extends 'base.html' %}",
    ],
)
def test_a_template_reaching_for_internals_is_rejected_at_upload(source):
    with pytest.raises(TemplateRejected) as caught:
        check_template(source)
    assert caught.value.violations[0].description.startswith("line 1:")


def test_a_template_that_does_not_parse_is_rejected_with_its_line():
    with pytest.raises(TemplateRejected) as caught:
        check_template("ok\n{% for x in items %}\n{{ x.title }")
    assert "line 3" in caught.value.violations[0].description


def test_a_good_template_renders_with_caller_text_escaped():
    html = render_template(
        "<h1>{{ meeting.issuer }}</h1>{% for i in items %}<p>{{ i.title }}: {{ i.vote }}</p>{% endfor %}",
        CONTEXT,
    )
    assert html == "<h1>Amazon.com, Inc.</h1><p>&lt;script&gt;alert(1)&lt;/script&gt;: FOR</p>"


def test_rendering_stops_at_its_time_limit():
    slow = "{% for a in range(100000) %}{% for b in range(100000) %}{% endfor %}{% endfor %}"
    with pytest.raises(RenderFailed, match="time limit|limit"):
        render_template(slow, CONTEXT, seconds=2)


def test_rendering_stops_at_its_size_limit_and_huge_repetitions_fail():
    with pytest.raises(RenderFailed, match="grew past"):
        render_template("{% for a in range(100000) %}xxxxxxxxxx{% endfor %}", CONTEXT, max_bytes=10_000)
    with pytest.raises(RenderFailed, match="too large"):
        render_template("{{ 'x' * 1000000000 }}", CONTEXT)


@pytest.mark.parametrize(
    "source",
    [
        "{{ " + "(" * 1_000 + "1" + ")" * 1_000 + " }}",
        "{% if 1 %}" * 500 + "{% endif %}" * 500,
        "{{ [" + "[" * 2_000 + "]" * 2_000 + "] }}",
        "{{ 1" + " + 1" * 20_000 + " }}",
    ],
)
def test_a_template_nested_too_deeply_is_rejected_not_a_crash(source):
    # Found by tests/test_fuzz.py: Jinja's parser recursed past Python's limit (RecursionError: INTERNAL).
    with pytest.raises(TemplateRejected) as caught:
        check_template(source)
    assert [v.field for v in caught.value.violations] == ["source"]
