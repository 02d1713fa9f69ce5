"""Policy evaluation: a pure function of (meeting, classifications, policy, evidence).

No clock, no I/O, no transport. The same inputs give the same decisions, with
a trace of every rule considered, the values its conditions saw and the
evidence it cited.
"""

from __future__ import annotations

import json
import string

import cel

from proxyvote import ENGINE_VERSION
from proxyvote.core.evidence import ADVERSE_KINDS, EvidenceUnavailable, EvidenceView
from proxyvote.core.model import (
    NO_RECOMMENDATION,
    REFER,
    BallotItem,
    Classification,
    ConditionResult,
    EvidenceRecord,
    Meeting,
    MeetingDecision,
    Outcome,
    Recommendation,
    RuleEvaluation,
)
from proxyvote.core.policy import WITH_BOARD, Condition, Policy, Rule

_ACTIONS = frozenset({"COMPANY_ACTION"})
UNPLACED_REASON = "the taxonomy could not place this item; a human must classify it"
_MAX_ERROR = 300
# What a memo key holds beyond shared objects (its tuples; the item facts a rule reads).
MEMO_KEY_BYTES = 600


def decide_meeting(
    meeting: Meeting,
    classifications: tuple[Classification, ...],
    policy: Policy,
    evidence: EvidenceView,
) -> MeetingDecision:
    """Decides every item of ``meeting``; ``classifications`` are in item order."""
    scope = _Scope(meeting, evidence, policy)
    try:
        recommendations = tuple(
            _decide_item(item, classification, policy, scope)
            for item, classification in zip(meeting.items, classifications, strict=True)
        )
    finally:
        scope.release()
    cited_ids = {e.evidence_id for r in recommendations for e in r.outcome.cited}
    return MeetingDecision(
        meeting=meeting,
        policy=policy.ref,
        as_of=evidence.as_of,
        engine_version=ENGINE_VERSION,
        taxonomy_hash=classifications[0].taxonomy_hash if classifications else "",
        recommendations=recommendations,
        evidence=tuple(r for r in evidence.records if r.evidence_id in cited_ids),
    )


def item_facts(
    item: BallotItem, classification: Classification, fields: frozenset[str] | None = None
) -> dict:
    """What conditions see as ``item`` (policy.ITEM_FIELDS lists these names).

    ``fields`` limits it to what the policy's conditions read: handing CEL the
    whole item (a resolution's text can be long) costs more than the condition.
    """
    facts = {
        "item_id": item.item_id,
        "number": item.number,
        "title": item.title,
        "text": item.text,
        "proponent": {"kind": item.proponent_kind, "name": item.proponent_name},
        "board_recommendation": item.board_recommendation,
        "vote_options": list(item.vote_options),
        "npx_categories": list(classification.npx_categories),
        "topic": classification.topic,
        "topics": list(classification.topics),
        "request_kind": classification.request_kind,
        "flags": list(classification.flags),
        "classification_source": classification.source,
    }
    if fields is not None:
        return {name: facts[name] for name in fields}
    return facts


