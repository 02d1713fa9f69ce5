"""A linear text model scored in plain Python: features, loading and scoring.

The same ``features`` function is used when the model is trained (at build
time, by ``proxyvote.cli.classify_train`` with scikit-learn) and when it is
scored here, so training and scoring cannot drift apart. Nothing here imports
numpy or scikit-learn: the server loads a JSON file of coefficients (read by
the caller and passed in as text) and scores with sparse dot products.

Features of one wording:
- ``w:<word>``: every word (lower-case letters and digits);
- ``b:<word>_<word>``: every pair of adjacent words;
- ``c:<ngram>``: character 3- to 5-grams inside each word padded with spaces,
  which makes the model robust to inflections and typos ("proposaI", "Al");
- ``p:<kind>``: the proponent kind (MANAGEMENT or SHAREHOLDER).
Counts are summed and scaled by 1/sqrt(total count), so that long and short
wordings weigh alike. Scores are logistic: one independent output per label
(several categories can hold at once).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field

WORD = re.compile(r"[a-z0-9]+")
CHAR_NGRAMS = (3, 4, 5)
# Only the head of a long text is scored: the resolved clause comes first.
MAX_MODEL_CHARS = 2_000
WORD_CACHE_SIZE = 200_000


def words(text: str) -> list[str]:
    return WORD.findall(text[:MAX_MODEL_CHARS].lower())


def word_features(word: str) -> list[str]:
    """The features one word contributes on its own (itself and its character n-grams)."""
    padded = f" {word} "
    out = [f"w:{word}"]
    for n in CHAR_NGRAMS:
        out.extend(f"c:{padded[i : i + n]}" for i in range(len(padded) - n + 1))
    return out


def features(text: str, proponent_kind: str = "") -> dict[str, int]:
    """Feature counts of one wording (used for training; scoring uses the same pieces)."""
    counts: dict[str, int] = {}
    toks = words(text)
    for word in toks:
        for f in word_features(word):
            counts[f] = counts.get(f, 0) + 1
    for a, b in zip(toks, toks[1:], strict=False):
        f = f"b:{a}_{b}"
        counts[f] = counts.get(f, 0) + 1
    if proponent_kind:
        counts[f"p:{proponent_kind}"] = 1
    return counts


def scale(counts: dict[str, int]) -> float:
    total = sum(counts.values())
    return 1.0 / math.sqrt(total) if total else 0.0


@dataclass
class LinearModel:
    """Coefficients per feature for each label, plus an intercept per label."""

    labels: tuple[str, ...]
    intercepts: tuple[float, ...]
    weights: dict[str, tuple[float, ...]]
    content_hash: str
    meta: dict = field(default_factory=dict)
    # word -> (summed weights of its own features, their count); filled lazily.
    _word_cache: dict = field(default_factory=dict, repr=False)
    # (word, word) -> the weights of feature ``b:<word>_<word>`` (words have no "_").
    _bigrams: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        for feature, vec in self.weights.items():
            if feature.startswith("b:"):
                a, _, b = feature[2:].partition("_")
                self._bigrams[(a, b)] = vec

    def _word(self, word: str):
        cached = self._word_cache.get(word)
        if cached is None:
            feats = word_features(word)
            vecs = [self.weights[f] for f in feats if f in self.weights]
            summed = tuple(map(sum, zip(*vecs, strict=True))) if vecs else None
            cached = (summed, len(feats))
            if len(self._word_cache) >= WORD_CACHE_SIZE:
                self._word_cache.clear()
            self._word_cache[word] = cached
        return cached

    def scores(self, text: str, proponent_kind: str = "") -> dict[str, float]:
        """Probability per label (independent logistic outputs)."""
        return dict(zip(self.labels, self.probabilities(words(text), proponent_kind), strict=True))

    def probabilities(self, toks: list[str], proponent_kind: str = "") -> list[float]:
        # The sums run in the reference order (core/classify_reference.py): each
        # word's own features pre-summed, the words in text order, the bigrams,
        # the proponent kind; floats are not associative, so the order is kept.
        vecs = []
        total = 0
        cache = self._word_cache
        word = self._word
        for tok in toks:
            cached = cache.get(tok)
            summed, n = cached if cached is not None else word(tok)
            total += n
            if summed is not None:
                vecs.append(summed)
        if len(toks) > 1:
            total += len(toks) - 1
            bigrams = self._bigrams
            for pair in zip(toks, toks[1:], strict=False):
                w = bigrams.get(pair)
                if w is not None:
                    vecs.append(w)
        if proponent_kind:
            total += 1
            w = self.weights.get(f"p:{proponent_kind}")
            if w is not None:
                vecs.append(w)
        k = 1.0 / math.sqrt(total) if total else 0.0
        if vecs:
            z = [b + k * s for b, s in zip(self.intercepts, map(sum, zip(*vecs, strict=True)), strict=False)]
        else:
            z = list(self.intercepts)
        exp = math.exp
        return [1.0 / (1.0 + exp(-v)) if v > -30 else 0.0 for v in z]


def parse_model(text: str) -> LinearModel:
    """A model from its JSON document (as written by the trainer); raises ValueError."""
    try:
        doc = json.loads(text)
        labels = tuple(doc["labels"])
        intercepts = tuple(float(x) for x in doc["intercepts"])
        weights = {}
        for feature, row in doc["weights"].items():
            vec = [0.0] * len(labels)
            for index, value in row:
                vec[index] = float(value)
            weights[feature] = tuple(vec)
    except (KeyError, TypeError, IndexError, json.JSONDecodeError) as exc:
        raise ValueError(f"not a classifier model: {exc}") from exc
    if len(intercepts) != len(labels):
        raise ValueError("not a classifier model: one intercept per label is needed")
    return LinearModel(
        labels=labels,
        intercepts=intercepts,
        weights=weights,
        content_hash=hashlib.sha256(text.encode()).hexdigest(),
        meta=doc.get("meta", {}),
    )


def dump_model(labels, intercepts, weights: dict[str, list[float]], meta: dict, digits: int = 5) -> str:
    """The JSON document of a model: sorted, rounded and sparse, so equal models give equal bytes."""
    rows = {}
    for feature in sorted(weights):
        row = [[i, round(float(w), digits)] for i, w in enumerate(weights[feature])]
        row = [r for r in row if r[1] != 0.0]
        if row:
            rows[feature] = row
    doc = {
        "format": 1,
        "labels": list(labels),
        "intercepts": [round(float(b), digits) for b in intercepts],
        "meta": meta,
        "weights": rows,
    }
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))
