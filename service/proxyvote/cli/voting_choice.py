"""``proxyvote programme create``, ``proxyvote accounts import`` and ``proxyvote plan``: voting
choice (docs/voting-choice.md).

In this process, on the local database (``--database-url``, DATABASE_URL or SQLite under
./var/), as the shared owner, like ``proxyvote meetings`` and ``proxyvote backtest``.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from proxyvote.core.model import VOTES

VOTE_LABELS = {"ONE_YEAR": "1 YEAR", "TWO_YEARS": "2 YEARS", "THREE_YEARS": "3 YEARS"}


def add_parser(subparsers) -> None:
    programme = subparsers.add_parser("programme", help="voting-choice programmes: the policies on offer")
    psub = programme.add_subparsers(dest="programme_command", required=True)
    sp = psub.add_parser(
        "create",
        help="define a programme (again: a new version if the offer or default changed)",
        description="Defines the policies a programme offers and the default for accounts that chose none.",
    )
    sp.add_argument("name")
    sp.add_argument("--policy", action="append", required=True, help="a policy on offer (repeat)")
    sp.add_argument("--default", required=True, help="the policy of accounts that made no choice")
    sp.add_argument("--description", default="")
    sp.add_argument("--database-url", help="default: DATABASE_URL or SQLite under ./var/")
    sp.set_defaults(func=cmd_programme_create)

    accounts = subparsers.add_parser("accounts", help="a programme's accounts: choices and holdings")
    asub = accounts.add_subparsers(dest="accounts_command", required=True)
    sp = asub.add_parser(
        "import",
        help="import accounts from CSV or Parquet (docs/voting-choice.md)",
        description="Every bad line is reported and nothing is stored; "
        "importing a file again changes nothing.",
    )
    sp.add_argument("file", metavar="FILE.csv|FILE.parquet")
    sp.add_argument("--programme", required=True)
    sp.add_argument("--database-url", help="default: DATABASE_URL or SQLite under ./var/")
    sp.set_defaults(func=cmd_accounts_import)

    sp = subparsers.add_parser(
        "plan",
        help="the vote plan of a meeting for a programme: split totals per item, stored",
        description="Decides the meeting under each policy the programme's accounts follow, splits each "
        "item's votes by the shares held at the record date, stores the plan and prints its totals.",
    )
    sp.add_argument("--meeting", help="a meeting JSON file, or the id or key of a stored meeting")
    sp.add_argument("--programme", help="the programme's name")
    sp.add_argument(
        "--as-of", help="YYYY-MM-DD: evidence the decisions may use (default: today or the meeting date)"
    )
    sp.add_argument("--replay", metavar="PLAN_ID", help="decide a stored plan again and compare")
    sp.add_argument("--output", help="per-account rows: FILE.csv or FILE.parquet")
    sp.add_argument("--format", choices=("table", "json"), default="table")
    sp.add_argument("--database-url", help="default: DATABASE_URL or SQLite under ./var/")
    sp.set_defaults(func=cmd_plan)


def _app(args):
    from proxyvote.app.wiring import build_app

    return build_app(args.settings)


def _programmes(app):
    from proxyvote.app.accounts import Programmes

    return Programmes(app.store.programmes, lambda tenant, policy: app.catalog.entry(tenant, policy))


def cmd_programme_create(args) -> int:
    from proxyvote.store import SHARED

    app = _app(args)
    try:
        stored, what = _programmes(app).define(
            SHARED, args.name, tuple(args.policy), args.default, args.description
        )
    finally:
        app.close()
    p = stored.programme
    print(
        f"programme {p.name} version {stored.version} ({what}): "
        f"{', '.join(p.policies)}; default {p.default_policy}"
    )
    return 0


def cmd_accounts_import(args) -> int:
    from proxyvote.app.accounts import read_file
    from proxyvote.errors import AccountsFileInvalid
    from proxyvote.store import SHARED

    content = read_file(args.file)
    app = _app(args)
    try:
        report = _programmes(app).import_accounts(SHARED, args.programme, args.file, content)
    except AccountsFileInvalid as exc:
        for v in exc.violations:
            print(f"{v.field}: {v.description}", file=sys.stderr)
        print(f"error: {len(exc.violations)} problem(s); nothing was stored", file=sys.stderr)
        return 2
    finally:
        app.close()
    s = report.summary
    print(
        f"{report.name}: {report.rows} row(s) for programme {report.programme}: "
        f"accounts added {s.accounts_added}, changed {s.accounts_changed}, unchanged {s.accounts_unchanged}; "
        f"choice versions added {s.choices_added}, holdings added {s.holdings_added}"
    )
    return 0


def _meeting(vote_plans, tenant: str, ref: str):
    from proxyvote.cli.main import _read
    from proxyvote.wire import convert

    if Path(ref).is_file():
        return convert.meeting_from_json(_read(ref), field=f"meeting ({ref})")
    return vote_plans.find_meeting(tenant, ref)


def cmd_plan(args) -> int:
    from proxyvote.app.vote_plans import VotePlans, plan_document
    from proxyvote.cli.main import CliError, _today
    from proxyvote.store import SHARED
    from proxyvote.wire import convert

    if args.replay:
        if args.meeting or args.programme:
            raise CliError("--replay takes a plan id alone")
    elif not (args.meeting and args.programme):
        raise CliError("plan needs --meeting FILE|ID and --programme NAME (or --replay PLAN_ID)")
    if args.output and not args.output.endswith((".csv", ".parquet")):
        raise CliError("--output must name a .csv or .parquet file")
    as_of = convert.parse_as_of(args.as_of or "", "--as-of")
    app = _app(args)
    try:
        vote_plans = VotePlans.from_app(app)
        if args.replay:
            replay = vote_plans.replay(SHARED, args.replay)
            stored = vote_plans.get(SHARED, args.replay)
        else:
            meeting = _meeting(vote_plans, SHARED, args.meeting)
            stored = vote_plans.make(SHARED, meeting, args.programme, _today(), as_of)
            replay = None
    finally:
        app.close()
    if args.output:
        rows = write_instructions(stored.plan, args.output)
        print(f"wrote {rows} rows to {args.output}", file=sys.stderr)
    if replay is not None:
        for policy, decision_id, same in replay.decisions:
            print(f"decision {decision_id} ({policy}): {'identical' if same else 'DIFFERS'}")
        if replay.differing_item_ids:
            print(f"items whose totals differ: {', '.join(replay.differing_item_ids)}")
        print(f"plan {stored.plan_id}: {'identical' if replay.identical else 'DIFFERS'}")
        return 0 if replay.identical else 1
    print(f"stored as plan {stored.plan_id}", file=sys.stderr)
    if args.format == "json":
        doc = plan_document(
            stored.plan, stored.programme, stored.programme_version, stored.as_of, stored.not_offered
        )
        print(json.dumps({"plan_id": stored.plan_id} | doc, indent=2, ensure_ascii=False))
    else:
        print(table(stored))
    return 0


def table(stored) -> str:
    from proxyvote.store.programmes import shares_text

    plan = stored.plan
    lines = [
        f"plan {stored.plan_id}  {plan.meeting_id}  programme {plan.programme} v{stored.programme_version}  "
        f"security {plan.security}  record date {plan.record_date}  decided as of {stored.as_of}",
        f"{len(plan.accounts)} accounts, {shares_text(plan.total_shares)} shares held",
    ]
    for p in plan.policies:
        lines.append(
            f"  {p.policy}: {p.accounts} accounts, {shares_text(p.shares)} shares (decision {p.decision_id})"
        )
    defaulted = sum(1 for a in plan.accounts if not a.chose)
    if defaulted:
        lines.append(
            f"  {defaulted} accounts made no choice in force: default {stored.programme.default_policy}"
        )
    if stored.not_offered:
        lines.append(
            f"  {len(stored.not_offered)} accounts chose a policy no longer offered and follow the default: "
            + ", ".join(f"{a} ({p})" for a, p in stored.not_offered[:10])
            + (" ..." if len(stored.not_offered) > 10 else "")
        )
    used = [v for v in VOTES if any(i.shares(v) for i in plan.items)]
    rows = [
        ("item", "board", *(VOTE_LABELS.get(v, v) for v in used), "REFER shares", "REFER accounts", "total")
    ]
    for item in plan.items:
        referred = (
            f"{item.referred_accounts} ({', '.join(item.referred_policies)})"
            if item.referred_accounts
            else "0"
        )
        rows.append(
            (
                item.item_id,
                item.board_recommendation,
                *(shares_text(item.shares(v)) for v in used),
                shares_text(item.referred_shares),
                referred,
                shares_text(item.total),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    right = set(range(2, len(rows[0])))
    for r in rows:
        cells = [
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


COLUMNS = ("account_id", "custodian_account", "item_id", "policy", "vote", "shares")


def write_instructions(plan, path: str) -> int:
    """One row per account and item (shares as exact decimal text, in Parquet too)."""
    from proxyvote.store.programmes import shares_text

    count = 0
    if path.endswith(".parquet"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns: dict[str, list] = {c: [] for c in COLUMNS}
        for i in plan.instructions():
            columns["account_id"].append(i.account_id)
            columns["custodian_account"].append(i.custodian_account)
            columns["item_id"].append(i.item_id)
            columns["policy"].append(i.policy)
            columns["vote"].append(i.vote)
            columns["shares"].append(shares_text(i.shares))
            count += 1
        pq.write_table(pa.table({c: pa.array(v, pa.string()) for c, v in columns.items()}), path)
        return count
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream, lineterminator="\n")
        writer.writerow(COLUMNS)
        for i in plan.instructions():
            writer.writerow(
                (i.account_id, i.custodian_account, i.item_id, i.policy, i.vote, shares_text(i.shares))
            )
            count += 1
    return count
