"""``proxyvote synth``: synthetic data for benchmarks and tests only.

``proxyvote synth --meetings N -o FILE.jsonl``: a universe of past meetings.
``proxyvote synth accounts --accounts N --security ISIN --policy A ... -o FILE.csv``: a
voting-choice programme's accounts (docs/voting-choice.md).
"""

from __future__ import annotations

import datetime as dt
import sys


def add_parser(subparsers) -> None:
    sp = subparsers.add_parser(
        "synth",
        help="write made-up past meetings (JSON lines) or programme accounts, for benchmarks and tests; "
        "never real data",
    )
    sp.add_argument("--meetings", type=int, help="how many meetings (about 11.5 items each)")
    sp.add_argument("--seed", type=int, default=0, help="the same seed gives the same file")
    sp.add_argument("--output", "-o", help="the JSON-lines file to write")
    sp.set_defaults(func=cmd_synth)
    ssub = sp.add_subparsers(dest="synth_command")
    ac = ssub.add_parser(
        "accounts",
        help="a synthetic programme's accounts (CSV or Parquet), ids SYN-..., every row marked SYNTHETIC",
    )
    ac.add_argument("--accounts", type=int, required=True, help="how many accounts")
    ac.add_argument("--security", required=True, help="the ISIN or CUSIP they hold")
    ac.add_argument("--policy", action="append", required=True, help="a policy they choose among (repeat)")
    ac.add_argument("--as-of", default="2020-01-02", help="choices and holdings from this date (2020-01-02)")
    ac.add_argument("--seed", type=int, default=0, help="the same seed gives the same file")
    ac.add_argument("--output", "-o", required=True, help="FILE.csv or FILE.parquet")
    ac.set_defaults(func=cmd_synth_accounts)


def cmd_synth(args) -> int:
    from proxyvote.app.synth import write_jsonl
    from proxyvote.cli.main import CliError

    if args.meetings is None or not args.output:
        raise CliError("synth needs --meetings N and --output FILE (or: synth accounts ...)")
    if args.meetings < 1:
        raise CliError("--meetings must be at least 1")
    try:
        with open(args.output, "w", encoding="utf-8") as stream:
            items = write_jsonl(args.meetings, args.seed, stream)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    print(f"wrote {args.meetings} synthetic meetings, {items} items, to {args.output}", file=sys.stderr)
    return 0


def cmd_synth_accounts(args) -> int:
    from proxyvote.app.synth import synth_accounts, write_accounts
    from proxyvote.cli.main import CliError
    from proxyvote.core.vote_plan import security_problem

    if args.accounts < 1:
        raise CliError("--accounts must be at least 1")
    security = args.security.strip().upper()
    why = security_problem(security)
    if why:
        raise CliError(f"--security {security!r}: {why}")
    try:
        as_of = dt.date.fromisoformat(args.as_of)
    except ValueError as exc:
        raise CliError(f"--as-of {args.as_of!r} is not a YYYY-MM-DD date") from exc
    if not args.output.endswith((".csv", ".parquet")):
        raise CliError("--output must name a .csv or .parquet file")
    rows = synth_accounts(args.accounts, security, tuple(args.policy), args.seed, as_of)
    try:
        count = write_accounts(rows, args.output)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    print(f"wrote {args.accounts} synthetic accounts ({count} rows) to {args.output}", file=sys.stderr)
    return 0
