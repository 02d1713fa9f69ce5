"""The backtest at scale: a million synthetic items under two policies, on every core.

    .venv/bin/python bench/backtest.py                 # 1,000,000 items (about 87,000 meetings)
    .venv/bin/python bench/backtest.py --meetings 9000 # smaller
    .venv/bin/python bench/backtest.py --scheduler tcp://HOST:PORT

Writes a synthetic universe (`proxyvote synth`: made up, for benchmarks only)
to a temporary JSON-lines file, then times the backtest from that file to the
merged figures: workers read and convert their own byte ranges, classify,
decide each item under both policies and tally; the caller merges. Starting
the local cluster is timed apart (it is paid once per process). Prints the
figure: seconds and items/s. Target (issue 9): at most 20 s on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "service"))

from proxyvote.app import backtest as bt  # noqa: E402
from proxyvote.app.synth import write_jsonl  # noqa: E402

POLICIES = ("human-rights-esg", "board-aligned")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--meetings", type=int, default=87_000, help="synthetic meetings (87,000 ~ 1M items)")
    p.add_argument("--seed", type=int, default=9)
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--parts", type=int, default=0, help="partitions (default: 8 per worker)")
    p.add_argument("--scheduler", help="a Dask scheduler, tcp://HOST:PORT (the file must be visible to it)")
    p.add_argument("--file", help="an existing synthetic JSON-lines file instead of a new one")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = p.parse_args()

    spec = bt.spec_for_files(ROOT / "policies", POLICIES)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.file
        if not path:
            path = str(Path(tmp) / "synth.jsonl")
            start = time.perf_counter()
            with open(path, "w", encoding="utf-8") as stream:
                items = write_jsonl(args.meetings, args.seed, stream)
            print(
                f"synthetic universe: {args.meetings:,} meetings, {items:,} items "
                f"({time.perf_counter() - start:.1f} s to write, not timed below)"
            )
        parts = bt.file_parts(path, args.parts or 8 * args.workers)

        from dask.distributed import Client, LocalCluster

        start = time.perf_counter()
        if args.scheduler:
            client = Client(args.scheduler)
            cluster = None
        else:
            cluster = LocalCluster(
                n_workers=args.workers, threads_per_worker=1, processes=True, dashboard_address=None
            )
            client = Client(cluster)
        started = time.perf_counter() - start
        try:
            cpu_before = client.run(time.process_time)
            load_before = os.getloadavg()[0]
            start = time.perf_counter()
            result = bt.run_dask(spec, parts, client=client)
            seconds = time.perf_counter() - start
            cpu = {w: t - cpu_before.get(w, 0.0) for w, t in client.run(time.process_time).items()}
            load_after = os.getloadavg()[0]
            start = time.perf_counter()
            loaded = bt.load_on_workers(client, parts)
            load_seconds = time.perf_counter() - start
            start = time.perf_counter()
            again = bt.run_dask(spec, parts, client=client, loaded=loaded)
            loaded_seconds = time.perf_counter() - start
            del loaded
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    figures = result.figures()
    items = figures["items"]
    where = args.scheduler or f"LocalCluster, {args.workers} processes"
    print(
        f"backtest: {items:,} items x {len(POLICIES)} policies, {figures['meetings']:,} meetings, "
        f"{len(parts)} partitions on {where} (cores: {os.cpu_count()})"
    )
    print(
        f"  {seconds:.2f} s, {items / seconds:,.0f} items/s "
        f"({2 * items / seconds:,.0f} item-decisions/s); cluster start {started:.1f} s, not included"
    )
    print(f"  flips: {len(figures['flips']):,}")
    busy = ", ".join(f"{t:.1f} s" for _, t in sorted(cpu.items()))
    print(
        f"  CPU time per worker: {busy} (wall {seconds:.1f} s); load average {load_before:.1f} before, "
        f"{load_after:.1f} after (other processes share the cores when it exceeds the workers)"
    )
    print(
        f"meetings loaded on the workers once ({load_seconds:.2f} s), then the backtest on them: "
        f"{loaded_seconds:.2f} s, {items / loaded_seconds:,.0f} items/s; same figures: "
        f"{again.figures() == figures}"
    )
    if args.json:
        figures.pop("flips")
        print(json.dumps(figures, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
