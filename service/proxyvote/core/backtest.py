"""Backtests: how policies would have voted on past meetings, and how that compares.

Pure: domain meetings, policies and evidence in, figures out. Each meeting is
decided as of its meeting date minus a lead (7 days by default), under the
version of each policy in force on that date (unless the policy is pinned to
``id@version``), through ``Recommender.decide_many``: each item classified once
for every policy (and once per distinct wording, cached), each policy once per item.

A run over many meetings is cut into partitions (see app/backtest.py); each
partition gives a ``Tally`` of counts, and tallies merge by adding counts and
sorting the what-if list, so the figures do not depend on how the meetings
were cut or in which order the partitions finished. ``figures(tally)`` turns
a tally into the JSON-ready summary.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from proxyvote import ENGINE_VERSION
from proxyvote.core.model import NO_RECOMMENDATION, REFER, EvidenceRecord, Meeting
from proxyvote.core.policy import Policy
from proxyvote.core.policy_library import parse_reference, version_in_force

BACKTEST_VERSION = f"proxyvote-backtest/1 ({ENGINE_VERSION})"
DEFAULT_LEAD_DAYS = 7
# Votes compared with a side: WITHHOLD opposes like AGAINST does.
_SIDE = {"FOR": "FOR", "AGAINST": "AGAINST", "WITHHOLD": "AGAINST", "ABSTAIN": "ABSTAIN"}


@dataclass(frozen=True)
class PolicyChoice:
    """One policy of a backtest: the reference asked for and the versions it may use."""

    label: str  # the reference as asked: "human-rights-esg" or "board-aligned@1"
    versions: tuple[Policy, ...]  # ascending; exactly one when pinned

    @functools.cached_property
    def _reference(self) -> tuple[str, int | None]:
        return parse_reference(self.label)

    @property
    def pinned(self) -> bool:
        return self._reference[1] is not None

    def in_force(self, on: dt.date) -> Policy:
        if self.pinned:
            return self.versions[0]
        found = self._by_date.get(on)
        if found is None:
            found = self._by_date[on] = version_in_force(self._reference[0], list(self.versions), on)
        return found

    @functools.cached_property
    def _by_date(self) -> dict:
        return {}


@dataclass
class Tally:
    """Counts of one partition (or of merged partitions), per policy label."""

    labels: tuple[str, ...]
    meetings: int = 0
    items: int = 0
    # label -> Counter[(vote, against_management, proponent, categories, topic, year, outcome_side)]
    cells: dict[str, Counter] = field(default_factory=dict)
    # label -> Counter[(party kind, party name, "agree" | "disagree" | "refer")]
    parties: dict[str, Counter] = field(default_factory=dict)
    # label -> Counter["id@version"]
    versions: dict[str, Counter] = field(default_factory=dict)
    # (label a, label b) -> Counter[(vote a, vote b)] for the items where they differ
    pairs: dict[tuple[str, str], Counter] = field(default_factory=dict)
    # every item whose vote differs between policies:
    # (meeting_date, meeting_id, issuer, position, item_id, title, ((vote, rule_id), ...) in label order)
    flips: list[tuple] = field(default_factory=list)

    def __post_init__(self):
        for label in self.labels:
            self.cells.setdefault(label, Counter())
            self.parties.setdefault(label, Counter())
            self.versions.setdefault(label, Counter())
        for i, a in enumerate(self.labels):
            for b in self.labels[i + 1 :]:
                self.pairs.setdefault((a, b), Counter())

    def merge(self, other: Tally) -> Tally:
        if other.labels != self.labels:
            raise ValueError("tallies of different policies do not merge")
        self.meetings += other.meetings
        self.items += other.items
        for mine, theirs in (
            (self.cells, other.cells),
            (self.parties, other.parties),
            (self.versions, other.versions),
            (self.pairs, other.pairs),
        ):
            for key, counts in theirs.items():
                mine[key].update(counts)
        self.flips.extend(other.flips)
        self.flips.sort()
        return self


@dataclass(frozen=True)
class ItemRow:
    """One item under one policy: the rows of ``--output``."""

    meeting_id: str
    meeting_date: str
    as_of: str
    issuer: str
    ticker: str
    item_id: str
    number: str
    title: str
    proponent: str
    board_recommendation: str
    categories: str
    topic: str
    policy: str
    policy_version: int
    vote: str
    rule_id: str
    against_management: bool
    outcome: str  # the winning side, "FOR" or "AGAINST", or "" when not recorded
    support_pct: float | None
    advisers: str  # "ISS=FOR;Glass Lewis=AGAINST"
    investors: str


def winning_side(item) -> str:
    """FOR when the item passed, AGAINST when it failed, "" when the outcome is not recorded."""
    outcome = item.outcome
    if outcome is None or outcome.passed is None:
        return ""
    return "FOR" if outcome.passed else "AGAINST"


def _relation(vote: str, other: str) -> str:
    if vote == REFER:
        return "refer"
    return "agree" if _SIDE.get(vote, vote) == _SIDE.get(other, other) else "disagree"


class EvidenceIndex:
    """Evidence records grouped by issuer, so each meeting looks only at its issuer's."""

    def __init__(self, records: Iterable[EvidenceRecord]):
        self.by_ticker: dict[str, list[EvidenceRecord]] = {}
        self.by_name: dict[str, list[EvidenceRecord]] = {}
        for r in records:
            if r.issuer_ticker:
                self.by_ticker.setdefault(r.issuer_ticker.casefold(), []).append(r)
            if r.issuer_name:
                self.by_name.setdefault(r.issuer_name.casefold(), []).append(r)

    def about(self, meeting: Meeting) -> tuple[EvidenceRecord, ...]:
        # evidence_as_of (in decide_many) applies the date and the exact issuer match.
        found = self.by_ticker.get(meeting.issuer.ticker.casefold(), []) if meeting.issuer.ticker else []
        return tuple(found) + tuple(self.by_name.get(meeting.issuer.name.casefold(), []))


