"""``refresh_mode="background"`` (SPEC §9, issue 5 point 2).

Ages are controlled from the outside: a value written between ``t_before`` and ``t_after``
(monotonic times around the call that wrote it) is at least ``now - t_after`` and at most
``now - t_before`` old. Refresh bodies block on events (with timeouts) so the tests see the
refresh while it runs; every gate is opened in ``finally`` so no worker stays busy after a test.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading
import time

import pytest
from fastcache import cache_resource

DEADLINE = 10.0


class Resource:
    def __init__(self, key, serial):
        self.key = key
        self.serial = serial

    def __repr__(self):
        return f"Resource({self.key!r}, serial={self.serial})"


def sleep_until(when: float) -> None:
    remaining = when - time.monotonic()
    if remaining > 0:
        time.sleep(remaining)


def wait_for(condition, timeout=5.0):
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def timed_call(func, *args):
    """``(value, seconds)`` of one call, written out so a stale hit's latency is measured."""
    start = time.monotonic()
    value = func(*args)
    return value, time.monotonic() - start


def call_from_threads(func, key, count):
    """Calls ``func(key)`` from ``count`` threads released together; their results."""
    barrier = threading.Barrier(count)
    results = [None] * count
    errors = []

    def worker(i):
        try:
            barrier.wait(5)
            results[i] = func(key)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(DEADLINE)
    assert not any(t.is_alive() for t in threads), "a stale hit hangs"
    assert not errors, errors
    return results


@pytest.mark.parametrize("ttl", [None, 0, -1, 0.0, "0s", "-1h"])
def test_background_refresh_requires_a_positive_ttl(ttl):
    with pytest.raises(ValueError):

        @cache_resource(ttl=ttl, refresh_mode="background")
        def load(key):
            return key


def test_stale_value_is_served_at_once_while_one_refresh_runs():
    ttl = 0.3
    runs = []  # the thread of each run of the body
    refresh_started = threading.Event()
    gate = threading.Event()
    released = []
    old_released = threading.Event()

    def on_release(value):
        released.append(value.serial)
        old_released.set()

    @cache_resource(ttl=ttl, refresh_mode="background", on_release=on_release)
    def load(key):
        serial = len(runs)
        runs.append(threading.get_ident())
        if serial > 0:
            refresh_started.set()
            gate.wait(DEADLINE)  # a slow refresh: the stale hit must not wait for it
        return Resource(key, serial)

    try:
        t_before = time.monotonic()
        v0 = load(1)
        t_after = time.monotonic()
        assert load(1) is v0, "age < ttl: a normal hit"
        assert len(runs) == 1

        sleep_until(t_after + ttl + 0.02)
        stale, elapsed = timed_call(load, 1)
        assert time.monotonic() < t_before + 2 * ttl, "test too slow to stay in the stale window"
        assert stale is v0, "ttl <= age < 2*ttl: the stale value is returned"
        assert elapsed < 0.05, f"the stale hit took {elapsed:.3f} s: it waited for the refresh"
        assert refresh_started.wait(5), "no background refresh started"
        assert runs[1] != threading.get_ident(), "the refresh ran in the caller's thread"

        # More stale hits while the refresh runs: served at once, no second refresh.
        results = call_from_threads(load, 1, 6)
        assert time.monotonic() < t_before + 2 * ttl, "test too slow to stay in the stale window"
        assert all(r is v0 for r in results)
        assert len(runs) == 2
        assert released == []

        gate.set()
        assert old_released.wait(5), "the replaced value was not released"
        fresh = load(1)
        assert fresh.serial == 1, "after the refresh the next call gets the new value"
        assert released == [0]
        assert len(runs) == 2, "exactly one refresh ran"
    finally:
        gate.set()


def test_several_stale_hits_at_once_start_one_refresh():
    ttl = 0.3
    runs = []
    gate = threading.Event()
    done = threading.Event()

    @cache_resource(ttl=ttl, refresh_mode="background", on_release=lambda v: done.set())
    def load(key):
        serial = len(runs)
        runs.append(serial)
        if serial > 0:
            gate.wait(DEADLINE)
        return Resource(key, serial)

    try:
        v0 = load("k")
        t_after = time.monotonic()
        sleep_until(t_after + ttl + 0.02)
        results = call_from_threads(load, "k", 8)
        assert all(r is v0 for r in results)
        gate.set()
        assert done.wait(5)
        assert load("k").serial == 1
        assert runs == [0, 1]
    finally:
        gate.set()


