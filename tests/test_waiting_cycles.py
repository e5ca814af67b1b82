"""Waiting cycles raise instead of hanging: two cached functions that need each other,
started on two threads (or tasks) at once, and an ``async def`` that awaits its own key
through a task it started. Waits that do end (single flight, chains without a cycle) are
never refused.

Whatever could hang runs in a daemon thread with a deadline, so a regression fails the test
instead of hanging the suite.
"""

from __future__ import annotations

import asyncio
import threading
import time

import fastcache
import pytest
from conftest import HANG_TIMEOUT, start_thread
from fastcache import cache_resource


def results_of(*calls):
    """Joins the calls (each a ThreadResult) and returns their values or exceptions."""
    out = []
    for call in calls:
        call.join()
        out.append(call.error if call.error is not None else call.value)
    return out


def meet_once(parties):
    """``meet(name)`` blocks the first call of each name until ``parties`` names have
    arrived, so that many computations are running at once; later calls pass through."""
    barrier = threading.Barrier(parties)
    arrived = set()
    lock = threading.Lock()

    def meet(name):
        with lock:
            first = name not in arrived
            arrived.add(name)
        if first:
            barrier.wait(HANG_TIMEOUT)

    return meet


def test_two_functions_needing_each_other_on_two_threads_raise_instead_of_hanging():
    meet = meet_once(2)

    @cache_resource
    def load_a(key):
        meet("a")
        return ("a", load_b(key))

    @cache_resource
    def load_b(key):
        meet("b")
        return ("b", load_a(key))

    outcomes = results_of(start_thread(load_a, 1), start_thread(load_b, 1))
    assert all(isinstance(o, fastcache.ReentrantCallError) for o in outcomes), outcomes
    cycle = [str(o) for o in outcomes if "waiting cycle" in str(o)]
    assert len(cycle) == 1, "exactly one participant finds the cycle"
    assert "load_a(1)" in cycle[0] and "load_b(1)" in cycle[0], cycle[0]
    # Nothing is left stuck: the pair is genuinely circular, so a lone call raises too.
    (again,) = results_of(start_thread(load_a, 1))
    assert isinstance(again, fastcache.ReentrantCallError)
    assert load_a.cache_info().currsize == load_b.cache_info().currsize == 0


def test_a_cycle_through_three_threads_is_found():
    meet = meet_once(3)

    def step(name, after):
        def body(key):
            meet(name)
            return (name, after()(key))

        body.__name__ = body.__qualname__ = name
        return cache_resource(body)

    first = step("first", lambda: second)
    second = step("second", lambda: third)
    third = step("third", lambda: first)

    outcomes = results_of(*(start_thread(f, "k") for f in (first, second, third)))
    assert all(isinstance(o, fastcache.ReentrantCallError) for o in outcomes), outcomes
    # The first participant to close the cycle names all three; the others, retrying
    # as its computation fails, may meet shorter cycles of what is left.
    messages = [str(o) for o in outcomes if "waiting cycle" in str(o)]
    assert any(all(f"{n}('k')" in m for n in ("first", "second", "third")) for m in messages), (
        messages
    )


def test_a_chain_without_a_cycle_waits_and_shares():
    """1 computes A and needs B; 2 computes B; 3 wants A. Everyone waits, nobody raises."""
    b_started, b_gate = threading.Event(), threading.Event()
    runs = []

    @cache_resource
    def slow_b(key):
        runs.append("b")
        b_started.set()
        assert b_gate.wait(HANG_TIMEOUT)
        return ["b", key]

    @cache_resource
    def needs_b(key):
        runs.append("a")
        return ["a", slow_b(key)]

    owner_b = start_thread(slow_b, 1)
    assert b_started.wait(HANG_TIMEOUT)
    owner_a = start_thread(needs_b, 1)
    waiters = [start_thread(needs_b, 1) for _ in range(4)] + [start_thread(slow_b, 1)]
    time.sleep(0.05)  # let them all reach their waits
    b_gate.set()
    a_value = owner_a.get()
    assert all(w.get() in (a_value, owner_b.get()) for w in waiters)
    assert sorted(runs) == ["a", "b"]


def test_a_wait_on_a_computation_that_just_finished_is_not_a_cycle():
    """1 computes B and waits for A; 2 finishes A and at once asks for B. 1 is waking up
    (its wait is over) and will finish B, so 2 must wait for it, not raise."""
    a_started, a_gate = threading.Event(), threading.Event()

    @cache_resource
    def part_a(key):
        a_started.set()
        assert a_gate.wait(HANG_TIMEOUT)
        return ["a", key]

    @cache_resource
    def part_b(key):
        assert a_started.wait(HANG_TIMEOUT)
        return ["b", part_a(key)]

    def a_then_b(key):
        part_a(key)
        return part_b(key)

    for attempt in range(20):
        a_started.clear()
        a_gate.clear()
        second = start_thread(a_then_b, attempt)
        assert a_started.wait(HANG_TIMEOUT)
        first = start_thread(part_b, attempt)
        time.sleep(0.01)  # let 1 wait for A
        a_gate.set()
        assert first.get() is second.get()


