"""SPEC §6 validate and on_release: validate on hits only; on_release exactly once for
every value that leaves the cache, on every path; released values are freed; callbacks
may call cached functions."""

from __future__ import annotations

import collections
import gc
import logging
import sys
import threading
import time
import weakref

import fastcache
import pytest
from conftest import HANG_TIMEOUT
from fastcache import cache_resource


class Resource:
    def __init__(self, label=None):
        self.label = label

    def __repr__(self):
        return f"Resource({self.label!r})"


# --- validate --------------------------------------------------------------------------


def test_validate_is_not_called_on_a_fresh_compute():
    seen = []

    @cache_resource(validate=lambda v: seen.append(v) or True)
    def validated_fresh(x):
        return Resource(x)

    validated_fresh(1)
    validated_fresh(2)
    assert seen == []


def test_validate_is_called_on_every_hit_with_the_cached_value():
    seen = []

    @cache_resource(validate=lambda v: seen.append(v) or True)
    def validated_hits(x):
        return Resource(x)

    value = validated_hits(1)
    assert validated_hits(1) is value
    assert validated_hits(x=1) is value
    assert seen == [value, value]


@pytest.mark.parametrize("verdict", [False, None, 0, "", []], ids=repr)
def test_falsy_validate_recomputes_and_releases_the_old_value(verdict, released):
    healthy = {"ok": True}

    @cache_resource(validate=lambda v: True if healthy["ok"] else verdict, on_release=released)
    def validated_falsy(x):
        return Resource(x)

    before = validated_falsy.cache_info()  # the cache is shared by every parametrized run
    old = validated_falsy(1)
    healthy["ok"] = False
    new = validated_falsy(1)
    healthy["ok"] = True
    assert new is not old
    assert validated_falsy(1) is new
    released.assert_each_released_once(old)
    assert released.count(new) == 0
    info = validated_falsy.cache_info()
    assert (info.hits - before.hits, info.misses - before.misses, info.currsize) == (1, 2, 1)


@pytest.mark.parametrize("verdict", [True, 1, "yes", [0]], ids=repr)
def test_truthy_validate_keeps_the_entry(verdict, released):
    @cache_resource(validate=lambda v: verdict, on_release=released)
    def validated_truthy(x):
        return Resource(x)

    value = validated_truthy(1)
    assert validated_truthy(1) is value
    assert len(released) == 0


def test_raising_validate_propagates_and_keeps_the_entry(released):
    state = {"raise": False}

    def check(value):
        if state["raise"]:
            raise ConnectionResetError("ping failed")
        return True

    @cache_resource(validate=check, on_release=released)
    def validated_raising(x):
        return Resource(x)

    value = validated_raising(1)
    state["raise"] = True
    with pytest.raises(ConnectionResetError, match="ping failed"):
        validated_raising(1)
    state["raise"] = False
    assert validated_raising(1) is value
    assert len(released) == 0


def test_validate_may_call_the_same_cached_function_with_other_arguments(in_thread):
    @cache_resource(validate=lambda v: v.label == "main" or bool(nested_validate("main")))
    def nested_validate(name):
        return Resource(name)

    value = nested_validate("child")

    def call_twice():
        return nested_validate("child"), nested_validate("child")

    first, second = in_thread(call_twice).get()
    assert first is value and second is value


def test_validate_calling_the_same_key_raises_reentrant_call_error(in_thread):
    @cache_resource(validate=lambda v: self_validating(1) is v)
    def self_validating(x):
        return Resource(x)

    value = self_validating(1)
    started = time.monotonic()
    outcome = in_thread(self_validating, 1).join()
    assert time.monotonic() - started < 1.0
    assert isinstance(outcome.error, fastcache.ReentrantCallError)
    assert self_validating.cache_info().currsize == 1
    # The key is not stuck: without the recursive validate path, it is still served.
    self_validating.clear()
    assert self_validating(1) is not value


def test_failed_validate_of_a_value_cleared_meanwhile_releases_it_only_once(in_thread, released):
    entered, proceed = threading.Event(), threading.Event()
    blocking = threading.local()

    def check(value):
        if getattr(blocking, "once", False):
            blocking.once = False
            entered.set()
            assert proceed.wait(HANG_TIMEOUT)
            return False
        return True

    @cache_resource(validate=check, on_release=released)
    def raced_clear(x):
        return Resource(x)

    old = raced_clear(1)

    def slow_validating_call():
        blocking.once = True
        return raced_clear(1)

    call = in_thread(slow_validating_call)
    assert entered.wait(HANG_TIMEOUT)
    raced_clear.clear()  # releases `old` while the other thread is still validating it
    assert released.count(old) == 1
    proceed.set()
    new = call.get()
    assert new is not old
    released.assert_each_released_once(old)
    assert released.count(new) == 0
    assert raced_clear(1) is new


