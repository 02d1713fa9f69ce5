"""A word-anchored literal prefilter for the taxonomy's regular expressions.

From each pattern's parsed form we derive what the words of any text it
matches must contain: the pattern's top-level alternatives each need all of
a set of *atoms*, an atom being a literal word piece with where it sits in a
word ("ai" as a whole word, "ratif" at a word's start, "ing" at its end, or
anywhere). ``\\bai[- ](driven|powered)\\b`` needs the word "ai" and one of the
words "driven", "powered"; ``\\bratif\\w+`` needs a word starting with
"ratif". Words are the runs of ``[a-z0-9]`` of the lower-cased text.

Per distinct word a bit mask of the atoms it satisfies is cached; an item's
mask is the union over its words, and a pattern is run only when one of its
alternatives has all its atoms in the mask. The prefilter never changes a
result, it only skips patterns that cannot match (tests/test_classify_fast.py
compares with the reference classifier, which tries every pattern):
- an atom is only derived from letters and digits of the pattern, and an
  anchor only where the pattern guarantees a character outside ``[a-z0-9]``
  (``\\b``, a space, a hyphen, ``\\W``, the start or end of the text);
- four characters match an ASCII letter case-insensitively but do not
  lower-case to it (dotless i, capital I with dot, long s, Kelvin sign): a
  text containing one is not filtered at all (``text_mask``).
"""

from __future__ import annotations

import re

try:  # Python 3.11+
    import re._constants as _c
    import re._parser as _p
except ImportError:  # pragma: no cover
    import sre_constants as _c
    import sre_parse as _p

WORD_CACHE_SIZE = 200_000
# Characters that re.IGNORECASE matches to an ASCII letter but str.lower() does
# not turn into it (tests/test_classify_fast.py checks the list against Unicode).
CASE_FOLDS_TO_ASCII = "\u0130\u0131\u017f\u212a"
_FOLDS = re.compile(f"[{CASE_FOLDS_TO_ASCII}]")
_ALNUM = frozenset("abcdefghijklmnopqrstuvwxyz0123456789")
_REPEATS = tuple(
    op for op in (_c.MAX_REPEAT, _c.MIN_REPEAT, getattr(_c, "POSSESSIVE_REPEAT", None)) if op is not None
)
_ATOMIC = getattr(_c, "ATOMIC_GROUP", None)
# At most this many alternatives per pattern: past it, a part's need is dropped
# (a weaker filter, never a wrong one).
MAX_ALTERNATIVES = 64
ALWAYS = 1  # bit 0: set in every mask; the need of an alternative without atoms

EQ, PRE, SUF, SUB = "eq", "pre", "suf", "sub"


def _is_alnum_literal(op, arg) -> bool:
    return op is _c.LITERAL and chr(arg).lower() in _ALNUM


def _separator_char(code: int) -> bool:
    """A pattern character that only matches characters outside [a-z0-9] of the lowered text."""
    ch = chr(code)
    return ch.isascii() and ch.lower() not in _ALNUM


def _separator_set(items) -> bool:
    for op, arg in items:
        if op is _c.LITERAL:
            if not _separator_char(arg):
                return False
        elif op is _c.CATEGORY:
            if arg not in (_c.CATEGORY_SPACE, _c.CATEGORY_NOT_WORD):
                return False
        elif op is _c.RANGE:
            lo, hi = arg
            if hi > 127 or not all(_separator_char(x) for x in range(lo, hi + 1)):
                return False
        else:  # NEGATE and anything else
            return False
    return True


def _separates(seq, j: int, end: bool) -> bool:
    """Is the character at ``seq[j:]`` (what follows an alphanumeric) surely outside [a-z0-9]?"""
    if j >= len(seq):
        return end
    op, arg = seq[j]
    if op is _c.AT:
        return arg in (_c.AT_BOUNDARY, _c.AT_END, _c.AT_END_STRING)
    if op is _c.LITERAL:
        return _separator_char(arg)
    if op is _c.IN:
        return _separator_set(arg)
    if op is _c.SUBPATTERN:
        return _separates(list(arg[3]), 0, _separates(seq, j + 1, end))
    if op in _REPEATS and arg[0] == 0:  # optional: what it starts with, or what follows it
        return _separates(list(arg[2]), 0, True) and _separates(seq, j + 1, end)
    return False


def _product(left: list[frozenset], right: list[frozenset]) -> list[frozenset]:
    if len(left) * len(right) > MAX_ALTERNATIVES:
        return left  # drop the right part's need: weaker, still sound
    return list(dict.fromkeys(a | b for a in left for b in right))