class _Scope:
    """The CEL context of one meeting: issuer, meeting and evidence functions.

    Built once per meeting; only ``item`` changes between items. Evidence
    functions note which records they returned, so a decision cites exactly
    what its conditions used.
    """

    def __init__(self, meeting: Meeting, evidence: EvidenceView, policy: Policy):
        self.evidence = evidence
        self._reads = policy.context_reads
        self._memo_key = None
        self._memo_key_bytes: int | None = None
        self.used: dict[str, EvidenceRecord] = {}
        self.failure = ""
        self._item_id: str | None = None
        self._context = None
        self._selections: dict[tuple, tuple[tuple[EvidenceRecord, ...], list[dict]]] = {}
        issuer = meeting.issuer
        self.issuer_name = issuer.name
        self.variables = {
            "issuer": {
                "name": issuer.name,
                "ticker": issuer.ticker,
                "isin": issuer.isin,
                "cusip": issuer.cusip,
                "country": issuer.country,
            },
            "meeting": {
                "meeting_id": meeting.meeting_id,
                "meeting_type": meeting.meeting_type,
                "meeting_date": meeting.meeting_date.isoformat(),
            },
            "as_of": evidence.as_of.isoformat(),
        }

    @property
    def memo_key_bytes(self) -> int:
        """What the shared part of this meeting's memo keys holds: the evidence records above
        all. Charged to every key that holds it (a few per meeting: only items whose rules have
        conditions make keys), so the memo's estimate errs high, never low."""
        if self._memo_key_bytes is None:
            held = 200
            if "evidence" in self._reads:
                held += sum(
                    1000 + len(r.summary) + sum(200 + len(x.publisher) + len(x.url) for x in r.sources)
                    for r in self.evidence.records
                )
            self._memo_key_bytes = held
        return self._memo_key_bytes

    @property
    def memo_key(self) -> tuple:
        """What, besides the item, the policy's conditions can see here."""
        if self._memo_key is None:
            view = self.evidence
            self._memo_key = _HashOnce(
                tuple(
                    _freeze(self.variables[name]) if name != "evidence" else (view.covered, view.records)
                    for name in sorted(self._reads)
                )
            )
        return self._memo_key

    @property
    def context(self):
        """The CEL context, built when a first condition needs it."""
        if self._context is None:
            context = cel.Context()
            for name, value in self.variables.items():
                context.add_variable(name, value)
            for name, function in (
                ("controversies", self._controversies),
                ("company_actions", self._company_actions),
                ("evidence", self._evidence),
            ):
                context.add_function(name, self._guarded(function))
            self._context = context
        return self._context

    def set_item(self, item: BallotItem, facts: dict) -> None:
        if self._item_id != item.item_id:
            self.context.add_variable("item", facts)
            self.variables["item"] = facts
            self._item_id = item.item_id

    def release(self) -> None:
        """Drops the CEL context. Its functions are closures over this scope, and the CEL
        runtime's context is not seen by Python's cycle collector: left alone, every scope
        whose conditions called an evidence function (and the records it held) stayed alive."""
        self._context = None
        self._selections.clear()

    def _guarded(self, function):
        # An exception raised inside a CEL callback is printed by the binding;
        # instead note the failure, return null (which fails the expression in
        # CEL itself) and report the noted reason.
        def call(*args):
            try:
                return function(*args)
            except EvidenceUnavailable as exc:
                self.failure = f"evidence unavailable: {exc}"
            except Exception as exc:
                self.failure = f"{function.__name__.lstrip('_')}() failed: {_clean_error(exc)}"
            return None

        call.__name__ = function.__name__
        return call

    def _select(self, topics, years, kinds) -> list[dict]:
        """Records for a question, as CEL values; each question is answered once per meeting."""
        key = (tuple(topics), years, kinds)
        found = self._selections.get(key)
        if found is None:
            records = self.evidence.select(topics, years, kinds)
            values = [
                {
                    "evidence_id": r.evidence_id,
                    "kind": r.kind,
                    "status": r.status,
                    "published": r.published.isoformat(),
                    "topics": list(r.topics),
                    "disputed": r.status == "DISPUTED",
                }
                for r in records
            ]
            found = self._selections[key] = (records, values)
        for record in found[0]:
            self.used[record.evidence_id] = record
        return found[1]

    def _controversies(self, topics, years=None):
        return self._select(topics, years, ADVERSE_KINDS)

    def _company_actions(self, topics, years=None):
        return self._select(topics, years, _ACTIONS)

    def _evidence(self, topics):
        return self._select(topics, None, None)

    def evaluate(self, condition: Condition) -> tuple[ConditionResult, list[EvidenceRecord]]:
        self.used = {}
        self.failure = ""
        error = ""
        if condition.uses_evidence and not self.evidence.covered:
            result, error = "UNKNOWN", "evidence unavailable: no evidence is on record for this issuer"
        else:
            try:
                value = condition.program.execute(self.context)
                if isinstance(value, bool):
                    result = "TRUE" if value else "FALSE"
                else:
                    result = "UNKNOWN"
                    error = f"evaluated to {type(value).__name__}, not true or false"
            except Exception as exc:  # missing data, type errors: the condition is unknown
                result, error = "UNKNOWN", _clean_error(exc)
            if self.failure:
                result, error = "UNKNOWN", self.failure
        used = sorted(self.used.values(), key=lambda r: (r.published, r.evidence_id), reverse=True)
        values = tuple((path, self._value_at(path)) for path in condition.paths)
        if condition.uses_evidence:
            values += (("evidence_used", json.dumps([r.evidence_id for r in used])),)
        return ConditionResult(condition.role, condition.source, result, values, error), used

    def _value_at(self, path: str) -> str:
        value: object = self.variables
        for part in path.split("."):
            if not isinstance(value, dict) or part not in value:
                return "<absent>"
            value = value[part]
        return json.dumps(value, ensure_ascii=False)[:500]


