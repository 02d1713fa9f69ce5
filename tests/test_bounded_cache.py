"""The caches a long-running server keeps are bounded by bytes, not only by entries."""

from __future__ import annotations

from proxyvote.core.bounded_cache import ENTRY_OVERHEAD, BoundedCache


def test_a_cache_stays_within_its_budget_dropping_the_oldest_first():
    cache = BoundedCache(10 * (ENTRY_OVERHEAD + 100), len)
    for n in range(25):
        cache.put(n, "x" * 100)
    assert cache.bytes <= cache.max_bytes
    assert len(cache) == 10
    assert cache.get(0) is None and cache.get(24) == "x" * 100
    assert cache.stats.evictions == 15


def test_the_key_counts_too_and_a_value_larger_than_the_budget_is_not_kept():
    cache = BoundedCache(4 * ENTRY_OVERHEAD, len)
    cache.put("long wording", "", key_bytes=2 * ENTRY_OVERHEAD)
    assert cache.bytes == 3 * ENTRY_OVERHEAD
    cache.put("huge", "y" * (4 * ENTRY_OVERHEAD))
    assert cache.get("huge") is None and len(cache) == 1


def test_hits_and_misses_are_counted():
    cache = BoundedCache(1 << 20, len)
    cache.get("a")
    cache.put("a", "value")
    cache.get("a")
    assert (cache.stats.hits, cache.stats.misses) == (1, 1)


def test_the_recommenders_classifications_are_bounded_by_its_setting(recommender):
    from proxyvote.core.model import BallotItem
    from proxyvote.core.recommender import Recommender

    small = Recommender(recommender.policies, recommender.taxonomy, classification_cache_bytes=50_000)
    for n in range(300):
        small.classify(BallotItem(str(n), f"Elect Director Person Number {n}", "MANAGEMENT"))
    assert 0 < small.classification_cache.bytes <= 50_000
    assert len(small.classification_cache) < 300
