"""Cold classification speed: items/s on one core, and the ratio to a baseline run in the same process.

    python bench/classification.py [N [REPETITIONS]]

Cold: a freshly loaded taxonomy (empty word caches; classify has no result
cache) classifies N distinct wordings once; warm: the same taxonomy again on
the same wordings (its word caches full). The reference is
``core.classify_reference.reference_classify``, the classifier as it was
before the speed work (every pattern tried, the model scored from its
weights; equal results, tests/test_classify_fast.py), on the first tenth of
the items, in the same run, interleaved. Items/s are counted by this
process's CPU time (one core, whatever else the machine runs) and by the wall
clock.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "service"))

from proxyvote.app.files import load_taxonomy  # noqa: E402
from proxyvote.core.classify import classify  # noqa: E402
from proxyvote.core.classify_eval import proponent_kind  # noqa: E402
from proxyvote.core.classify_reference import reference_classify  # noqa: E402
from proxyvote.core.model import BallotItem  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "npx"


def items(n: int) -> list[BallotItem]:
    """Distinct wordings: the development sets' descriptions, varied by a number so none repeats."""
    base = []
    for name in ("records-dev.jsonl", "proposals-dev.jsonl", "proposals-stance.jsonl"):
        path = DATA / name
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                r = json.loads(line)
                base.append((r["vote_description"], proponent_kind(r.get("vote_source", ""))))
    if not base:
        base = [("Ratify the appointment of the independent auditor", "MANAGEMENT")]
    out = []
    for i in range(n):
        title, kind = base[i % len(base)]
        out.append(BallotItem("", f"{title} ({i // len(base)})" if i >= len(base) else title, kind))
    return out


def run(classify_one, taxonomy, batch) -> tuple[float, float]:
    """(items/s by this process's CPU time, items/s by the wall clock)."""
    wall, cpu = time.perf_counter(), time.process_time()
    for item in batch:
        classify_one(item, taxonomy)
    return len(batch) / (time.process_time() - cpu), len(batch) / (time.perf_counter() - wall)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    repetitions = int(sys.argv[2]) if len(sys.argv) > 2 else 5
    batch = items(n)
    t0 = time.perf_counter()
    taxonomy = load_taxonomy(ROOT / "policies")
    load = time.perf_counter() - t0
    reference_batch = batch[: max(1, n // 10)]
    cold, warm, reference = [], [], []
    for _ in range(repetitions):  # interleaved, so a busy moment weighs on every figure
        fresh = load_taxonomy(ROOT / "policies")  # empty word caches
        cold.append(run(classify, fresh, batch))
        warm.append(run(classify, fresh, batch))
        reference.append(run(reference_classify, load_taxonomy(ROOT / "policies"), reference_batch))

    def median(values, k):
        return statistics.median(v[k] for v in values)

    print(f"taxonomy + model load: {load * 1000:.0f} ms (model: {'yes' if taxonomy.model else 'no'})")
    print(f"{n:,} distinct items, {repetitions} repetitions, medians; items/s by CPU time (by wall clock)")
    for name, values in (("cold", cold), ("warm word caches", warm), ("reference", reference)):
        print(f"  {name:<17} {median(values, 0):>8,.0f} ({median(values, 1):,.0f})")
    ratios = sorted(c[0] / r[0] for c, r in zip(cold, reference, strict=True))
    print(
        f"cold / reference: {statistics.median(ratios):.1f}x (from {ratios[0]:.1f}x to {ratios[-1]:.1f}x); "
        f"target (issue 8): cold >= 20,000 items/s on one core"
    )


if __name__ == "__main__":
    main()
