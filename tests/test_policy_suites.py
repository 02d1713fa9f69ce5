"""The bundled policies' own tests (policies/tests/*.yaml), one pytest case each."""

from __future__ import annotations

import pytest
from proxyvote.app.policy_tests import load_cases, run_case, run_suite

from .conftest import ROOT

FILES = sorted((ROOT / "policies" / "tests").glob("*.yaml"))
CASES = [
    pytest.param(path, policy, case, id=f"{policy}: {case.get('name')}")
    for path in FILES
    for policy, cases in [load_cases(path)]
    for case in cases
]


@pytest.mark.parametrize("path, policy, case", CASES)
def test_policy_case(recommender, path, policy, case):
    result = run_case(recommender, policy, case, path)
    assert result.passed, "\n".join(result.failures)


def test_every_bundled_policy_has_tests_that_reach_each_of_its_rules(recommender):
    tested = {load_cases(path)[0] for path in FILES}
    assert tested == {p.id for p in recommender.policies.latest()}
    assert run_suite(recommender, FILES).uncovered == {policy: [] for policy in tested}
