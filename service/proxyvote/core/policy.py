"""Voting policies: the YAML schema, validation and compilation.

A policy document is validated in full (schema, then meaning: known topics and
categories, CEL that compiles and names only known variables and functions,
rationale placeholders) and every problem is reported with its line. Only a
valid document compiles; compiling resolves ``extends`` against already
compiled parents, so a compiled policy is a flat, ordered list of rules with
CEL programs compiled once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import string
from dataclasses import dataclass, field

import cel

from proxyvote.core.bounded_cache import BoundedCache, outcome_size
from proxyvote.core.model import NPX_CATEGORIES, PROPONENT_KINDS, REFER, VOTES, PolicyRef
from proxyvote.core.taxonomy import Taxonomy
from proxyvote.core.yaml_source import YamlSource, parse_yaml, schema_problems
from proxyvote.errors import PolicyInvalid, PolicyProblem

WITH_BOARD = "WITH_BOARD"
OUTCOMES = VOTES + (REFER, WITH_BOARD)

# Names a condition may use. Keep in step with engine.item_facts and the
# functions engine binds.
CEL_ROOTS = frozenset({"item", "issuer", "meeting", "as_of"})
ITEM_FIELDS = frozenset(
    {
        "item_id",
        "number",
        "title",
        "text",
        "proponent",
        "board_recommendation",
        "vote_options",
        "npx_categories",
        "topic",
        "topics",
        "request_kind",
        "flags",
        "classification_source",
    }
)
EVIDENCE_FUNCTIONS = frozenset({"controversies", "company_actions", "evidence"})
CEL_FUNCTIONS = EVIDENCE_FUNCTIONS | {
    "size",
    "contains",
    "startsWith",
    "endsWith",
    "matches",
    "has",
    "exists",
    "all",
    "exists_one",
    "map",
    "filter",
    "int",
    "uint",
    "double",
    "string",
    "bool",
    "bytes",
    "timestamp",
    "duration",
    "type",
    "dyn",
}
RATIONALE_PLACEHOLDERS = frozenset({"issuer", "topic", "board", "cited", "vote"})

_ID = {"type": "string", "pattern": "^[a-z][a-z0-9-]*$", "maxLength": 100}
_RULE_ID = {"type": "string", "pattern": "^[a-z][a-z0-9-]*$", "maxLength": 100}
_CEL = {"type": "string", "minLength": 1, "maxLength": 4000}
_TEXT = {"type": "string", "maxLength": 4000}


def _str_list(items=None) -> dict:
    return {"type": "array", "minItems": 1, "items": items or {"type": "string"}}


SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["id", "version", "default", "rules"],
    "properties": {
        "id": _ID,
        "version": {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},  # int32 in the API
        # The date from which this version is in force (a backtest applies the
        # version in force on each meeting's as-of date); without it, from the start.
        "effective_from": {"type": "string", "pattern": r"^\d{4}-\d{2}-\d{2}$"},
        "title": _TEXT,
        "description": _TEXT,
        "extends": _ID,
        "default": {
            "type": "object",
            "additionalProperties": False,
            "required": ["vote"],
            "properties": {"vote": {"enum": list(OUTCOMES)}, "why": _TEXT},
        },
        "rules": {
            "type": "array",
            "maxItems": 1000,
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "vote", "why"],
                "properties": {
                    "id": _RULE_ID,
                    "description": _TEXT,
                    "when": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "categories": _str_list({"enum": list(NPX_CATEGORIES)}),
                            "topics": _str_list(),
                            "proponent": {"enum": list(PROPONENT_KINDS)},
                            "request_kinds": _str_list(),
                            "flags": _str_list(),
                            "not_flags": _str_list(),
                            "placed": {"type": "boolean"},
                        },
                    },
                    "if": _CEL,
                    "unless": _CEL,
                    "vote": {"enum": list(OUTCOMES)},
                    "strength": {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["strong"],
                        "properties": {"strong": _CEL},
                    },
                    "why": {"type": "string", "minLength": 1, "maxLength": 4000},
                    "why_strong": _TEXT,
                },
            },
        },
    },
}

_MACRO_VAR = re.compile(r"\.\s*(?:exists|all|exists_one|map|filter)\s*\(\s*([A-Za-z_]\w*)\s*,")
_PATH = re.compile(r"\b(item|issuer|meeting)((?:\.[A-Za-z_]\w*)+)")
_BARE_ITEM = re.compile(r"\bitem\b(?!\s*\.)")
# Rule selections remembered per policy (one per classification signature: few).
MAX_MEMO = 200_000
# Bytes of outcomes memoised per compiled policy version (see engine); a setting,
# given by the application at start (set_outcome_memo_bytes).
_OUTCOME_MEMO_BYTES = [64 << 20]


def set_outcome_memo_bytes(max_bytes: int) -> None:
    """The outcome memo's budget for policies compiled from now on."""
    _OUTCOME_MEMO_BYTES[0] = max(0, int(max_bytes))


