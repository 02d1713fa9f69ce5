"""Cold classification speed: items/s on one core, and the ratio to a baseline run in the same process.

    python bench/classification.py [N]

Cold: a fresh taxonomy (empty word caches, no classification cache) classifies
N distinct wordings once. The baseline is the same classifier with the
literal-word prefilter switched off (every pattern tried one by one, as before
issue 8), measured on the same items in the same run.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "service"))

from proxyvote.app.files import load_taxonomy  # noqa: E402
from proxyvote.core.classify import classify  # noqa: E402
from proxyvote.core.classify_eval import proponent_kind  # noqa: E402
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


def run(taxonomy, batch) -> float:
    start = time.perf_counter()
    for item in batch:
        classify(item, taxonomy)
    return len(batch) / (time.perf_counter() - start)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    batch = items(n)
    t0 = time.perf_counter()
    taxonomy = load_taxonomy(ROOT / "policies")
    load = time.perf_counter() - t0
    cold = run(taxonomy, batch)
    baseline_tax = load_taxonomy(ROOT / "policies")
    # The baseline: no prefilter (every pattern is tried), same model.
    baseline_tax.prefilter._fragments = ()
    baseline_tax.prefilter.always = (1 << 4096) - 1
    baseline_tax.prefilter._cache.clear()
    base = run(baseline_tax, batch[: max(1, n // 5)])
    print(f"taxonomy + model load: {load * 1000:.0f} ms (model: {'yes' if taxonomy.model else 'no'})")
    print(f"cold classification: {cold:,.0f} items/s over {n:,} distinct items (one core)")
    print(f"baseline (no prefilter): {base:,.0f} items/s; ratio {cold / base:.1f}x")


if __name__ == "__main__":
    main()
