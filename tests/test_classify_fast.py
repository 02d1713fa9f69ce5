"""The fast classifier gives exactly what the plain reference gives, item by item.

``core.classify.classify`` (word-anchored prefilter, cached per-word model
sums) against ``core.classify_reference.reference_classify`` (every pattern
tried in order, the model scored from its weights), compared by ``repr`` so a
float that differs in its last bit, or a 0.0 that became -0.0, fails.

The wordings: every record of the N-PX development sets (``../shared/data/npx``;
when they are absent, as in a clone without shared/, the rest still runs),
the demo meetings, synthetic meetings (``app/synth.py``), each wording under
both proponent kinds, as a supporting text under a bare title, with known
proponent names, and with the characters that match ASCII letters only
case-insensitively (dotless i, long s, Kelvin sign), which a word prefilter
built on ``str.lower`` would miss. The fast path starts from a taxonomy just
loaded: empty word caches.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from proxyvote.app.files import load_taxonomy
from proxyvote.app.synth import synth_meetings
from proxyvote.core.classify import classify
from proxyvote.core.classify_eval import proponent_kind
from proxyvote.core.classify_reference import reference_classify
from proxyvote.core.model import BallotItem
from proxyvote.wire import convert

ROOT = Path(__file__).resolve().parents[1]
NPX = ROOT.parent / "shared" / "data" / "npx"
NPX_SETS = ("records-dev.jsonl", "proposals-dev.jsonl", "proposals-stance.jsonl")


def npx_wordings() -> list[tuple[str, str]]:
    out = []
    for name in NPX_SETS:
        path = NPX / name
        if path.exists():
            for line in path.read_text(encoding="utf-8").splitlines():
                record = json.loads(line)
                out.append((record["vote_description"], proponent_kind(record.get("vote_source", ""))))
    return out


def demo_items() -> list[BallotItem]:
    items = []
    for path in sorted((ROOT / "examples" / "meetings").glob("*.json")):
        items.extend(convert.meeting_from_json(path.read_text(encoding="utf-8")).items)
    for meeting in synth_meetings(40, seed=3):
        for raw in meeting["items"]:
            kind = raw.get("proponent", {}).get("kind", "MANAGEMENT")
            items.append(BallotItem("", raw["title"], kind if kind == "SHAREHOLDER" else "MANAGEMENT"))
    return items


def all_items(taxonomy) -> list[BallotItem]:
    base = [BallotItem("", t, k) for t, k in npx_wordings()] + demo_items()
    names = [n for rule in taxonomy.flags for n in rule.proponent_names][:8] + ["A Fund That Is Not Known"]
    items = []
    for i, b in enumerate(base):
        items.append(b)
        other = "MANAGEMENT" if b.proponent_kind == "SHAREHOLDER" else "SHAREHOLDER"
        items.append(BallotItem("", b.title, other, text=b.text, proponent_name=b.proponent_name))
        if i % 4 == 0:
            items.append(BallotItem("", "Shareholder Proposal", "SHAREHOLDER", text=b.title))
        if i % 7 == 0:
            items.append(BallotItem("", b.title, "SHAREHOLDER", proponent_name=names[i % len(names)]))
        if i % 5 == 0:
            odd = b.title.replace("i", "\u0131").replace("s", "\u017f").replace("k", "\u212a")
            items.append(BallotItem("", odd, b.proponent_kind))
            items.append(BallotItem("", b.title.upper() + " \u2014 caf\u00e9", b.proponent_kind))
    return items


@pytest.fixture(scope="module")
def cold_taxonomy():
    return load_taxonomy(ROOT / "policies")


def test_fast_classifier_equals_the_reference_on_every_wording(cold_taxonomy):
    reference_taxonomy = load_taxonomy(ROOT / "policies")
    items = all_items(reference_taxonomy)
    assert len(items) > 500
    differ = []
    for item in items:
        fast = classify(item, cold_taxonomy)
        plain = reference_classify(item, reference_taxonomy)
        if repr(fast) != repr(plain):
            differ.append((item.title[:80], item.proponent_kind, fast, plain))
    assert not differ, f"{len(differ)} of {len(items)} differ; first: {differ[0]}"


def test_the_npx_sets_are_compared_when_they_are_there():
    if not all((NPX / name).exists() for name in NPX_SETS):
        pytest.skip("no N-PX development sets beside the repository")
    assert len(npx_wordings()) > 2_000