def test_failed_refresh_keeps_serving_the_stale_value_and_cools_down():
    ttl = 0.5
    runs = []
    attempted = threading.Event()
    released = []

    @cache_resource(ttl=ttl, refresh_mode="background", on_release=released.append)
    def load(key):
        serial = len(runs)
        runs.append(serial)
        if serial > 0:
            attempted.set()
            raise RuntimeError("the backend is down")
        return Resource(key, serial)

    t_before = time.monotonic()
    v0 = load(1)
    t_after = time.monotonic()
    sleep_until(t_after + ttl + 0.02)
    assert load(1) is v0
    assert attempted.wait(5), "no background refresh started"

    # For the rest of the stale window the stale value keeps being served and the failed
    # key is not retried (the cooldown is 60 s; only its start is observable here).
    stale_calls = 0
    while time.monotonic() < t_before + 2 * ttl - 0.1:
        assert load(1) is v0, "a failed refresh must keep serving the stale value"
        stale_calls += 1
        time.sleep(0.01)
    assert stale_calls >= 5, "test too slow to observe the cooldown"
    assert runs == [0, 1], f"the failed key was refreshed again {len(runs) - 2} times"
    assert released == [], "a failed refresh must not release the stale value"


def test_entry_older_than_twice_ttl_is_a_blocking_miss():
    ttl = 0.2
    runs = []
    released = []

    @cache_resource(ttl=ttl, refresh_mode="background", on_release=released.append)
    def load(key):
        runs.append(threading.get_ident())
        return Resource(key, len(runs) - 1)

    v0 = load(1)
    t_after = time.monotonic()
    sleep_until(t_after + 2 * ttl + 0.02)
    value = load(1)
    assert value is not v0
    assert value.serial == 1
    assert runs[1] == threading.get_ident(), "age >= 2*ttl must compute in the caller"
    # Released by this miss or, already, by the reaper (maybe still running on_release).
    assert wait_for(lambda: released == [v0]), released
    assert load(1) is value


@pytest.mark.parametrize("how", ["function", "key", "global"])
def test_clear_during_refresh_discards_and_releases_the_refreshed_value(how):
    ttl = 0.3
    runs = []
    refresh_started = threading.Event()
    gate = threading.Event()
    released = []
    refreshed_released = threading.Event()

    def on_release(value):
        released.append(value.serial)
        if value.serial == 1:
            refreshed_released.set()

    @cache_resource(ttl=ttl, refresh_mode="background", on_release=on_release)
    def load(key):
        serial = len(runs)
        runs.append(serial)
        if serial == 1:
            refresh_started.set()
            gate.wait(DEADLINE)
        return Resource(key, serial)

    try:
        v0 = load(1)
        t_after = time.monotonic()
        sleep_until(t_after + ttl + 0.02)
        assert load(1) is v0
        assert refresh_started.wait(5)
        if how == "function":
            load.clear()
        elif how == "key":
            load.clear(1)
        else:
            cache_resource.clear()
        assert released == [0], "the clear releases the stale value"
        gate.set()
        assert refreshed_released.wait(5), "the discarded refreshed value was not released"
        value = load(1)
        assert value.serial == 2, "the refreshed value must not be stored after a clear"
        assert released == [0, 1]
    finally:
        gate.set()


def test_async_function_refreshes_in_the_background(run_async):
    ttl = 0.3
    runs = []
    refresh_started = threading.Event()
    gate = threading.Event()
    released = []
    old_released = threading.Event()

    def on_release(value):
        released.append(value.serial)
        old_released.set()

    async def until(event):
        end = time.monotonic() + 5
        while not event.is_set() and time.monotonic() < end:
            await asyncio.sleep(0.002)
        return event.is_set()

    @cache_resource(ttl=ttl, refresh_mode="background", on_release=on_release)
    async def load(key):
        serial = len(runs)
        runs.append(serial)
        if serial > 0:
            refresh_started.set()
            await until(gate)
        return Resource(key, serial)

    async def main():
        t_before = time.monotonic()
        v0 = await load(1)
        t_after = time.monotonic()
        assert await load(1) is v0
        await asyncio.sleep(max(0.0, t_after + ttl + 0.02 - time.monotonic()))
        start = time.monotonic()
        stale = await load(1)
        elapsed = time.monotonic() - start
        assert time.monotonic() < t_before + 2 * ttl
        assert stale is v0
        assert elapsed < 0.05, f"the stale await took {elapsed:.3f} s"
        assert await until(refresh_started), "no background refresh started"
        assert await load(1) is v0
        gate.set()
        assert await until(old_released), "the replaced value was not released"
        return await load(1)

    try:
        fresh = run_async(main)
    finally:
        gate.set()
    assert fresh.serial == 1
    assert released == [0]
    assert runs == [0, 1]


