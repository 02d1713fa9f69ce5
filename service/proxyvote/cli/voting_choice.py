"""``proxyvote programme create|list``, ``proxyvote accounts import`` and ``proxyvote plan``
(and ``plan list``): voting choice (docs/voting-choice.md).

In this process, on the local database (``--database-url``, DATABASE_URL or SQLite under
./var/), as the shared owner, like ``proxyvote meetings`` and ``proxyvote backtest``.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

from proxyvote.cli.meetings import connection_args
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
    server_args(sp)
    sp.set_defaults(func=cmd_programme_create)
    sp = psub.add_parser(
        "list",
        help="the programmes: the latest version of each",
        description="Lists the latest version of each programme: its policies, default and when defined.",
    )
    sp.add_argument("--format", choices=("table", "json"), default="table")
    server_args(sp)
    sp.set_defaults(func=cmd_programme_list)

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
    server_args(sp)
    sp.set_defaults(func=cmd_accounts_import)

    sp = subparsers.add_parser(
        "plan",
        help="the vote plan of a meeting for a programme: split totals per item, stored; "
        "`plan list`: the stored plans",
        description="Decides the meeting under each policy the programme's accounts follow, splits each "
        "item's votes by the shares held at the record date, stores the plan and prints its totals. "
        "`plan list [--programme NAME] [--from DATE] [--to DATE] [--meeting ID]` lists the stored plans "
        "by meeting date instead.",
    )
    sp.add_argument("action", nargs="?", choices=("list",), help="list: the stored plans")
    sp.add_argument(
        "--meeting",
        help="a meeting JSON file, or the id or key of a stored meeting; with list: a meeting id",
    )
    sp.add_argument("--programme", help="the programme's name")
    sp.add_argument("--from", dest="date_from", help="with list: YYYY-MM-DD, meeting dates from (inclusive)")
    sp.add_argument("--to", dest="date_to", help="with list: YYYY-MM-DD, meeting dates to (inclusive)")
    sp.add_argument(
        "--as-of", help="YYYY-MM-DD: evidence the decisions may use (default: today or the meeting date)"
    )
    sp.add_argument("--replay", metavar="PLAN_ID", help="decide a stored plan again and compare")
    sp.add_argument("--output", help="per-account rows: FILE.csv or FILE.parquet")
    sp.add_argument("--format", choices=("table", "json"), default="table")
    server_args(sp)
    sp.set_defaults(func=cmd_plan)


def server_args(sp) -> None:
    """Local database by default; the caller's own with --server (VotingChoiceService)."""
    connection_args(sp, "call the service at HOST:PORT (as your tenant) instead of the local database")


def stub(args):
    """(a VotingChoiceService stub, its channel, the call metadata) for --server."""
    from proxyvote.cli.main import _auth, _channel
    from proxyvote.v1 import voting_choice_service_pb2_grpc as vc_grpc

    metadata = _auth(args)
    channel = _channel(args, args.server)
    return vc_grpc.VotingChoiceServiceStub(channel), channel, metadata


def _app(args):
    from proxyvote.app.wiring import build_app

    return build_app(args.settings)


def _programmes(app):
    from proxyvote.app.accounts import Programmes

    return Programmes.from_app(app)


def cmd_programme_create(args) -> int:
    if args.server:
        from proxyvote.v1 import voting_choice_service_pb2 as vc
        from proxyvote.wire.voting_choice import programme_from_proto

        service, channel, metadata = stub(args)
        with channel:
            reply = service.DefineProgramme(
                vc.DefineProgrammeRequest(
                    name=args.name,
                    policies=args.policy,
                    default_policy=args.default,
                    description=args.description,
                ),
                timeout=60,
                metadata=metadata,
            )
        p, version = programme_from_proto(reply.programme)
        what = reply.outcome
    else:
        from proxyvote.store import SHARED

        app = _app(args)
        try:
            stored, what = _programmes(app).define(
                SHARED, args.name, tuple(args.policy), args.default, args.description
            )
        finally:
            app.close()
        p, version = stored.programme, stored.version
    print(
        f"programme {p.name} version {version} ({what}): {', '.join(p.policies)}; default {p.default_policy}"
    )
    return 0


