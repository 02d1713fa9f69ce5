"""Evidence kept in the store: a shared set plus each tenant's own records.

What a decision may use is still decided in one place, ``evidence.evidence_as_of``:
this module only fetches every record about an issuer and hands them over.
"""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

from proxyvote.core.evidence import evidence_as_of
from proxyvote.core.model import EvidenceRecord, Issuer
from proxyvote.store import SHARED, Store
from proxyvote.v1 import evidence_pb2
from proxyvote.wire import convert

# How long this process reuses what the store holds about an issuer: records
# another replica imports are seen within this time; this process's own imports
# at once. Only what is stored is cached: the as-of date is applied afterwards.
STORED_TTL = 1.0


class EvidenceStore:
    def __init__(self, store: Store):
        self.store = store
        self._about: dict[tuple[str, str, str], tuple[float, tuple]] = {}

    @staticmethod
    def owners(tenant: str) -> tuple[str, ...]:
        return (tenant, SHARED) if tenant != SHARED else (SHARED,)

    def import_records(self, owner: str, messages, field: str = "records") -> tuple[int, int]:
        """Validates every record (all field violations at once), then stores them all or none."""
        records = convert.evidence_from_proto(messages, field)
        rows = [
            {
                "evidence_id": record.evidence_id,
                "issuer_name": record.issuer_name,
                "issuer_ticker": record.issuer_ticker,
                "published": record.published,
                "body": message.SerializeToString(deterministic=True),
            }
            for record, message in zip(records, messages, strict=True)
        ]
        try:
            return self.store.add_evidence(owner, rows)
        finally:
            self._about.clear()

    def import_file(self, owner: str, path: Path) -> tuple[int, int]:
        data = convert.evidence_file_from_json(path.read_text(encoding="utf-8"), field=str(path))
        return self.import_records(owner, data.records)

    def seed_shared(self, directory: Path) -> int:
        """Imports the shared evidence files (``*.json``) that are not stored yet."""
        added = 0
        for path in sorted(Path(directory).glob("*.json")):
            added += self.import_file(SHARED, path)[0]
        return added

    def about(self, tenant: str, issuer: Issuer) -> tuple[evidence_pb2.EvidenceRecord, ...]:
        """Every stored record about the issuer, of any date, as messages."""
        key = (tenant, issuer.ticker.casefold(), issuer.name.casefold())
        cached = self._about.get(key)
        if cached is not None and time.monotonic() - cached[0] < STORED_TTL:
            return cached[1]
        messages = tuple(
            evidence_pb2.EvidenceRecord.FromString(body)
            for body in self.store.evidence_about(self.owners(tenant), issuer.ticker, issuer.name)
        )
        if len(self._about) >= 10_000:
            self._about.clear()
        self._about[key] = (time.monotonic(), messages)
        return messages

    def visible(self, tenant: str, issuer: Issuer, as_of: dt.date) -> list[evidence_pb2.EvidenceRecord]:
        """The stored records public on ``as_of``, newest first (through evidence_as_of)."""
        messages = self.about(tenant, issuer)
        by_id = {m.evidence_id: m for m in messages}
        records: tuple[EvidenceRecord, ...] = convert.evidence_from_proto(messages)
        return [by_id[r.evidence_id] for r in evidence_as_of(records, issuer, as_of).records]