def test_failed_validate_does_not_remove_a_value_written_meanwhile(in_thread, released):
    entered, proceed = threading.Event(), threading.Event()
    blocking = threading.local()

    def check(value):
        if getattr(blocking, "once", False):
            blocking.once = False
            entered.set()
            assert proceed.wait(HANG_TIMEOUT)
            return False
        return value.label != "stale"

    @cache_resource(validate=check, on_release=released)
    def raced_write(x):
        return Resource(x)

    old = raced_write(1)

    def slow_validating_call():
        blocking.once = True
        return raced_write(1)

    call = in_thread(slow_validating_call)
    assert entered.wait(HANG_TIMEOUT)
    old.label = "stale"
    replacement = raced_write(1)  # this thread rejects `old` and writes `replacement`
    assert replacement is not old
    proceed.set()
    # The slow thread's verdict on `old` must neither remove nor release `replacement`.
    assert call.get() is replacement
    released.assert_each_released_once(old)
    assert released.count(replacement) == 0
    assert raced_write(1) is replacement


# --- on_release exactly once, on every path --------------------------------------------
# Each scenario builds a cache, removes some values through one path and returns
# (values that left the cache, values still stored).


def _clear_function(on_release):
    @cache_resource(on_release=on_release)
    def path_clear(x):
        return Resource(x)

    @cache_resource(on_release=on_release)
    def path_clear_other(x):
        return Resource(x)

    gone = [path_clear(1), path_clear(2)]
    kept = [path_clear_other(1)]
    path_clear.clear()
    return gone, kept


def _clear_one_entry(on_release):
    @cache_resource(on_release=on_release)
    def path_clear_one(x):
        return Resource(x)

    gone, kept = [path_clear_one(1)], [path_clear_one(2)]
    path_clear_one.clear(1)
    return gone, kept


def _clear_every_cache(on_release):
    @cache_resource(on_release=on_release)
    def path_global_a(x):
        return Resource(x)

    @cache_resource(on_release=on_release)
    def path_global_b(x):
        return Resource(x)

    gone = [path_global_a(1), path_global_a(2), path_global_b(1)]
    fastcache.cache_resource.clear()
    kept = [path_global_a(3)]
    return gone, kept


def _lru_eviction(on_release):
    @cache_resource(max_entries=2, on_release=on_release)
    def path_lru(x):
        return Resource(x)

    gone = [path_lru(1)]
    kept = [path_lru(2), path_lru(3)]
    return gone, kept


def _ttl_expiry(on_release):
    @cache_resource(ttl=0.3, on_release=on_release)
    def path_ttl(x):
        return Resource(x)

    gone = [path_ttl(1)]
    time.sleep(0.35)
    kept = [path_ttl(1)]
    return gone, kept


def _validate_failure(on_release):
    @cache_resource(validate=lambda v: v.label != "stale", on_release=on_release)
    def path_validate(x):
        return Resource(x)

    old = path_validate(1)
    kept = [path_validate(2)]
    old.label = "stale"
    kept.append(path_validate(1))
    return [old], kept


def _cache_replacement(on_release):
    def define(max_entries):
        @cache_resource(max_entries=max_entries, on_release=on_release)
        def path_replaced(x):
            return Resource(x)

        return path_replaced

    old = define(5)
    gone = [old(1), old(2)]
    kept = [define(6)(1)]
    return gone, kept


SCENARIOS = {
    "clear()": _clear_function,
    "clear(args)": _clear_one_entry,
    "cache_resource.clear()": _clear_every_cache,
    "lru-eviction": _lru_eviction,
    "ttl-expiry": _ttl_expiry,
    "validate-failure": _validate_failure,
    "cache-replacement": _cache_replacement,
}


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_on_release_is_called_exactly_once_per_removal(scenario, released):
    gone, kept = scenario(released)
    released.assert_each_released_once(*gone)
    for value in kept:
        assert released.count(value) == 0, f"{value!r} is still stored but was released"
    fastcache.cache_resource.clear()
    released.assert_each_released_once(*gone, *kept)  # never twice
    assert len(released) == len(gone) + len(kept)


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_released_values_are_freed(scenario):
    gone, kept = scenario(None)
    gone_refs = [weakref.ref(v) for v in gone]
    kept_refs = [weakref.ref(v) for v in kept]
    del gone, kept
    # Checked before the (slow) collection, while short-ttl values are surely still live.
    assert all(r() is not None for r in kept_refs), "a value still stored was freed"
    gc.collect()
    assert [r() for r in gone_refs] == [None] * len(gone_refs)
    fastcache.cache_resource.clear()
    gc.collect()
    assert [r() for r in kept_refs] == [None] * len(kept_refs)


