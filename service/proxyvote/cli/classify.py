"""`proxyvote classify`: classify ballot-item wordings, or evaluate against N-PX records.

    proxyvote classify ITEMS.jsonl           # {"title", "text"?, "proponent_kind"?} per line
    proxyvote classify --eval RECORDS.jsonl  # N-PX shape: vote_description, vote_source, categories
    proxyvote classify --eval R.jsonl --folds 5 --train-data DIR --stance STANCE.jsonl

With ``--folds`` every record is scored by a model fitted without its
issuer's records (5 folds by issuer; needs scikit-learn, the dev extras), so
the figures are held out. ``--stance`` adds how the human-rights policy votes
on E&S proposals labelled ``supports``/``opposes`` (also held out).
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections import Counter
from pathlib import Path

from proxyvote.core.classify import classify
from proxyvote.core.classify_eval import Evaluation, category_code, fold_of, format_evaluation, proponent_kind
from proxyvote.core.model import BallotItem

STANCE_POLICY = "human-rights-esg"


def add_parser(subparsers) -> None:
    sp = subparsers.add_parser(
        "classify", help="classify item wordings (JSON lines), or --eval on N-PX records"
    )
    sp.add_argument("files", nargs="+", metavar="FILE", help="JSON lines")
    sp.add_argument("--eval", action="store_true", help="FILE holds N-PX records: print accuracy figures")
    sp.add_argument(
        "--folds",
        type=int,
        default=0,
        help="with --eval: score each record by a model fitted on the other issuers' folds",
    )
    sp.add_argument(
        "--train-data", help="with --folds: folder of the development sets the models are fitted on"
    )
    sp.add_argument(
        "--stance", help="with --eval: proposals-stance JSON lines; prints the human-rights policy's votes"
    )
    sp.set_defaults(func=cmd_classify)


def _read(path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _taxonomy(args, model_text=None, with_model=True):
    from proxyvote.app.files import load_taxonomy

    return load_taxonomy(args.settings.policy_dir, model_text, with_model)


def _item(title: str, kind: str, text: str = "", name: str = "") -> BallotItem:
    return BallotItem(item_id="", title=title, proponent_kind=kind, text=text, proponent_name=name)


def output_row(c) -> dict:
    return {
        "categories": list(c.npx_categories),
        "confidence": {cat: p for cat, p in c.confidences},
        "topics": list(c.topics),
        "request_kind": c.request_kind,
        "flags": list(c.flags),
        "direction": c.direction,
        "needs_review": c.needs_review,
        "review_reason": c.review_reason,
    }


def cmd_classify(args) -> int:
    if not args.eval:
        taxonomy = _taxonomy(args)
        for path in args.files:
            for r in _read(path):
                kind = (r.get("proponent_kind") or "MANAGEMENT").upper()
                c = classify(
                    _item(r.get("title", ""), kind, r.get("text", ""), r.get("proponent_name", "")), taxonomy
                )
                print(json.dumps(output_row(c), ensure_ascii=False))
        return 0
    taxonomies = _fold_taxonomies(args)
    k = args.folds

    def taxonomy_for(r):
        return taxonomies[fold_of(r.get("issuer_name", ""), k)] if k else taxonomies[0]

    for path in args.files:
        ev = Evaluation()
        for r in _read(path):
            kind = proponent_kind(r.get("vote_source", ""))
            c = classify(_item(r["vote_description"], kind), taxonomy_for(r))
            filed = {category_code(x) for x in r.get("categories") or ()}
            ev.add(r.get("vote_source", ""), filed, c.npx_categories, c.needs_review)
        how = f"held out: {k} folds by issuer" if k else "bundled model (in-sample if FILE was trained on)"
        print(format_evaluation(ev, f"{Path(path).name} ({how})"))
        print()
    if args.stance:
        print(stance_report(args, _read(args.stance), taxonomy_for))
    return 0


def _fold_taxonomies(args) -> dict[int, object]:
    if not args.folds:
        return {0: _taxonomy(args)}
    if not args.train_data:
        raise SystemExit(
            "--folds needs --train-data DIR (the development sets the fold models are fitted on)"
        )
    from proxyvote.cli import classify_train

    examples = classify_train.read_examples(
        [Path(args.train_data) / name for name in classify_train.DATA_FILES]
    )
    models = classify_train.held_out_models(examples, args.folds)
    return {f: _taxonomy(args, model_text=text) for f, text in models.items()}


def stance_report(args, records, taxonomy_for) -> str:
    """How the human-rights policy votes on proposals ESG specialists backed or opposed."""
    import datetime as dt

    from proxyvote.app.files import load_policy_library
    from proxyvote.core.engine import decide_meeting
    from proxyvote.core.evidence import evidence_as_of
    from proxyvote.core.model import Issuer, Meeting

    directory = args.settings.policy_dir
    tally: dict[str, Counter] = {"supports": Counter(), "opposes": Counter()}
    rules: dict[str, Counter] = {"supports": Counter(), "opposes": Counter()}
    libraries = {}
    for r in records:
        taxonomy = taxonomy_for(r)
        key = id(taxonomy)
        if key not in libraries:
            libraries[key] = load_policy_library(directory, taxonomy).get(STANCE_POLICY, "policy", "")
        policy = libraries[key]
        item = dataclasses.replace(
            _item(r["vote_description"], "SHAREHOLDER"), item_id="1", board_recommendation="AGAINST"
        )
        meeting = Meeting(
            "m", Issuer(r.get("issuer_name", "")), dt.date.fromisoformat(r["meeting_date"]), (item,)
        )
        c = classify(item, taxonomy)
        view = evidence_as_of((), meeting.issuer, meeting.meeting_date)
        rec = decide_meeting(meeting, (c,), policy, view).recommendations[0]
        label = r["esg_direction"]
        tally[label][rec.vote] += 1
        rules[label][(rec.vote, rec.rule_id)] += 1
    lines = [
        f"## {Path(args.stance).name}: {STANCE_POLICY} votes "
        f"({'held out' if args.folds else 'bundled model'})"
    ]
    for label, want in (("supports", "FOR"), ("opposes", "AGAINST")):
        t = tally[label]
        n = sum(t.values()) or 1
        lines.append(
            f"{label:<9} {n:>4}: FOR {100 * t['FOR'] / n:5.1f}%  AGAINST {100 * t['AGAINST'] / n:5.1f}%  "
            f"REFER {100 * t['REFER'] / n:5.1f}%  "
            f"other {100 * (n - t['FOR'] - t['AGAINST'] - t['REFER']) / n:5.1f}%"
            f"  (target: {want} >= 90%)"
        )
        for (vote, rule), count in rules[label].most_common(6):
            lines.append(f"    {count:>4}  {vote:<8} {rule}")
    total = sum(sum(t.values()) for t in tally.values()) or 1
    refer = sum(t["REFER"] for t in tally.values())
    lines.append(f"referred overall: {100 * refer / total:.1f}% (target <= 10%)")
    return "\n".join(lines)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0)
