"""Voting-choice programmes and their accounts: choice versions and holdings, never overwritten.

A programme is stored as versions (the policies on offer and the default); defining it
again with other policies adds a version. An account belongs to a programme by name.
Its choice is a list of versions, each in force from its ``effective_date``; its
holdings are share counts per security as of a date. An import adds what is new in
one transaction and refuses, line by line, anything that would change a stored
version or holding (a change is a new row with a later date), so importing the
same file twice changes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import Date, bindparam, func, select, text
from sqlalchemy.exc import IntegrityError

from proxyvote.core.vote_plan import AccountChoice, Holding, Programme, shares_text
from proxyvote.errors import Aborted, AccountsFileInvalid, FieldViolation, NotFound
from proxyvote.store.database import Database, now
from proxyvote.store.models import AccountChoiceVersion, AccountHolding, ProgrammeAccount, ProgrammeVersion

CHUNK = 5000  # rows per INSERT: well under SQLite's and PostgreSQL's bound-parameter limits


@dataclass(frozen=True, slots=True)
class StoredProgramme:
    programme: Programme
    version: int
    created_at: dt.datetime


@dataclass(frozen=True, slots=True)
class AccountsImport:
    """What an accounts import did: accounts new to the programme, accounts that gained a
    choice version or a holding, accounts already holding everything the file says; and
    the rows written."""

    accounts_added: int = 0
    accounts_changed: int = 0
    accounts_unchanged: int = 0
    choices_added: int = 0
    holdings_added: int = 0


class ParsedOnce(dict):
    """``parsed[value]``: ``parse(value)``, computed once per distinct value (dates and share
    counts repeat across 100,000 rows)."""

    def __init__(self, parse):
        super().__init__()
        self.parse = parse

    def __missing__(self, value):
        parsed = self[value] = self.parse(value)
        return parsed


def _date(value) -> dt.date:
    """A stored date: SQLite gives its text, PostgreSQL a date."""
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(value)


class ProgrammeRepository:
    def __init__(self, database: Database):
        self._db = database

    # --- programmes -------------------------------------------------------------------------------

    def define(self, owner: str, programme: Programme) -> tuple[StoredProgramme, str]:
        """Stores the programme: "created" (first version), "new version" (the offer or the
        default changed) or "unchanged" (the latest version says the same)."""
        try:
            with self._db.session() as session, session.begin():
                latest = self._latest(session, owner, programme.name)
                if latest is not None and _programme(latest) == programme:
                    return _stored(latest), "unchanged"
                row = ProgrammeVersion(
                    owner=owner,
                    name=programme.name,
                    version=(latest.version + 1) if latest is not None else 1,
                    policies=json.dumps(list(programme.policies)),
                    default_policy=programme.default_policy,
                    description=programme.description,
                    created_at=now(),
                )
                session.add(row)
            return _stored(row), "created" if row.version == 1 else "new version"
        except IntegrityError as exc:
            raise Aborted(f"programme {programme.name} was defined concurrently; retry") from exc

    @staticmethod
    def _latest(session, owner: str, name: str) -> ProgrammeVersion | None:
        return session.scalars(
            select(ProgrammeVersion)
            .where(ProgrammeVersion.owner == owner, ProgrammeVersion.name == name)
            .order_by(ProgrammeVersion.version.desc())
            .limit(1)
        ).first()

    def get(self, owner: str, name: str, version: int | None = None) -> StoredProgramme:
        """The latest version of the programme, or the one asked for; NotFound otherwise."""
        with self._db.session() as session:
            if version is None:
                row = self._latest(session, owner, name)
            else:
                row = session.scalars(
                    select(ProgrammeVersion).where(
                        ProgrammeVersion.owner == owner,
                        ProgrammeVersion.name == name,
                        ProgrammeVersion.version == version,
                    )
                ).first()
            if row is None:
                raise NotFound("programme", name if version is None else f"{name} version {version}")
            return _stored(row)

    def list(self, owner: str) -> list[StoredProgramme]:
        """The latest version of each of the owner's programmes, by name."""
        latest = (
            select(ProgrammeVersion.name, func.max(ProgrammeVersion.version).label("version"))
            .where(ProgrammeVersion.owner == owner)
            .group_by(ProgrammeVersion.name)
            .subquery()
        )
        query = (
            select(ProgrammeVersion)
            .join(
                latest,
                (ProgrammeVersion.name == latest.c.name) & (ProgrammeVersion.version == latest.c.version),
            )
            .where(ProgrammeVersion.owner == owner)
            .order_by(ProgrammeVersion.name)
        )
        with self._db.session() as session:
            return [_stored(row) for row in session.scalars(query)]

    def names(self, owner: str) -> list[str]:
        with self._db.engine.connect() as connection:
            query = (
                select(ProgrammeVersion.name)
                .where(ProgrammeVersion.owner == owner)
                .group_by(ProgrammeVersion.name)
                .order_by(ProgrammeVersion.name)
            )
            return list(connection.scalars(query))

    # --- accounts ---------------------------------------------------------------------------------

    def import_accounts(
        self,
        owner: str,
        programme: str,
        choices: Sequence[tuple[str, AccountChoice]],
        holdings: Sequence[tuple[str, Holding]],
    ) -> AccountsImport:
        """Adds the choice versions and holdings not yet stored, all or none.

        Each value comes with where it was read (e.g. ``accounts.csv:line 7``): a value
        that differs from a stored one of the same account and date (a choice's policy or
        custodian account, a holding's shares) is refused there, and nothing is written.
        """
        accounts_table = ProgrammeAccount.__table__
        try:
            with self._db.engine.begin() as connection:
                known = dict(
                    connection.execute(
                        select(ProgrammeAccount.account_id, ProgrammeAccount.pk).where(
                            ProgrammeAccount.owner == owner, ProgrammeAccount.programme == programme
                        )
                    ).all()
                )
                stored_choices = {
                    (row.account_id, row.effective_date): (row.policy, row.custodian_account)
                    for row in connection.execute(
                        select(
                            ProgrammeAccount.account_id,
                            AccountChoiceVersion.effective_date,
                            AccountChoiceVersion.policy,
                            AccountChoiceVersion.custodian_account,
                        )
                        .join(ProgrammeAccount, ProgrammeAccount.pk == AccountChoiceVersion.account_pk)
                        .where(ProgrammeAccount.owner == owner, ProgrammeAccount.programme == programme)
                    )
                }
                stored_holdings = {
                    (row.account_id, row.security, row.as_of): Decimal(row.shares)
                    for row in connection.execute(
                        select(
                            ProgrammeAccount.account_id,
                            AccountHolding.security,
                            AccountHolding.as_of,
                            AccountHolding.shares,
                        )
                        .join(ProgrammeAccount, ProgrammeAccount.pk == AccountHolding.account_pk)
                        .where(ProgrammeAccount.owner == owner, ProgrammeAccount.programme == programme)
                    )
                }
                conflicts: list[FieldViolation] = []
                new_choices: dict[tuple[str, dt.date], AccountChoice] = {}
                for where, choice in choices:
                    key = (choice.account_id, choice.effective_date)
                    stored = stored_choices.get(key)
                    if stored is None:
                        new_choices.setdefault(key, choice)
                    elif stored != (choice.policy, choice.custodian_account):
                        conflicts.append(
                            FieldViolation(
                                where,
                                f"account {choice.account_id} already has, from {choice.effective_date}, "
                                f"policy {stored[0] or '(none)'!r} in custodian account {stored[1]!r}; "
                                "history is never overwritten: a change needs a later effective_date",
                            )
                        )
                new_holdings: dict[tuple[str, str, dt.date], Holding] = {}
                for where, holding in holdings:
                    key = (holding.account_id, holding.security, holding.as_of)
                    stored = stored_holdings.get(key)
                    if stored is None:
                        new_holdings.setdefault(key, holding)
                    elif stored != holding.shares:
                        conflicts.append(
                            FieldViolation(
                                where,
                                f"account {holding.account_id} already holds {shares_text(stored)} "
                                f"{holding.security} as of {holding.as_of}; "
                                "a correction needs another as_of date",
                            )
                        )
                if conflicts:
                    raise AccountsFileInvalid(conflicts)
                in_file = {c.account_id for _, c in choices} | {h.account_id for _, h in holdings}
                added = sorted(in_file - known.keys())
                stamp = now()
                for start in range(0, len(added), CHUNK):
                    connection.execute(
                        accounts_table.insert(),
                        [
                            dict(owner=owner, programme=programme, account_id=a, created_at=stamp)
                            for a in added[start : start + CHUNK]
                        ],
                    )
                if added:
                    known = dict(
                        connection.execute(
                            select(ProgrammeAccount.account_id, ProgrammeAccount.pk).where(
                                ProgrammeAccount.owner == owner, ProgrammeAccount.programme == programme
                            )
                        ).all()
                    )
                choice_rows = [
                    dict(
                        account_pk=known[c.account_id],
                        effective_date=c.effective_date,
                        policy=c.policy,
                        custodian_account=c.custodian_account,
                        created_at=stamp,
                    )
                    for c in new_choices.values()
                ]
                holding_rows = [
                    dict(
                        account_pk=known[h.account_id],
                        security=h.security,
                        as_of=h.as_of,
                        shares=shares_text(h.shares),
                        created_at=stamp,
                    )
                    for h in new_holdings.values()
                ]
                for table, rows in (
                    (AccountChoiceVersion.__table__, choice_rows),
                    (AccountHolding.__table__, holding_rows),
                ):
                    for start in range(0, len(rows), CHUNK):
                        connection.execute(table.insert(), rows[start : start + CHUNK])
        except IntegrityError as exc:
            raise Aborted(f"accounts of programme {programme} were imported concurrently; retry") from exc
        touched = {c.account_id for c in new_choices.values()} | {h.account_id for h in new_holdings.values()}
        new_accounts = set(added)
        return AccountsImport(
            accounts_added=len(new_accounts),
            accounts_changed=len(touched - new_accounts),
            accounts_unchanged=len(in_file - touched - new_accounts),
            choices_added=len(choice_rows),
            holdings_added=len(holding_rows),
        )

    def count_accounts(self, owner: str, programme: str) -> int:
        with self._db.engine.connect() as connection:
            return int(
                connection.scalar(
                    select(func.count())
                    .select_from(ProgrammeAccount)
                    .where(ProgrammeAccount.owner == owner, ProgrammeAccount.programme == programme)
                )
                or 0
            )

    def choices_and_holdings(
        self, owner: str, programme: str, securities: Sequence[str], on: dt.date
    ) -> tuple[list[AccountChoice], list[Holding]]:
        """Every choice version of the programme's accounts, and their holdings of any of
        ``securities`` as of ``on`` or earlier: one SELECT each, for
        ``core.vote_plan.positions_at`` to pick what is in force.

        Plain SQL (``text``): the rows come as the driver gives them, without SQLAlchemy's
        per-row type processing; dates (few distinct ones) and share counts (text) are
        parsed once per distinct value."""
        if not securities:
            return [], []
        params = {"owner": owner, "programme": programme, "securities": list(securities), "on": on}
        with self._db.engine.connect() as connection:
            choice_rows = connection.execute(_CHOICES, params).all()
            holding_rows = connection.execute(_HOLDINGS, params).all()
        day = ParsedOnce(_date)
        amount = ParsedOnce(Decimal)
        choices = [AccountChoice(a, c, p, day[d]) for a, c, p, d in choice_rows]
        holdings = [Holding(a, s, day[d], amount[n]) for a, s, d, n in holding_rows]
        return choices, holdings


# The rows positions_at reads, as plain SQL (valid on SQLite and PostgreSQL).
_CHOICES = text(
    "SELECT a.account_id, c.custodian_account, c.policy, c.effective_date"
    " FROM account_choices c JOIN programme_accounts a ON a.pk = c.account_pk"
    " WHERE a.owner = :owner AND a.programme = :programme"
)
_HOLDINGS = text(
    "SELECT a.account_id, h.security, h.as_of, h.shares"
    " FROM account_holdings h JOIN programme_accounts a ON a.pk = h.account_pk"
    " WHERE a.owner = :owner AND a.programme = :programme"
    " AND h.security IN :securities AND h.as_of <= :on"
).bindparams(bindparam("securities", expanding=True), bindparam("on", type_=Date))


def _programme(row: ProgrammeVersion) -> Programme:
    return Programme(row.name, tuple(json.loads(row.policies)), row.default_policy, row.description)


def _stored(row: ProgrammeVersion) -> StoredProgramme:
    return StoredProgramme(_programme(row), row.version, row.created_at)