def _outcome_memo() -> BoundedCache:
    return BoundedCache(_OUTCOME_MEMO_BYTES[0], outcome_size)


@dataclass(frozen=True, slots=True)
class Condition:
    role: str  # "if", "unless", "strong"
    source: str
    program: object  # cel.Program
    paths: tuple[str, ...]  # variable paths it reads, for the trace
    uses_evidence: bool
    # The item fields it reads; None when it uses ``item`` as a whole.
    item_fields: frozenset[str] | None
    # The other variables it reads: "issuer", "meeting", "as_of".
    context_roots: frozenset[str]


@dataclass(frozen=True, slots=True)
class Rule:
    id: str
    policy_id: str
    vote: str
    why: string.Template
    why_strong: string.Template | None
    categories: frozenset[str]
    topics: frozenset[str]
    proponent: str
    request_kinds: frozenset[str]
    flags: frozenset[str]
    not_flags: frozenset[str]
    placed: bool | None
    conditions: tuple[Condition, ...]  # "if" and "unless", in that order
    strong: Condition | None

    @property
    def unconditional(self) -> bool:
        return not self.conditions and self.strong is None

    def selects(self, signature: tuple) -> bool:
        """Whether ``when`` matches an item with this classification signature."""
        proponent, placed, categories, topics, request_kind, flags = signature
        return not (
            (self.proponent and self.proponent != proponent)
            or (self.placed is not None and self.placed != placed)
            or (self.categories and self.categories.isdisjoint(categories))
            or (self.topics and self.topics.isdisjoint(topics))
            or (self.request_kinds and request_kind not in self.request_kinds)
            or (self.flags and self.flags.isdisjoint(flags))
            or (self.not_flags and not self.not_flags.isdisjoint(flags))
        )


@dataclass(frozen=True, slots=True)
class Policy:
    """A compiled, immutable policy version with its parents folded in."""

    id: str
    version: int
    title: str
    extends: str
    source: str
    filename: str
    content_hash: str
    default_vote: str
    default_why: str
    rules: tuple[Rule, ...]
    # Item fields any condition reads; None when one uses ``item`` whole.
    item_fields: frozenset[str] | None = None
    # What else any condition reads: "issuer", "meeting", "as_of", "evidence".
    context_reads: frozenset[str] = frozenset()
    ref: PolicyRef | None = field(default=None, compare=False)
    # In force from this date; None: from the start (part of the content, hence the hash).
    effective_from: dt.date | None = None
    # Derived lookups, filled as items are decided. They hold only values
    # computed from the policy and the keys, so sharing them across threads and
    # requests changes no decision.
    _candidates: dict = field(default_factory=dict, compare=False, repr=False)
    outcomes: BoundedCache = field(default_factory=_outcome_memo, compare=False, repr=False)

    def __post_init__(self):
        object.__setattr__(self, "ref", PolicyRef(self.id, self.version, self.content_hash))

    def candidates(self, signature: tuple) -> tuple[tuple[Rule, ...], bool, bool]:
        """The rules whose ``when`` matches, in order; whether none has a condition; and
        whether a rationale they (or the default) may write names the issuer."""
        found = self._candidates.get(signature)
        if found is None:
            rules = tuple(r for r in self.rules if r.selects(signature))
            templates = [string.Template(self.default_why)]
            for r in rules:
                templates += [r.why] + ([r.why_strong] if r.why_strong else [])
            names_issuer = any("issuer" in t.get_identifiers() for t in templates)
            found = (rules, all(r.unconditional for r in rules), names_issuer)
            if len(self._candidates) >= MAX_MEMO:
                self._candidates.clear()
            self._candidates[signature] = found
        return found


@dataclass(frozen=True, slots=True)
class PolicyDocument:
    """A policy that passed validation on its own, before parents are resolved."""

    source: YamlSource
    text: str

    @property
    def id(self) -> str:
        return self.source.data["id"]

    @property
    def version(self) -> int:
        return self.source.data["version"]

    @property
    def extends(self) -> str:
        return self.source.data.get("extends", "")

    @property
    def effective_from(self) -> dt.date | None:
        text = self.source.data.get("effective_from")
        return dt.date.fromisoformat(text) if text else None