def cmd_accounts_import(args) -> int:
    from proxyvote.app.accounts import read_file
    from proxyvote.errors import AccountsFileInvalid
    from proxyvote.store import SHARED

    content = read_file(args.file)
    try:
        if args.server:
            report = _import_remote(args, content)
        else:
            app = _app(args)
            try:
                report = _programmes(app).import_accounts(SHARED, args.programme, args.file, content)
            finally:
                app.close()
    except AccountsFileInvalid as exc:
        for v in exc.violations:
            print(f"{v.field}: {v.description}", file=sys.stderr)
        print(f"error: {len(exc.violations)} problem(s); nothing was stored", file=sys.stderr)
        return 2
    s = report.summary
    print(
        f"{report.name}: {report.rows} row(s) for programme {report.programme}: "
        f"accounts added {s.accounts_added}, changed {s.accounts_changed}, unchanged {s.accounts_unchanged}; "
        f"choice versions added {s.choices_added}, holdings added {s.holdings_added}"
    )
    return 0


def _import_remote(args, content: bytes):
    """ImportAccounts; a bad file's field violations come back as AccountsFileInvalid, so
    they print as in local mode."""
    import grpc

    from proxyvote.app.accounts import AccountsReport
    from proxyvote.cli.main import CliError
    from proxyvote.cli.rpc_errors import error_reason, field_violations
    from proxyvote.errors import AccountsFileInvalid, FieldViolation
    from proxyvote.store.programmes import AccountsImport
    from proxyvote.v1 import voting_choice_service_pb2 as vc

    if len(content) > MAX_REMOTE_BYTES:
        raise CliError(
            f"{args.file} is larger than the {MAX_REMOTE_BYTES // 2**20} MiB a call may carry: "
            "import it without --server, or split it"
        )
    service, channel, metadata = stub(args)
    try:
        with channel:
            reply = service.ImportAccounts(
                vc.ImportAccountsRequest(programme=args.programme, file_name=args.file, content=content),
                timeout=600,
                metadata=metadata,
            )
    except grpc.RpcError as exc:
        violations = field_violations(exc) if exc.code() == grpc.StatusCode.INVALID_ARGUMENT else []
        if violations and error_reason(exc) == "ACCOUNTS_FILE_INVALID":
            raise AccountsFileInvalid([FieldViolation(f, d) for f, d in violations]) from exc
        raise
    summary = AccountsImport(
        reply.accounts_added,
        reply.accounts_changed,
        reply.accounts_unchanged,
        reply.choices_added,
        reply.holdings_added,
    )
    return AccountsReport(reply.file_name, reply.programme, reply.rows, summary)


MAX_REMOTE_BYTES = 32 * 1024 * 1024 - 64 * 1024  # the server's message limit, less the request's other fields


def _meeting(vote_plans, tenant: str, ref: str):
    from proxyvote.cli.main import _read
    from proxyvote.wire import convert

    if Path(ref).is_file():
        return convert.meeting_from_json(_read(ref), field=f"meeting ({ref})")
    return vote_plans.find_meeting(tenant, ref)


def cmd_plan(args) -> int:
    from proxyvote.app.vote_plans import VotePlans, outline_document
    from proxyvote.cli.main import CliError, _today
    from proxyvote.store import SHARED
    from proxyvote.wire import convert

    if args.action == "list":
        return cmd_plan_list(args)
    if args.date_from or args.date_to:
        raise CliError("--from and --to go with plan list")
    if args.replay:
        if args.meeting or args.programme:
            raise CliError("--replay takes a plan id alone")
    elif not (args.meeting and args.programme):
        raise CliError("plan needs --meeting FILE|ID and --programme NAME (or --replay PLAN_ID)")
    if args.output and not args.output.endswith((".csv", ".parquet")):
        raise CliError("--output must name a .csv or .parquet file")
    as_of = convert.parse_as_of(args.as_of or "", "--as-of")
    if args.server:
        outline, plan, replay = _plan_remote(args, as_of)
    else:
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
        outline, plan = stored.outline(), stored.plan
    if args.output:
        rows = write_instructions(plan, args.output)
        print(f"wrote {rows} rows to {args.output}", file=sys.stderr)
    if replay is not None:
        for policy, decision_id, same in replay.decisions:
            print(f"decision {decision_id} ({policy}): {'identical' if same else 'DIFFERS'}")
        if replay.differing_item_ids:
            print(f"items whose totals differ: {', '.join(replay.differing_item_ids)}")
        print(f"plan {outline.plan_id}: {'identical' if replay.identical else 'DIFFERS'}")
        return 0 if replay.identical else 1
    print(f"stored as plan {outline.plan_id}", file=sys.stderr)
    if args.format == "json":
        doc = outline_document(outline)
        print(json.dumps({"plan_id": outline.plan_id} | doc, indent=2, ensure_ascii=False))
    else:
        print(table(outline))
    return 0


