"""``proxyvote meetings import|list``: past meetings, for backtests.

Without ``--server`` the local database's shared set (what every tenant sees);
with it, the caller's own, through ``MeetingService``.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING

from proxyvote.wire import convert

if TYPE_CHECKING:  # the app and the store load only when a command runs
    from proxyvote.app.meeting_import import ImportReport, SourceFile

FORMAT_NAMES = {
    "meeting": "meeting JSON",
    "npx-xml": "N-PX vote table (XML)",
    "npx-jsonl": "N-PX JSON lines",
    "seev001": "ISO 20022 seev.001 MeetingNotification",
}


def add_import_parser(subparsers) -> None:
    """``proxyvote import seev001 FILE.xml``: meeting notifications into the meeting store."""
    imports = subparsers.add_parser("import", help="import messages from other systems (ISO 20022 seev.001)")
    isub = imports.add_subparsers(dest="import_command", required=True)
    sp = isub.add_parser(
        "seev001",
        help="import ISO 20022 seev.001.001.11 MeetingNotification files as meetings",
        description="Each file is checked element by element (every fault with its element and line) "
        "and all are stored in one transaction: a bad file stores nothing. Elements that have no place "
        "in a meeting are listed with their path and line. Importing the same files again changes nothing.",
    )
    sp.add_argument("files", nargs="+", metavar="FILE.xml")
    sp.add_argument("--format", choices=("text", "json"), default="text")
    connection_args(sp, "import through the service at HOST:PORT, as your own meetings")
    sp.set_defaults(func=cmd_import_seev001, filer="", source="")


def cmd_import_seev001(args) -> int:
    from proxyvote.cli.main import CliError
    from proxyvote.wire.meeting_files import detect_format

    for f in _files(args):
        try:
            kind = detect_format(f.name, f.content)
        except Exception:  # detect_format names what it cannot read; here one kind is expected
            kind = ""
        if kind != "seev001":
            raise CliError(f"{f.name}: is not an ISO 20022 seev.001 MeetingNotification")
    return cmd_import(args)


def add_parser(subparsers) -> None:
    meetings = subparsers.add_parser("meetings", help="past meetings for backtests: import and list")
    msub = meetings.add_subparsers(dest="meetings_command", required=True)

    sp = msub.add_parser(
        "import",
        help="import past meetings: meeting JSON, N-PX vote tables (XML) or N-PX JSON lines",
        description="Imports every file in one transaction: a bad file rejects them all. "
        "Records of a stored meeting are merged into it; importing the same files again changes nothing.",
    )
    sp.add_argument("files", nargs="+", metavar="FILE")
    sp.add_argument(
        "--filer",
        default="",
        help="N-PX: the fund that filed (a vote table does not name it; default: the file's name)",
    )
    sp.add_argument(
        "--source", default="", help="N-PX: the filing, e.g. its accession number (default: the file's name)"
    )
    sp.add_argument("--format", choices=("text", "json"), default="text")
    connection_args(sp, "import through the service at HOST:PORT, as your own meetings")
    sp.set_defaults(func=cmd_import)

    sp = msub.add_parser("list", help="the stored past meetings, by date")
    sp.add_argument("--from", dest="date_from", help="YYYY-MM-DD, inclusive")
    sp.add_argument("--to", dest="date_to", help="YYYY-MM-DD, inclusive")
    sp.add_argument("--issuer", help="a CUSIP, ISIN, FIGI, ticker or issuer name")
    connection_args(sp, "ask the service at HOST:PORT (your own and the shared meetings)")
    sp.set_defaults(func=cmd_list)


def connection_args(sp, server_help: str) -> None:
    """The local database by default; a service with --server (and its API key)."""
    sp.add_argument("--database-url", help="default: DATABASE_URL or SQLite under ./var/")
    sp.add_argument("--server", help=server_help)
    sp.add_argument("--api-key", help="with --server: the API key (default: PROXYVOTE_API_KEY)")


def _files(args) -> list[SourceFile]:
    from proxyvote.app.meeting_import import read_source_files
    from proxyvote.cli.main import CliError
    from proxyvote.errors import InvalidArgument

    try:
        return read_source_files(args.files, args.filer, args.source)
    except InvalidArgument as exc:
        raise CliError(str(exc.violations[0].field) + ": " + exc.violations[0].description) from exc


def cmd_import(args) -> int:
    files = _files(args)
    if args.server:
        report = _import_remote(args, files)
        where = "your meetings"
    else:
        from proxyvote.app.meeting_import import MeetingImporter
        from proxyvote.app.wiring import build_app

        app = build_app(args.settings)
        try:
            report = MeetingImporter(app.store.meetings).import_shared(files)
        finally:
            app.close()
        where = "shared set"
    print(as_json(report) if args.format == "json" else describe(report, where))
    return 0


def _import_remote(args, files: list[SourceFile]) -> ImportReport:
    from proxyvote.app.meeting_import import FileReport, ImportReport
    from proxyvote.cli.main import _auth, _channel
    from proxyvote.store.meetings import ImportSummary
    from proxyvote.v1 import meeting_service_pb2, meeting_service_pb2_grpc

    request = meeting_service_pb2.ImportMeetingsRequest(
        files=[
            meeting_service_pb2.MeetingFile(name=f.name, content=f.content, filer=f.filer, source=f.source)
            for f in files
        ]
    )
    with _channel(args, args.server) as channel:
        reply = meeting_service_pb2_grpc.MeetingServiceStub(channel).ImportMeetings(
            request, timeout=300, metadata=_auth(args)
        )
    return ImportReport(
        tuple(
            FileReport(f.name, f.format, f.rows, f.meetings, f.items, f.investor_votes) for f in reply.files
        ),
        ImportSummary(
            reply.imported,
            reply.merged,
            reply.unchanged,
            tuple((s.meeting_key, s.reason) for s in reply.skipped),
        ),
    )


def describe(report: ImportReport, where: str) -> str:
    lines = []
    for f in report.files:
        lines.append(
            f"{f.name}: {FORMAT_NAMES.get(f.format, f.format)}, {f.rows} record(s): "
            f"{f.meetings} meeting(s), {f.items} item(s), {f.investor_votes} investor vote(s)"
        )
    s = report.summary
    lines.append(f"imported {s.imported}, merged {s.merged}, unchanged {s.unchanged} ({where})")
    if s.skipped:
        lines.append(f"skipped {len(s.skipped)}:")
        lines.extend(f"  {key}: {reason}" for key, reason in s.skipped)
    return "\n".join(lines)


def as_json(report: ImportReport) -> str:
    s = report.summary
    return json.dumps(
        {
            "files": [
                {
                    "name": f.name,
                    "format": f.format,
                    "rows": f.rows,
                    "meetings": f.meetings,
                    "items": f.items,
                    "investor_votes": f.investor_votes,
                }
                for f in report.files
            ],
            "imported": s.imported,
            "merged": s.merged,
            "unchanged": s.unchanged,
            "skipped": [{"meeting_key": k, "reason": r} for k, r in s.skipped],
        },
        indent=2,
    )


def _date(text: str | None, flag: str) -> dt.date | None:
    return convert.parse_as_of(text or "", flag)


def cmd_list(args) -> int:
    date_from, date_to = _date(args.date_from, "--from"), _date(args.date_to, "--to")
    if args.server:
        meetings = _list_remote(args)
    else:
        from proxyvote.app.meeting_import import MeetingImporter
        from proxyvote.app.wiring import build_app
        from proxyvote.store import SHARED

        app = build_app(args.settings)
        try:
            meetings, _ = MeetingImporter(app.store.meetings).select(SHARED, date_from, date_to, args.issuer)
        finally:
            app.close()
    for m in meetings:
        votes = sum(len(i.investor_votes) for i in m.items)
        ident = m.issuer.ticker or m.issuer.cusip or m.issuer.isin or m.issuer.figi
        where = f"{m.issuer.name} ({ident})"
        print(f"{m.meeting_date}  {m.meeting_id}  {where}  {len(m.items)} items, {votes} votes")
    print(f"{len(meetings)} meeting(s)")
    return 0


def _list_remote(args):
    from proxyvote.cli.main import _auth, _channel
    from proxyvote.v1 import meeting_service_pb2, meeting_service_pb2_grpc

    out, token = [], ""
    with _channel(args, args.server) as channel:
        stub = meeting_service_pb2_grpc.MeetingServiceStub(channel)
        while True:
            page = stub.ListMeetings(
                meeting_service_pb2.ListMeetingsRequest(
                    date_from=args.date_from or "",
                    date_to=args.date_to or "",
                    issuer=args.issuer or "",
                    page_size=1000,
                    page_token=token,
                ),
                timeout=60,
                metadata=_auth(args),
            )
            out.extend(convert.meeting_from_proto(m) for m in page.meetings)
            token = page.next_page_token
            if not token:
                return out
