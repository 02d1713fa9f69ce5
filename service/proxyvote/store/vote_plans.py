"""Vote plans: stored once, as made, and never changed (a new plan is a new row)."""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from proxyvote.errors import NotFound
from proxyvote.store.database import Database, now
from proxyvote.store.models import StoredVotePlan


@dataclass(frozen=True, slots=True)
class VotePlanRecord:
    """A plan to store. ``plan`` is canonical JSON (decision ids, programme, per-item totals);
    ``positions`` the encoded account positions it was made from; ``meeting`` the Meeting
    message, serialized deterministically."""

    owner: str
    programme: str
    programme_version: int
    meeting_id: str
    meeting_date: dt.date
    record_date: dt.date
    security: str
    accounts: int
    meeting: bytes
    plan: str
    positions: bytes


@dataclass(frozen=True, slots=True)
class PlanSummary:
    plan_id: str
    programme: str
    programme_version: int
    meeting_id: str
    meeting_date: dt.date
    record_date: dt.date
    security: str
    accounts: int
    plan_hash: str
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class StoredPlanRow:
    summary: PlanSummary
    meeting: bytes
    plan: str
    positions: bytes
    positions_hash: str


class VotePlanRepository:
    def __init__(self, database: Database):
        self._db = database

    def add(self, record: VotePlanRecord) -> PlanSummary:
        row = StoredVotePlan(
            plan_id=uuid.uuid4().hex,
            owner=record.owner,
            programme=record.programme,
            programme_version=record.programme_version,
            meeting_id=record.meeting_id[:200],
            meeting_date=record.meeting_date,
            record_date=record.record_date,
            security=record.security,
            accounts=record.accounts,
            meeting=record.meeting,
            plan=record.plan,
            plan_hash=hashlib.sha256(record.plan.encode()).hexdigest(),
            positions=record.positions,
            positions_hash=hashlib.sha256(record.positions).hexdigest(),
            created_at=now(),
        )
        with self._db.session() as session, session.begin():
            session.add(row)
        return _summary(row)

    def get(self, owner: str, plan_id: str) -> StoredPlanRow:
        query = select(StoredVotePlan).where(StoredVotePlan.owner == owner, StoredVotePlan.plan_id == plan_id)
        with self._db.session() as session:
            row = session.scalars(query).first()
            if row is None:
                raise NotFound("vote plan", plan_id)
            return StoredPlanRow(_summary(row), row.meeting, row.plan, row.positions, row.positions_hash)

    def list(
        self,
        owner: str,
        programme: str | None = None,
        date_from: dt.date | None = None,
        date_to: dt.date | None = None,
        meeting_id: str | None = None,
    ) -> list[PlanSummary]:
        """The owner's plans (of one programme, one meeting if named) whose meeting date is in
        the range (inclusive), by meeting date then creation."""
        columns = [c for c in StoredVotePlan.__table__.c if c.name not in ("meeting", "plan", "positions")]
        query = select(*columns).where(StoredVotePlan.owner == owner)
        if programme:
            query = query.where(StoredVotePlan.programme == programme)
        if meeting_id:
            query = query.where(StoredVotePlan.meeting_id == meeting_id)
        if date_from is not None:
            query = query.where(StoredVotePlan.meeting_date >= date_from)
        if date_to is not None:
            query = query.where(StoredVotePlan.meeting_date <= date_to)
        query = query.order_by(StoredVotePlan.meeting_date, StoredVotePlan.created_at, StoredVotePlan.pk)
        with self._db.engine.connect() as connection:
            return [_summary(row) for row in connection.execute(query)]


def _summary(row) -> PlanSummary:
    return PlanSummary(
        row.plan_id,
        row.programme,
        row.programme_version,
        row.meeting_id,
        row.meeting_date,
        row.record_date,
        row.security,
        row.accounts,
        row.plan_hash,
        row.created_at,
    )
