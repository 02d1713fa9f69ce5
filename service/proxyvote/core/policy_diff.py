"""Rule-by-rule differences of two compiled policies: what a new version changes."""

from __future__ import annotations

import json
from dataclasses import dataclass

from proxyvote.core.policy import Policy


@dataclass(frozen=True, slots=True)
class RuleChange:
    rule_id: str
    kind: str  # ADDED, REMOVED, CHANGED, MOVED
    fields: tuple[str, ...]
    before: str
    after: str


def _rule_view(rule) -> dict:
    return {
        "policy": rule.policy_id,
        "when": {
            "categories": sorted(rule.categories),
            "topics": sorted(rule.topics),
            "proponent": rule.proponent,
            "request_kinds": sorted(rule.request_kinds),
            "flags": sorted(rule.flags),
            "not_flags": sorted(rule.not_flags),
            "placed": rule.placed,
        },
        "if": next((c.source for c in rule.conditions if c.role == "if"), ""),
        "unless": next((c.source for c in rule.conditions if c.role == "unless"), ""),
        "vote": rule.vote,
        "strength": rule.strong.source if rule.strong else "",
        "why": rule.why.template,
        "why_strong": rule.why_strong.template if rule.why_strong else "",
    }


def diff_policies(base: Policy, target: Policy) -> list[RuleChange]:
    """Rule-by-rule differences of two compiled policies (effective rules, in order)."""
    before = {r.id: (i, _rule_view(r)) for i, r in enumerate(base.rules)}
    after = {r.id: (i, _rule_view(r)) for i, r in enumerate(target.rules)}
    changes: list[RuleChange] = []
    if (base.default_vote, base.default_why) != (target.default_vote, target.default_why):
        changes.append(
            RuleChange(
                "default",
                "CHANGED",
                ("vote", "why"),
                json.dumps({"vote": base.default_vote, "why": base.default_why}),
                json.dumps({"vote": target.default_vote, "why": target.default_why}),
            )
        )
    kept_before = [rid for rid in before if rid in after]
    kept_after = [rid for rid in after if rid in before]
    for rid, (_, view) in after.items():
        if rid not in before:
            changes.append(RuleChange(rid, "ADDED", (), "", json.dumps(view, sort_keys=True)))
            continue
        old = before[rid][1]
        fields = tuple(k for k in view if view[k] != old[k])
        if fields:
            changes.append(
                RuleChange(
                    rid, "CHANGED", fields, json.dumps(old, sort_keys=True), json.dumps(view, sort_keys=True)
                )
            )
        elif kept_before.index(rid) != kept_after.index(rid):
            changes.append(
                RuleChange(
                    rid,
                    "MOVED",
                    ("order",),
                    json.dumps(old, sort_keys=True),
                    json.dumps(view, sort_keys=True),
                )
            )
    for rid, (_, view) in before.items():
        if rid not in after:
            changes.append(RuleChange(rid, "REMOVED", (), json.dumps(view, sort_keys=True), ""))
    return changes