@pytest.mark.parametrize("scenario", SCENARIOS.values(), ids=SCENARIOS.keys())
def test_released_values_are_freed_after_on_release(scenario, released):
    gone, _ = scenario(released)
    gone_refs = [weakref.ref(v) for v in gone]
    del gone
    released.values.clear()
    gc.collect()
    assert [r() for r in gone_refs] == [None] * len(gone_refs)


@pytest.mark.parametrize(
    "clear", ["function", "key", "global"], ids=["clear()", "clear(args)", "cache_resource.clear()"]
)
def test_clear_during_computation_returns_and_stores_the_value(clear, in_thread, released):
    # As Streamlit: the clear removes what was cached at that moment; the computation
    # running meanwhile finishes, its caller gets the value, and it is stored.
    started, proceed = threading.Event(), threading.Event()

    @cache_resource(on_release=released)
    def computing(x):
        if x == 1:
            started.set()
            assert proceed.wait(HANG_TIMEOUT)
        return Resource(x)

    stored_before = computing(2)
    call = in_thread(computing, 1)
    assert started.wait(HANG_TIMEOUT)
    clearing = {
        "function": computing.clear,
        "key": lambda: computing.clear(1),
        "global": fastcache.cache_resource.clear,
    }[clear]
    in_thread(clearing).get()  # must not wait for the computation
    proceed.set()
    value = call.get()
    assert isinstance(value, Resource) and value.label == 1
    assert released.count(value) == 0, "the caller got a value already released"
    assert computing(1) is value, "a value computed across a clear is stored"
    if clear != "key":
        released.assert_each_released_once(stored_before)
    computing.clear()
    released.assert_each_released_once(value)


def test_replaced_write_releases_the_replaced_value_once(released):
    # The one write over a live entry: a background refresh storing its new value.
    refreshed = threading.Event()
    labels = iter(["old", "new"])

    @cache_resource(ttl=0.5, refresh_mode="background", on_release=released)
    def refreshed_resource(x):
        value = Resource(next(labels))
        if value.label == "new":
            refreshed.set()
        return value

    old = refreshed_resource(1)
    time.sleep(0.55)  # stale (older than ttl) but younger than 2 * ttl
    assert refreshed_resource(1) is old  # served at once; the refresh runs in the background
    assert refreshed.wait(HANG_TIMEOUT)
    deadline = time.monotonic() + HANG_TIMEOUT
    while (current := refreshed_resource(1)) is old:
        assert time.monotonic() < deadline, "the refreshed value was never stored"
        time.sleep(0.01)
    assert current.label == "new"
    released.assert_each_released_once(old)
    assert released.count(current) == 0
    fastcache.cache_resource.clear()
    released.assert_each_released_once(old, current)


def test_clearing_another_key_during_computation_keeps_the_computed_value(in_thread, released):
    started, proceed = threading.Event(), threading.Event()

    @cache_resource(on_release=released)
    def computing_other(x):
        if x == 1:
            started.set()
            assert proceed.wait(HANG_TIMEOUT)
        return Resource(x)

    call = in_thread(computing_other, 1)
    assert started.wait(HANG_TIMEOUT)
    computing_other.clear(2)
    proceed.set()
    value = call.get()
    assert computing_other(1) is value
    assert len(released) == 0


def test_waiters_on_a_computation_cleared_meanwhile_get_a_live_value(in_thread, released):
    # Eight callers wait on a slow connect; a clear lands meanwhile. Every one of them gets
    # the connection, none of them a closed one, and it stays cached.
    started, proceed = threading.Event(), threading.Event()
    closed_when_received = []

    def close(value):
        value.closed = True
        released(value)

    @cache_resource(on_release=close)
    def connect(x):
        started.set()
        assert proceed.wait(HANG_TIMEOUT)
        return Resource(x)

    def call():
        value = connect(1)
        closed_when_received.append(getattr(value, "closed", False))
        return value

    owner = in_thread(call)
    assert started.wait(HANG_TIMEOUT)
    waiters = [in_thread(call) for _ in range(8)]
    time.sleep(0.05)  # let the waiters reach the in-flight computation
    connect.clear()
    proceed.set()
    value = owner.get()
    assert all(w.get() is value for w in waiters)
    assert closed_when_received == [False] * 9
    assert len(released) == 0
    assert connect(1) is value
    connect.clear()
    released.assert_each_released_once(value)


