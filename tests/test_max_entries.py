"""SPEC §5 max_entries: a true LRU (hits and writes refresh recency), expired entries
reaped before an LRU victim, and decoration-time checks of the value."""

from __future__ import annotations

import gc
import math
import time
import weakref
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from fastcache import cache_resource


class Resource:
    def __init__(self, label=None):
        self.label = label

    def __repr__(self):
        return f"Resource({self.label!r})"


def test_least_recently_written_entry_is_evicted_when_full(released):
    @cache_resource(max_entries=2, on_release=released)
    def lru(x):
        return Resource(x)

    one, two = lru(1), lru(2)
    three = lru(3)  # evicts 1
    assert released.values == [one]
    assert lru(2) is two
    assert lru(3) is three
    assert lru(1) is not one
    assert lru.cache_info().currsize == 2


def test_hits_refresh_recency(released):
    @cache_resource(max_entries=2, on_release=released)
    def lru_hits(x):
        return Resource(x)

    one, two = lru_hits(1), lru_hits(2)
    assert lru_hits(1) is one  # 1 becomes the most recently used
    lru_hits(3)  # so 2 is the victim
    assert released.values == [two]
    assert lru_hits(1) is one


def test_hits_through_other_spellings_refresh_recency(released):
    @cache_resource(max_entries=2, on_release=released)
    def lru_spelled(a, b=0):
        return Resource(a)

    one = lru_spelled(1)
    two = lru_spelled(2)
    assert lru_spelled(a=1, b=0) is one
    lru_spelled(3)
    assert released.values == [two]


def test_eviction_order_over_many_keys(released):
    @cache_resource(max_entries=3, on_release=released)
    def lru_many(x):
        return Resource(x)

    values = {n: lru_many(n) for n in range(3)}
    lru_many(0)  # order of use now: 1, 2, 0
    values[3] = lru_many(3)  # evicts 1
    lru_many(2)  # order: 0, 3, 2
    values[4] = lru_many(4)  # evicts 0
    assert [v.label for v in released.values] == [1, 0]
    assert lru_many(2) is values[2]
    assert lru_many(3) is values[3]
    assert lru_many(4) is values[4]


def test_max_entries_one_keeps_only_the_latest(released):
    @cache_resource(max_entries=1, on_release=released)
    def single(x):
        return Resource(x)

    one = single(1)
    two = single(2)
    assert released.values == [one]
    assert single(2) is two
    assert single.cache_info().currsize == 1


def test_expired_entries_are_reaped_before_the_lru_victim(released):
    @cache_resource(max_entries=2, ttl=0.4, on_release=released)
    def reaped(x):
        return Resource(x)

    first = reaped("first")
    time.sleep(0.25)
    second = reaped("second")
    assert reaped("first") is first  # a hit: "second" is now the least recently used
    time.sleep(0.2)
    # "first" has expired (written 0.45 s ago) while "second" (0.2 s) is live: writing a
    # third entry must reap "first", not evict the live LRU entry "second".
    reaped("third")
    assert released.values == [first]
    assert reaped("second") is second


def test_evicted_values_are_freed():
    @cache_resource(max_entries=10)
    def many(x):
        return Resource(x)

    refs = [weakref.ref(many(n)) for n in range(500)]
    gc.collect()
    alive = [r for r in refs if r() is not None]
    assert len(alive) == 10
    assert {r().label for r in alive} == set(range(490, 500))


@pytest.mark.parametrize("value", [0, -1, -100])
def test_non_positive_max_entries_is_a_value_error_at_decoration(value):
    with pytest.raises(ValueError, match="max_entries"):
        cache_resource(max_entries=value)


@pytest.mark.parametrize("value", ["3", True, False, [3], Decimal(2), 2j], ids=repr)
def test_max_entries_that_is_not_a_real_number_is_a_type_error_at_decoration(value):
    with pytest.raises(TypeError, match="max_entries"):
        cache_resource(max_entries=value)


@pytest.mark.parametrize(
    "value, holds",
    [
        (2.0, 2),
        (np.int64(2), 2),
        (np.int32(3), 3),
        (np.float64(2.0), 2),
        (Fraction(4, 2), 2),
        (2.5, 2),  # Streamlit's LRU keeps the whole part
    ],
    ids=repr,
)
def test_max_entries_given_as_any_real_number_holds_its_whole_part(value, holds):
    @cache_resource(max_entries=value)
    def load(x):
        return Resource(x)

    for n in range(holds + 3):
        load(n)
    assert load.cache_info().currsize == holds
    assert load.cache_info().maxsize == holds


def test_infinite_max_entries_means_no_limit_as_in_streamlit():
    @cache_resource(max_entries=math.inf)
    def load(x):
        return Resource(x)

    for n in range(50):
        load(n)
    assert load.cache_info().currsize == 50
    assert load.cache_info().maxsize is None


@pytest.mark.parametrize("value", [0.5, math.nan, -math.inf, np.float64(0.2)], ids=repr)
def test_max_entries_below_one_or_nan_is_a_value_error_at_decoration(value):
    with pytest.raises(ValueError, match="max_entries"):
        cache_resource(max_entries=value)


@pytest.mark.parametrize("value", [2**64, 10**30, 1e30], ids=repr)
def test_max_entries_too_large_to_count_fails_at_decoration_naming_the_parameter(value):
    with pytest.raises(ValueError, match="max_entries") as info:
        cache_resource(max_entries=value)
    assert "None" in str(info.value)
