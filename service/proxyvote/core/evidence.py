"""Evidence as of a date: the one place that decides what a decision may see.

Every evaluation gets an ``EvidenceView`` built here. A record published after
the as-of date is not in the view, so no condition, trace or memo downstream
can use it: point in time holds by construction, not by care at each use.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from proxyvote.core.model import EvidenceRecord, Issuer

ADVERSE_KINDS = frozenset({"CONTROVERSY", "ALLEGATION"})


class EvidenceUnavailable(Exception):
    """A condition asked about evidence, and none is on record for the issuer."""


@dataclass(frozen=True, slots=True)
class EvidenceView:
    as_of: dt.date
    # Visible records about the issuer, newest first.
    records: tuple[EvidenceRecord, ...]
    # Whether anything at all was known about the issuer on the as-of date.
    # Without it a question about controversies has no answer (unknown), not
    # the answer "none". Judged as of the date too: a record published later
    # must not even tell that the issuer is covered.
    covered: bool

    def select(
        self, topics, years: float | None = None, kinds: frozenset[str] | None = None
    ) -> tuple[EvidenceRecord, ...]:
        if not self.covered:
            raise EvidenceUnavailable("no evidence is on record for this issuer")
        wanted = frozenset(topics)
        since = None
        if years is not None:
            since = self.as_of - dt.timedelta(days=round(365.25 * float(years)))
        return tuple(
            r
            for r in self.records
            if (kinds is None or r.kind in kinds)
            and (since is None or r.published >= since)
            and (not wanted or wanted.intersection(r.topics))
        )


def _same_issuer(record: EvidenceRecord, issuer: Issuer) -> bool:
    if record.issuer_ticker and issuer.ticker:
        return record.issuer_ticker.casefold() == issuer.ticker.casefold()
    return bool(record.issuer_name) and record.issuer_name.casefold() == issuer.name.casefold()


def evidence_as_of(records, issuer: Issuer, as_of: dt.date) -> EvidenceView:
    """The records about ``issuer`` that were public on ``as_of``."""
    visible = sorted(
        (r for r in records if r.published <= as_of and _same_issuer(r, issuer)),
        key=lambda r: (r.published, r.evidence_id),
        reverse=True,
    )
    return EvidenceView(as_of=as_of, records=tuple(visible), covered=bool(visible))