# --- one object stored under several keys ----------------------------------------------
# A function that returns the same object for different arguments (a singleton client, a
# pooled connection): the object is released when its last entry leaves, never while
# another key still stores it and callers still receive it.


class SharedConnection:
    """A cached function whose first computation of keys 1 and 2 returns one shared object;
    every other computation returns a fresh `Resource`."""

    def __init__(self, on_release, *, prime=True, **options):
        self.shared = Resource("shared")
        self.rejected = None  # the object `validate` turns down, when options ask for it
        self.computed = collections.Counter()
        if "validate" in options:
            options["validate"] = lambda value: value is not self.rejected

        @cache_resource(on_release=on_release, **options)
        def connect(x):
            self.computed[x] += 1
            if x in (1, 2) and self.computed[x] == 1:
                return self.shared
            return Resource(x)

        self.connect = connect
        if prime:
            assert connect(1) is self.shared and connect(2) is self.shared

    def reject(self, key):
        """A hit on `key` whose `validate` fails: the entry leaves and is recomputed."""
        self.rejected = self.shared
        try:
            assert self.connect(key) is not self.shared
        finally:
            self.rejected = None


# Each path takes key 1's entry out, yields while key 2 still stores the shared object,
# then takes key 2's out the same way.


def _shared_clear_args(released):
    s = SharedConnection(released)
    s.connect.clear(1)
    yield s
    s.connect.clear(2)


def _shared_lru_eviction(released):
    s = SharedConnection(released, max_entries=2)
    s.connect(2)
    s.connect(3)  # key 1 is the least recently used
    yield s  # (its check hits key 2)
    s.connect(3)
    s.connect(4)  # key 2 is the least recently used


def _shared_ttl_expiry(released):
    s = SharedConnection(released, prime=False, ttl=1.2)
    assert s.connect(1) is s.shared
    time.sleep(0.6)
    assert s.connect(2) is s.shared  # written 0.6 s after key 1
    time.sleep(0.65)  # key 1 has expired, key 2 has not
    assert s.connect(1) is not s.shared  # the expired entry left, whoever took it out
    yield s
    deadline = time.monotonic() + HANG_TIMEOUT
    while released.count(s.shared) == 0:  # key 2 expires; the expiry thread releases it
        assert time.monotonic() < deadline, "the last entry's expiry never released it"
        time.sleep(0.01)


def _shared_validate_failure(released):
    s = SharedConnection(released, validate=True)
    s.reject(1)
    yield s
    s.reject(2)


SHARED_PATHS = {
    "clear(args)": _shared_clear_args,
    "lru-eviction": _shared_lru_eviction,
    "ttl-expiry": _shared_ttl_expiry,
    "validate-failure": _shared_validate_failure,
}


@pytest.mark.parametrize("path", SHARED_PATHS.values(), ids=SHARED_PATHS.keys())
def test_an_object_under_two_keys_is_released_only_when_its_last_entry_leaves(path, released):
    steps = path(released)
    s = next(steps)
    assert released.count(s.shared) == 0, "released while key 2 still stores it"
    assert s.connect(2) is s.shared, "key 2 no longer serves the shared object"
    assert s.computed[2] == 1, "key 2 was computed again"
    next(steps, None)
    released.assert_each_released_once(s.shared)
    others = [v for v in released.values if v is not s.shared]
    fastcache.cache_resource.clear()
    released.assert_each_released_once(s.shared, *others)  # never twice


@pytest.mark.parametrize("clear", ["function", "global"], ids=["clear()", "cache_resource.clear()"])
def test_clearing_a_cache_releases_an_object_under_several_keys_once(clear, released):
    s = SharedConnection(released)
    third = s.connect(3)
    {"function": s.connect.clear, "global": fastcache.cache_resource.clear}[clear]()
    released.assert_each_released_once(s.shared, third)
    assert len(released) == 2


def test_an_object_returned_by_two_functions_is_released_by_each(released):
    # Each cache owns its values: the rule counts the entries of one cache.
    shared = Resource("shared")

    @cache_resource(on_release=released)
    def first(x):
        return shared

    @cache_resource(on_release=released)
    def second(x):
        return shared

    assert first(1) is shared and second(1) is shared
    first.clear()
    assert released.count(shared) == 1
    assert second(1) is shared
    second.clear()
    assert released.count(shared) == 2


def test_a_write_of_the_same_object_over_its_evicted_sibling_keeps_it(released):
    s = SharedConnection(released, max_entries=1)  # storing key 2 evicted key 1
    assert released.count(s.shared) == 0
    assert s.connect(2) is s.shared
    s.connect(3)
    released.assert_each_released_once(s.shared)


