"""Tenants' own memo templates: checked at upload, rendered in a sandbox with limits.

A template runs in Jinja's ``SandboxedEnvironment`` with autoescaping, sees only
plain data (dicts, lists, strings, numbers), and is rendered in a separate
process that is stopped when it runs past its time limit or writes past its
size limit. Uploads are checked before they are stored: a template that does
not parse, reaches for an underscore attribute (``__class__``, ``_private``),
or loads other templates is rejected then, with its line, not at render time.
"""

from __future__ import annotations

import multiprocessing
import queue

from jinja2 import TemplateSyntaxError, nodes
from jinja2.sandbox import SandboxedEnvironment

from proxyvote.errors import FieldViolation, RenderFailed, TemplateRejected

MAX_SOURCE_BYTES = 200_000
RENDER_SECONDS = 5.0
MAX_OUTPUT_BYTES = 5_000_000
_MAX_REPEAT = 100_000  # the longest string `*` may build


class _Sandbox(SandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context, operator, left, right):
        if operator == "**" and isinstance(right, int) and right > 64:
            raise OverflowError("exponent too large in a memo template")
        if operator == "*" and any(isinstance(x, (str, list)) for x in (left, right)):
            count = right if isinstance(right, int) else left if isinstance(left, int) else 0
            if count > _MAX_REPEAT:
                raise OverflowError("repetition too large in a memo template")
        return super().call_binop(context, operator, left, right)


def _environment() -> SandboxedEnvironment:
    return _Sandbox(autoescape=True, loader=None)


def check_template(source: str, field: str = "source") -> None:
    """Raises TemplateRejected (INVALID_ARGUMENT) naming the line of every problem found."""
    if len(source.encode("utf-8", "surrogatepass")) > MAX_SOURCE_BYTES:
        raise TemplateRejected([FieldViolation(field, f"is larger than {MAX_SOURCE_BYTES} bytes")])
    environment = _environment()
    try:
        tree = environment.parse(source)
        problems = _problems(tree)
    except TemplateSyntaxError as exc:
        raise TemplateRejected([FieldViolation(field, f"line {exc.lineno}: {exc.message}")]) from exc
    except RecursionError as exc:  # Jinja parses and walks the tree recursively
        raise TemplateRejected([FieldViolation(field, "nests too deeply to be checked")]) from exc
    if problems:
        raise TemplateRejected([FieldViolation(field, p) for p in problems])


def _problems(tree) -> list[str]:
    problems = []
    for node in tree.find_all(
        (
            nodes.Getattr,
            nodes.Getitem,
            nodes.Name,
            nodes.Import,
            nodes.FromImport,
            nodes.Include,
            nodes.Extends,
        )
    ):
        line = getattr(node, "lineno", 0)
        if isinstance(node, (nodes.Import, nodes.FromImport, nodes.Include, nodes.Extends)):
            problems.append(f"line {line}: templates may not load other templates")
        elif isinstance(node, nodes.Getattr) and node.attr.startswith("_"):
            problems.append(f"line {line}: {node.attr!r} is not reachable from a memo template")
        elif (
            isinstance(node, nodes.Getitem)
            and isinstance(node.arg, nodes.Const)
            and isinstance(node.arg.value, str)
            and node.arg.value.startswith("_")
        ):
            problems.append(f"line {line}: {node.arg.value!r} is not reachable from a memo template")
        elif isinstance(node, nodes.Name) and node.name.startswith("_"):
            problems.append(f"line {line}: {node.name!r} is not reachable from a memo template")
    return problems


def _render_in_child(source: str, context: dict, max_bytes: int, out: multiprocessing.Queue) -> None:
    try:
        template = _environment().from_string(source)
        pieces, size = [], 0
        for piece in template.generate(**context):
            size += len(piece)
            if size > max_bytes:
                out.put(("error", f"the memo grew past {max_bytes} characters"))
                return
            pieces.append(piece)
        out.put(("ok", "".join(pieces)))
    except Exception as exc:  # the template's own errors, reported to the caller
        out.put(("error", f"{type(exc).__name__}: {exc}"[:500]))


def render_template(
    source: str, context: dict, seconds: float = RENDER_SECONDS, max_bytes: int = MAX_OUTPUT_BYTES
) -> str:
    """Renders a checked template with plain-data ``context`` in a child process, within limits."""
    check_template(source)
    spawn = multiprocessing.get_context("spawn")  # no fork: the caller may be a threaded server
    out = spawn.Queue()
    child = spawn.Process(target=_render_in_child, args=(source, context, max_bytes, out), daemon=True)
    child.start()
    try:
        status, value = out.get(timeout=seconds)
    except queue.Empty:
        raise RenderFailed(f"the memo template ran past its {seconds:.0f} s limit") from None
    finally:
        if child.is_alive():
            child.kill()
        child.join(timeout=5)
    if status != "ok":
        raise RenderFailed(f"the memo template failed: {value}")
    return value


def memo_context(decision, overrides=(), decision_id: str = "") -> dict:
    """What a tenant's template sees: plain data only (no objects, so no methods to reach)."""
    items = {item.item_id: item for item in decision.meeting.items}
    latest = {}
    for override in sorted(overrides, key=lambda o: o.created_at):
        latest[override.item_id] = override
    evidence = {e.evidence_id: e for e in decision.evidence}
    rows = []
    for r in decision.recommendations:
        item = items[r.item_id]
        override = latest.get(r.item_id)
        rows.append(
            {
                "item_id": r.item_id,
                "number": item.number or r.item_id,
                "title": item.title,
                "proponent": item.proponent_kind,
                "proponent_name": item.proponent_name,
                "board_recommendation": r.board_recommendation,
                "vote": r.vote,
                "against_management": r.against_management,
                "needs_review": r.needs_review,
                "review_reason": r.review_reason,
                "rationale": r.rationale,
                "rule_id": r.rule_id,
                "strength": r.strength,
                "npx_categories": list(r.classification.npx_categories),
                "topic": r.classification.topic,
                "cited": [
                    {
                        "evidence_id": e.evidence_id,
                        "summary": e.summary,
                        "published": e.published.isoformat(),
                        "kind": e.kind,
                        "status": e.status,
                        "publishers": [s.publisher for s in e.sources],
                    }
                    for e in (evidence[i] for i in r.cited_evidence_ids if i in evidence)
                ],
                "override": None
                if override is None
                else {"vote": override.vote, "reason": override.reason, "analyst": override.analyst},
            }
        )
    issuer = decision.meeting.issuer
    return {
        "meeting": {
            "meeting_id": decision.meeting.meeting_id,
            "meeting_date": decision.meeting.meeting_date.isoformat(),
            "meeting_type": decision.meeting.meeting_type,
            "issuer": {"name": issuer.name, "ticker": issuer.ticker, "country": issuer.country},
        },
        "policy": {
            "id": decision.policy.id,
            "version": decision.policy.version,
            "hash": decision.policy.content_hash,
        },
        "as_of": decision.as_of.isoformat(),
        "decision_id": decision_id,
        "items": rows,
    }