def test_busy_refresh_pool_skips_instead_of_queueing():
    ttl = 0.5
    keys = range(64)
    refreshes = []
    lock = threading.Lock()
    gate = threading.Event()
    first_values = {}

    @cache_resource(ttl=ttl, refresh_mode="background")
    def load(key):
        if key in first_values:
            with lock:
                refreshes.append(key)
            gate.wait(DEADLINE)
        return Resource(key, 1 if key in first_values else 0)

    try:
        t_before = time.monotonic()
        for key in keys:
            first_values[key] = load(key)
        t_after = time.monotonic()
        sleep_until(t_after + ttl + 0.02)
        for key in keys:
            assert load(key) is first_values[key], "a stale hit must not wait for the pool"
        gate.set()
        time.sleep(0.2)  # a queued refresh would run now that the pool is free
        assert time.monotonic() < t_before + 2 * ttl, "test too slow to stay in the stale window"
        with lock:
            count = len(refreshes)
        assert 1 <= count < len(keys), f"{count} refreshes for {len(keys)} stale keys"
    finally:
        gate.set()


def test_refresh_workers_do_not_keep_the_interpreter_alive():
    code = textwrap.dedent(
        """
        import threading, time
        import fastcache

        started = threading.Event()
        never = threading.Event()
        runs = []

        @fastcache.cache_resource(ttl=0.2, refresh_mode="background")
        def load(key):
            runs.append(key)
            if len(runs) > 1:
                started.set()
                never.wait()  # blocks forever: only a daemon worker lets the process exit
            return object()

        load(1)
        time.sleep(0.25)
        load(1)
        assert started.wait(5), "no background refresh started"
        print("main script done", flush=True)
        """
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the process did not exit: a refresh worker keeps the interpreter alive")
    assert proc.returncode == 0, proc.stderr
    assert "main script done" in proc.stdout
    assert proc.stderr == ""


# --- one computation per key, same-object refreshes, the caller's event loop ------------


def test_refresh_returning_the_cached_object_does_not_release_it():
    ttl = 0.2
    singleton = Resource("pool", 0)
    refreshed = threading.Event()
    released = []

    @cache_resource(ttl=ttl, refresh_mode="background", on_release=released.append)
    def client(key):
        if refreshed_once := len(calls) > 0:
            refreshed.set()
        calls.append(refreshed_once)
        return singleton

    calls = []
    assert client(1) is singleton
    time.sleep(ttl + 0.02)
    assert client(1) is singleton  # stale: refreshed in the background
    assert refreshed.wait(5)
    assert wait_for(lambda: client.cache_info().currsize == 1 and len(calls) == 2)
    time.sleep(0.05)  # a wrongful release would come right after the refresh stored
    assert released == [], "the refresh released the object it still serves"
    assert client(1) is singleton
    client.clear()
    assert released == [singleton]


def test_clear_during_a_refresh_returning_the_cached_object_releases_it_once():
    ttl = 0.3
    singleton = Resource("pool", 0)
    refresh_started, gate, refresh_done = threading.Event(), threading.Event(), threading.Event()
    released = []
    calls = []

    @cache_resource(ttl=ttl, refresh_mode="background", on_release=released.append)
    def client(key):
        calls.append(key)
        if len(calls) == 2:
            refresh_started.set()
            gate.wait(DEADLINE)
            refresh_done.set()
        return singleton

    try:
        client(1)
        time.sleep(ttl + 0.02)
        client(1)
        assert refresh_started.wait(5)
        client.clear()
        assert released == [singleton]
        gate.set()
        assert refresh_done.wait(5)
        time.sleep(0.05)  # the discarded refresh ends now
        assert released == [singleton], "released twice"
    finally:
        gate.set()


def test_a_caller_after_twice_ttl_waits_for_the_running_refresh():
    """A refresh that outlasts ttl: a call at 2·ttl is a miss, and it shares the running
    refresh instead of starting a second body for the key."""
    ttl = 0.2
    lock = threading.Lock()
    active, most_active, runs = [0], [0], []
    refresh_started, gate = threading.Event(), threading.Event()

    @cache_resource(ttl=ttl, refresh_mode="background")
    def load(key):
        with lock:
            active[0] += 1
            most_active[0] = max(most_active[0], active[0])
            serial = len(runs)
            runs.append(serial)
        try:
            if serial == 1:
                refresh_started.set()
                gate.wait(DEADLINE)
            return Resource(key, serial)
        finally:
            with lock:
                active[0] -= 1

    try:
        v0 = load(1)
        written = time.monotonic()
        sleep_until(written + ttl + 0.02)
        assert load(1) is v0  # stale: the refresh starts and blocks
        assert refresh_started.wait(5)
        sleep_until(written + 2 * ttl + 0.05)
        result = {}
        caller = threading.Thread(target=lambda: result.setdefault("v", load(1)), daemon=True)
        caller.start()
        caller.join(0.2)
        assert caller.is_alive(), "the caller after 2·ttl did not wait for the refresh"
        assert runs == [0, 1], "a second body started beside the running refresh"
        gate.set()
        caller.join(DEADLINE)
        assert not caller.is_alive()
    finally:
        gate.set()
    assert result["v"].serial == 1, "the waiting caller gets the refreshed value"
    assert load(1) is result["v"]
    assert most_active[0] == 1
    assert runs == [0, 1]


def test_a_caller_waiting_for_a_refresh_that_a_clear_discards_computes_the_key():
    ttl = 0.2
    runs = []
    refresh_started, gate = threading.Event(), threading.Event()
    released = []

    @cache_resource(ttl=ttl, refresh_mode="background", on_release=released.append)
    def load(key):
        serial = len(runs)
        runs.append(serial)
        if serial == 1:
            refresh_started.set()
            gate.wait(DEADLINE)
        return Resource(key, serial)

    try:
        load(1)
        written = time.monotonic()
        sleep_until(written + ttl + 0.02)
        load(1)
        assert refresh_started.wait(5)
        sleep_until(written + 2 * ttl + 0.05)
        result = {}
        caller = threading.Thread(target=lambda: result.setdefault("v", load(1)), daemon=True)
        caller.start()
        caller.join(0.1)
        load.clear()  # discards the refresh: the waiting caller computes the key itself
        caller.join(DEADLINE)
        assert not caller.is_alive(), "the caller hangs on a discarded refresh"
        value = result["v"]
        assert value.serial == 2
        assert value not in released
        assert load(1) is value
    finally:
        gate.set()


class LoopBound:
    """A value tied to the event loop it was made on, as streams and async clients are."""

    def __init__(self, serial):
        self.serial = serial
        self.loop = asyncio.get_running_loop()
        self.queue: asyncio.Queue[int] = asyncio.Queue()

    async def use(self):
        assert asyncio.get_running_loop() is self.loop, "used on another loop"
        self.queue.put_nowait(self.serial)
        return await self.queue.get()


def test_async_refresh_runs_on_the_loop_of_the_stale_call(run_async):
    ttl = 0.3
    runs = []

    @cache_resource(ttl=ttl, refresh_mode="background")
    async def connect(key):
        runs.append(key)
        await asyncio.sleep(0)
        return LoopBound(len(runs) - 1)

    async def main():
        v0 = await connect(1)
        await asyncio.sleep(ttl + 0.02)
        assert await connect(1) is v0  # stale: the refresh is a task of this loop
        end = time.monotonic() + 5
        while (fresh := await connect(1)) is v0 and time.monotonic() < end:
            await asyncio.sleep(0.005)
        return asyncio.get_running_loop(), fresh, await fresh.use()

    loop, fresh, used = run_async(main)
    assert fresh.serial == 1, "never refreshed"
    assert fresh.loop is loop, "the refresh ran on another event loop"
    assert used == 1


def test_async_refresh_is_given_up_when_its_loop_ends_and_retried_on_the_next(run_async):
    ttl = 1.0
    runs = []
    gate = threading.Event()
    refresh_started = threading.Event()

    @cache_resource(ttl=ttl, refresh_mode="background")
    async def connect(key):
        runs.append(key)
        if len(runs) == 2:
            refresh_started.set()
            while not gate.is_set():  # blocked until its loop goes away
                await asyncio.sleep(0.005)
        return LoopBound(len(runs) - 1)

    written = []

    async def first_loop():
        v0 = await connect(1)
        written.append(time.monotonic())
        await asyncio.sleep(ttl + 0.02)
        assert await connect(1) is v0  # stale: its refresh starts here, then blocks
        while not refresh_started.is_set():
            await asyncio.sleep(0.005)
        return v0  # the loop ends, cancelling the refresh

    async def second_loop():
        v0_again = await connect(1)  # still stale: a new refresh, on this loop
        end = written[0] + 2 * ttl - 0.1  # before the entry is old enough for a plain miss
        while (fresh := await connect(1)) is v0_again and time.monotonic() < end:
            await asyncio.sleep(0.005)
        return asyncio.get_running_loop(), v0_again, fresh

    try:
        v0 = run_async(first_loop)
        loop, v0_again, fresh = run_async(second_loop)
    finally:
        gate.set()
    assert v0_again is v0
    assert fresh.serial == 2 and fresh.loop is loop
    assert len(runs) == 3


def test_an_async_caller_after_twice_ttl_waits_for_the_running_refresh(run_async):
    ttl = 0.2
    active, most_active, runs = [0], [0], []
    gate = threading.Event()

    @cache_resource(ttl=ttl, refresh_mode="background")
    async def connect(key):
        active[0] += 1
        most_active[0] = max(most_active[0], active[0])
        runs.append(key)
        try:
            if len(runs) == 2:  # the refresh: outlasts 2·ttl
                while not gate.is_set():
                    await asyncio.sleep(0.005)
            return LoopBound(len(runs) - 1)
        finally:
            active[0] -= 1

    async def main():
        v0 = await connect(1)
        written = time.monotonic()
        await asyncio.sleep(ttl + 0.02)
        assert await connect(1) is v0  # stale: the refresh starts on this loop and blocks
        await asyncio.sleep(max(0.0, written + 2 * ttl + 0.05 - time.monotonic()))
        late = asyncio.create_task(connect(1))  # expired: must share the refresh
        await asyncio.sleep(0.1)
        assert not late.done(), "the call after 2·ttl did not wait for the refresh"
        assert len(runs) == 2, "a second body started beside the running refresh"
        gate.set()
        value = await late
        return value, await connect(1)

    try:
        value, again = run_async(main)
    finally:
        gate.set()
    assert value.serial == 1 and again is value
    assert most_active[0] == 1
    assert len(runs) == 2


def test_callers_do_not_wait_for_a_refresh_whose_loop_stopped_with_it_pending():
    """A loop run by hand (run_until_complete, then close) can stop with its refresh task
    pending: callers after 2·ttl, waiting or arriving, compute the key themselves."""
    ttl = 0.2
    runs = []
    refresh_started, caller_waiting = threading.Event(), threading.Event()

    @cache_resource(ttl=ttl, refresh_mode="background")
    async def connect(key):
        runs.append(key)
        if len(runs) == 2:
            refresh_started.set()
            await asyncio.sleep(3600)  # pending when its loop stops
        return LoopBound(len(runs) - 1)

    written = []

    async def first():
        v0 = await connect(1)
        written.append(time.monotonic())
        await asyncio.sleep(ttl + 0.02)
        assert await connect(1) is v0  # stale: its refresh starts on this loop
        while not caller_waiting.is_set():
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.1)  # the other caller is waiting for the refresh now

    async def second():
        assert refresh_started.wait(5)
        await asyncio.sleep(max(0.0, written[0] + 2 * ttl + 0.05 - time.monotonic()))
        caller_waiting.set()
        return await connect(1)

    result = {}
    caller = threading.Thread(
        target=lambda: result.setdefault("value", asyncio.run(second())), daemon=True
    )
    caller.start()
    by_hand = asyncio.new_event_loop()
    try:
        by_hand.run_until_complete(first())
    finally:
        by_hand.close()  # the refresh task stays pending in the closed loop
    caller.join(DEADLINE)
    assert not caller.is_alive(), "a caller waits for a refresh whose loop stopped"
    assert result["value"].serial == 2
    late = asyncio.run(connect(1))  # arriving now: the entry is fresh again
    assert late is result["value"]
    del by_hand


def test_a_caller_arriving_after_a_refresh_loop_closed_computes_the_key(run_async):
    ttl = 0.2
    runs = []
    refresh_started = threading.Event()

    @cache_resource(ttl=ttl, refresh_mode="background")
    async def connect(key):
        runs.append(key)
        if len(runs) == 2:
            refresh_started.set()
            await asyncio.sleep(3600)  # pending when its loop stops
        return LoopBound(len(runs) - 1)

    async def first():
        v0 = await connect(1)
        await asyncio.sleep(ttl + 0.02)
        assert await connect(1) is v0  # stale: its refresh starts on this loop
        while not refresh_started.is_set():
            await asyncio.sleep(0.005)
        return time.monotonic() - ttl - 0.02

    by_hand = asyncio.new_event_loop()
    try:
        written = by_hand.run_until_complete(first())
    finally:
        by_hand.close()
    sleep_until(written + 2 * ttl + 0.05)
    value = run_async(lambda: connect(1))
    assert value.serial == 2
    del by_hand
