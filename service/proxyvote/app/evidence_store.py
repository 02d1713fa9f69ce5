"""Evidence kept in the store: a shared set plus each tenant's own records.

What a decision may use is decided in one place, ``core.evidence.evidence_as_of``:
this module only fetches every record about an issuer and hands them over.
"""

from __future__ import annotations

import datetime as dt
import time

from proxyvote.core.bounded_cache import BoundedCache
from proxyvote.core.evidence import evidence_as_of
from proxyvote.core.model import EvidenceRecord, Issuer
from proxyvote.store import SHARED
from proxyvote.store.evidence import EvidenceRepository

# How long this process reuses what the store holds about an issuer: records
# another replica imports are seen within this time; this process's own imports
# at once. Only what is stored is cached: the as-of date is applied afterwards.
STORED_TTL = 1.0
CACHE_BYTES = 16 << 20


def _records_size(entry: tuple[float, tuple[EvidenceRecord, ...]]) -> int:
    return sum(
        300 + len(r.summary) + sum(len(s.publisher) + len(s.url) + len(s.document) for s in r.sources)
        for r in entry[1]
    )


class EvidenceStore:
    def __init__(self, repository: EvidenceRepository, cache_bytes: int = CACHE_BYTES):
        self.repository = repository
        self._about = BoundedCache(cache_bytes, _records_size)

    @staticmethod
    def owners(tenant: str) -> tuple[str, ...]:
        return (tenant, SHARED) if tenant != SHARED else (SHARED,)

    def import_records(self, owner: str, records: tuple[EvidenceRecord, ...]) -> tuple[int, int]:
        """Stores them all or none (validated by the edge that converted them); (added, unchanged)."""
        try:
            return self.repository.add(owner, records)
        finally:
            self._about.clear()

    def about(self, tenant: str, issuer: Issuer) -> tuple[EvidenceRecord, ...]:
        """Every stored record about the issuer, of any date."""
        key = (tenant, issuer.ticker.casefold(), issuer.name.casefold())
        cached = self._about.get(key)
        if cached is not None and time.monotonic() - cached[0] < STORED_TTL:
            return cached[1]
        records = self.repository.about(self.owners(tenant), issuer.ticker, issuer.name)
        self._about.put(key, (time.monotonic(), records))
        return records

    def visible(self, tenant: str, issuer: Issuer, as_of: dt.date) -> tuple[EvidenceRecord, ...]:
        """The stored records public on ``as_of``, newest first (through evidence_as_of)."""
        return evidence_as_of(self.about(tenant, issuer), issuer, as_of).records
