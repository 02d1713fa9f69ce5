"""Evaluating classification against N-PX records: pure functions, no I/O.

Records have the N-PX shape (``vote_description``, ``vote_source``,
``categories`` as filed, e.g. ``"AUDIT-RELATED"``). An item is well placed
when the classifier gives at least one category its filer used (filers tick
"all that apply" in their own way, so the filed set is a set of acceptable
answers, not the only right one).
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from dataclasses import dataclass, field

from proxyvote.core.model import NPX_CATEGORIES

# The N-PX spelling (categoryType) of each of our codes.
NPX_SPELLING = {
    "DIRECTOR_ELECTIONS": "DIRECTOR ELECTIONS",
    "SECTION_14A_SAY_ON_PAY": "SECTION 14A SAY-ON-PAY VOTES",
    "AUDIT_RELATED": "AUDIT-RELATED",
    "INVESTMENT_COMPANY_MATTERS": "INVESTMENT COMPANY MATTERS",
    "SHAREHOLDER_RIGHTS_AND_DEFENSES": "SHAREHOLDER RIGHTS AND DEFENSES",
    "EXTRAORDINARY_TRANSACTIONS": "EXTRAORDINARY TRANSACTIONS",
    "CAPITAL_STRUCTURE": "CAPITAL STRUCTURE",
    "COMPENSATION": "COMPENSATION",
    "CORPORATE_GOVERNANCE": "CORPORATE GOVERNANCE",
    "ENVIRONMENT_OR_CLIMATE": "ENVIRONMENT OR CLIMATE",
    "HUMAN_RIGHTS_OR_HUMAN_CAPITAL": "HUMAN RIGHTS OR HUMAN CAPITAL/WORKFORCE",
    "DIVERSITY_EQUITY_INCLUSION": "DIVERSITY, EQUITY, AND INCLUSION",
    "OTHER_SOCIAL_ISSUES": "OTHER SOCIAL ISSUES",
    "OTHER": "OTHER",
}
_CODE = {v: k for k, v in NPX_SPELLING.items()}
assert set(NPX_SPELLING) == set(NPX_CATEGORIES)


def category_code(text: str) -> str:
    """Our code for an N-PX category as filed (either spelling); raises ValueError."""
    key = " ".join(text.strip().upper().split())
    if key in _CODE:
        return _CODE[key]
    if key in NPX_SPELLING:
        return key
    raise ValueError(f"unknown N-PX category {text!r}")


def proponent_kind(vote_source: str) -> str:
    """``SECURITY HOLDER`` -> SHAREHOLDER; ``ISSUER`` (or anything else) -> MANAGEMENT."""
    source = (vote_source or "").strip().upper()
    return "SHAREHOLDER" if source in ("SECURITY HOLDER", "SHAREHOLDER") else "MANAGEMENT"


_SUFFIXES = re.compile(
    r"\b(the|inc|incorporated|corp|corporation|co|company|plc|ltd|limited|llc|lp|sa|ag|nv|se|"
    r"holdings?|group|n\.?v|s\.?a|a\.?g|p\.?l\.?c)\b"
)


def issuer_key(name: str) -> str:
    """An issuer name without case, punctuation and legal-form words, to group records by company."""
    text = re.sub(r"[^a-z0-9 ]+", " ", (name or "").lower().replace(".com", " "))
    text = _SUFFIXES.sub(" ", text)
    return " ".join(text.split()) or (name or "").lower()


def fold_of(issuer_name: str, folds: int) -> int:
    """The fold of a record, fixed by its issuer: a company's records are never split across folds."""
    digest = hashlib.sha256(issuer_key(issuer_name).encode()).hexdigest()
    return int(digest[:8], 16) % folds


@dataclass
class Tally:
    items: int = 0
    hits: int = 0
    categories: int = 0
    review: int = 0

    @property
    def accuracy(self) -> float:
        return self.hits / self.items if self.items else 0.0


@dataclass
class Evaluation:
    by_source: dict[str, Tally] = field(default_factory=dict)
    by_category: dict[str, Tally] = field(default_factory=dict)  # over items filed under it
    confusions: Counter = field(default_factory=Counter)  # (predicted, filed) for misses
    total: Tally = field(default_factory=Tally)

    def add(self, vote_source: str, filed: set[str], predicted: tuple[str, ...], needs_review: bool) -> None:
        hit = bool(filed & set(predicted))
        for tally in (self.total, self.by_source.setdefault(proponent_kind(vote_source), Tally())):
            tally.items += 1
            tally.hits += hit
            tally.categories += len(predicted)
            tally.review += needs_review
        for code in filed:
            t = self.by_category.setdefault(code, Tally())
            t.items += 1
            t.hits += code in predicted
            t.categories += len(predicted)
        if not hit:
            for p in predicted or ("(none)",):
                for f in filed:
                    self.confusions[(p, f)] += 1


def format_evaluation(ev: Evaluation, title: str = "", top: int = 10) -> str:
    lines = [f"## {title}" if title else ""]
    t = ev.total
    lines.append(
        f"items {t.items}: a filed category given {t.hits} ({100 * t.accuracy:.1f}%), "
        f"categories per item {t.categories / max(t.items, 1):.2f}, needs review {t.review}"
    )
    lines.append("by vote source (item gets a category its filer used):")
    for source, s in sorted(ev.by_source.items()):
        lines.append(
            f"  {source:<12} {s.hits:>5}/{s.items:<5} {100 * s.accuracy:5.1f}%  "
            f"categories/item {s.categories / max(s.items, 1):.2f}"
        )
    lines.append("by filed category (recall: the category itself is given):")
    for code, c in sorted(ev.by_category.items(), key=lambda kv: -kv[1].items):
        lines.append(f"  {code:<32} {c.hits:>5}/{c.items:<5} {100 * c.accuracy:5.1f}%")
    lines.append("most frequent confusions on missed items (given -> filed):")
    for (p, f), n in ev.confusions.most_common(top):
        lines.append(f"  {n:>4}  {p} -> {f}")
    return "\n".join(line for line in lines if line is not None)
