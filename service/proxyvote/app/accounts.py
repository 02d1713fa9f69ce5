"""Programmes and accounts files: read, checked line by line, stored whole or not at all.

The accounts file (CSV or Parquet; docs/voting-choice.md) has one row per account and
date: the account, its custodian account, the policy it chose (empty: none, so the
programme's default applies) from ``effective_date``, and optionally its shares of a
security as of a date. Every bad line is reported (``FILE:line N: column``; Parquet
rows count from 1), and then nothing is stored. Shares are exact decimals: a float
column is refused, and so are negative, NaN or infinite counts.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path

from proxyvote.core.vote_plan import AccountChoice, Holding, Programme, security_problem
from proxyvote.errors import AccountsFileInvalid, FieldViolation, InvalidArgument, NotFound
from proxyvote.store.programmes import AccountsImport, ProgrammeRepository, StoredProgramme

CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # identifiers hold no control character
REQUIRED = ("account_id", "custodian_account", "policy", "effective_date", "security", "shares", "as_of")
OPTIONAL = ("note",)  # free text, e.g. SYNTHETIC; not stored
MAX_FILE_BYTES = 500 * 1024 * 1024
MAX_REPORTED = 1000  # violations listed; the rest are counted
MAX_ID = 200
MAX_SIGNIFICANT_DIGITS = 30
MAX_DECIMAL_PLACES = 12
MAX_INTEGER_DIGITS = 18  # a quintillion shares: more than any issuer has


@dataclass(frozen=True, slots=True)
class AccountRows:
    """A checked accounts file: each value with where it was read."""

    name: str
    rows: int
    choices: tuple[tuple[str, AccountChoice], ...]
    holdings: tuple[tuple[str, Holding], ...]


@dataclass(frozen=True, slots=True)
class AccountsReport:
    name: str
    programme: str
    rows: int
    summary: AccountsImport


def _date(value) -> dt.date:
    if isinstance(value, dt.datetime):
        raise ValueError("is a timestamp, not a date")
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    if len(text) != 10 or text[4] != "-" or text[7] != "-":
        raise ValueError(f"{text!r} is not a YYYY-MM-DD date")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a YYYY-MM-DD date") from None


def parse_shares(value) -> Decimal:
    """An exact, finite, non-negative share count; ValueError saying why not."""
    if isinstance(value, float):
        raise ValueError("is a float; write shares as a decimal string or a decimal column")
    if isinstance(value, bool):
        raise ValueError("is not a number")
    try:
        shares = Decimal(value) if isinstance(value, int | Decimal) else Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{value!r} is not a decimal number") from None
    if not shares.is_finite():
        raise ValueError(f"{value!r} is not a finite number")
    if shares < 0:
        raise ValueError(f"{value!r} is negative")
    if shares >= 10**MAX_INTEGER_DIGITS:
        raise ValueError(f"{value!r} has more than {MAX_INTEGER_DIGITS} digits before the point")
    exponent = shares.normalize().as_tuple().exponent
    if isinstance(exponent, int) and -exponent > MAX_DECIMAL_PLACES:
        raise ValueError(f"{value!r} has more than {MAX_DECIMAL_PLACES} decimal places")
    if len(shares.normalize().as_tuple().digits) > MAX_SIGNIFICANT_DIGITS:
        raise ValueError(f"{value!r} has more than {MAX_SIGNIFICANT_DIGITS} significant digits")
    return shares


def _text(value) -> str:
    return "" if value is None else str(value).strip()


def _csv_rows(name: str, content: bytes) -> Iterator[tuple[str, dict]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AccountsFileInvalid([FieldViolation(name, "is not UTF-8 text")]) from exc
    # Comment lines (# ...) become blank lines, so the reader's line numbers stay the file's.
    lines = ("\n" if line.lstrip().startswith("#") else line for line in io.StringIO(text, newline=""))
    reader = csv.reader(lines)
    header: list[str] | None = None
    for cells in _csv_cells(name, reader):
        if not cells or all(not c.strip() for c in cells):
            continue
        if header is None:
            header = [c.strip() for c in cells]
            _check_header(name, header)
            continue
        where = f"{name}:line {reader.line_num}"
        if len(cells) != len(header):
            yield where, {"": f"has {len(cells)} cells, the header {len(header)}"}
            continue
        yield where, dict(zip(header, cells, strict=True))
    if header is None:
        raise AccountsFileInvalid([FieldViolation(name, "has no header line")])


def _csv_cells(name: str, reader) -> Iterator[list[str]]:
    """The reader's rows; what it cannot read (a cell over its 128 KiB limit, a NUL) is the
    file's problem at that line, not an error of ours."""
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise AccountsFileInvalid(
                [FieldViolation(f"{name}:line {reader.line_num}", f"is not readable CSV: {exc}")]
            ) from exc


