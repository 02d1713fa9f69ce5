"""Evidence records: a shared set plus each tenant's own, stored whole and never edited."""

from __future__ import annotations

import hashlib

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from proxyvote.core.model import EvidenceRecord
from proxyvote.errors import Aborted, AlreadyExists
from proxyvote.store.database import Database, now
from proxyvote.store.models import EvidenceRow
from proxyvote.v1 import evidence_pb2
from proxyvote.wire import convert


class EvidenceRepository:
    def __init__(self, database: Database):
        self._db = database

    def add(self, owner: str, records: tuple[EvidenceRecord, ...]) -> tuple[int, int]:
        """Stores the records, all or none; returns (added, unchanged).

        A record already stored with the same content is left alone; the same id
        with other content is refused (a correction is a new record).
        """
        added = unchanged = 0
        try:
            with self._db.engine.begin() as connection:
                for record in records:
                    body = convert.evidence_to_proto(record).SerializeToString(deterministic=True)
                    digest = hashlib.sha256(body).hexdigest()
                    existing = connection.execute(
                        select(EvidenceRow.content_hash, EvidenceRow.body).where(
                            EvidenceRow.owner == owner, EvidenceRow.evidence_id == record.evidence_id
                        )
                    ).first()
                    if existing is not None:
                        # Compared as values: a row stored by an older build may spell defaults otherwise.
                        if existing[0] == digest or _decode(existing[1]) == record:
                            unchanged += 1
                            continue
                        raise AlreadyExists(
                            "evidence record with other content",
                            f"{record.evidence_id} (a correction needs a new id)",
                        )
                    connection.execute(
                        EvidenceRow.__table__.insert().values(
                            owner=owner,
                            evidence_id=record.evidence_id,
                            issuer_name=record.issuer_name,
                            issuer_ticker=record.issuer_ticker,
                            published=record.published,
                            body=body,
                            content_hash=digest,
                            created_at=now(),
                        )
                    )
                    added += 1
        except IntegrityError as exc:
            raise Aborted("evidence was imported concurrently; retry") from exc
        return added, unchanged

    def about(self, owners: tuple[str, ...], ticker: str, name: str) -> tuple[EvidenceRecord, ...]:
        """Every stored record about an issuer (by ticker, or by name without one), of any date.

        Callers pass them through ``core.evidence.evidence_as_of``, the one place that applies a date.
        """
        query = select(EvidenceRow.body).where(EvidenceRow.owner.in_(owners))
        if ticker:
            query = query.where(func.lower(EvidenceRow.issuer_ticker) == ticker.lower())
        else:
            query = query.where(func.lower(EvidenceRow.issuer_name) == name.lower())
        with self._db.engine.connect() as connection:
            bodies = connection.scalars(query.order_by(EvidenceRow.published, EvidenceRow.evidence_id))
            return tuple(_decode(body) for body in bodies)


def _decode(body: bytes) -> EvidenceRecord:
    return convert.evidence_from_proto([evidence_pb2.EvidenceRecord.FromString(body)])[0]