def created_text(value) -> str:
    """A stored row's creation time as listed: UTC to the second, the same from SQLite,
    PostgreSQL or a server's RFC 3339 text."""
    import datetime as dt

    if value is None:
        return ""
    if value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(timespec="seconds") + "Z"


def _columns(rows: list[tuple[str, ...]], right: frozenset[int] = frozenset()) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ).rstrip()
        for r in rows
    ]


def _pages(call, request):
    """Every item of a paged List call (AIP-158), page after page; ``call(request)`` returns
    (items, next_page_token)."""
    token = ""
    while True:
        request.page_token = token
        items, token = call(request)
        yield from items
        if not token:
            return


def cmd_programme_list(args) -> int:
    from proxyvote.store.programmes import StoredProgramme

    if args.server:
        from proxyvote.v1 import voting_choice_service_pb2 as vc
        from proxyvote.wire.voting_choice import parse_time, programme_from_proto

        service, channel, metadata = stub(args)

        def call(request):
            reply = service.ListProgrammes(request, timeout=60, metadata=metadata)
            return reply.programmes, reply.next_page_token

        with channel:
            programmes = [
                StoredProgramme(*programme_from_proto(m), parse_time(m.create_time))
                for m in _pages(call, vc.ListProgrammesRequest(page_size=1000))
            ]
    else:
        from proxyvote.store import SHARED

        app = _app(args)
        try:
            programmes = _programmes(app).list(SHARED)
        finally:
            app.close()
    if args.format == "json":
        doc = [
            {
                "name": p.programme.name,
                "version": p.version,
                "policies": list(p.programme.policies),
                "default_policy": p.programme.default_policy,
                "description": p.programme.description,
                "created": created_text(p.created_at),
            }
            for p in programmes
        ]
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    if programmes:
        rows = [("name", "version", "default", "policies", "created", "description")]
        rows += [
            (
                p.programme.name,
                str(p.version),
                p.programme.default_policy,
                ", ".join(p.programme.policies),
                created_text(p.created_at),
                p.programme.description,
            )
            for p in programmes
        ]
        print("\n".join(_columns(rows, frozenset({1}))))
    print(f"{len(programmes)} programme(s)")
    return 0


def cmd_plan_list(args) -> int:
    from proxyvote.cli.main import CliError
    from proxyvote.wire import convert

    if args.replay or args.output or args.as_of:
        raise CliError("plan list takes --programme, --from, --to and --meeting only")
    date_from = convert.parse_as_of(args.date_from or "", "--from")
    date_to = convert.parse_as_of(args.date_to or "", "--to")
    if date_from and date_to and date_from > date_to:
        raise CliError(f"--from {date_from} is after --to {date_to}")
    programme, meeting_id = (args.programme or "").strip() or None, (args.meeting or "").strip() or None
    if args.server:
        from proxyvote.store.vote_plans import PlanSummary
        from proxyvote.v1 import voting_choice_service_pb2 as vc
        from proxyvote.wire.voting_choice import plan_summary_values

        service, channel, metadata = stub(args)

        def call(request):
            reply = service.ListPlans(request, timeout=60, metadata=metadata)
            return reply.plans, reply.next_page_token

        request = vc.ListPlansRequest(
            programme=programme or "",
            date_from=date_from.isoformat() if date_from else "",
            date_to=date_to.isoformat() if date_to else "",
            meeting_id=meeting_id or "",
            page_size=1000,
        )
        with channel:
            plans = [PlanSummary(*plan_summary_values(m)) for m in _pages(call, request)]
    else:
        from proxyvote.app.vote_plans import VotePlans
        from proxyvote.store import SHARED

        app = _app(args)
        try:
            plans = VotePlans.from_app(app).list(SHARED, programme, date_from, date_to, meeting_id)
        finally:
            app.close()
    if args.format == "json":
        doc = [
            {
                "plan_id": p.plan_id,
                "programme": p.programme,
                "programme_version": p.programme_version,
                "meeting_id": p.meeting_id,
                "meeting_date": p.meeting_date.isoformat(),
                "record_date": p.record_date.isoformat(),
                "security": p.security,
                "accounts": p.accounts,
                "plan_hash": p.plan_hash,
                "created": created_text(p.created_at),
            }
            for p in plans
        ]
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    if plans:
        rows = [
            ("plan", "programme", "meeting", "meeting date", "record date", "security", "accounts", "created")
        ]
        rows += [
            (
                p.plan_id,
                f"{p.programme} v{p.programme_version}",
                p.meeting_id,
                p.meeting_date.isoformat(),
                p.record_date.isoformat(),
                p.security,
                str(p.accounts),
                created_text(p.created_at),
            )
            for p in plans
        ]
        print("\n".join(_columns(rows, frozenset({6}))))
    print(f"{len(plans)} plan(s)")
    return 0