def _analyse(seq, start: bool, end: bool) -> tuple[list[frozenset], bool]:
    """(alternatives, each a set of atoms all of which a match needs; whether the
    position after ``seq`` surely follows a character outside [a-z0-9])."""
    seq = list(seq)
    need: list[frozenset] = [frozenset()]
    at_start = start
    i = 0
    while i < len(seq):
        op, arg = seq[i]
        if _is_alnum_literal(op, arg):
            j = i
            while j < len(seq) and _is_alnum_literal(*seq[j]):
                j += 1
            text = "".join(chr(a).lower() for _, a in seq[i:j])
            after = _separates(seq, j, end)
            mode = EQ if at_start and after else PRE if at_start else SUF if after else SUB
            need = _product(need, [frozenset([(mode, text)])])
            at_start = False
            i = j
            continue
        follows = _separates(seq, i + 1, end)
        if op is _c.SUBPATTERN:
            part, at_start = _analyse(arg[3], at_start, follows)
            need = _product(need, part)
        elif op is _c.BRANCH:
            parts = [_analyse(branch, at_start, follows) for branch in arg[1]]
            alternatives = [a for p, _ in parts for a in p]
            if frozenset() not in alternatives:
                need = _product(need, list(dict.fromkeys(alternatives)))
            at_start = all(s for _, s in parts)
        elif op in _REPEATS:
            low, high, body = arg
            once = high == 1
            part, body_end = _analyse(body, at_start if once else False, follows if once else False)
            if low >= 1:
                need = _product(need, part)
                at_start = body_end
            else:
                at_start = at_start and body_end
        elif op is _ATOMIC:
            part, at_start = _analyse(arg, at_start, follows)
            need = _product(need, part)
        elif op is _c.AT:
            at_start = arg in (_c.AT_BOUNDARY, _c.AT_BEGINNING, _c.AT_BEGINNING_STRING)
        elif op in (_c.ASSERT, _c.ASSERT_NOT):
            pass  # zero width: the position, and so what precedes it, is unchanged
        elif op is _c.LITERAL:
            at_start = _separator_char(arg)
        elif op is _c.IN:
            at_start = _separator_set(arg)
        else:
            at_start = False
        i += 1
    return need, at_start


def pattern_needs(pattern: re.Pattern) -> list[frozenset]:
    """Alternatives, each a set of (mode, text) atoms that every match of that
    alternative has in the text's words; an empty set: no need known."""
    try:
        parsed = list(_p.parse(pattern.pattern, pattern.flags))
    except Exception:  # noqa: BLE001 - a pattern we cannot analyse is simply always run
        return [frozenset()]
    if pattern.flags & (re.MULTILINE | re.LOCALE | re.VERBOSE):
        return [frozenset()]
    return _analyse(parsed, False, False)[0]


def _score(atom) -> int:
    mode, text = atom
    return len(text) + {EQ: 6, PRE: 3, SUF: 3, SUB: 0}[mode]


class Prefilter:
    """Which of ``patterns`` (by index) a text's words can enable.

    ``needs[i]``: pattern i's alternatives as bit masks of atoms (each with
    ``ALWAYS``); ``keys[i]``: one bit per alternative, at least one of which a
    text's mask must have for pattern i to be worth checking in full.
    """

    def __init__(self, patterns: list[re.Pattern]):
        atoms: dict[tuple[str, str], int] = {}
        self.needs: list[tuple[int, ...]] = []
        self.keys: list[int] = []
        for pattern in patterns:
            needs, key = [], 0
            for alternative in pattern_needs(pattern):
                bits = ALWAYS
                for atom in alternative:
                    bits |= atoms.setdefault(atom, 1 << (len(atoms) + 1))
                needs.append(bits)
                key |= atoms[max(alternative, key=_score)] if alternative else ALWAYS
            self.needs.append(tuple(needs))
            self.keys.append(key)
        self._eq: dict[str, int] = {}
        self._pre: dict[str, int] = {}
        self._suf: dict[str, int] = {}
        self._sub: list[tuple[str, int]] = []
        for (mode, text), bit in atoms.items():
            if mode == EQ:
                self._eq[text] = self._eq.get(text, 0) | bit
            elif mode == PRE:
                self._pre[text] = self._pre.get(text, 0) | bit
            elif mode == SUF:
                self._suf[text] = self._suf.get(text, 0) | bit
            else:
                self._sub.append((text, bit))
        self._pre_lengths = sorted({len(t) for t in self._pre})
        self._suf_lengths = sorted({len(t) for t in self._suf})
        self._cache: dict[str, int] = {}
        self._atoms = len(atoms) + 1
        self._rule_keys: tuple[int, ...] = ()
        self.base = ALWAYS

    def index_rules(self, keys: list[int]) -> int:
        """Adds one bit per rule, above the atoms' bits, set in a text's mask when
        the rule's ``key`` meets it (or always, for a key with ``ALWAYS``), so a
        section's rules worth checking are read off the mask; returns the shift."""
        self._rule_keys = tuple(keys)
        self._cache.clear()
        shift = self._atoms
        self.base = ALWAYS
        for j, key in enumerate(keys):
            if key & ALWAYS:
                self.base |= 1 << (shift + j)
        return shift

    def word_mask(self, word: str) -> int:
        mask = self._cache.get(word)
        if mask is None:
            mask = self._eq.get(word, 0)
            n = len(word)
            for k in self._pre_lengths:
                if k > n:
                    break
                mask |= self._pre.get(word[:k], 0)
            for k in self._suf_lengths:
                if k > n:
                    break
                mask |= self._suf.get(word[n - k :], 0)
            for text, bit in self._sub:
                if text in word:
                    mask |= bit
            shift = self._atoms
            for j, key in enumerate(self._rule_keys):
                if mask & key:
                    mask |= 1 << (shift + j)
            if len(self._cache) >= WORD_CACHE_SIZE:
                self._cache.clear()
            self._cache[word] = mask
        return mask

    def mask(self, words) -> int:
        mask = self.base
        cache = self._cache
        for word in words:
            m = cache.get(word)
            mask |= m if m is not None else self.word_mask(word)
        return mask

    def text_mask(self, text: str, words) -> int:
        """The mask of ``text`` whose lower-cased words are ``words``; every bit
        (nothing skipped) when the text has a character lowering cannot see."""
        if not text.isascii() and _FOLDS.search(text):
            return -1
        return self.mask(words)