def test_on_release_added_by_a_redecoration_counts_the_entries_already_stored(released):
    shared = Resource("shared")

    def define(on_release):
        @cache_resource(on_release=on_release)
        def pooled(x):
            return shared

        return pooled

    pooled = define(None)
    assert pooled(1) is shared and pooled(2) is shared
    pooled = define(released)  # same options: the cache stays, with the new on_release
    pooled.clear(1)
    assert released.count(shared) == 0
    assert pooled(2) is shared
    pooled.clear(2)
    released.assert_each_released_once(shared)


# --- on_release errors and re-entry ----------------------------------------------------


def test_raising_on_release_is_logged_and_the_new_value_is_kept(caplog):
    def broken_release(value):
        raise RuntimeError(f"cannot close {value.label}")

    @cache_resource(max_entries=1, on_release=broken_release)
    def evicting(x):
        return Resource(x)

    evicting(1)
    with caplog.at_level(logging.ERROR, logger="fastcache"):
        two = evicting(2)  # evicts 1; its on_release raises
    assert evicting(2) is two
    errors = [r for r in caplog.records if r.name == "fastcache" and r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert errors[0].exc_info is not None
    assert isinstance(errors[0].exc_info[1], RuntimeError)
    assert "cannot close 1" in str(errors[0].exc_info[1])


def test_raising_on_release_during_clear_loses_no_other_entry(caplog):
    attempted = []

    def broken_release(value):
        attempted.append(value)
        raise RuntimeError("boom")

    @cache_resource(on_release=broken_release)
    def many_entries(x):
        return Resource(x)

    values = [many_entries(n) for n in range(3)]
    with caplog.at_level(logging.ERROR, logger="fastcache"):
        many_entries.clear()
    assert sorted(v.label for v in attempted) == [0, 1, 2]
    assert all(any(a is v for a in attempted) for v in values)
    assert many_entries.cache_info().currsize == 0
    errors = [r for r in caplog.records if r.name == "fastcache" and r.levelno == logging.ERROR]
    assert len(errors) == 3


def test_raising_on_release_during_validate_failure_returns_the_recomputed_value(caplog):
    @cache_resource(validate=lambda v: v.label != "stale", on_release=lambda v: 1 / 0)
    def validate_then_fail(x):
        return Resource(x)

    old = validate_then_fail(1)
    old.label = "stale"
    with caplog.at_level(logging.ERROR, logger="fastcache"):
        new = validate_then_fail(1)
    assert new is not old and new.label == 1
    assert validate_then_fail(1) is new
    assert any(
        r.name == "fastcache" and r.exc_info and isinstance(r.exc_info[1], ZeroDivisionError)
        for r in caplog.records
    )


def test_raising_on_release_is_not_raised_to_the_caller():
    @cache_resource(on_release=lambda v: 1 / 0)
    def quiet_failure(x):
        return Resource(x)

    quiet_failure(1)
    quiet_failure.clear()  # must not raise
    fastcache.cache_resource.clear()


def test_on_release_may_recompute_the_same_key(in_thread):
    recomputed = []

    def release(value):
        if value.label == "first":
            recomputed.append(reconnecting(1))

    labels = iter(["first", "second"])

    @cache_resource(on_release=release)
    def reconnecting(x):
        return Resource(next(labels))

    first = reconnecting(1)
    in_thread(reconnecting.clear, 1).get()
    assert len(recomputed) == 1 and recomputed[0].label == "second"
    assert reconnecting(1) is recomputed[0]
    assert first.label == "first"


def test_on_release_may_call_the_same_cached_function_during_eviction(in_thread):
    def release(value):
        if value.label == 1:
            evict_chain("probe")

    @cache_resource(max_entries=2, on_release=release)
    def evict_chain(x):
        return Resource(x)

    evict_chain(1)
    evict_chain(2)
    third = in_thread(evict_chain, 3).get()
    assert third.label == 3


# --- no leaks on the hot path ----------------------------------------------------------


def test_hits_do_not_leak_references_to_the_value():
    @cache_resource(validate=lambda v: True)
    def held(x):
        return Resource(x)

    value = held(1)
    before = sys.getrefcount(value)
    for _ in range(1000):
        held(1)
    assert sys.getrefcount(value) == before


def test_many_misses_and_clears_leave_no_values_behind():
    @cache_resource(on_release=lambda v: None)
    def churn(x):
        return Resource(x)

    refs = []
    for round_ in range(20):
        refs.extend(weakref.ref(churn(n)) for n in range(50))
        churn.clear()
    gc.collect()
    assert all(r() is None for r in refs)
