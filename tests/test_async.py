"""Cached ``async def`` functions (SPEC §8, issue 5 point 1).

Every event loop runs in a daemon thread with a deadline (``run_async``), so a cached call
that blocks its loop or never completes fails the test instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import gc
import inspect
import itertools
import threading
import time
import warnings
import weakref

import fastcache
import pytest
from fastcache import cache_resource

# Guards against hangs only; every test finishes in well under a second when it passes.
DEADLINE = 10.0


class Resource:
    """A cached value that says which key produced it and which run of the body made it."""

    def __init__(self, key, serial):
        self.key = key
        self.serial = serial

    def __repr__(self):
        return f"Resource({self.key!r}, serial={self.serial})"


async def until(event: threading.Event, timeout: float = 5.0) -> None:
    """Waits for a threading.Event without blocking the running loop."""
    end = time.monotonic() + timeout
    while not event.is_set():
        if time.monotonic() > end:
            raise TimeoutError("event not set in time")
        await asyncio.sleep(0.002)


def test_cached_async_function_is_a_coroutine_function():
    @cache_resource
    async def load(key):
        return key

    @cache_resource
    def load_sync(key):
        return key

    class Client:
        @cache_resource
        async def connect(self, url):
            return url

    assert inspect.iscoroutinefunction(load)
    assert asyncio.iscoroutinefunction(load)
    assert inspect.iscoroutinefunction(Client.connect)
    assert inspect.iscoroutinefunction(Client().connect)
    assert not inspect.iscoroutinefunction(load_sync)


def test_calling_cached_async_function_returns_an_awaitable(run_async):
    @cache_resource
    async def load(key):
        return Resource(key, 0)

    async def main():
        pending = load(1)
        assert inspect.isawaitable(pending)
        return await pending

    value = run_async(main)
    assert isinstance(value, Resource)
    assert value.key == 1


def test_awaited_value_is_cached_not_the_coroutine(run_async):
    serials = itertools.count()

    @cache_resource
    async def load(key):
        await asyncio.sleep(0)
        return Resource(key, next(serials))

    async def main():
        first = await load(1)
        second = await load(1)
        other = await load(2)
        return first, second, other

    first, second, other = run_async(main)
    assert isinstance(first, Resource)
    assert second is first
    assert other.key == 2 and other is not first
    assert next(serials) == 2  # the body ran once per key
    assert load.cache_info().currsize == 2


def test_cached_value_survives_across_event_loops(run_async):
    serials = itertools.count()

    @cache_resource
    async def load(key):
        return Resource(key, next(serials))

    async def main():
        return await load("k")

    first = run_async(main)
    second = run_async(main)
    assert second is first
    assert next(serials) == 1


def test_gathered_awaits_of_one_key_compute_once(run_async):
    serials = itertools.count()

    @cache_resource
    async def load(key):
        serial = next(serials)
        await asyncio.sleep(0.05)
        return Resource(key, serial)

    async def main():
        return await asyncio.gather(*[load(1) for _ in range(10)])

    results = run_async(main)
    assert len(results) == 10
    assert all(r is results[0] for r in results)
    assert next(serials) == 1


def test_different_keys_compute_concurrently_on_one_loop(run_async):
    started = {1: threading.Event(), 2: threading.Event()}

    @cache_resource
    async def load(key):
        started[key].set()
        # Each computation needs the other one to have started: serialising them would
        # time out here.
        await until(started[3 - key], timeout=5)
        return Resource(key, 0)

    async def main():
        return await asyncio.gather(load(1), load(2))

    one, two = run_async(main)
    assert (one.key, two.key) == (1, 2)


def test_threads_with_their_own_loops_compute_once_without_blocking_them():
    runs = []
    go = threading.Event()

    @cache_resource
    async def load(key):
        runs.append(threading.get_ident())
        await until(go, timeout=DEADLINE)
        return Resource(key, len(runs))

    # Set by thread i once its loop has ticked 5 times while its task awaited load("k").
    ticked = [threading.Event() for _ in range(4)]
    results = [None] * 4
    errors = []

    def worker(i):
        async def main():
            awaiting = False
            ticks = 0

            async def ticker():
                nonlocal ticks
                while True:
                    await asyncio.sleep(0.005)
                    if awaiting:
                        ticks += 1
                        if ticks >= 5:
                            ticked[i].set()

            task = asyncio.create_task(ticker())
            await asyncio.sleep(0)
            awaiting = True
            try:
                return await load("k")
            finally:
                task.cancel()

        try:
            results[i] = asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(4)]
    for thread in threads:
        thread.start()
    try:
        for i, event in enumerate(ticked):
            assert event.wait(5), (
                f"the event loop of thread {i} stopped running while its task awaited "
                "the cached function"
            )
    finally:
        go.set()
        for thread in threads:
            thread.join(DEADLINE)
    assert not any(t.is_alive() for t in threads), "a thread awaiting the cached call hangs"
    assert not errors, errors
    assert len(runs) == 1, f"the body ran {len(runs)} times for one key"
    assert all(r is results[0] for r in results)


def test_exception_is_not_cached(run_async):
    attempts = []

    @cache_resource
    async def load(key):
        attempts.append(key)
        await asyncio.sleep(0)
        if len(attempts) == 1:
            raise ValueError("first attempt fails")
        return Resource(key, len(attempts))

    async def main():
        with pytest.raises(ValueError, match="first attempt fails"):
            await load(1)
        value = await load(1)
        again = await load(1)
        return value, again

    value, again = run_async(main)
    assert value.serial == 2
    assert again is value
    assert len(attempts) == 2


def test_waiters_retry_when_the_owner_raises(run_async):
    attempts = []

    @cache_resource
    async def load(key):
        attempts.append(key)
        await asyncio.sleep(0.05)
        if len(attempts) == 1:
            raise ValueError("owner fails")
        return Resource(key, len(attempts))

    async def main():
        return await asyncio.gather(*[load(1) for _ in range(5)], return_exceptions=True)

    results = run_async(main)
    errors = [r for r in results if isinstance(r, BaseException)]
    values = [r for r in results if not isinstance(r, BaseException)]
    assert len(errors) == 1 and isinstance(errors[0], ValueError)
    assert len(values) == 4
    assert all(v is values[0] for v in values)
    assert len(attempts) == 2


def test_cancelling_a_waiter_does_not_cancel_the_computation(run_async):
    started = threading.Event()
    gate = threading.Event()
    outcome = []
    serials = itertools.count()

    @cache_resource
    async def load(key):
        serial = next(serials)
        started.set()
        try:
            await until(gate, timeout=5)
        except BaseException as exc:
            outcome.append(type(exc).__name__)
            raise
        outcome.append("finished")
        return Resource(key, serial)

    async def main():
        owner = asyncio.create_task(load(1))
        await until(started)
        waiter = asyncio.create_task(load(1))
        for _ in range(10):
            await asyncio.sleep(0)  # the waiter is now waiting for the owner's computation
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        gate.set()
        value = await owner
        stored = await load(1)
        return value, stored

    value, stored = run_async(main)
    assert outcome == ["finished"]
    assert value.serial == 0
    assert stored is value
    assert next(serials) == 1


def test_cancelling_the_owner_lets_a_waiter_compute(run_async):
    started = threading.Event()
    never = threading.Event()
    outcome = []
    serials = itertools.count()

    @cache_resource
    async def load(key):
        serial = next(serials)
        if serial == 0:
            started.set()
            try:
                await until(never, timeout=DEADLINE)
            except asyncio.CancelledError:
                outcome.append("owner cancelled")
                raise
        return Resource(key, serial)

    async def main():
        owner = asyncio.create_task(load(1))
        await until(started)
        waiter = asyncio.create_task(load(1))
        for _ in range(10):
            await asyncio.sleep(0)
        owner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await owner
        value = await asyncio.wait_for(waiter, 5)
        stored = await load(1)
        return value, stored

    value, stored = run_async(main)
    assert outcome == ["owner cancelled"]
    assert value.serial == 1, "the waiter's value must come from its own run of the body"
    assert stored is value
    assert next(serials) == 2


def test_cancelled_computation_is_not_cached(run_async):
    started = threading.Event()
    never = threading.Event()
    serials = itertools.count()

    @cache_resource
    async def load(key):
        serial = next(serials)
        if serial == 0:
            started.set()
            await until(never, timeout=DEADLINE)
        return Resource(key, serial)

    async def main():
        owner = asyncio.create_task(load(1))
        await until(started)
        owner.cancel()
        with pytest.raises(asyncio.CancelledError):
            await owner
        return await asyncio.wait_for(load(1), 5)

    value = run_async(main)
    assert value.serial == 1


@pytest.mark.parametrize("how", ["function", "key", "global"])
def test_clear_during_async_computation_returns_and_stores_the_value(how, run_async):
    started = threading.Event()
    gate = threading.Event()
    released = []
    serials = itertools.count()

    @cache_resource(on_release=released.append)
    async def load(key):
        serial = next(serials)
        if serial == 0:
            started.set()
            await until(gate)
        return Resource(key, serial)

    async def main():
        first = asyncio.create_task(load(1))
        waiter = asyncio.create_task(load(1))
        await until(started)
        if how == "function":
            load.clear()
        elif how == "key":
            load.clear(1)
        else:
            cache_resource.clear()
        gate.set()
        value = await first
        waited = await waiter
        released_by_then = list(released)
        again = await load(1)
        return value, waited, released_by_then, again

    value, waited, released_by_then, again = run_async(main)
    assert value.serial == 0, "the caller gets the value computed during the clear"
    assert waited is value, "a waiter shares it"
    assert released_by_then == [], "nobody may receive a value already released"
    assert again is value, "the value computed during the clear is stored"
    load.clear()
    assert released == [value]


def test_async_values_are_released_and_freed_on_clear(run_async):
    released = []

    @cache_resource(on_release=lambda v: released.append(v.serial))
    async def load(key):
        await asyncio.sleep(0)
        return Resource(key, key)

    async def main():
        return [weakref.ref(await load(k)) for k in range(3)]

    refs = run_async(main)
    assert all(r() is not None for r in refs)
    load.clear()
    gc.collect()
    assert sorted(released) == [0, 1, 2]
    assert all(r() is None for r in refs), "a released async value is still referenced"


def test_async_method_binds_like_a_method(run_async):
    serials = itertools.count()

    class Client:
        @cache_resource
        async def get(_self, key):
            return Resource(key, next(serials))

    async def main():
        client = Client()
        return await client.get(1), await client.get(1), await Client().get(1)

    first, second, third = run_async(main)
    assert second is first
    assert third is first  # `_self` is not hashed
    assert next(serials) == 1


def test_async_generator_function_is_rejected_at_decoration():
    async def stream(key):
        yield key

    with pytest.raises(TypeError):
        cache_resource(stream)
    with pytest.raises(TypeError):
        cache_resource(ttl=60)(stream)


def test_sync_function_returning_a_coroutine_raises_and_closes_it():
    made = []

    async def connect():
        return "connection"

    @cache_resource
    def load(key):
        coro = connect()
        made.append(coro)
        return coro

    with pytest.raises(TypeError):
        load(1)
    assert inspect.getcoroutinestate(made[0]) == inspect.CORO_CLOSED
    assert load.cache_info().currsize == 0
    with pytest.raises(TypeError):
        load(1)  # nothing was cached: the body runs (and is rejected) again
    assert len(made) == 2


def test_sync_function_returning_a_coroutine_leaves_no_never_awaited_warning():
    async def connect():
        return "connection"

    @cache_resource
    def load(key):
        return connect()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(TypeError):
            load(1)
        gc.collect()
    never_awaited = [w for w in caught if "never awaited" in str(w.message)]
    assert never_awaited == []


def test_async_task_awaiting_its_own_key_raises_reentrant_call_error(run_async):
    attempts = []

    @cache_resource
    async def load(key):
        attempts.append(key)
        if len(attempts) == 1:
            return await load(key)
        return Resource(key, len(attempts))

    async def main():
        start = time.monotonic()
        with pytest.raises(fastcache.ReentrantCallError):
            # A hang shows up as TimeoutError here (or as the run_async deadline when the
            # loop itself is blocked).
            await asyncio.wait_for(load(1), 1.0)
        elapsed = time.monotonic() - start
        value = await asyncio.wait_for(load(1), 5)
        return elapsed, value

    elapsed, value = run_async(main)
    assert elapsed < 1.0
    assert value.serial == 2, "the key must not stay stuck after the re-entrant call"
