"""``proxyvote backtest``: how policies would have voted on past meetings (docs/backtests.md).

Past meetings come from the store (imported with ``proxyvote meetings import``;
the run is stored), from files (``--meetings``: meeting JSON files, or JSON
lines such as ``proxyvote synth`` writes; not stored), or from a server
(``--server``: ``BacktestService.RunBacktest``, stored there).
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

from proxyvote.errors import FieldViolation, InvalidArgument

FORMATS = ("table", "json")
MAX_TABLE_FLIPS = 30


def add_parser(subparsers) -> None:
    sp = subparsers.add_parser(
        "backtest",
        help="how policies would have voted on past meetings; agreement with outcomes, advisers, funds",
        description=__doc__,
    )
    sp.add_argument("--policy", action="append", required=True, help="id (version in force) or id@version")
    sp.add_argument("--from", dest="date_from", help="first meeting date, YYYY-MM-DD")
    sp.add_argument("--to", dest="date_to", help="last meeting date, YYYY-MM-DD")
    sp.add_argument("--issuer", help="ticker, CUSIP, ISIN, FIGI or name")
    sp.add_argument("--lead-days", type=int, default=7, help="decide as of the meeting date minus this (7)")
    sp.add_argument(
        "--meetings",
        action="append",
        help="meeting JSON or JSON-lines files instead of the store (repeatable; the run is not stored)",
    )
    sp.add_argument("--format", choices=FORMATS, default="table")
    sp.add_argument("--output", help="one row per item and policy: FILE.parquet or FILE.csv")
    sp.add_argument("--report", help="an HTML report with charts: FILE.html")
    sp.add_argument("--scheduler", help="a Dask scheduler, tcp://HOST:PORT (default: local processes)")
    sp.add_argument("--workers", type=int, help="local worker processes (0: in this process; default: cores)")
    sp.add_argument("--server", help="run on the service at HOST:PORT")
    sp.add_argument("--api-key", help="with --server: the API key (default: PROXYVOTE_API_KEY)")
    sp.add_argument("--database-url", help="default: DATABASE_URL or SQLite under ./var/")
    sp.set_defaults(func=cmd_backtest)


def _date(text: str | None, flag: str) -> dt.date | None:
    if not text:
        return None
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 else _bad(flag, text)
    except ValueError:
        return _bad(flag, text)


def _bad(flag: str, text: str):
    raise InvalidArgument([FieldViolation(flag, f"{text!r} is not a YYYY-MM-DD date")])


class _Progress:
    """A Rich progress bar on a terminal; nothing otherwise."""

    def __init__(self):
        from rich.console import Console

        self.console = Console(stderr=True)
        self.bar = None
        self.task = None

    def __enter__(self):
        if self.console.is_terminal:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

            self.bar = Progress(
                "[progress.description]{task.description}",
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self.bar.__enter__()
            self.task = self.bar.add_task("meetings", total=None)
        return self

    def __call__(self, done: int, total: int) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=done, total=total)

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.__exit__(*exc)


def cmd_backtest(args) -> int:
    from proxyvote.app.backtest import Selection
    from proxyvote.cli.main import CliError

    selection = Selection(_date(args.date_from, "--from"), _date(args.date_to, "--to"), args.issuer or "")
    if args.output and not args.output.endswith((".parquet", ".csv")):
        raise CliError("--output must name a .parquet or .csv file")
    if args.server and args.output:
        raise CliError("--output needs the items, which a run in this process gives: drop --server")
    with _Progress() as progress:
        if args.server:
            inputs, figures, rows = _on_server(args, selection, progress)
        elif args.meetings:
            inputs, figures, rows = _on_files(args, selection, progress)
        else:
            inputs, figures, rows = _on_store(args, selection, progress)
    if args.output:
        write_rows(rows, args.output)
        print(f"wrote {len(rows)} rows to {args.output}", file=sys.stderr)
    if args.report:
        _write_report(args, inputs, figures)
        print(f"wrote the report to {args.report}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps({"inputs": inputs} | figures, indent=2, sort_keys=False, ensure_ascii=False))
    else:
        print(table(figures))
    return 0


def _on_store(args, selection, progress):
    from proxyvote.app.backtest import Backtests
    from proxyvote.app.wiring import build_app
    from proxyvote.store import SHARED

    app = build_app(args.settings)
    try:
        if getattr(app.store, "meetings", None) is None:
            from proxyvote.cli.main import CliError

            raise CliError("this build has no store of past meetings: use --meetings FILE")
        stored, rows = Backtests.from_app(app).run(
            SHARED,
            args.policy,
            selection,
            args.lead_days,
            progress,
            args.scheduler,
            args.workers,
            with_rows=bool(args.output),
        )
    finally:
        app.close()
    print(f"stored as backtest {stored.backtest_id}", file=sys.stderr)
    return stored.inputs, stored.figures, rows


def _on_files(args, selection, progress):
    from proxyvote.app import backtest as bt
    from proxyvote.app.files import evidence_files, load_evidence
    from proxyvote.app.synth import PROVENANCE
    from proxyvote.cli.main import _read
    from proxyvote.wire import convert

    settings = args.settings
    spec = bt.spec_for_files(
        settings.policy_dir,
        args.policy,
        load_evidence(evidence_files(settings.evidence_dir)),
        args.lead_days,
        with_rows=bool(args.output),
    )
    meetings, parts = [], []
    workers = args.workers if args.workers is not None else 0
    for path in args.meetings:
        text = _read(path)
        first = text.lstrip()[:1]
        if path.endswith(".jsonl") or (first == "{" and "\n{" in text.strip()):
            synthetic = text.startswith('{"meeting_id"') and PROVENANCE in text.split("\n", 1)[0]
            n = max(1, (args.workers or 2) * 8)
            for part in bt.file_parts(path, n, synthetic):
                parts.append(
                    bt.FilePart(
                        part.path,
                        part.start,
                        part.end,
                        part.size,
                        part.synthetic,
                        selection.date_from.isoformat() if selection.date_from else "",
                        selection.date_to.isoformat() if selection.date_to else "",
                        selection.issuer,
                    )
                )
            if args.workers is None:
                workers = None  # a large file: processes, one per core
        else:
            meeting = convert.meeting_from_json(text, f"meeting ({path})")
            if selection.holds(meeting):
                meetings.append(meeting)
    parts = bt.meeting_parts(meetings) + parts
    result = bt.execute(spec, parts, args.scheduler, workers, progress)
    figures = result.figures()
    inputs = spec.inputs() | {
        "selection": selection.as_dict() | {"source": "files", "files": list(args.meetings)}
    }
    return inputs, figures, result.rows


def _on_server(args, selection, progress):
    from proxyvote.cli.main import _auth, _channel
    from proxyvote.v1 import backtest_service_pb2 as bs
    from proxyvote.v1 import backtest_service_pb2_grpc as bs_grpc

    request = bs.RunBacktestRequest(
        policies=args.policy,
        date_from=args.date_from or "",
        date_to=args.date_to or "",
        issuer=args.issuer or "",
        lead_days=args.lead_days,
    )
    summary = None
    with _channel(args, args.server) as channel:
        for message in bs_grpc.BacktestServiceStub(channel).RunBacktest(
            request, timeout=3600, metadata=_auth(args)
        ):
            if message.HasField("progress"):
                progress(message.progress.meetings_done, message.progress.meetings_total)
            elif message.HasField("summary"):
                summary = message.summary
    if summary is None:
        from proxyvote.cli.main import CliError

        raise CliError("the server ended the backtest without a summary")
    print(f"stored as backtest {summary.backtest_id}", file=sys.stderr)
    return json.loads(summary.inputs_json), json.loads(summary.figures_json), []


def write_rows(rows, path: str) -> None:
    import dataclasses

    import pandas as pd

    from proxyvote.core.backtest import ItemRow

    columns = [f.name for f in dataclasses.fields(ItemRow)]
    frame = pd.DataFrame([dataclasses.astuple(r) for r in rows], columns=columns)
    if path.endswith(".csv"):
        frame.to_csv(path, index=False)
    else:
        frame.to_parquet(path, index=False)


def _write_report(args, inputs, figures) -> None:
    from proxyvote.memo.backtest_report import TEMPLATE_NAME, render_report

    template = (Path(args.settings.template_dir) / TEMPLATE_NAME).read_text(encoding="utf-8")
    Path(args.report).write_text(render_report(template, inputs, figures), encoding="utf-8")


def _pct(rate) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"


def table(figures: dict) -> str:
    lines = [f"{figures['meetings']} meetings, {figures['items']} items"]
    rows = [
        ("policy", "versions", "FOR", "AGAINST", "other", "REFER", "against mgmt", "SP support", "outcome")
    ]
    for p in figures["policies"]:
        votes = p["votes"]
        other = sum(n for v, n in votes.items() if v not in ("FOR", "AGAINST", "REFER"))
        outcome = p["agreement_with_outcome"]
        rows.append(
            (
                p["policy"],
                ",".join(p["versions_used"]),
                str(votes.get("FOR", 0)),
                str(votes.get("AGAINST", 0)),
                str(other),
                f"{votes.get('REFER', 0)} ({_pct(p['refer']['rate'])})",
                f"{p['against_management']['count']} ({_pct(p['against_management']['rate'])})",
                _pct(p["shareholder_proposals"]["all"]["support_rate"]),
                f"{outcome['agree']}/{outcome['total']} ({_pct(outcome['agreement_rate'])})",
            )
        )
    lines += _columns(rows)
    agreement = [("policy", "with", "agree", "disagree", "total", "referred", "rate")]
    for p in figures["policies"]:
        for kind in ("advisers", "investors"):
            for name, a in p[f"agreement_with_{kind}"].items():
                agreement.append(
                    (
                        p["policy"],
                        f"{kind[:-1]} {name}",
                        str(a["agree"]),
                        str(a["disagree"]),
                        str(a["total"]),
                        str(a["referred"]),
                        _pct(a["agreement_rate"]),
                    )
                )
    if len(agreement) > 1:
        lines += [""] + _columns(agreement)
    for d in figures["differences"]:
        changes = ", ".join(f"{k} {n}" for k, n in d["by_votes"].items()) or "none"
        lines += [
            "",
            f"{d['policies'][0]} vs {d['policies'][1]}: {d['items_differing']} items differ ({changes})",
        ]
    flips = figures["flips"]
    if flips:
        labels = [p["policy"] for p in figures["policies"]]
        rows = [("date", "meeting", "item", "title", *labels)]
        for f in flips[:MAX_TABLE_FLIPS]:
            rows.append(
                (
                    f["meeting_date"],
                    f["meeting_id"],
                    f["item_id"],
                    f["title"][:60],
                    *(f["votes"][x] for x in labels),
                )
            )
        lines += ["", "what-if: items whose vote differs"] + _columns(rows)
        if len(flips) > MAX_TABLE_FLIPS:
            lines.append(f"... and {len(flips) - MAX_TABLE_FLIPS} more (--format json lists every one)")
    return "\n".join(lines)


def _columns(rows) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