def _clean_error(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, KeyError):
        text = f"no value for {text}"
    return text[:_MAX_ERROR] or type(exc).__name__


def _cast(vote: str, item: BallotItem) -> tuple[str | None, str]:
    """The vote to cast for a rule's outcome, or None and why it cannot be cast."""
    if vote == WITH_BOARD:
        if item.board_recommendation == NO_RECOMMENDATION:
            return None, "the board made no recommendation to follow"
        vote = item.board_recommendation
    if vote == REFER or not item.vote_options or vote in item.vote_options:
        return vote, ""
    # Plurality elections offer WITHHOLD where other items offer AGAINST.
    swap = {"AGAINST": "WITHHOLD", "WITHHOLD": "AGAINST"}.get(vote)
    if swap and swap in item.vote_options:
        return swap, f"{vote} cast as {swap}, the card's option"
    return None, f"{vote} is not an option on the card"


def against_management(vote: str, board: str) -> bool:
    """A vote is against management when the board recommended something else."""
    return vote != REFER and board != NO_RECOMMENDATION and vote != board


def _citation(record: EvidenceRecord) -> str:
    """How a rationale names a record: publisher and date, as a reader would cite it.

    The record's id stays in the decision's cited_evidence_ids and the memo's footnotes.
    """
    publisher = record.sources[0].publisher if record.sources else "unattributed"
    status = {"DISPUTED": ", disputed", "COMPANY_STATEMENT": ", the company's statement"}.get(
        record.status, ""
    )
    kind = ", an allegation" if record.kind == "ALLEGATION" else ""
    return f"{publisher}, {record.published.isoformat()}{kind}{status}"


def _rationale(
    template: string.Template,
    item: BallotItem,
    c: Classification,
    vote: str,
    scope: _Scope,
    cited: list[EvidenceRecord],
) -> str:
    return template.safe_substitute(
        issuer=scope.issuer_name,
        topic=(c.topic or "unclassified").replace("_", " "),
        board=item.board_recommendation,
        vote=vote,
        cited="; ".join(_citation(r) for r in cited) or "no related records",
    )


def _decide_item(item: BallotItem, c: Classification, policy: Policy, scope: _Scope) -> Recommendation:
    signature = (item.proponent_kind, c.placed, c.npx_categories, c.topics, c.request_kind, c.flags)
    rules, unconditional, names_issuer = policy.candidates(signature)
    # An outcome is a function of what the rules can see, so it is decided once
    # per distinct input and reused: the classification signature, the card,
    # the issuer's name where a rationale may name it, plus, when a candidate
    # rule has conditions, the item fields and the context (including evidence)
    # they read.
    memo_key = (signature, item.board_recommendation, item.vote_options)
    if names_issuer:
        memo_key += (scope.issuer_name,)
    key_bytes = MEMO_KEY_BYTES
    if not unconditional:
        memo_key += (_freeze(item_facts(item, c, policy.item_fields)), scope.memo_key)
        key_bytes += len(item.title) + len(item.text) + scope.memo_key_bytes
    outcome = policy.outcomes.get(memo_key)
    if outcome is None:
        outcome = _evaluate(item, c, policy, rules, scope)
        policy.outcomes.put(memo_key, outcome, key_bytes)
    return _recommendation(item, c, policy, outcome)


