"""SPEC §3 memory: what the key machinery remembers (objects keyed by their own
``__hash__``/``__eq__``) lives only as long as a cache entry uses it — clearing, evicting,
expiring or replacing the entries frees it."""

from __future__ import annotations

import gc
import time
import tracemalloc
import weakref

import fastcache
from conftest import HANG_TIMEOUT
from fastcache import _fastcache, cache_resource

MB = 1024 * 1024


class Target:
    """Keyed by its own hash and equality, with a payload that makes a leak visible."""

    def __init__(self, n, payload_size=0):
        self.n = n
        self.payload = bytes(payload_size)

    def __hash__(self):
        return hash(self.n)

    def __eq__(self, other):
        return isinstance(other, Target) and other.n == self.n


def _first_argument_ref(cached):
    first = Target(-1)
    ref = weakref.ref(first)
    value = cached(first)
    assert cached(Target(-1)) is value  # keyed by equality: an equal object hits
    del first, value
    gc.collect()
    assert ref() is not None  # the entry's key keeps it, as lru_cache's would
    return ref


def test_first_argument_is_collected_after_the_function_is_cleared():
    @cache_resource
    def open_target(target):
        return object()

    ref = _first_argument_ref(open_target)
    open_target.clear()
    gc.collect()
    assert ref() is None


def test_first_argument_is_collected_after_every_cache_is_cleared():
    @cache_resource
    def open_target(target):
        return object()

    ref = _first_argument_ref(open_target)
    fastcache.cache_resource.clear()
    gc.collect()
    assert ref() is None


def test_argument_is_collected_after_its_one_entry_is_cleared():
    @cache_resource
    def open_target(target):
        return object()

    ref = _first_argument_ref(open_target)
    open_target(Target(1))
    open_target.clear(Target(-1))
    gc.collect()
    assert ref() is None
    assert open_target.cache_info().currsize == 1


def test_evicted_argument_is_collected_by_the_next_call():
    @cache_resource(max_entries=1)
    def open_target(target):
        return object()

    ref = _first_argument_ref(open_target)
    open_target(Target(1))  # evicts the first entry
    open_target(Target(2))  # the next interning forgets what the eviction released
    gc.collect()
    assert ref() is None


def test_expired_argument_is_collected_by_the_next_call():
    @cache_resource(ttl=0.05)
    def open_target(target):
        return object()

    ref = _first_argument_ref(open_target)
    deadline = time.monotonic() + HANG_TIMEOUT
    while open_target.cache_info().currsize and time.monotonic() < deadline:
        time.sleep(0.02)  # the reaper takes the expired entry out
    open_target(Target(1))
    gc.collect()
    assert ref() is None


def test_argument_of_a_replaced_cache_is_collected_once_its_wrapper_is_gone():
    def define(limit):
        @cache_resource(max_entries=limit)
        def open_target(target):
            return object()

        return open_target

    old = define(5)
    ref = _first_argument_ref(old)
    new = define(6)  # options changed: a new cache replaces the old one
    del old
    gc.collect()
    new(Target(1))
    gc.collect()
    assert ref() is None


def test_argument_of_a_failed_call_is_not_kept():
    @cache_resource
    def failing(target):
        raise RuntimeError("no")

    before = _fastcache.interned_count()
    argument = Target(7)
    ref = weakref.ref(argument)
    try:
        failing(argument)
    except RuntimeError:
        pass
    del argument
    assert _fastcache.interned_count() == before
    gc.collect()
    assert ref() is None


def test_equal_arguments_share_one_remembered_object_while_an_entry_uses_it():
    @cache_resource
    def open_target(target):
        return object()

    before = _fastcache.interned_count()
    value = open_target(Target(3))
    for _ in range(10):
        assert open_target(Target(3)) is value
    assert _fastcache.interned_count() == before + 1
    open_target.clear()
    assert _fastcache.interned_count() == before


def test_many_distinct_arguments_through_a_small_cache_keep_memory_bounded():
    @cache_resource(max_entries=100)
    def open_target(target):
        return target.n

    before_count = _fastcache.interned_count()
    first = Target(0, payload_size=1000)
    ref = weakref.ref(first)
    open_target(first)
    del first
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(1, 200_000):
            open_target(Target(n, payload_size=1000))
        gc.collect()
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    # 200k objects of ~1 KB each would be ~200 MB if every one were kept.
    assert grown < 30 * MB, f"grew by {grown / MB:.1f} MB"
    assert _fastcache.interned_count() <= before_count + 101
    assert ref() is None  # evicted long ago, and forgotten
    open_target.clear()
    assert _fastcache.interned_count() == before_count
