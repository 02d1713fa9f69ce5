"""``proxyvote export``: stored vote plans in the messages that leave the service.

    proxyvote export seev004 --plan PLAN_ID --output-dir DIR
    proxyvote export seev004 --meeting ID --programme NAME --output-dir DIR
    proxyvote export npx --programme NAME --period 2026 [--series S000012345] --output FILE.xml

seev.004 writes one MeetingInstruction per custodian account of the plan (the
meeting's most recent plan under the programme when ``--meeting`` is given);
N-PX writes the programme's vote table for the reporting period ending on 30
June of ``--period``, from the most recent plan of each meeting in it. Items
referred to a person are not instructed or reported as voted: both commands
list them on stderr. Nothing is decided here: a plan must exist (`proxyvote plan`).
"""

from __future__ import annotations

import sys
from pathlib import Path

from proxyvote.cli.voting_choice import server_args


def add_parser(subparsers) -> None:
    export = subparsers.add_parser("export", help="stored vote plans as ISO 20022 seev.004 or SEC N-PX")
    esub = export.add_subparsers(dest="export_command", required=True)
    sp = esub.add_parser("seev004", help="one MeetingInstruction per custodian account of a vote plan")
    sp.add_argument("--plan", help="a stored plan's id")
    sp.add_argument("--meeting", help="a meeting id: its most recent plan under --programme")
    sp.add_argument("--programme", help="with --meeting: the programme's name")
    sp.add_argument("--output-dir", required=True, help="a folder: one FILE per custodian account")
    server_args(sp)
    sp.set_defaults(func=cmd_seev004)
    sp = esub.add_parser("npx", help="a programme's N-PX vote table (proxyVoteTable XML) for a period")
    sp.add_argument("--programme", required=True, help="the fund's programme")
    sp.add_argument(
        "--period", type=int, required=True, help="the reporting period's year: 1 July YEAR-1 to 30 June YEAR"
    )
    sp.add_argument("--series", default="", help="the SEC series id written on every row (optional)")
    sp.add_argument("--output", required=True, help="FILE.xml")
    server_args(sp)
    sp.set_defaults(func=cmd_npx)


def _vote_plans(args):
    from proxyvote.app.vote_plans import VotePlans
    from proxyvote.app.wiring import build_app

    app = build_app(args.settings)
    return app, VotePlans.from_app(app)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name) or "account"


def cmd_seev004(args) -> int:
    from proxyvote.cli.main import CliError

    if bool(args.plan) == bool(args.meeting):
        raise CliError("export seev004 takes --plan PLAN_ID, or --meeting ID with --programme NAME")
    if args.meeting and not args.programme:
        raise CliError("--meeting needs --programme NAME")
    if args.server:
        meeting_id, plan_id, messages, ids, not_instructed = _seev004_remote(args)
    else:
        meeting_id, plan_id, messages, ids, not_instructed = _seev004_local(args)
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    for account, xml in sorted(messages.items()):
        path = out / f"{_safe(meeting_id)}.{_safe(account)}.seev004.xml"
        path.write_bytes(xml)
        print(f"{path}: instruction {ids[account]} for custodian account {account}")
    for n in not_instructed:
        print(
            f"not instructed: {n.custodian_account} item {n.item_id}: {n.shares} shares of "
            f"{n.accounts} account(s) referred to a person by {', '.join(n.policies)}",
            file=sys.stderr,
        )
    print(f"plan {plan_id}: {len(messages)} instruction(s)", file=sys.stderr)
    return 0


def _seev004_remote(args):
    """ExportSeev004's stream: (meeting id, plan id, xml per custodian account, instruction ids,
    not instructed) as the local export gives them."""
    from proxyvote.cli.voting_choice import stub
    from proxyvote.v1 import voting_choice_service_pb2 as vc
    from proxyvote.wire import seev
    from proxyvote.wire.voting_choice import shares_value

    def referred(n):
        shares = shares_value(n.shares, "not_instructed.shares")
        return seev.NotInstructed(
            n.custodian_account, n.item_id, n.label, shares, n.accounts, tuple(n.policies)
        )

    request = vc.ExportSeev004Request(
        plan_id=args.plan or "", meeting_id=args.meeting or "", programme=args.programme or ""
    )
    messages, ids, not_instructed, summary = {}, {}, [], None
    service, channel, metadata = stub(args)
    with channel:
        for reply in service.ExportSeev004(request, timeout=600, metadata=metadata):
            if reply.HasField("instruction"):
                i = reply.instruction
                messages[i.custodian_account] = i.xml
                ids[i.custodian_account] = i.instruction_id
                not_instructed.extend(referred(n) for n in i.not_instructed)
            else:
                summary = reply.summary
    not_instructed.extend(referred(n) for n in summary.not_instructed)
    return summary.meeting_id, summary.plan_id, messages, ids, not_instructed


def _seev004_local(args):
    from proxyvote.cli.main import CliError
    from proxyvote.store import SHARED
    from proxyvote.wire import seev

    app, vote_plans = _vote_plans(args)
    try:
        if args.plan:
            stored = vote_plans.get(SHARED, args.plan)
        else:
            found = vote_plans.latest(SHARED, args.programme, meeting_id=args.meeting)
            if not found:
                raise CliError(
                    f"no plan of meeting {args.meeting} under programme {args.programme}: "
                    "run `proxyvote plan` first"
                )
            stored = found[-1]
    finally:
        app.close()
    batch = seev.meeting_instructions(stored.meeting, stored.plan, stored.plan_id)
    return (
        stored.meeting.meeting_id,
        stored.plan_id,
        batch.messages,
        batch.instruction_ids,
        batch.not_instructed,
    )


def cmd_npx(args) -> int:
    from proxyvote.cli.main import CliError
    from proxyvote.store import SHARED
    from proxyvote.wire.npx_out import ReportingPeriod, vote_table

    period = ReportingPeriod(args.period)
    if args.server:
        from proxyvote.cli.voting_choice import stub
        from proxyvote.v1 import voting_choice_service_pb2 as vc

        service, channel, metadata = stub(args)
        with channel:
            reply = service.ExportNpx(
                vc.ExportNpxRequest(programme=args.programme, period_year=args.period, series=args.series),
                timeout=600,
                metadata=metadata,
            )
        xml, rows, meetings = reply.xml, reply.rows, reply.meetings
        not_voted = [(n.meeting_id, n.item_id, n.reason) for n in reply.not_voted]
    else:
        app, vote_plans = _vote_plans(args)
        try:
            plans = vote_plans.latest(SHARED, args.programme, period.start, period.end, accounts=False)
        finally:
            app.close()
        if not plans:
            raise CliError(f"no plans of programme {args.programme} from {period.start} to {period.end}")
        table = vote_table(period, [(p.meeting, p.plan) for p in plans], series=args.series)
        xml, rows, meetings, not_voted = table.xml, table.rows, len(plans), table.not_voted
    Path(args.output).write_bytes(xml)
    for meeting_id, item_id, why in not_voted:
        print(f"not reported as voted: {meeting_id} item {item_id}: {why}", file=sys.stderr)
    print(
        f"wrote {args.output}: {rows} row(s) from {meetings} meeting(s), {period.start} to {period.end}",
        file=sys.stderr,
    )
    return 0
