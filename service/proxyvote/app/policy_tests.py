"""Policy tests: fixture items with the decisions a policy must reach.

Each file in ``policies/tests/`` names a policy and lists cases. A case is a
ballot item (the JSON shape of data-format.md), optionally a meeting, an as-of
date and evidence, and what is expected. Cases run through the same
``Recommender`` as the service, so a passing policy test is a passing RPC.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from google.protobuf import json_format

from proxyvote.core.model import RecommendCommand
from proxyvote.core.recommender import Recommender
from proxyvote.errors import ProxyvoteError
from proxyvote.v1 import evidence_pb2, meeting_pb2
from proxyvote.wire import convert

DEFAULT_MEETING = {
    "meeting_id": "POLICY-TEST",
    "issuer": {"name": "Example Holdings, Inc.", "ticker": "EXMP", "country": "US"},
    "meeting_type": "ANNUAL",
    "meeting_date": "2024-05-15",
}
EXPECTABLE = {
    "vote",
    "rule",
    "strength",
    "topic",
    "npx_categories",
    "against_management",
    "needs_review",
    "cited",
    "not_cited",
    "request_kind",
    "flags",
}


@dataclass
class CaseResult:
    file: str
    policy: str
    name: str
    failures: list[str] = field(default_factory=list)
    rule_id: str = ""

    @property
    def passed(self) -> bool:
        return not self.failures


@dataclass
class SuiteResult:
    cases: list[CaseResult]
    uncovered: dict[str, list[str]]  # policy id -> its own rules no case reached

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.cases) and not any(self.uncovered.values())


def load_cases(path: Path) -> tuple[str, list[dict]]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(doc, dict) or "policy" not in doc or not isinstance(doc.get("cases"), list):
        raise ValueError(f"{path}: a policy test file needs 'policy' and a list of 'cases'")
    return doc["policy"], doc["cases"]


def run_case(recommender: Recommender, policy: str, case: dict, base: Path) -> CaseResult:
    result = CaseResult(str(base), policy, case.get("name", "<unnamed>"))
    unknown = set(case.get("expect", {})) - EXPECTABLE
    if unknown:
        result.failures.append(f"unknown expectation(s): {', '.join(sorted(unknown))}")
        return result
    meeting = dict(DEFAULT_MEETING, **case.get("meeting", {}))
    item = dict({"item_id": "1", "number": "1"}, **case["item"])
    meeting["items"] = [item]
    records = []
    if "evidence_file" in case:
        text = (base.parent / case["evidence_file"]).read_text(encoding="utf-8")
        records = list(json_format.Parse(text, evidence_pb2.EvidenceFile()).records)
    for record in case.get("evidence", []):
        records.append(json_format.ParseDict(record, evidence_pb2.EvidenceRecord()))
    try:
        command = RecommendCommand(
            meeting=convert.meeting_from_proto(json_format.ParseDict(meeting, meeting_pb2.Meeting())),
            policy=policy,
            as_of=convert.parse_as_of(str(case.get("as_of", meeting["meeting_date"]))),
            evidence=convert.evidence_from_proto(records),
        )
        decision = recommender.decide(command, dt.date(2000, 1, 1))
    except (ProxyvoteError, json_format.ParseError) as exc:
        result.failures.append(f"could not run: {exc}")
        return result
    r = decision.recommendations[0]
    result.rule_id = r.rule_id
    seen = {
        "vote": r.vote,
        "rule": r.rule_id,
        "strength": r.strength,
        "topic": r.classification.topic,
        "npx_categories": list(r.classification.npx_categories),
        "against_management": r.against_management,
        "needs_review": r.needs_review,
        "request_kind": r.classification.request_kind,
        "flags": list(r.classification.flags),
    }
    for key, want in case.get("expect", {}).items():
        if key == "cited":
            missing = [i for i in want if i not in r.cited_evidence_ids]
            if missing:
                result.failures.append(f"cited: expected {missing} among {list(r.cited_evidence_ids)}")
        elif key == "not_cited":
            wrong = [i for i in want if i in r.cited_evidence_ids]
            if wrong:
                result.failures.append(f"not_cited: {wrong} were cited")
        elif key == "npx_categories" and sorted(want) != sorted(seen[key]):
            result.failures.append(f"npx_categories: expected {want}, got {seen[key]}")
        elif key != "npx_categories" and seen[key] != want:
            result.failures.append(f"{key}: expected {want!r}, got {seen[key]!r}")
    return result


def run_suite(recommender: Recommender, files: list[Path]) -> SuiteResult:
    cases: list[CaseResult] = []
    reached: dict[str, set[str]] = {}
    for path in files:
        policy, entries = load_cases(path)
        for case in entries:
            outcome = run_case(recommender, policy, case, path)
            cases.append(outcome)
            reached.setdefault(policy, set()).add(outcome.rule_id)
    uncovered = {}
    for policy_id, rules in reached.items():
        policy = recommender.policies.get(policy_id)
        own = [r.id for r in policy.rules if r.policy_id == policy.id]
        uncovered[policy_id] = [rule for rule in own if rule not in rules]
    return SuiteResult(cases, uncovered)


def describe(result: SuiteResult) -> str:
    lines = []
    for c in result.cases:
        mark = "ok  " if c.passed else "FAIL"
        lines.append(f"{mark} {c.policy}: {c.name}")
        lines.extend(f"       {f}" for f in c.failures)
    for policy, rules in sorted(result.uncovered.items()):
        if rules:
            lines.append(f"FAIL {policy}: rules no case reaches: {', '.join(rules)}")
    passed = sum(c.passed for c in result.cases)
    failed = len(result.cases) - passed + sum(1 for rules in result.uncovered.values() if rules)
    lines.append(f"{passed} passed, {failed} failed")
    return "\n".join(lines)


def as_json(result: SuiteResult) -> str:
    return json.dumps(
        {
            "cases": [c.__dict__ for c in result.cases],
            "uncovered": result.uncovered,
            "passed": result.passed,
        },
        indent=2,
    )
