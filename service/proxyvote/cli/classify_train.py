"""Build-time training of the classifier's linear model (needs scikit-learn: the `dev` extras).

    python -m proxyvote.cli.classify_train --data ../shared/data/npx --out policies/taxonomy-model.json

Reads the N-PX development sets (JSON lines), fits one logistic regression per
N-PX category and one for the direction of a shareholder request (anti-ESG or
not), over the features of ``proxyvote.core.textmodel``, and writes the
coefficients as JSON. Deterministic: the same data gives the same bytes
(liblinear with a fixed seed, examples in file order, rounded coefficients).
The server never imports this module.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path

from proxyvote.core.classify_eval import category_code, fold_of, proponent_kind
from proxyvote.core.textmodel import dump_model, features, scale

DIRECTION_LABEL = "ANTI_ESG"
DATA_FILES = ("records-dev.jsonl", "proposals-dev.jsonl", "proposals-stance.jsonl")
# Regularisation: chosen once by cross-validation over issuer folds (docs/classification.md).
C_CATEGORY = 8.0
C_DIRECTION = 4.0
MIN_DF = 2


@dataclass(frozen=True)
class Example:
    text: str
    kind: str
    issuer: str
    categories: frozenset[str] | None  # None: no categories filed (the stance set)
    anti_esg: int | None  # 1 anti-ESG / opposed by ESG specialists, 0 not, None unknown
    source_file: str = ""
    record: dict | None = None


def read_examples(paths) -> list[Example]:
    out = []
    for path in paths:
        with open(path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    out.append(example(json.loads(line), Path(path).name))
    return out


def example(r: dict, source_file: str = "") -> Example:
    cats = r.get("categories")
    direction = None
    if r.get("stance") == "anti-ESG" or r.get("esg_direction") == "opposes":
        direction = 1
    elif r.get("stance") in ("pro-ESG", "governance") or r.get("esg_direction") == "supports":
        direction = 0
    return Example(
        text=r.get("vote_description") or r.get("title") or "",
        kind=proponent_kind(r.get("vote_source", "")) if "vote_source" in r else r.get("proponent_kind", ""),
        issuer=r.get("issuer_name", ""),
        categories=frozenset(category_code(c) for c in cats) if cats else None,
        anti_esg=direction,
        source_file=source_file,
        record=r,
    )


def train(examples: list[Example], meta: dict | None = None) -> str:
    """The model document (JSON text) fitted on ``examples``."""
    from sklearn.feature_extraction import DictVectorizer
    from sklearn.linear_model import LogisticRegression

    rows = []
    for ex in examples:
        counts = features(ex.text, ex.kind)
        k = scale(counts)
        rows.append({f: v * k for f, v in counts.items()})
    df: dict[str, int] = {}
    for counts in rows:
        for f in counts:
            df[f] = df.get(f, 0) + 1
    keep = {f for f, n in df.items() if n >= MIN_DF}
    vec = DictVectorizer(sort=True)
    vec.fit([{f: 1.0 for f in sorted(keep)}])
    names = vec.get_feature_names_out()
    categories = sorted({c for ex in examples if ex.categories for c in ex.categories})
    labels = [*categories, DIRECTION_LABEL]
    intercepts, columns = [], []
    for label in labels:
        if label == DIRECTION_LABEL:
            idx = [i for i, ex in enumerate(examples) if ex.anti_esg is not None]
            y = [examples[i].anti_esg for i in idx]
            c, weight = C_DIRECTION, "balanced"
        else:
            idx = [i for i, ex in enumerate(examples) if ex.categories is not None]
            y = [int(label in examples[i].categories) for i in idx]
            c, weight = C_CATEGORY, None
        X = vec.transform([rows[i] for i in idx]).tocsr()
        X.indices = X.indices.astype("int32")
        X.indptr = X.indptr.astype("int32")
        if len(set(y)) < 2:
            intercepts.append(-10.0)
            columns.append([0.0] * len(names))
            continue
        clf = LogisticRegression(C=c, solver="liblinear", class_weight=weight, random_state=0, max_iter=1000)
        clf.fit(X, y)
        intercepts.append(float(clf.intercept_[0]))
        columns.append([float(w) for w in clf.coef_[0]])
    weights = {name: [col[j] for col in columns] for j, name in enumerate(names)}
    info = {
        "examples": len(examples),
        "features": len(names),
        "c_category": C_CATEGORY,
        "c_direction": C_DIRECTION,
        "min_df": MIN_DF,
    }
    info.update(meta or {})
    return dump_model(labels, intercepts, weights, info)


def held_out_models(examples: list[Example], folds: int) -> dict[int, str]:
    """One model per fold, each fitted on the other folds' issuers only."""
    return {
        f: train(
            [ex for ex in examples if fold_of(ex.issuer, folds) != f], {"held_out_fold": f, "folds": folds}
        )
        for f in range(folds)
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="classify_train", description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="folder with the N-PX development sets")
    p.add_argument("--out", required=True, help="model file to write (JSON)")
    args = p.parse_args(argv)
    paths = [Path(args.data) / name for name in DATA_FILES]
    missing = [str(x) for x in paths if not x.exists()]
    if missing:
        print(f"missing training data: {', '.join(missing)}", file=sys.stderr)
        return 2
    text = train(read_examples(paths), {"data": list(DATA_FILES)})
    Path(args.out).write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({len(text) // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
