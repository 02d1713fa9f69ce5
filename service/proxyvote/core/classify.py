"""Classification: which N-PX categories and topics a ballot item belongs to.

A pure function of the item and the taxonomy. It runs once per item and its
result is shared by every policy evaluated on that item.

Two parts (docs/classification.md):
- rules (``policies/taxonomy.yaml``): topics, request kinds and flags from
  regular expressions written from the domain. A literal-word prefilter
  (core/prefilter.py) runs only the patterns an item's words can enable;
- a linear model over word and character n-grams (core/textmodel.py), trained
  at build time from N-PX records, gives a probability per N-PX category and
  the probability that a shareholder request is anti-ESG.
Categories are those of the rules' topics plus the model's confident ones;
each gets a confidence. When neither is confident the item needs review,
with the reason, and keeps the model's best guesses as its categories.
"""

from __future__ import annotations

import re

from proxyvote.core.model import BallotItem, Classification, Match, Meeting
from proxyvote.core.taxonomy import Taxonomy

# Text beyond this is not searched: supporting statements can be long, and the
# resolved clause comes first.
MAX_SCAN_CHARS = 20_000

# A rule's topic places its categories with this confidence (or the model's, if higher).
RULE_CONFIDENCE = 0.9
# A model category is given from this probability on.
ACCEPT = 0.35
ACCEPT_BESIDE_RULES = ACCEPT  # 0.5 or 0.6 cost held-out shareholder accuracy (94.6%)
# When no rule places the item, the model's runner-up is also given from this
# probability on (filers tick every category that applies).
RUNNER_UP = 0.15
# A shareholder request is anti-ESG for the model from this probability on.
ANTI_ESG_THRESHOLD = 0.6
DIRECTION_LABEL = "ANTI_ESG"
ESG_CATEGORIES = frozenset(
    {
        "ENVIRONMENT_OR_CLIMATE",
        "HUMAN_RIGHTS_OR_HUMAN_CAPITAL",
        "DIVERSITY_EQUITY_INCLUSION",
        "OTHER_SOCIAL_ISSUES",
    }
)
ESG_TOPICS = frozenset({"lobbying_disclosure", "political_spending"})
# Requests whose rules already read as pro-ESG assessments of human-rights risk
# (the wording "risks of" is shared with anti-ESG requests): the model alone
# never flags them anti-ESG (the rules and the proponent name still do).
ASSESSMENT_TOPICS = frozenset(
    {
        "facial_recognition",
        "customer_due_diligence",
        "government_surveillance",
        "human_rights_impact_assessment",
        "supply_chain_labor",
        "freedom_of_association",
    }
)
ANTI_ESG_THRESHOLD_ASSESSMENT = 1.01  # never: the rules and the proponent decide these

_WORD = re.compile(r"[a-z0-9]+")


def classify_meeting(meeting: Meeting, taxonomy: Taxonomy) -> tuple[Classification, ...]:
    return tuple(classify(item, taxonomy) for item in meeting.items)


def classify(item: BallotItem, taxonomy: Taxonomy) -> Classification:
    title = item.title[:MAX_SCAN_CHARS]
    text = item.text[:MAX_SCAN_CHARS]
    title_words = _WORD.findall(title.lower())
    prefilter = taxonomy.prefilter
    fields = [("title", title, prefilter.text_mask(title, title_words))]
    if text:
        fields.append(("text", text, prefilter.text_mask(text, _WORD.findall(text.lower()))))
    plans = taxonomy.plans
    shift = plans["shift"]
    topic_matches = _topics(item, plans["topics"], shift["topics"], fields)
    request_match = _first(plans["request_kinds"], shift["request_kinds"], fields, "request_kind")
    topics = tuple(m.rule_id for m in topic_matches)

    model = taxonomy.model
    probs: dict[str, float] = {}
    if model is not None:
        scores = model.probabilities(title_words[:400], item.proponent_kind)
        probs = dict(zip(model.labels, scores, strict=True))
    direction_score = probs.pop(DIRECTION_LABEL, -1.0)

    lead: tuple[Match, ...] = ()
    review_reason = ""
    if item.category is not None:
        caller = item.category
        source, categories = "CALLER", (caller.npx_category,)
        confidences = ((caller.npx_category, 1.0),)
        if caller.topic:
            topics = (caller.topic,) + tuple(t for t in topics if t != caller.topic)
        lead = (Match("caller", "topic", "category", "", f"{caller.npx_category}/{caller.topic}"),)
    else:
        source, categories, confidences, review_reason = _categories(topics, probs, taxonomy)

    flag_matches = _flags(item, plans["flags"], fields, categories)
    flags = tuple(m.rule_id for m in flag_matches)
    direction = ""
    if item.proponent_kind == "SHAREHOLDER":
        assessment = ASSESSMENT_TOPICS.intersection(topics)
        threshold = ANTI_ESG_THRESHOLD_ASSESSMENT if assessment else ANTI_ESG_THRESHOLD
        if "anti_esg" not in flags and source != "UNPLACED" and direction_score >= threshold:
            model_match = Match("anti_esg", "flag", "model", DIRECTION_LABEL, f"{direction_score:.2f}")
            flag_matches += (model_match,)
            flags += ("anti_esg",)
        if "anti_esg" in flags:
            direction = "anti_esg"
        elif ESG_CATEGORIES.intersection(categories) or ESG_TOPICS.intersection(topics):
            direction = "pro_esg"
    return Classification(
        source=source,
        npx_categories=categories,
        topic=topics[0] if topics else "",
        topics=topics,
        request_kind=request_match.rule_id if request_match else "",
        flags=flags,
        matches=lead + topic_matches + ((request_match,) if request_match else ()) + flag_matches,
        taxonomy_hash=taxonomy.content_hash,
        confidences=confidences,
        review_reason=review_reason,
        direction=direction,
        direction_score=round(direction_score, 4),
    )


