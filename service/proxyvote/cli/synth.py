"""``proxyvote synth``: a synthetic universe of past meetings, for benchmarks and tests only."""

from __future__ import annotations

import sys


def add_parser(subparsers) -> None:
    sp = subparsers.add_parser(
        "synth",
        help="write made-up past meetings (JSON lines) for benchmarks and tests; never real data",
    )
    sp.add_argument("--meetings", type=int, required=True, help="how many meetings (about 11.5 items each)")
    sp.add_argument("--seed", type=int, default=0, help="the same seed gives the same file")
    sp.add_argument("--output", "-o", required=True, help="the JSON-lines file to write")
    sp.set_defaults(func=cmd_synth)


def cmd_synth(args) -> int:
    from proxyvote.app.synth import write_jsonl
    from proxyvote.cli.main import CliError

    if args.meetings < 1:
        raise CliError("--meetings must be at least 1")
    try:
        with open(args.output, "w", encoding="utf-8") as stream:
            items = write_jsonl(args.meetings, args.seed, stream)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc.strerror or exc}") from exc
    print(f"wrote {args.meetings} synthetic meetings, {items} items, to {args.output}", file=sys.stderr)
    return 0