def run_backtest(
    meetings: Iterable[Meeting],
    choices: tuple[PolicyChoice, ...],
    recommender,
    evidence: Iterable[EvidenceRecord] = (),
    lead_days: int = DEFAULT_LEAD_DAYS,
    progress: Callable[[int], None] | None = None,
    rows: list | None = None,
) -> Tally:
    """Decides every item of every meeting under each policy; returns the counts.

    ``recommender`` is a core ``Recommender`` (its classification cache is shared
    by every policy). ``progress(n)`` is called after every meeting with the
    number done so far; ``rows``, when given, receives one ``ItemRow`` per item
    and policy.
    """
    labels = tuple(c.label for c in choices)
    if len(set(labels)) != len(labels):
        raise ValueError("each policy may be named once")
    tally = Tally(labels)
    index = EvidenceIndex(evidence)
    lead = dt.timedelta(days=lead_days)
    versions = [tally.versions[label] for label in labels]
    several = len(labels) > 1
    flips = tally.flips
    counts: dict = {}
    objects: dict = {}
    done = 0
    for meeting in meetings:
        as_of = meeting.meeting_date - lead
        records = index.about(meeting)
        year = meeting.meeting_date.year
        policies = tuple(choice.in_force(as_of) for choice in choices)
        for n, policy in enumerate(policies):
            versions[n][f"{policy.id}@{policy.version}"] += len(meeting.items)
        # Each item classified once and the evidence view built once, whatever the policies.
        decisions = [d.recommendations for d in recommender.decide_many(meeting, policies, as_of, records)]
        for position, (item, recs) in enumerate(
            zip(meeting.items, zip(*decisions, strict=True), strict=True)
        ):
            o = item.outcome
            side = "" if o is None or o.passed is None else ("FOR" if o.passed else "AGAINST")
            outcomes = [r.outcome for r in recs]
            classification = recs[0].classification
            # One count per distinct combination, expanded per policy at the end: the
            # outcomes and classifications are shared objects (engine memo, classification
            # cache), so they are keyed by identity and kept alive in ``objects``.
            key = (
                tuple(map(id, outcomes)),
                id(classification),
                item.proponent_kind,
                item.board_recommendation,
                year,
                side,
                item.adviser_recommendations,
                item.investor_votes,
            )
            seen = counts.get(key)
            if seen is None:
                counts[key] = 1
                for outcome in outcomes:
                    objects[id(outcome)] = outcome
                objects[id(classification)] = classification
            else:
                counts[key] = seen + 1
            if rows is not None:
                for n, r in enumerate(recs):
                    rows.append(_row(meeting, as_of, item, r, labels[n], side))
            if several:
                first = outcomes[0].vote
                for outcome in outcomes:
                    if outcome.vote != first:
                        flips.append(
                            (
                                meeting.meeting_date.isoformat(),
                                meeting.meeting_id,
                                meeting.issuer.name,
                                position,
                                item.item_id,
                                item.title,
                                tuple((o.vote, o.rule_id) for o in outcomes),
                            )
                        )
                        break
        tally.items += len(meeting.items)
        tally.meetings += 1
        done += 1
        if progress is not None:
            progress(done)
    _expand(counts, objects, tally)
    flips.sort()
    return tally


