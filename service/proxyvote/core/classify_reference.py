"""The reference classifier: the plain specification the fast path must equal.

This is ``classify`` as it was before the speed work of issue 8, kept on
purpose without any of its shortcuts: every pattern of every rule is tried in
order (no literal-word prefilter), and the linear model is scored from its
weights on every call (no word cache). ``tests/test_classify_fast.py``
compares ``core.classify.classify`` with it on every development record and
the demo meetings; ``bench/classification.py`` reports the speed ratio. Its
constants are the fast path's own (imported); everything else is a copy.
"""

from __future__ import annotations

import math

from proxyvote.core.classify import (
    ACCEPT,
    ACCEPT_BESIDE_RULES,
    ANTI_ESG_THRESHOLD,
    ANTI_ESG_THRESHOLD_ASSESSMENT,
    ASSESSMENT_TOPICS,
    DIRECTION_LABEL,
    ESG_CATEGORIES,
    ESG_TOPICS,
    MAX_SCAN_CHARS,
    RULE_CONFIDENCE,
    RUNNER_UP,
)
from proxyvote.core.model import BallotItem, Classification, Match
from proxyvote.core.taxonomy import Taxonomy
from proxyvote.core.textmodel import WORD, LinearModel, word_features


def reference_probabilities(model: LinearModel, toks: list[str], proponent_kind: str = "") -> list[float]:
    """The model's probabilities summed in the model's order: each word's own
    features first (in ``word_features`` order), then the word sums in text
    order, then the bigrams, then the proponent kind; no cache."""
    weights = model.weights
    vecs = []
    total = 0
    for tok in toks:
        feats = word_features(tok)
        own = [weights[f] for f in feats if f in weights]
        total += len(feats)
        if own:
            vecs.append(tuple(map(sum, zip(*own, strict=True))))
    for a, b in zip(toks, toks[1:], strict=False):
        total += 1
        w = weights.get(f"b:{a}_{b}")
        if w is not None:
            vecs.append(w)
    if proponent_kind:
        total += 1
        w = weights.get(f"p:{proponent_kind}")
        if w is not None:
            vecs.append(w)
    k = 1.0 / math.sqrt(total) if total else 0.0
    if vecs:
        sums = map(sum, zip(*vecs, strict=True))
        z = [b + k * s for b, s in zip(model.intercepts, sums, strict=False)]
    else:
        z = list(model.intercepts)
    return [1.0 / (1.0 + math.exp(-v)) if v > -30 else 0.0 for v in z]


def reference_classify(item: BallotItem, taxonomy: Taxonomy) -> Classification:
    title = item.title[:MAX_SCAN_CHARS]
    text = item.text[:MAX_SCAN_CHARS]
    title_words = WORD.findall(title.lower())
    fields = [("title", title)]
    if text:
        fields.append(("text", text))
    topic_matches = _topics(item, taxonomy.topics, fields)
    request_match = _first(taxonomy.request_kinds, fields, "request_kind")
    topics = tuple(m.rule_id for m in topic_matches)

    model = taxonomy.model
    probs: dict[str, float] = {}
    if model is not None:
        scores = reference_probabilities(model, title_words[:400], item.proponent_kind)
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

    flag_matches = _flags(item, taxonomy.flags, fields, categories)
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
        by_id = {t.id: t for t in taxonomy.topics}
        for t in topics:
            for c in by_id[t].categories:
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


def _search(rule, field: str, text: str, kind: str) -> Match | None:
    for pattern in rule.patterns:
        found = pattern.search(text)
        if found:
            return Match(rule.id, kind, field, pattern.pattern, found.group(0))
    return None


def _topics(item: BallotItem, rules, fields) -> tuple[Match, ...]:
    """Every topic matching the title; if none does, every topic matching the text."""
    for field, text in fields:
        found = []
        for rule in rules:
            if rule.proponent and rule.proponent != item.proponent_kind:
                continue
            match = _search(rule, field, text, "topic")
            if match:
                found.append(match)
        if found:
            return tuple(found)
    return ()


def _first(rules, fields, kind: str) -> Match | None:
    for field, text in fields:
        for rule in rules:
            match = _search(rule, field, text, kind)
            if match:
                return match
    return None


def _flags(item: BallotItem, rules, fields, categories) -> tuple[Match, ...]:
    found = []
    name = item.proponent_name.casefold()
    for rule in rules:
        if rule.categories and not any(c in categories for c in rule.categories):
            continue
        match = None
        if name:
            for known in rule.proponent_names:
                if known in name:
                    match = Match(rule.id, "flag", "proponent.name", known, item.proponent_name)
                    break
        if match is None:
            for field, text in fields:
                match = _search(rule, field, text, "flag")
                if match:
                    break
        if match:
            found.append(match)
    return tuple(found)