class _HashOnce:
    """A memo-key part whose (large) hash is computed once, not at every lookup."""

    __slots__ = ("value", "_hash")

    def __init__(self, value: tuple):
        self.value = value
        self._hash = hash(value)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other) -> bool:
        return self is other or (
            isinstance(other, _HashOnce) and self._hash == other._hash and self.value == other.value
        )


def _freeze(value):
    """A hashable copy of a CEL variable's value."""
    if isinstance(value, dict):
        return tuple(sorted((k, _freeze(v)) for k, v in value.items()))
    if isinstance(value, list):
        return tuple(_freeze(v) for v in value)
    return value


def _evaluate(
    item: BallotItem, c: Classification, policy: Policy, rules: tuple[Rule, ...], scope: _Scope
) -> Outcome:
    trace: list[RuleEvaluation] = []
    for rule in rules:
        results: list[ConditionResult] = []
        cited: dict[str, EvidenceRecord] = {}
        outcome = "FIRED"
        if not rule.unconditional:
            scope.set_item(item, item_facts(item, c, policy.item_fields))
        for condition in rule.conditions:
            result, used = scope.evaluate(condition)
            results.append(result)
            cited.update((r.evidence_id, r) for r in used)
            wanted = "TRUE" if condition.role == "if" else "FALSE"
            if result.result == "UNKNOWN":
                outcome = "CONDITION_UNKNOWN"
                break
            if result.result != wanted:
                outcome = "CONDITION_FALSE"
                break
        if outcome != "FIRED":
            trace.append(RuleEvaluation(rule.id, rule.policy_id, outcome, tuple(results)))
            continue
        vote, note = _cast(rule.vote, item)
        if vote is None:
            trace.append(RuleEvaluation(rule.id, rule.policy_id, "NOT_APPLICABLE", tuple(results), note))
            continue
        strength = ""
        if rule.strong is not None:
            result, used = scope.evaluate(rule.strong)
            results.append(result)
            strength = "strong" if result.result == "TRUE" else "standard"
            if result.result == "TRUE":
                cited.update((r.evidence_id, r) for r in used)
        trace.append(RuleEvaluation(rule.id, rule.policy_id, "FIRED", tuple(results), note))
        cited_records = tuple(sorted(cited.values(), key=lambda r: (r.published, r.evidence_id)))
        text = _rationale(rule.why, item, c, vote, scope, cited_records)
        if strength == "strong" and rule.why_strong is not None:
            text += " " + _rationale(rule.why_strong, item, c, vote, scope, cited_records)
        return _outcome(item, c, vote, rule.id, text, strength, trace, cited_records)
    vote, note = _cast(policy.default_vote, item)
    if vote is None:
        vote = REFER
    text = _rationale(
        string.Template(policy.default_why or "No rule of the policy decides this item."),
        item,
        c,
        vote,
        scope,
        (),
    )
    trace.append(RuleEvaluation("default", policy.id, "FIRED", (), note))
    return _outcome(item, c, vote, "default", text, "", trace, ())


def _outcome(item, c, vote, rule_id, rationale, strength, trace, cited) -> Outcome:
    reasons = []
    if vote == REFER:
        reasons.append(rationale)
    if not c.placed:
        reasons.append(UNPLACED_REASON)
    return Outcome(
        vote=vote,
        rule_id=rule_id,
        rationale=rationale,
        strength=strength,
        trace=tuple(trace),
        cited=cited,
        against_management=against_management(vote, item.board_recommendation),
        review_reason=" ".join(reasons),
    )


def _recommendation(item: BallotItem, c: Classification, policy: Policy, o: Outcome) -> Recommendation:
    return Recommendation(item.item_id, item.board_recommendation, c, o, policy.ref)