def _expand(counts: dict, objects: dict, tally: Tally) -> None:
    """The per-combination counts as the tally's per-policy cells, parties and pairs."""
    labels = tally.labels
    pairs = _pairs(len(labels))
    for key, n in counts.items():
        outcome_ids, classification_id, proponent, board, year, side, advisers, investors = key
        outcomes = [objects[i] for i in outcome_ids]
        c = objects[classification_id]
        for label, o in zip(labels, outcomes, strict=True):
            vote = o.vote
            against = o.against_management if board != NO_RECOMMENDATION else None
            tally.cells[label][(vote, against, proponent, c.npx_categories, c.topic, year, side)] += n
            parties = tally.parties[label]
            if side:
                parties[("outcome", "outcome", _relation(vote, side))] += n
            for a in advisers:
                parties[("adviser", a.adviser, _relation(vote, a.vote))] += n
            for v in investors:
                parties[("investor", v.investor, _relation(vote, v.vote))] += n
        for i, j in pairs:
            if outcomes[i].vote != outcomes[j].vote:
                tally.pairs[(labels[i], labels[j])][(outcomes[i].vote, outcomes[j].vote)] += n


def _pairs(n: int) -> list[tuple[int, int]]:
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def _row(meeting: Meeting, as_of: dt.date, item, r, label: str, side: str) -> ItemRow:
    outcome = item.outcome
    return ItemRow(
        meeting_id=meeting.meeting_id,
        meeting_date=meeting.meeting_date.isoformat(),
        as_of=as_of.isoformat(),
        issuer=meeting.issuer.name,
        ticker=meeting.issuer.ticker,
        item_id=item.item_id,
        number=item.number,
        title=item.title,
        proponent=item.proponent_kind,
        board_recommendation=item.board_recommendation,
        categories=",".join(r.classification.npx_categories),
        topic=r.classification.topic,
        policy=label,
        policy_version=r.policy.version,
        vote=r.outcome.vote,
        rule_id=r.outcome.rule_id,
        against_management=r.outcome.against_management,
        outcome=side,
        support_pct=outcome.support_pct if outcome is not None else None,
        advisers=";".join(f"{a.adviser}={a.vote}" for a in item.adviser_recommendations),
        investors=";".join(f"{v.investor}={v.vote}" for v in item.investor_votes),
    )


# --- figures -------------------------------------------------------------------


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 6) if whole else None


def _nested(counter: Counter) -> dict:
    """Counter[(group, vote)] -> {group: {vote: n}} with sorted keys."""
    out: dict = {}
    for (group, vote), n in sorted(counter.items(), key=lambda kv: (str(kv[0][0]), kv[0][1])):
        out.setdefault(str(group), {})[vote] = n
    return out


def _support(counter: Counter) -> dict:
    """Counter[(group, vote)] over shareholder proposals -> support per group."""
    out = {}
    for group, votes in _nested(counter).items():
        total = sum(votes.values())
        refer = votes.get(REFER, 0)
        decided = total - refer
        out[group] = {
            "items": total,
            "for": votes.get("FOR", 0),
            "refer": refer,
            "support_rate": _rate(votes.get("FOR", 0), decided),
        }
    return out