def read_policy(text: str, filename: str, taxonomy: Taxonomy) -> PolicyDocument:
    """Validates one policy document; raises PolicyInvalid listing every problem."""
    try:
        source = parse_yaml(text, filename)
    except ValueError as exc:  # a date-like value that is no date (2025-02-30) fails in the YAML library
        raise PolicyInvalid.single(filename, f"bad value: {exc}") from exc
    if isinstance(source.data, dict) and isinstance(source.data.get("effective_from"), dt.date):
        # YAML reads an unquoted 2025-02-01 as a date: the document keeps its text.
        # A date with a time (a datetime) spells itself with a "T" and the pattern refuses it.
        source.data["effective_from"] = source.data["effective_from"].isoformat()

    def rule_id_at(path) -> str:
        try:
            if path[0] == "rules":
                return str(source.data["rules"][path[1]].get("id", ""))
        except (IndexError, KeyError, TypeError, AttributeError):
            pass
        return ""

    problems = schema_problems(source, SCHEMA, rule_id_at)
    if problems:
        raise PolicyInvalid(problems)
    problems = _meaning_problems(source, taxonomy)
    if problems:
        raise PolicyInvalid(problems)
    return PolicyDocument(source, text)


def _meaning_problems(source: YamlSource, taxonomy: Taxonomy) -> list[PolicyProblem]:
    doc = source.data
    problems: list[PolicyProblem] = []
    known = {
        "topics": taxonomy.topic_ids,
        "request_kinds": taxonomy.request_kind_ids,
        "flags": taxonomy.flag_ids,
        "not_flags": taxonomy.flag_ids,
    }
    seen: dict[str, int] = {}
    if "effective_from" in doc:
        try:
            dt.date.fromisoformat(doc["effective_from"])
        except ValueError:
            problems.append(
                source.problem(("effective_from",), f"{doc['effective_from']!r} is not a valid date")
            )
    _check_template(source, ("default", "why"), doc["default"].get("why", ""), "", problems)
    for i, rule in enumerate(doc["rules"]):
        rid = rule["id"]
        if rid in seen:
            problems.append(source.problem(("rules", i, "id"), f"duplicate rule id {rid!r}", rid))
        seen[rid] = i
        for key, allowed in known.items():
            for j, value in enumerate(rule.get("when", {}).get(key, [])):
                if value not in allowed:
                    problems.append(
                        source.problem(
                            ("rules", i, "when", key, j),
                            f"unknown {key.rstrip('s').replace('not_flag', 'flag')} {value!r}: "
                            "not in the taxonomy, so this rule would never match",
                            rid,
                        )
                    )
        for role, path in (("if", ("if",)), ("unless", ("unless",)), ("strong", ("strength", "strong"))):
            expression = rule.get(path[0]) if len(path) == 1 else rule.get("strength", {}).get("strong")
            if expression is None:
                continue
            for message in cel_problems(expression):
                problems.append(source.problem(("rules", i) + path, f"{role}: {message}", rid))
        _check_template(source, ("rules", i, "why"), rule["why"], rid, problems)
        _check_template(source, ("rules", i, "why_strong"), rule.get("why_strong", ""), rid, problems)
        if "why_strong" in rule and "strength" not in rule:
            problems.append(source.problem(("rules", i, "why_strong"), "why_strong needs a strength", rid))
    return problems


def cel_problems(expression: str) -> list[str]:
    """Why a condition is unusable, or nothing: syntax, unknown names or fields."""
    try:
        program = cel.compile(expression)
    except Exception as exc:  # the binding raises ValueError; be safe with any
        return [f"CEL does not compile: {_first_line(exc)}"]
    refs = program.references()
    problems = []
    bound = set(_MACRO_VAR.findall(expression))
    for name in refs["variables"]:
        if name not in CEL_ROOTS and name not in bound:
            roots = ", ".join(sorted(CEL_ROOTS))
            problems.append(f"unknown variable {name!r} (known: {roots})")
    for name in refs["functions"]:
        if name[0] in "_@!" or name in CEL_FUNCTIONS:
            continue
        problems.append(f"unknown function {name!r}")
    for root, tail in _PATH.findall(expression):
        first = tail.split(".")[1]
        if root == "item" and first not in ITEM_FIELDS:
            problems.append(f"unknown field item.{first} (known: {', '.join(sorted(ITEM_FIELDS))})")
    if _nests_comprehensions(expression):
        problems.append(
            "a comprehension (all, exists, exists_one, map, filter) inside another one's body is not "
            "allowed: its cost multiplies with each level (200-element lists four deep are 1.6 billion steps)"
        )
    return problems


# CEL string literals (skipped), comprehension macro calls, and brackets.
_CEL_STRING = (
    r"[rRbB]{0,2}(?:"
    + r"'{3}.*?'{3}"
    + r'|"{3}.*?"{3}'
    + r"|'(?:\\.|[^'\\\n])*'"
    + r'|"(?:\\.|[^"\\\n])*"'
    + r")"
)
_TOKEN = re.compile(
    rf"(?P<string>{_CEL_STRING})"
    r"|(?P<macro>\.\s*(?:all|exists_one|exists|map|filter)\s*\()"
    r"|(?P<open>[(\[{])|(?P<close>[)\]}])",
    re.DOTALL,
)


