"""Stress (issue 5 acceptance): 32+ threads doing random calls, clears, ``clear(args)``,
global clears and expiries on several cached functions, then the invariants: no thread
stuck, every value the bodies created released exactly once after a final clear (so, before
it, each was either cached or released once), every caller got a value of its own key, and
nothing leaked. Bounded: a few seconds of work, a 30 s deadline.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import random
import threading
import time
import weakref
from collections import Counter

from fastcache import cache_resource

THREADS = 32
WORK_SECONDS = 4.0
DEADLINE = 30.0


class Value:
    __slots__ = ("__weakref__", "function", "key", "serial")

    def __init__(self, function, key, serial):
        self.function = function
        self.key = key
        self.serial = serial

    def __repr__(self):
        return f"Value({self.function}, {self.key!r}, serial={self.serial})"


class BodyError(Exception):
    """Raised now and then by a body: never cached, the caller sees it."""


class Ledger:
    """What the bodies created and what on_release received, keyed by serial."""

    def __init__(self):
        self.lock = threading.Lock()
        self.serials = itertools.count()
        self.created = {}  # serial -> weakref to the value
        self.released = Counter()
        self.problems = []

    def create(self, function, key, rng_value):
        if rng_value < 0.02:
            raise BodyError(f"{function}({key!r})")
        value = Value(function, key, next(self.serials))
        with self.lock:
            self.created[value.serial] = weakref.ref(value)
        return value

    def release(self, value):
        with self.lock:
            if not isinstance(value, Value):
                self.problems.append(f"on_release got a foreign object {value!r}")
                return
            if value.serial not in self.created:
                self.problems.append(f"released a value no body created: {value!r}")
            self.released[value.serial] += 1
            if self.released[value.serial] > 1:
                self.problems.append(f"released twice: {value!r}")

    def unreleased(self):
        with self.lock:
            return [s for s in self.created if self.released[s] != 1]


def test_random_calls_clears_and_expiries_from_many_threads_keep_the_invariants():
    ledger = Ledger()
    rng_body = random.Random(0)
    body_lock = threading.Lock()

    def draw():
        with body_lock:
            return rng_body.random()

    # Several cached functions, each with a different mix of options.
    @cache_resource(on_release=ledger.release)
    def plain(key):
        return ledger.create("plain", key, draw())

    @cache_resource(ttl=0.05, on_release=ledger.release)
    def expiring(key):
        return ledger.create("expiring", key, draw())

    @cache_resource(max_entries=4, on_release=ledger.release)
    def bounded(key):
        # Nested cached call into another function (never back into this one).
        plain(key % 4)
        return ledger.create("bounded", key, draw())

    @cache_resource(ttl=0.1, validate=lambda v: v.serial % 5 != 0, on_release=ledger.release)
    def validated(key):
        return ledger.create("validated", key, draw())

    @cache_resource(
        max_entries=3, ttl=0.08, validate=lambda v: v.serial % 7 != 0, on_release=ledger.release
    )
    def everything(key):
        return ledger.create("everything", key, draw())

    @cache_resource(ttl=0.05, refresh_mode="background", on_release=ledger.release)
    def refreshed(key):
        return ledger.create("refreshed", key, draw())

    @cache_resource(ttl=0.06, max_entries=6, on_release=ledger.release)
    async def asynchronous(key):
        await asyncio.sleep(0)
        return ledger.create("asynchronous", key, draw())

    sync_functions = {
        "plain": plain,
        "expiring": expiring,
        "bounded": bounded,
        "validated": validated,
        "everything": everything,
        "refreshed": refreshed,
    }
    names = list(sync_functions) + ["asynchronous"]
    stop_at = time.monotonic() + WORK_SECONDS
    failures = []
    operations = Counter()

    def check(name, key, value):
        if not isinstance(value, Value) or value.function != name or value.key != key:
            failures.append(f"{name}({key!r}) returned {value!r}")

    def worker(seed):
        rng = random.Random(seed)
        loop = asyncio.new_event_loop()
        try:
            while time.monotonic() < stop_at:
                name = rng.choice(names)
                key = rng.randrange(12)
                op = rng.random()
                try:
                    if op < 0.80:
                        if name == "asynchronous":
                            value = loop.run_until_complete(asynchronous(key))
                        else:
                            value = sync_functions[name](key)
                        check(name, key, value)
                        del value
                        operations["call"] += 1
                    elif op < 0.90:
                        (asynchronous if name == "asynchronous" else sync_functions[name]).clear(
                            key
                        )
                        operations["clear(key)"] += 1
                    elif op < 0.98:
                        (asynchronous if name == "asynchronous" else sync_functions[name]).clear()
                        operations["clear()"] += 1
                    else:
                        cache_resource.clear()
                        operations["global clear"] += 1
                except BodyError:
                    operations["body error"] += 1
                if rng.random() < 0.05:
                    time.sleep(0.001)  # let expiries and refreshes happen mid-run
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            failures.append(f"thread {seed} raised {exc!r}")
        finally:
            loop.close()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(THREADS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + DEADLINE
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"{len(stuck)} threads still running after {DEADLINE} s"
    assert not failures, failures[:10]
    # The run did real work of every kind.
    assert operations["call"] > 1000, operations
    for kind in ("clear(key)", "clear()", "global clear", "body error"):
        assert operations[kind] > 0, operations

    # Final clear; background refreshes still running store or discard (and release) their
    # value shortly after, so wait for the ledger to settle.
    cache_resource.clear()
    settle_until = time.monotonic() + 5.0
    while ledger.unreleased() and time.monotonic() < settle_until:
        time.sleep(0.02)
        cache_resource.clear()

    assert not ledger.problems, ledger.problems[:10]
    unreleased = ledger.unreleased()
    assert not unreleased, (
        f"{len(unreleased)} of {len(ledger.created)} created values were not released "
        f"exactly once, e.g. serials {unreleased[:10]}"
    )
    gc.collect()
    alive = [s for s, ref in ledger.created.items() if ref() is not None]
    assert not alive, f"{len(alive)} released values are still alive (leak), e.g. {alive[:10]}"
    for function in [*sync_functions.values(), asynchronous]:
        assert function.cache_info().currsize == 0