def _parquet_rows(name: str, content: bytes) -> Iterator[tuple[str, dict]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(pa.BufferReader(content))
    except (pa.ArrowException, OSError) as exc:
        raise AccountsFileInvalid([FieldViolation(name, f"is not a readable Parquet file: {exc}")]) from exc
    _check_header(name, table.column_names)
    floats = [
        FieldViolation(
            f"{name}: {column}", "is a floating-point column; shares must be exact (decimal or text)"
        )
        for column in ("shares",)
        if pa.types.is_floating(table.schema.field(column).type)
    ]
    if floats:
        raise AccountsFileInvalid(floats)
    columns = {c: table.column(c).to_pylist() for c in table.column_names}
    for index in range(table.num_rows):
        yield f"{name}:row {index + 1}", {c: values[index] for c, values in columns.items()}


def _check_header(name: str, header: list[str]) -> None:
    missing = [c for c in REQUIRED if c not in header]
    unknown = [c for c in header if c not in REQUIRED + OPTIONAL]
    duplicated = sorted({c for c in header if header.count(c) > 1})
    problems = [FieldViolation(f"{name}: header", f"lacks the column {c!r}") for c in missing]
    problems += [
        FieldViolation(f"{name}: header", f"has the unknown column {c!r} (expected {', '.join(REQUIRED)})")
        for c in unknown
    ]
    problems += [FieldViolation(f"{name}: header", f"repeats the column {c!r}") for c in duplicated]
    if problems:
        raise AccountsFileInvalid(problems)


def read_accounts(
    name: str, content: bytes, programme: Programme, parquet: bool | None = None
) -> AccountRows:
    """Every row checked; AccountsFileInvalid naming each bad line and column otherwise.
    ``parquet``: the format as the caller names it; None: Parquet if the name ends in
    ``.parquet`` or the content starts with ``PAR1``, else CSV."""
    if len(content) > MAX_FILE_BYTES:
        raise AccountsFileInvalid([FieldViolation(name, f"is larger than {MAX_FILE_BYTES} bytes")])
    if parquet is None:
        parquet = name.endswith(".parquet") or content[:4] == b"PAR1"
    rows = _parquet_rows(name, content) if parquet else _csv_rows(name, content)
    offered = set(programme.policies)
    problems: list[FieldViolation] = []
    choices: list[tuple[str, AccountChoice]] = []
    holdings: list[tuple[str, Holding]] = []
    seen_choice: dict[tuple[str, dt.date], tuple[str, AccountChoice]] = {}
    seen_holding: dict[tuple[str, str, dt.date], tuple[str, Holding]] = {}
    count = 0
    for where, row in rows:
        count += 1
        if "" in row:
            problems.append(FieldViolation(where, row[""]))
            continue
        bad = len(problems)

        def fail(column: str, why: str, where=where) -> None:
            problems.append(FieldViolation(f"{where}: {column}", why))

        account = _text(row["account_id"])
        custodian = _text(row["custodian_account"])
        policy = _text(row["policy"])
        for column, value in (("account_id", account), ("custodian_account", custodian)):
            if not value:
                fail(column, "is empty")
            elif len(value) > MAX_ID:
                fail(column, f"is longer than {MAX_ID} characters")
            elif CONTROL.search(value):
                fail(column, "holds a control character")
        if policy and policy not in offered:
            fail(
                "policy",
                f"{policy!r} is not offered by programme {programme.name} ({', '.join(programme.policies)})",
            )
        effective = None
        try:
            effective = _date(row["effective_date"])
        except ValueError as exc:
            fail("effective_date", str(exc) if _text(row["effective_date"]) else "is empty")
        security = _text(row["security"]).upper()
        shares_cell, as_of_cell = row["shares"], row["as_of"]
        holding = None
        if security:
            why = security_problem(security)
            if why:
                fail("security", f"{security!r}: {why}")
            shares = as_of = None
            if _text(shares_cell) == "" and not isinstance(shares_cell, float):
                fail("shares", "is empty (a row naming a security gives its shares)")
            else:
                try:
                    shares = parse_shares(shares_cell)
                except ValueError as exc:
                    fail("shares", str(exc))
            try:
                as_of = _date(as_of_cell)
            except ValueError as exc:
                fail(
                    "as_of",
                    str(exc) if _text(as_of_cell) else "is empty (a row naming a security gives its date)",
                )
            if not why and shares is not None and as_of is not None:
                holding = Holding(account, security, as_of, shares)
        elif _text(shares_cell) or _text(as_of_cell):
            fail("security", "is empty, but shares or as_of are given")
        if len(problems) > bad:
            continue
        choice = AccountChoice(account, custodian, policy, effective)
        earlier = seen_choice.setdefault((account, effective), (where, choice))
        if earlier[1] != choice:
            fail(
                "policy",
                f"account {account} from {effective} is given another policy or custodian account "
                f"at {earlier[0]}",
            )
            continue
        if earlier[0] == where:
            choices.append((where, choice))
        if holding is not None:
            first = seen_holding.setdefault((account, security, holding.as_of), (where, holding))
            if first[1].shares != holding.shares:
                fail(
                    "shares", f"account {account} holds other shares of {security} on that date at {first[0]}"
                )
                continue
            if first[0] == where:
                holdings.append((where, holding))
    if count == 0 and not problems:
        problems.append(FieldViolation(name, "has no rows"))
    if problems:
        shown = problems[:MAX_REPORTED]
        if len(problems) > MAX_REPORTED:
            shown.append(FieldViolation(name, f"and {len(problems) - MAX_REPORTED} more problems"))
        raise AccountsFileInvalid(shown)
    return AccountRows(name, count, tuple(choices), tuple(holdings))


def read_file(path: str) -> bytes:
    try:
        if Path(path).stat().st_size > MAX_FILE_BYTES:
            raise AccountsFileInvalid([FieldViolation(path, f"is larger than {MAX_FILE_BYTES} bytes")])
        return Path(path).read_bytes()
    except OSError as exc:
        raise InvalidArgument([FieldViolation(path, f"cannot be read: {exc.strerror or exc}")]) from exc


class Programmes:
    """Programmes and their accounts, for one tenant at a time."""

    def __init__(self, repository: ProgrammeRepository, known_policy):
        self.repository = repository
        self._known_policy = known_policy  # (tenant, reference) -> None, NotFound if not visible

    @classmethod
    def from_app(cls, app) -> Programmes:
        return cls(app.store.programmes, lambda tenant, policy: app.catalog.entry(tenant, policy))

    def list(self, tenant: str) -> list[StoredProgramme]:
        """The latest version of each of the tenant's programmes, by name."""
        return self.repository.list(tenant)

    def define(
        self, tenant: str, name: str, policies: tuple[str, ...], default: str, description: str = ""
    ) -> tuple[StoredProgramme, str]:
        problems = []
        if not name.strip() or len(name) > MAX_ID:
            problems.append(FieldViolation("name", f"must be 1 to {MAX_ID} characters"))
        elif CONTROL.search(name):
            problems.append(FieldViolation("name", "holds a control character"))
        if not policies:
            problems.append(FieldViolation("policy", "name at least one policy on offer"))
        if len(set(policies)) != len(policies):
            problems.append(FieldViolation("policy", "names a policy twice"))
        if default not in policies:
            problems.append(FieldViolation("default", f"{default!r} is not among the policies on offer"))
        for policy in dict.fromkeys(policies):
            try:
                self._known_policy(tenant, policy)
            except InvalidArgument as exc:
                problems.extend(exc.violations)
            except NotFound:
                problems.append(FieldViolation("policy", f"{policy!r}: no such policy"))
        if problems:
            raise InvalidArgument(problems)
        return self.repository.define(tenant, Programme(name.strip(), tuple(policies), default, description))

    def import_accounts(
        self, tenant: str, programme: str, name: str, content: bytes, parquet: bool | None = None
    ) -> AccountsReport:
        stored = self.repository.get(tenant, programme)
        rows = read_accounts(name, content, stored.programme, parquet)
        summary = self.repository.import_accounts(tenant, programme, rows.choices, rows.holdings)
        return AccountsReport(name, programme, rows.rows, summary)