def _categories(topics, probs: dict[str, float], taxonomy: Taxonomy):
    """(source, categories, confidences, review reason) from the rules' topics and the model."""
    conf: dict[str, float] = {}
    if topics:
        by_id = taxonomy.topic_categories
        for t in topics:
            for c in by_id[t]:
                conf[c] = max(conf.get(c, 0.0), RULE_CONFIDENCE, probs.get(c, 0.0))
    ranked = sorted(probs.items(), key=lambda kv: (-kv[1], kv[0]))
    if not ranked:
        if conf:
            cats = tuple(conf)
            return "TAXONOMY", cats, tuple((c, conf[c]) for c in cats), ""
        reason = "no taxonomy rule places the item (and no classifier model is loaded)"
        return "UNPLACED", ("OTHER",), (), reason
    best, best_p = ranked[0]
    confident = bool(topics) or best_p >= ACCEPT
    # Beside a rule's categories the model adds only what it is sure of.
    accept = ACCEPT_BESIDE_RULES if topics else ACCEPT
    for c, p in ranked:
        if p >= accept:
            conf[c] = max(conf.get(c, 0.0), p)
    conf.setdefault(best, best_p)
    if not topics and len(ranked) > 1 and ranked[1][1] >= RUNNER_UP:
        conf.setdefault(ranked[1][0], ranked[1][1])
    order = sorted(conf.items(), key=lambda kv: (-kv[1], kv[0]))
    cats = tuple(c for c, _ in order)
    confidences = tuple((c, round(p, 4)) for c, p in order)
    if confident:
        return "TAXONOMY", cats, confidences, ""
    reason = (
        f"no category is confident: no taxonomy rule matches and the model's best guess, "
        f"{best}, has {best_p:.2f} (needs {ACCEPT:.2f})"
    )
    return "UNPLACED", cats, confidences, reason


def _search(rule, entries, field: str, text: str, kind: str, mask: int) -> Match | None:
    for pattern, key, needs in entries:
        if mask & key:
            for need in needs:
                if mask & need == need:
                    found = pattern.search(text)
                    if found:
                        return Match(rule.id, kind, field, pattern.pattern, found.group(0))
                    break
    return None


def _topics(item: BallotItem, plan, shift: int, fields) -> tuple[Match, ...]:
    """Every topic matching the title; if none does, every topic matching the text."""
    kind = item.proponent_kind
    every = (1 << len(plan)) - 1
    for field, text, mask in fields:
        found = []
        rules = (mask >> shift) & every  # the rules whose key the text's words meet
        while rules:
            low = rules & -rules
            rules ^= low
            rule, _, entries = plan[low.bit_length() - 1]
            if rule.proponent and rule.proponent != kind:
                continue
            match = _search(rule, entries, field, text, "topic", mask)
            if match is not None:
                found.append(match)
        if found:
            return tuple(found)
    return ()


def _first(plan, shift: int, fields, kind: str) -> Match | None:
    every = (1 << len(plan)) - 1
    for field, text, mask in fields:
        rules = (mask >> shift) & every
        while rules:
            low = rules & -rules
            rules ^= low
            rule, _, entries = plan[low.bit_length() - 1]
            match = _search(rule, entries, field, text, kind, mask)
            if match:
                return match
    return None


def _flags(item: BallotItem, plan, fields, categories) -> tuple[Match, ...]:
    found = []
    name = item.proponent_name.casefold()
    for rule, rule_key, entries in plan:
        if rule.categories and not any(c in categories for c in rule.categories):
            continue
        match = None
        if name:
            for known in rule.proponent_names:
                if known in name:
                    match = Match(rule.id, "flag", "proponent.name", known, item.proponent_name)
                    break
        if match is None:
            for field, text, mask in fields:
                if rule_key & mask:
                    match = _search(rule, entries, field, text, "flag", mask)
                    if match:
                        break
        if match:
            found.append(match)
    return tuple(found)
