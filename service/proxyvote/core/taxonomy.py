"""The taxonomy: rules that place ballot items in N-PX categories and topics.

This module turns the taxonomy document into compiled, immutable rules and
validates it; ``classify`` applies them. Reading the file is the caller's job.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass

from proxyvote.core.model import NPX_CATEGORIES, PROPONENT_KINDS
from proxyvote.core.prefilter import Prefilter
from proxyvote.core.textmodel import LinearModel, parse_model
from proxyvote.core.yaml_source import parse_yaml, schema_problems
from proxyvote.errors import PolicyInvalid

_ID = {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"}
_PATTERNS = {"type": "array", "items": {"type": "string", "minLength": 1}, "minItems": 1}

SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["version", "topics"],
    "properties": {
        "version": {"type": "integer", "minimum": 1},
        "topics": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "categories", "patterns"],
                "properties": {
                    "id": _ID,
                    "categories": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"enum": list(NPX_CATEGORIES)},
                    },
                    "proponent": {"enum": list(PROPONENT_KINDS)},
                    "patterns": _PATTERNS,
                },
            },
        },
        "request_kinds": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "patterns"],
                "properties": {"id": _ID, "patterns": _PATTERNS},
            },
        },
        "flags": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "patterns"],
                "properties": {
                    "id": _ID,
                    "patterns": _PATTERNS,
                    "proponent_names": {"type": "array", "items": {"type": "string"}},
                    # Only items in one of these categories can carry the flag.
                    "categories": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"enum": list(NPX_CATEGORIES)},
                    },
                },
            },
        },
    },
}


@dataclass(frozen=True, slots=True)
class PatternRule:
    id: str
    patterns: tuple[re.Pattern, ...]
    categories: tuple[str, ...] = ()
    proponent: str = ""
    proponent_names: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Taxonomy:
    version: int
    topics: tuple[PatternRule, ...]
    request_kinds: tuple[PatternRule, ...]
    flags: tuple[PatternRule, ...]
    # Covers the rules and the model: every decision records it, so a replay
    # with another model is detected.
    content_hash: str
    model: LinearModel | None = None
    rules_hash: str = ""
    prefilter: Prefilter | None = None
    # section -> ((rule, key mask, ((pattern, key, needs), ...)), ...), for classify (built once
    # here); "shift": section -> where its rules' bits start in a text's mask
    plans: dict | None = None
    # topic id -> its N-PX categories
    topic_categories: dict | None = None

    @property
    def model_hash(self) -> str:
        return self.model.content_hash if self.model else ""

    @property
    def topic_ids(self) -> frozenset[str]:
        return frozenset(t.id for t in self.topics)

    @property
    def request_kind_ids(self) -> frozenset[str]:
        return frozenset(r.id for r in self.request_kinds)

    @property
    def flag_ids(self) -> frozenset[str]:
        return frozenset(f.id for f in self.flags)


def parse_taxonomy(text: str, filename: str = "taxonomy.yaml", model_text: str | None = None) -> Taxonomy:
    """Validates and compiles a taxonomy document; raises PolicyInvalid.

    ``model_text`` is the linear model's JSON (``taxonomy-model.json``, built
    by ``make model``); without it, items are placed by the rules alone.
    """
    source = parse_yaml(text, filename)
    problems = schema_problems(source, SCHEMA)
    if problems:
        raise PolicyInvalid(problems)
    doc = source.data
    seen: set[tuple[str, str]] = set()

    def compile_rules(section: str) -> tuple[PatternRule, ...]:
        rules = []
        for i, entry in enumerate(doc.get(section, [])):
            if (section, entry["id"]) in seen:
                problems.append(source.problem((section, i, "id"), f"duplicate id {entry['id']!r}"))
            seen.add((section, entry["id"]))
            compiled = []
            for j, pattern in enumerate(entry["patterns"]):
                try:
                    compiled.append(re.compile(pattern, re.IGNORECASE))
                except re.error as exc:
                    problems.append(
                        source.problem((section, i, "patterns", j), f"bad pattern: {exc}", entry["id"])
                    )
            rules.append(
                PatternRule(
                    id=entry["id"],
                    patterns=tuple(compiled),
                    categories=tuple(entry.get("categories", ())),
                    proponent=entry.get("proponent", ""),
                    proponent_names=tuple(n.casefold() for n in entry.get("proponent_names", ())),
                )
            )
        return tuple(rules)

    topics = compile_rules("topics")
    request_kinds = compile_rules("request_kinds")
    flags = compile_rules("flags")
    if problems:
        raise PolicyInvalid(problems)
    model = None
    if model_text is not None:
        try:
            model = parse_model(model_text)
        except ValueError as exc:
            raise PolicyInvalid.single(filename, f"classifier model: {exc}") from exc
    canonical = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    rules_hash = hashlib.sha256(canonical.encode()).hexdigest()
    content_hash = rules_hash
    if model is not None:
        content_hash = hashlib.sha256(f"{rules_hash}:{model.content_hash}".encode()).hexdigest()
    patterns = list(dict.fromkeys(p for rule in (*topics, *request_kinds, *flags) for p in rule.patterns))
    prefilter = Prefilter(patterns)
    plans = {
        "topics": _plan(topics, patterns, prefilter),
        "request_kinds": _plan(request_kinds, patterns, prefilter),
        "flags": _plan(flags, patterns, prefilter),
    }
    # One bit per topic and request-kind rule in each text's mask (core/prefilter.py):
    # classify walks only the rules whose bit is set, in their order.
    shift = prefilter.index_rules([key for _, key, _ in plans["topics"] + plans["request_kinds"]])
    plans["shift"] = {"topics": shift, "request_kinds": shift + len(topics)}
    return Taxonomy(
        version=doc["version"],
        topics=topics,
        request_kinds=request_kinds,
        flags=flags,
        content_hash=content_hash,
        model=model,
        rules_hash=rules_hash,
        prefilter=prefilter,
        plans=plans,
        topic_categories={t.id: t.categories for t in topics},
    )


def _plan(rules, patterns, prefilter: Prefilter) -> tuple:
    """Per rule: (rule, a mask one of whose bits an item needs for any of its
    patterns to be worth checking, ((pattern, its key, its needs), ...))."""
    index = {p: i for i, p in enumerate(patterns)}
    plan = []
    for rule in rules:
        entries = tuple((p, prefilter.keys[index[p]], prefilter.needs[index[p]]) for p in rule.patterns)
        key = 0
        for _, bits, _ in entries:
            key |= bits
        plan.append((rule, key, entries))
    return tuple(plan)
