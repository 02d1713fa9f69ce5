"""A cache bounded by an estimate of its bytes: what the long-running server keeps is capped.

Entries leave oldest first when the estimate passes the budget. Estimates come
from a function the owner passes (a classification, an outcome, a byte string
each have their own); they are rough, and meant to be: the point is that the
memory a cache can hold is a setting, whatever the traffic.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any

ENTRY_OVERHEAD = 200  # the dict slot, the key and the object headers, roughly


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    evictions: int = 0


class BoundedCache:
    def __init__(self, max_bytes: int, size_of: Callable[[Any], int]):
        self.max_bytes = max(0, int(max_bytes))
        self._size_of = size_of
        self._entries: dict[Hashable, tuple[Any, int]] = {}
        self._bytes = 0
        self.stats = CacheStats()

    def get(self, key: Hashable, default=None):
        entry = self._entries.get(key)
        if entry is None:
            self.stats.misses += 1
            return default
        self.stats.hits += 1
        return entry[0]

    def put(self, key: Hashable, value, key_bytes: int = 0) -> None:
        """Keeps ``value``; ``key_bytes`` estimates what the key holds (long wordings)."""
        size = ENTRY_OVERHEAD + key_bytes + self._size_of(value)
        if size > self.max_bytes:
            return  # larger than the whole budget: not kept
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= old[1]
        self._entries[key] = (value, size)
        self._bytes += size
        # Oldest first (insertion order). A concurrent put may evict too: the
        # estimate can dip below the budget, never stay above it for long.
        while self._bytes > self.max_bytes and self._entries:
            try:
                oldest = next(iter(self._entries))
                _, dropped = self._entries.pop(oldest)
            except (StopIteration, KeyError, RuntimeError):
                break
            self._bytes -= dropped
            self.stats.evictions += 1

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0

    @property
    def bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)


def text_size(*texts: str) -> int:
    return sum(len(t) for t in texts)


def classification_size(c) -> int:
    """A Classification: its names, matches and confidences."""
    return (
        300
        + text_size(c.topic, *c.topics, c.request_kind, *c.flags, c.review_reason, c.direction)
        + sum(200 + text_size(m.rule_id, m.field, m.pattern, m.matched) for m in c.matches)
        + 80 * len(c.confidences)
    )


def outcome_size(o) -> int:
    """An Outcome: its rationale and its trace with the values each condition saw."""
    return (
        400
        + text_size(o.rationale, o.review_reason, o.rule_id)
        + sum(
            150
            + len(e.note)
            + sum(150 + len(c.expression) + sum(len(k) + len(v) for k, v in c.values) for c in e.conditions)
            for e in o.trace
        )
        + 100 * len(o.cited)
    )