def _nests_comprehensions(expression: str) -> bool:
    """Whether a comprehension macro is called inside another's arguments (string literals skipped)."""
    stack: list[bool] = []  # one per open bracket: whether it opened a macro's arguments
    for match in _TOKEN.finditer(expression):
        kind = match.lastgroup
        if kind == "macro":
            if any(stack):
                return True
            stack.append(True)
        elif kind == "open":
            stack.append(False)
        elif kind == "close" and stack:
            stack.pop()
    return False


def _first_line(exc: Exception) -> str:
    text = str(exc)
    text = text.replace("Failed to parse expression", "").strip()
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return " ".join(lines[:2])[:300]


def _check_template(source, path, text, rule_id, problems) -> None:
    if not text:
        return
    template = string.Template(text)
    if not template.is_valid():
        problems.append(source.problem(path, "bad $placeholder (write $$ for a dollar sign)", rule_id))
        return
    for name in template.get_identifiers():
        if name not in RATIONALE_PLACEHOLDERS:
            allowed = ", ".join(f"${p}" for p in sorted(RATIONALE_PLACEHOLDERS))
            problems.append(source.problem(path, f"unknown placeholder ${name} (known: {allowed})", rule_id))


def compile_policy(document: PolicyDocument, parent: Policy | None) -> Policy:
    """A runnable policy: the document's rules first, then the parent's it does not redefine."""
    doc = document.source.data
    if doc.get("extends") and (parent is None or parent.id != doc["extends"]):
        raise ValueError("compile_policy needs the policy's parent")
    own = tuple(_compile_rule(rule, doc["id"]) for rule in doc["rules"])
    own_ids = {r.id for r in own}
    inherited = tuple(r for r in parent.rules if r.id not in own_ids) if parent else ()
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    digest = hashlib.sha256(canonical.encode())
    if parent:
        digest.update(parent.content_hash.encode())
    return Policy(
        id=doc["id"],
        version=doc["version"],
        title=doc.get("title", doc["id"]),
        extends=doc.get("extends", ""),
        source=document.text,
        filename=document.source.filename,
        content_hash=digest.hexdigest(),
        default_vote=doc["default"]["vote"],
        default_why=doc["default"].get("why", ""),
        rules=own + inherited,
        effective_from=document.effective_from,
        item_fields=_item_fields(own + inherited),
        context_reads=_context_reads(own + inherited),
    )


def _conditions(rules: tuple[Rule, ...]):
    for rule in rules:
        yield from rule.conditions
        if rule.strong:
            yield rule.strong


def _context_reads(rules: tuple[Rule, ...]) -> frozenset[str]:
    reads: set[str] = set()
    for condition in _conditions(rules):
        reads |= condition.context_roots
        if condition.uses_evidence:
            reads.add("evidence")
    return frozenset(reads)


def _item_fields(rules: tuple[Rule, ...]) -> frozenset[str] | None:
    fields: set[str] = set()
    for condition in _conditions(rules):
        if condition.item_fields is None:
            return None
        fields |= condition.item_fields
    return frozenset(fields)


def _condition(role: str, expression: str) -> Condition:
    program = cel.compile(expression)
    functions = set(program.references()["functions"])
    found = _PATH.findall(expression)
    paths = tuple(dict.fromkeys(root + tail for root, tail in found))
    item_fields = None
    if not _BARE_ITEM.search(expression):
        item_fields = frozenset(tail.split(".")[1] for root, tail in found if root == "item")
    roots = frozenset(program.references()["variables"]) & (CEL_ROOTS - {"item"})
    return Condition(
        role, expression, program, paths, bool(functions & EVIDENCE_FUNCTIONS), item_fields, roots
    )


def _compile_rule(rule: dict, policy_id: str) -> Rule:
    when = rule.get("when", {})
    conditions = tuple(_condition(role, rule[role]) for role in ("if", "unless") if role in rule)
    strong = rule.get("strength", {}).get("strong")
    return Rule(
        id=rule["id"],
        policy_id=policy_id,
        vote=rule["vote"],
        why=string.Template(" ".join(rule["why"].split())),
        why_strong=string.Template(" ".join(rule["why_strong"].split())) if rule.get("why_strong") else None,
        categories=frozenset(when.get("categories", ())),
        topics=frozenset(when.get("topics", ())),
        proponent=when.get("proponent", ""),
        request_kinds=frozenset(when.get("request_kinds", ())),
        flags=frozenset(when.get("flags", ())),
        not_flags=frozenset(when.get("not_flags", ())),
        placed=when.get("placed"),
        conditions=conditions,
        strong=_condition("strong", strong) if strong else None,
    )
