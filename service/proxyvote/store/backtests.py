"""Backtest runs: inputs and figures, stored once per run and never changed."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass

from sqlalchemy import select

from proxyvote.errors import NotFound
from proxyvote.store.database import Database, now
from proxyvote.store.models import BacktestRun


@dataclass(frozen=True, slots=True)
class StoredBacktest:
    backtest_id: str
    owner: str
    meetings: int
    items: int
    inputs: dict
    figures: dict
    figures_hash: str
    created_at: dt.datetime


def canonical(value) -> str:
    """The one spelling of a run's JSON: sorted keys, no spaces."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


class BacktestRepository:
    def __init__(self, database: Database):
        self._db = database

    def add(self, owner: str, inputs: dict, figures: dict) -> StoredBacktest:
        text = canonical(figures)
        digest = hashlib.sha256(text.encode()).hexdigest()
        run = BacktestRun(
            backtest_id=uuid.uuid4().hex,
            owner=owner,
            meetings=int(figures.get("meetings", 0)),
            items=int(figures.get("items", 0)),
            inputs=canonical(inputs),
            figures=text,
            figures_hash=digest,
            created_at=now(),
        )
        with self._db.session() as session, session.begin():
            session.add(run)
        return _stored(run)

    def get(self, owners: tuple[str, ...], backtest_id: str) -> StoredBacktest:
        query = select(BacktestRun).where(
            BacktestRun.owner.in_(owners), BacktestRun.backtest_id == backtest_id
        )
        with self._db.session() as session:
            run = session.scalars(query).first()
            if run is None:
                raise NotFound("backtest", backtest_id)
            return _stored(run)


def _stored(run: BacktestRun) -> StoredBacktest:
    return StoredBacktest(
        run.backtest_id,
        run.owner,
        run.meetings,
        run.items,
        json.loads(run.inputs),
        json.loads(run.figures),
        run.figures_hash,
        run.created_at,
    )
