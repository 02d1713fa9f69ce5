"""Classification: which N-PX categories and topic a ballot item belongs to.

A pure function of the item and the taxonomy. It runs once per item and its
result is shared by every policy evaluated on that item.
"""

from __future__ import annotations

from proxyvote.core.model import BallotItem, Classification, Match, Meeting
from proxyvote.core.taxonomy import PatternRule, Taxonomy

# Text beyond this is not searched: supporting statements can be long, and the
# resolved clause comes first.
MAX_SCAN_CHARS = 20_000


def classify_meeting(meeting: Meeting, taxonomy: Taxonomy) -> tuple[Classification, ...]:
    return tuple(classify(item, taxonomy) for item in meeting.items)


def classify(item: BallotItem, taxonomy: Taxonomy) -> Classification:
    fields = (("title", item.title[:MAX_SCAN_CHARS]), ("text", item.text[:MAX_SCAN_CHARS]))
    topic_matches = _topics(item, taxonomy.topics, fields)
    request_match = _first(taxonomy.request_kinds, fields, "request_kind")
    topics = tuple(m.rule_id for m in topic_matches)
    lead: tuple[Match, ...] = ()
    if item.category is not None:
        caller = item.category
        source, categories = "CALLER", (caller.npx_category,)
        if caller.topic:
            topics = (caller.topic,) + tuple(t for t in topics if t != caller.topic)
        lead = (Match("caller", "topic", "category", "", f"{caller.npx_category}/{caller.topic}"),)
    elif not topics:
        source, categories = "UNPLACED", ("OTHER",)
    else:
        by_id = {t.id: t for t in taxonomy.topics}
        source = "TAXONOMY"
        categories = tuple(dict.fromkeys(c for t in topics for c in by_id[t].categories))
    flag_matches = _flags(item, taxonomy.flags, fields, categories)
    return Classification(
        source=source,
        npx_categories=categories,
        topic=topics[0] if topics else "",
        topics=topics,
        request_kind=request_match.rule_id if request_match else "",
        flags=tuple(m.rule_id for m in flag_matches),
        matches=lead + topic_matches + ((request_match,) if request_match else ()) + flag_matches,
        taxonomy_hash=taxonomy.content_hash,
    )


def _search(rule: PatternRule, field: str, text: str, kind: str) -> Match | None:
    if not text:
        return None
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
        for field, text in fields:
            match = match or _search(rule, field, text, "flag")
        if match:
            found.append(match)
    return tuple(found)