def _agreement(counter: Counter, kind: str) -> dict:
    names = sorted({name for (k, name, _) in counter if k == kind})
    out = {}
    for name in names:
        agree = counter[(kind, name, "agree")]
        disagree = counter[(kind, name, "disagree")]
        out[name] = {
            "agree": agree,
            "disagree": disagree,
            "total": agree + disagree,
            "referred": counter[(kind, name, "refer")],
            "agreement_rate": _rate(agree, agree + disagree),
        }
    return out


def policy_figures(tally: Tally, label: str) -> dict:
    """The figures of one policy in a tally, JSON-ready and in a stable order."""
    cells = tally.cells[label]
    by_vote: Counter = Counter()
    by_category: Counter = Counter()
    by_topic: Counter = Counter()
    by_year: Counter = Counter()
    by_category_year: Counter = Counter()
    sp_category: Counter = Counter()
    sp_topic: Counter = Counter()
    against = with_board_base = refer = 0
    items = 0
    for (vote, against_mgmt, proponent, categories, topic, year, _side), n in cells.items():
        items += n
        by_vote[vote] += n
        for category in categories:
            by_category[(category, vote)] += n
            by_category_year[(f"{category}|{year}", vote)] += n
        by_topic[(topic or "unclassified", vote)] += n
        by_year[(year, vote)] += n
        if vote == REFER:
            refer += n
        elif against_mgmt is not None:
            with_board_base += n
            against += n if against_mgmt else 0
        if proponent == "SHAREHOLDER":
            for category in categories:
                sp_category[(category, vote)] += n
            sp_topic[(topic or "unclassified", vote)] += n
    sp_all = Counter()
    for (_, vote), n in sp_topic.items():
        sp_all[("all", vote)] += n
    outcome = _agreement(tally.parties[label], "outcome").get(
        "outcome", {"agree": 0, "disagree": 0, "total": 0, "referred": 0, "agreement_rate": None}
    )
    return {
        "policy": label,
        "versions_used": dict(sorted(tally.versions[label].items())),
        "items": items,
        "votes": dict(sorted(by_vote.items())),
        "votes_by_category": _nested(by_category),
        "votes_by_topic": _nested(by_topic),
        "votes_by_year": _nested(by_year),
        "votes_by_category_year": _nested(by_category_year),
        "against_management": {
            "count": against,
            "decided_with_board_recommendation": with_board_base,
            "rate": _rate(against, with_board_base),
        },
        "refer": {"count": refer, "rate": _rate(refer, items)},
        "shareholder_proposals": {
            "all": _support(sp_all).get("all", {"items": 0, "for": 0, "refer": 0, "support_rate": None}),
            "by_category": _support(sp_category),
            "by_topic": _support(sp_topic),
        },
        "agreement_with_outcome": outcome,
        "agreement_with_advisers": _agreement(tally.parties[label], "adviser"),
        "agreement_with_investors": _agreement(tally.parties[label], "investor"),
    }


def figures(tally: Tally) -> dict:
    """The whole summary: one entry per policy, the pairwise differences and every flip."""
    labels = tally.labels
    return {
        "meetings": tally.meetings,
        "items": tally.items,
        "policies": [policy_figures(tally, label) for label in labels],
        "differences": [
            {
                "policies": [a, b],
                "items_differing": sum(counter.values()),
                "by_votes": {f"{va}->{vb}": n for (va, vb), n in sorted(counter.items())},
            }
            for (a, b), counter in sorted(
                tally.pairs.items(), key=lambda kv: (labels.index(kv[0][0]), labels.index(kv[0][1]))
            )
        ],
        "flips": [
            {
                "meeting_date": date,
                "meeting_id": meeting_id,
                "issuer": issuer,
                "item_id": item_id,
                "title": title,
                "votes": {label: vote for label, (vote, _) in zip(labels, outcomes, strict=True)},
                "rules": {label: rule for label, (_, rule) in zip(labels, outcomes, strict=True)},
            }
            for date, meeting_id, issuer, _position, item_id, title, outcomes in tally.flips
        ],
    }
