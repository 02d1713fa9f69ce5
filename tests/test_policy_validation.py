"""Policy documents are validated in full, and every problem names its line."""

from __future__ import annotations

import pytest
from proxyvote.app.files import load_policy_library
from proxyvote.core.policy import read_policy
from proxyvote.core.policy_library import parse_reference
from proxyvote.errors import InvalidArgument, NotFound, PolicyInvalid


def problems_of(text: str, recommender):
    with pytest.raises(PolicyInvalid) as caught:
        read_policy(text, "bad.yaml", recommender.taxonomy)
    return caught.value.problems


VALID = """\
id: valid
version: 1
default: {vote: REFER}
rules:
  - id: chair
    when: {topics: [independent_chair]}
    vote: FOR
    why: Supports.
"""


def test_a_valid_policy_reads(recommender):
    assert read_policy(VALID, "ok.yaml", recommender.taxonomy).id == "valid"


def test_a_yaml_syntax_error_is_located(recommender):
    [problem] = problems_of("id: x\nrules: [\n  - a: b\n", recommender)
    assert problem.file == "bad.yaml" and problem.line >= 2
    assert "YAML syntax error" in problem.message


def test_every_schema_problem_is_reported_with_line_and_rule(recommender):
    text = """\
id: broken
version: 1
default: {vote: MAYBE}
rules:
  - id: first
    when: {topics: [independent_chair]}
    vote: FOR
    why: ok
    colour: blue
  - id: second
    vote: FOR
"""
    problems = problems_of(text, recommender)
    by_line = {p.line: p for p in problems}
    assert "MAYBE" in by_line[3].message
    assert by_line[5].rule_id == "first" and "colour" in by_line[5].message
    assert by_line[10].rule_id == "second" and "why" in by_line[10].message


def test_a_typo_in_a_topic_is_an_error_not_a_rule_that_never_matches(recommender):
    text = VALID.replace("independent_chair", "independant_chair")
    [problem] = problems_of(text, recommender)
    assert problem.line == 6 and problem.rule_id == "chair"
    assert "independant_chair" in problem.message and "never match" in problem.message


def test_cel_that_does_not_compile_is_located_at_its_rule(recommender):
    text = VALID + "    if: item.topic ==\n"
    [problem] = problems_of(text, recommender)
    assert problem.line == 9 and problem.rule_id == "chair"
    assert "CEL does not compile" in problem.message


@pytest.mark.parametrize(
    "condition, fragment",
    [
        ("items.topic == 'x'", "unknown variable 'items'"),
        ("item.topc == 'x'", "unknown field item.topc"),
        ("controversy(item.topics, 3).size() > 0", "unknown function 'controversy'"),
    ],
)
def test_cel_names_are_checked_against_what_conditions_can_see(recommender, condition, fragment):
    [problem] = problems_of(VALID + f'    if: "{condition}"\n', recommender)
    assert fragment in problem.message


_LIST = "[" + ",".join(str(i) for i in range(200)) + "]"


@pytest.mark.parametrize(
    "condition, nested",
    [
        # Found by tests/test_fuzz.py: 200-element lists four deep are 1.6 billion steps, which held a
        # server thread and a core for minutes on every Recommend under the policy.
        (
            f"{_LIST}.exists(a, {_LIST}.exists(b, {_LIST}.exists(c, {_LIST}.exists(d, a + b + c + d < 0))))",
            True,
        ),
        ("controversies(item.topics, 3).exists(e, e.topics.exists(t, t == 'x'))", True),
        ("item.topics.exists(t, t == '.all(x, [1].map(y, y))') && item.flags.all(f, f != 'x')", False),
        ("controversies(item.topics, 3).filter(e, e.status == 'CONFIRMED').map(e, e.kind).size() > 0", False),
    ],
)
def test_a_comprehension_inside_another_is_refused(recommender, condition, nested):
    text = VALID + f'    if: "{condition}"\n'
    if nested:
        [problem] = problems_of(text, recommender)
        assert "inside another one's body" in problem.message and problem.path == "rules[0].if"
    else:
        assert read_policy(text, "ok.yaml", recommender.taxonomy).id == "valid"


def test_unknown_rationale_placeholders_are_rejected(recommender):
    [problem] = problems_of(VALID.replace("why: Supports.", "why: Supports $company."), recommender)
    assert "$company" in problem.message and problem.line == 8


def test_duplicate_keys_and_rule_ids_are_rejected(recommender):
    text = VALID + "  - id: chair\n    vote: FOR\n    why: again\n"
    assert any("duplicate rule id" in p.message and p.line == 9 for p in problems_of(text, recommender))
    assert any("duplicate key" in p.message for p in problems_of("id: a\nid: b\n", recommender))


def test_anchors_and_aliases_are_refused(recommender):
    text = VALID + "  - &r {id: again, vote: FOR, why: x}\n  - *r\n"
    assert any("anchors" in p.message for p in problems_of(text, recommender))


def test_extends_must_name_a_known_policy_and_must_not_cycle(recommender):
    library = recommender.policies
    with pytest.raises(PolicyInvalid) as caught:
        library.check(
            VALID.replace("version: 1", "version: 1\nextends: nowhere"), "x.yaml", recommender.taxonomy
        )
    assert "unknown policy 'nowhere'" in str(caught.value)
    cyclic = VALID.replace("id: valid", "id: governance-baseline").replace(
        "version: 1", "version: 2\nextends: human-rights-esg"
    )
    with pytest.raises(PolicyInvalid) as caught:
        library.check(cyclic, "x.yaml", recommender.taxonomy)
    assert "cycle" in str(caught.value)


def test_library_reports_problems_across_files_at_once(recommender, tmp_path):
    (tmp_path / "a.yaml").write_text(VALID.replace("FOR", "YES"))
    (tmp_path / "b.yaml").write_text(VALID.replace("id: valid", "id: b\nextends: missing"))
    with pytest.raises(PolicyInvalid) as caught:
        load_policy_library(tmp_path, recommender.taxonomy)
    assert {p.file.rsplit("/", 1)[-1] for p in caught.value.problems} == {"a.yaml"}


def test_policy_references_and_lookups(recommender):
    assert parse_reference("human-rights-esg@1") == ("human-rights-esg", 1)
    assert parse_reference("policies/board-aligned") == ("board-aligned", None)
    with pytest.raises(InvalidArgument):
        parse_reference("x@latest")
    # Found by tests/test_fuzz.py: these reached the database (an int too large for SQLite: INTERNAL)
    # or int() (a digit that is no ASCII digit: INTERNAL).
    assert parse_reference("x@2147483647") == ("x", 2147483647)
    for bad in ("x@2147483648", "x@99999999999999999999999", "x@²", "x@٣", "x@0", "x@-1", "x@+1", "x@ 1"):
        with pytest.raises(InvalidArgument) as caught:
            parse_reference(bad, "base")
        assert [v.field for v in caught.value.violations] == ["base"]
    with pytest.raises(NotFound):
        recommender.policies.get("no-such-policy")
    with pytest.raises(NotFound):
        recommender.policies.get("human-rights-esg@99")


def test_listing_pages_through_every_version_once(recommender):
    library, seen, token = recommender.policies, [], ""
    while True:
        page, token = library.page(1, token)
        seen.extend(f"{p.id}@{p.version}" for p in page)
        if not token:
            break
    assert seen == sorted(seen) and len(seen) == len(set(seen)) >= 3
    with pytest.raises(InvalidArgument):
        library.page(1, "not-a-token")