def _plan_remote(args, as_of):
    """(the plan's outline, the plan with its positions if --output needs them, the replay or
    None) from VotingChoiceService."""
    import dataclasses

    from proxyvote.cli.main import _read
    from proxyvote.v1 import voting_choice_service_pb2 as vc
    from proxyvote.wire import convert
    from proxyvote.wire import voting_choice as wire

    service, channel, metadata = stub(args)
    replay = None
    with channel:
        if args.replay:
            reply = service.ReplayPlan(
                vc.ReplayPlanRequest(plan_id=args.replay), timeout=300, metadata=metadata
            )
            replay = reply  # .decisions as (policy, decision id, identical), .differing_item_ids, .identical
            message = service.GetPlan(
                vc.GetPlanRequest(plan_id=args.replay), timeout=60, metadata=metadata
            ).plan
        else:
            request = vc.PlanVotesRequest(programme=args.programme, as_of=as_of.isoformat() if as_of else "")
            if Path(args.meeting).is_file():
                meeting = convert.meeting_from_json(_read(args.meeting), field=f"meeting ({args.meeting})")
                request.meeting.CopyFrom(convert.meeting_to_proto(meeting))
            else:
                request.meeting_ref = args.meeting
            message = service.PlanVotes(request, timeout=600, metadata=metadata).plan
        outline = wire.outline_from_proto(message)
        plan = outline.plan
        if args.output:
            positions, token = [], ""
            while True:
                page = service.GetPlan(
                    vc.GetPlanRequest(
                        plan_id=outline.plan_id, account_page_size=10_000, account_page_token=token
                    ),
                    timeout=60,
                    metadata=metadata,
                )
                positions.extend(wire.positions_from_proto(page.accounts))
                token = page.next_account_page_token
                if not token:
                    break
            plan = dataclasses.replace(plan, accounts=tuple(positions))
    if replay is not None:
        replay = _Replay(
            replay.identical,
            tuple((d.policy, d.decision_id, d.identical) for d in replay.decisions),
            tuple(replay.differing_item_ids),
        )
    return outline, plan, replay


class _Replay:
    def __init__(self, identical: bool, decisions: tuple, differing_item_ids: tuple):
        self.identical = identical
        self.decisions = decisions
        self.differing_item_ids = differing_item_ids


def table(outline) -> str:
    """The plan's totals as ``proxyvote plan`` prints them; ``outline``: a ``PlanOutline``."""
    from proxyvote.core.vote_plan import shares_text

    stored = outline
    plan = outline.plan
    lines = [
        f"plan {stored.plan_id}  {plan.meeting_id}  programme {plan.programme} v{stored.programme_version}  "
        f"security {plan.security}  record date {plan.record_date}  decided as of {stored.as_of}",
        f"{outline.accounts} accounts, {shares_text(outline.total_shares)} shares held",
    ]
    for p in plan.policies:
        lines.append(
            f"  {p.policy}: {p.accounts} accounts, {shares_text(p.shares)} shares (decision {p.decision_id})"
        )
    defaulted = outline.defaulted_accounts
    if defaulted:
        lines.append(
            f"  {defaulted} accounts made no choice in force: default {stored.programme.default_policy}"
        )
    moved = outline.not_offered_count
    if moved:
        lines.append(
            f"  {moved} accounts chose a policy no longer offered and follow the default: "
            + ", ".join(f"{a} ({p})" for a, p in outline.not_offered[:10])
            + (" ..." if moved > 10 else "")
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
    from proxyvote.core.vote_plan import shares_text

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
