"""Persistence: the only package that knows SQLAlchemy.

``open_store(url)`` gives a ``Store``: one repository per aggregate (tenants,
policies, decisions, evidence, memo templates, past meetings,
backtests, voting-choice programmes and their accounts, vote plans), each typed, raising domain
errors only. The schema is created and changed only by the Alembic migrations
in ``migrations/`` (``proxyvote db upgrade``; ``proxyvote.store.schema``).
"""

from __future__ import annotations

from dataclasses import dataclass

from proxyvote.store.backtests import BacktestRepository, StoredBacktest
from proxyvote.store.database import DEFAULT_SQLITE_URL, SHARED, Database, canonical_time, open_database
from proxyvote.store.decisions import (
    DecisionRecord,
    DecisionRepository,
    MeetingRow,
    StoredDecision,
    StoredOverride,
)
from proxyvote.store.evidence import EvidenceRepository
from proxyvote.store.meetings import ImportSummary, PastMeetingRepository
from proxyvote.store.policies import PolicyRepository, StoredPolicy
from proxyvote.store.programmes import ProgrammeRepository
from proxyvote.store.templates import TemplateRepository
from proxyvote.store.tenants import TenantRepository
from proxyvote.store.vote_plans import VotePlanRepository


@dataclass(frozen=True)
class Store:
    database: Database
    tenants: TenantRepository
    policies: PolicyRepository
    decisions: DecisionRepository
    evidence: EvidenceRepository
    templates: TemplateRepository
    meetings: PastMeetingRepository
    backtests: BacktestRepository
    programmes: ProgrammeRepository
    vote_plans: VotePlanRepository

    @property
    def engine(self):
        return self.database.engine

    def close(self) -> None:
        self.decisions.close()
        self.database.close()


def open_store(url: str | None = None) -> Store:
    database = open_database(url or DEFAULT_SQLITE_URL)
    return Store(
        database,
        TenantRepository(database),
        PolicyRepository(database),
        DecisionRepository(database),
        EvidenceRepository(database),
        TemplateRepository(database),
        PastMeetingRepository(database),
        BacktestRepository(database),
        ProgrammeRepository(database),
        VotePlanRepository(database),
    )


__all__ = [
    "DEFAULT_SQLITE_URL",
    "SHARED",
    "DecisionRecord",
    "ImportSummary",
    "MeetingRow",
    "PastMeetingRepository",
    "Store",
    "StoredBacktest",
    "StoredDecision",
    "StoredOverride",
    "StoredPolicy",
    "canonical_time",
    "open_store",
]