def test_many_threads_on_one_key_still_share_one_computation():
    gate = threading.Event()
    runs = []

    @cache_resource
    def shared(key):
        runs.append(key)
        assert gate.wait(HANG_TIMEOUT)
        return [key]

    calls = [start_thread(shared, 1) for _ in range(16)]
    time.sleep(0.05)
    gate.set()
    values = [c.get() for c in calls]
    assert runs == [1]
    assert all(v is values[0] for v in values)


def test_a_thread_started_inside_a_computation_gets_its_value():
    """Not a cycle: the computation does not wait for the thread it starts."""
    box = {}

    @cache_resource
    def spawning(key):
        if key == 1 and "thread" not in box:
            box["thread"] = start_thread(spawning, 1)  # waits for this very computation
            time.sleep(0.05)
        return [key]

    value = spawning(1)
    assert box["thread"].get() is value


# --- asyncio: tasks started inside a computation ------------------------------------------


def run_with_deadline(main):
    box = {}

    def target():
        try:
            box["value"] = asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(HANG_TIMEOUT)
    if thread.is_alive():
        pytest.fail("the event loop is still running: a cached await hangs")
    if "error" in box:
        raise box["error"]
    return box["value"]


CHILD_TASK_FORMS = {
    "gather": lambda coro: asyncio.gather(coro),
    "wait_for": lambda coro: asyncio.wait_for(coro, 5),
    "create_task": lambda coro: asyncio.create_task(coro),
    "ensure_future": lambda coro: asyncio.ensure_future(coro),
}


@pytest.mark.parametrize("form", list(CHILD_TASK_FORMS))
def test_awaiting_its_own_key_through_a_child_task_raises(form):
    wrap = CHILD_TASK_FORMS[form]

    @cache_resource
    async def self_awaiting(key):
        await asyncio.sleep(0)
        return await wrap(self_awaiting(key))

    async def main():
        start = time.monotonic()
        try:
            await self_awaiting(1)
        except fastcache.ReentrantCallError as exc:
            return exc, time.monotonic() - start
        return None, time.monotonic() - start

    error, seconds = run_with_deadline(main)
    assert isinstance(error, fastcache.ReentrantCallError), f"got {error!r}"
    assert "self_awaiting" in str(error)
    assert seconds < 2, "it waited for a timeout instead of raising"


def test_awaiting_its_own_key_through_a_task_group_raises():
    @cache_resource
    async def grouped(key):
        async with asyncio.TaskGroup() as group:
            child = group.create_task(grouped(key))
        return child.result()

    async def main():
        try:
            await grouped(1)
        except BaseExceptionGroup as group:
            return group.exceptions
        return None

    errors = run_with_deadline(main)
    assert errors and all(isinstance(e, fastcache.ReentrantCallError) for e in errors), errors


def test_a_nested_child_task_awaiting_an_ancestors_key_raises():
    @cache_resource
    async def outer(key):
        return await asyncio.gather(inner(key))

    @cache_resource
    async def inner(key):
        return await asyncio.wait_for(outer(key), 5)

    async def main():
        try:
            await outer(1)
        except fastcache.ReentrantCallError as exc:
            return exc
        return None

    assert isinstance(run_with_deadline(main), fastcache.ReentrantCallError)


def test_child_tasks_asking_for_other_keys_run_normally():
    @cache_resource
    async def fan_out(key):
        if key == 0:
            return sum(await asyncio.gather(*(fan_out(k) for k in range(1, 5))))
        await asyncio.sleep(0)
        return key

    assert run_with_deadline(lambda: fan_out(0)) == 10


def test_a_task_started_inside_a_computation_that_asks_after_it_ended_gets_the_value():
    started = {}

    @cache_resource
    async def spawning(key):
        async def later():
            await started["done"].wait()
            return await spawning(key)

        started["task"] = asyncio.create_task(later())
        return [key]

    async def main():
        started["done"] = done = asyncio.Event()
        value = await spawning(1)
        done.set()
        return value, await started["task"]

    value, from_task = run_with_deadline(main)
    assert from_task is value


def test_two_async_functions_needing_each_other_in_two_tasks_raise():
    @cache_resource
    async def ping(key):
        await asyncio.sleep(0.01)
        return await pong(key)

    @cache_resource
    async def pong(key):
        await asyncio.sleep(0.01)
        return await ping(key)

    async def main():
        return await asyncio.gather(ping(1), pong(1), return_exceptions=True)

    outcomes = run_with_deadline(main)
    assert all(isinstance(o, fastcache.ReentrantCallError) for o in outcomes), outcomes
    assert any("ping(1)" in str(o) and "pong(1)" in str(o) for o in outcomes), outcomes


def test_two_tasks_awaiting_one_key_still_share_one_computation():
    runs = []

    @cache_resource
    async def shared(key):
        runs.append(key)
        await asyncio.sleep(0.02)
        return [key]

    async def main():
        return await asyncio.gather(*(shared(1) for _ in range(8)))

    values = run_with_deadline(main)
    assert runs == [1]
    assert all(v is values[0] for v in values)
