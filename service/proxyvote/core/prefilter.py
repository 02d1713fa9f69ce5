"""A literal-word prefilter for the taxonomy's regular expressions.

For each pattern we derive, from its parsed form, a set of word fragments at
least one of which any match must contain (``\\bratif\\w+|\\bapprov\\w+`` needs
"ratif" or "approv"). A fragment is letters and digits only, so it lies inside
one word of the text. Per distinct word of the text we cache which patterns
it can enable (a bit mask); an item then runs only the patterns its words
enable, instead of every pattern one by one. A pattern without a usable
fragment is always run. The prefilter never changes a result: it only skips
patterns that cannot match.
"""

from __future__ import annotations

import re

try:  # Python 3.11+
    import re._constants as _c
    import re._parser as _p
except ImportError:  # pragma: no cover
    import sre_constants as _c
    import sre_parse as _p

_ALNUM = re.compile(r"[a-z0-9]+")
MIN_FRAGMENT = 2
WORD_CACHE_SIZE = 200_000


def _requirement(seq) -> set[str] | None:
    """Strings one of which every match of ``seq`` contains; None when unknown."""
    options: list[set[str]] = []
    run: list[str] = []

    def flush():
        if run:
            options.append({"".join(run)})
            run.clear()

    for op, arg in seq:
        if op is _c.LITERAL:
            run.append(chr(arg).lower())
            continue
        flush()
        if op is _c.SUBPATTERN:
            req = _requirement(arg[3])
        elif op is _c.BRANCH:
            reqs = [_requirement(branch) for branch in arg[1]]
            req = None if any(r is None for r in reqs) else set().union(*reqs)
        elif op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)):
            req = _requirement(arg[2]) if arg[0] >= 1 else None
        elif op is getattr(_c, "ATOMIC_GROUP", None):
            req = _requirement(arg)
        else:
            req = None
        if req is not None:
            options.append(req)
    flush()
    best, best_score = None, 0
    for option in options:
        frags = {_fragment(s) for s in option}
        if any(not f for f in frags):
            continue
        score = min(len(f) for f in frags)
        if score > best_score:
            best, best_score = frags, score
    return best


def _fragment(text: str) -> str:
    parts = _ALNUM.findall(text)
    longest = max(parts, key=len) if parts else ""
    return longest if len(longest) >= MIN_FRAGMENT else ""


def required_fragments(pattern: re.Pattern) -> frozenset[str] | None:
    """Word fragments one of which every match contains; None when the pattern has none."""
    try:
        parsed = _p.parse(pattern.pattern, pattern.flags)
    except Exception:  # noqa: BLE001 - a pattern we cannot analyse is simply always run
        return None
    req = _requirement(list(parsed))
    return frozenset(req) if req else None


class Prefilter:
    """Which of ``patterns`` (by index) a text's words can enable."""

    def __init__(self, patterns: list[re.Pattern]):
        self.always = 0
        by_fragment: dict[str, int] = {}
        for i, pattern in enumerate(patterns):
            frags = required_fragments(pattern)
            if frags is None:
                self.always |= 1 << i
                continue
            for f in frags:
                by_fragment[f] = by_fragment.get(f, 0) | (1 << i)
        self._fragments = tuple(by_fragment.items())
        self._cache: dict[str, int] = {}

    def word_mask(self, word: str) -> int:
        mask = self._cache.get(word)
        if mask is None:
            mask = 0
            for fragment, bits in self._fragments:
                if fragment in word:
                    mask |= bits
            if len(self._cache) >= WORD_CACHE_SIZE:
                self._cache.clear()
            self._cache[word] = mask
        return mask

    def mask(self, words) -> int:
        mask = self.always
        cache = self._cache
        for word in words:
            m = cache.get(word)
            mask |= m if m is not None else self.word_mask(word)
        return mask
