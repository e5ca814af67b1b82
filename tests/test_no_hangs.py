"""No hangs, ever (SPEC §6, issue 5 point 4): same-key re-entrancy through every path raises a
clear error, a waiting main thread receives KeyboardInterrupt, and a GC pass during a
computation cannot deadlock.

Whatever could hang runs in a daemon thread or a subprocess with a deadline, so a regression
fails the test instead of hanging the suite.
"""

from __future__ import annotations

import _thread
import asyncio
import gc
import random
import subprocess
import sys
import textwrap
import threading
import time

import fastcache
import pytest
from fastcache import cache_resource

DEADLINE = 10.0


class Outcome:
    def __init__(self):
        self.value = None
        self.error = None
        self.seconds = None


def run_with_deadline(func, *args, timeout=DEADLINE):
    """Runs ``func(*args)`` in a daemon thread; fails the test if it is still running after
    ``timeout``. Returns its value or exception and how long it took."""
    outcome = Outcome()

    def target():
        start = time.monotonic()
        try:
            outcome.value = func(*args)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            outcome.error = exc
        outcome.seconds = time.monotonic() - start

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"{getattr(func, '__name__', func)} still running after {timeout} s: it hangs")
    return outcome


def assert_reentrant_error_within_a_second(outcome, name):
    assert isinstance(outcome.error, fastcache.ReentrantCallError), (
        f"expected ReentrantCallError, got {outcome.error!r} (value {outcome.value!r})"
    )
    assert isinstance(outcome.error, RecursionError)
    assert outcome.seconds < 1.0, f"took {outcome.seconds:.2f} s"
    assert name in str(outcome.error), "the error must name the function"


def test_reentrant_call_error_is_a_recursion_error():
    assert issubclass(fastcache.ReentrantCallError, RecursionError)


def test_same_key_recursion_raises():
    attempts = []

    @cache_resource
    def recursive_loader(key):
        attempts.append(key)
        if len(attempts) == 1:
            return recursive_loader(key)
        return ("value", key)

    outcome = run_with_deadline(recursive_loader, 1)
    assert_reentrant_error_within_a_second(outcome, "recursive_loader")
    # The key is not left stuck: the next call computes normally.
    assert run_with_deadline(recursive_loader, 1).value == ("value", 1)


def test_recursion_over_different_keys_is_allowed():
    @cache_resource
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    outcome = run_with_deadline(fib, 60)
    assert outcome.error is None, outcome.error
    assert outcome.value == 1548008755920


def test_validate_calling_the_function_with_the_same_key_raises():
    @cache_resource(validate=lambda value: checked_loader(value[1]) is not None)
    def checked_loader(key):
        return ("value", key)

    first = checked_loader(1)  # validate does not run on a fresh compute
    outcome = run_with_deadline(checked_loader, 1)
    assert_reentrant_error_within_a_second(outcome, "checked_loader")
    # validate raising keeps the entry.
    assert checked_loader.cache_info().currsize == 1
    assert first == ("value", 1)


def test_validate_may_call_the_function_with_another_key():
    @cache_resource(validate=lambda value: value[1] == 0 or peer_loader(0) is not None)
    def peer_loader(key):
        return ("value", key)

    first = peer_loader(1)
    outcome = run_with_deadline(peer_loader, 1)
    assert outcome.error is None, outcome.error
    assert outcome.value is first


def test_nested_cached_function_calling_back_with_the_same_key_raises():
    @cache_resource
    def outer_loader(key):
        return inner_loader(key)

    @cache_resource
    def inner_loader(key):
        return outer_loader(key)

    outcome = run_with_deadline(outer_loader, 1)
    assert_reentrant_error_within_a_second(outcome, "outer_loader")
    assert outer_loader.cache_info().currsize == 0
    assert inner_loader.cache_info().currsize == 0


def test_async_task_awaiting_its_own_key_through_another_cached_function_raises():
    @cache_resource
    async def outer_loader(key):
        return await inner_loader(key)

    @cache_resource
    async def inner_loader(key):
        return await outer_loader(key)

    async def main():
        start = time.monotonic()
        try:
            await asyncio.wait_for(outer_loader(1), 1.0)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            return exc, time.monotonic() - start
        return None, time.monotonic() - start

    outcome = run_with_deadline(asyncio.run, main())
    assert outcome.error is None, outcome.error
    error, seconds = outcome.value
    assert isinstance(error, fastcache.ReentrantCallError), f"got {error!r}"
    assert seconds < 1.0


def test_on_release_calling_the_same_function_does_not_hang():
    calls = []

    def on_release(value):
        if value[1] == 0:
            calls.append(reload_on_release(value[0]))  # same key, after it left the cache

    serials = iter(range(100))

    @cache_resource(max_entries=1, on_release=on_release)
    def reload_on_release(key):
        return (key, next(serials))

    def scenario():
        reload_on_release(1)
        reload_on_release(2)  # evicts key 1; on_release asks for key 1 again
        reload_on_release.clear()
        return list(calls)

    outcome = run_with_deadline(scenario)
    assert outcome.error is None or isinstance(outcome.error, RecursionError), outcome.error
    assert outcome.seconds < 1.0
    if outcome.error is None:
        assert outcome.value and outcome.value[0][0] == 1


def test_hash_funcs_calling_the_same_function_raises_instead_of_hanging():
    # The key is not known yet while hash_funcs run, so this is plain unbounded recursion:
    # it must end in a RecursionError (possibly wrapped in UserHashError), never a hang or a
    # crash. Run in a subprocess so a native stack overflow cannot take the suite down.
    code = textwrap.dedent(
        """
        import time
        import fastcache

        class Thing:
            pass

        @fastcache.cache_resource(hash_funcs={Thing: lambda thing: hashed_loader(thing)})
        def hashed_loader(thing):
            return 1

        def chain(exc):
            while exc is not None:
                yield exc
                exc = exc.__cause__ or exc.__context__

        start = time.monotonic()
        try:
            hashed_loader(Thing())
        except Exception as exc:
            kinds = [type(e).__name__ for e in chain(exc)]
            recursion = any(isinstance(e, RecursionError) for e in chain(exc))
            print("raised", recursion, kinds[0], round(time.monotonic() - start, 3))
        else:
            print("returned")
        """
    )
    try:
        proc = subprocess.run(
            [sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        pytest.fail("hash_funcs calling the cached function hangs")
    assert proc.returncode == 0, f"the process died (status {proc.returncode}): {proc.stderr}"
    words = proc.stdout.split()
    assert words[:2] == ["raised", "True"], proc.stdout
    assert float(words[3]) < 5.0


def test_exception_in_the_body_does_not_leave_the_key_stuck():
    attempts = []

    @cache_resource
    def flaky(key):
        attempts.append(key)
        if len(attempts) == 1:
            raise KeyboardInterrupt  # a BaseException, as Ctrl-C in the body would be
        if len(attempts) == 2:
            raise ValueError("second attempt fails")
        return ("value", key)

    first = run_with_deadline(flaky, 1)
    assert isinstance(first.error, KeyboardInterrupt)
    second = run_with_deadline(flaky, 1)
    assert isinstance(second.error, ValueError)
    third = run_with_deadline(flaky, 1)
    assert third.value == ("value", 1)


def test_waiting_main_thread_receives_keyboard_interrupt():
    assert threading.current_thread() is threading.main_thread()
    started = threading.Event()
    gate = threading.Event()

    @cache_resource
    def slow(key):
        started.set()
        gate.wait(5)  # bounded, so a missing interrupt fails instead of hanging
        return ("value", key)

    worker = threading.Thread(target=slow, args=("K",), daemon=True)
    worker.start()
    assert started.wait(5)
    timer = threading.Timer(0.2, _thread.interrupt_main)
    result = "not interrupted"
    seconds = None
    start = time.monotonic()
    try:
        try:
            timer.start()
            slow("K")
            result = "returned without KeyboardInterrupt"
            # An interrupt that was not delivered inside the call lands here, not in pytest.
            for _ in range(50):
                time.sleep(0.01)
        except KeyboardInterrupt:
            seconds = time.monotonic() - start
            if result == "not interrupted":
                result = "interrupted"
    finally:
        timer.cancel()
        gate.set()
        worker.join(10)
    assert result == "interrupted", result
    assert seconds < 1.2, f"KeyboardInterrupt reached the waiting thread after {seconds:.2f} s"
    assert not worker.is_alive()
    # The interrupted waiter left the owner's computation intact.
    assert run_with_deadline(slow, "K").value == ("value", "K")


def test_gc_inside_the_body_and_validate_does_not_deadlock():
    def validate(value):
        gc.collect()
        return True

    def on_release(value):
        gc.collect()

    @cache_resource(validate=validate, on_release=on_release)
    def collecting(key):
        gc.collect()
        return [key]

    def scenario():
        for key in range(5):
            collecting(key)
            collecting(key)
        collecting.clear()
        return collecting(0)

    outcome = run_with_deadline(scenario)
    assert outcome.error is None, outcome.error
    assert outcome.value == [0]


def test_gc_at_every_allocation_during_concurrent_calls_does_not_deadlock():
    """With gc thresholds of 1 a collection can start inside almost any allocation,
    including those made while a cache lock is held: traversal must never wait for it."""

    class Node:
        def __init__(self, key):
            self.key = key
            self.cycle = self  # a cyclic value, so the collector traverses it

    @cache_resource(max_entries=4, ttl=0.05, validate=lambda v: v.key >= 0)
    def cyclic(key):
        return Node(key)

    # The wrapper and its values in a reference cycle too.
    cyclic.self_ref = cyclic
    errors = []

    def worker(seed):
        rng = random.Random(seed)
        try:
            for _ in range(150):
                key = rng.randrange(8)
                if rng.random() < 0.1:
                    cyclic.clear()
                else:
                    assert cyclic(key).key == key
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            errors.append(exc)

    def scenario():
        threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(DEADLINE)
        return [t.is_alive() for t in threads]

    thresholds = gc.get_threshold()
    gc.set_threshold(1, 1, 1)
    try:
        outcome = run_with_deadline(scenario, timeout=DEADLINE + 5)
    finally:
        gc.set_threshold(*thresholds)
    assert outcome.error is None, outcome.error
    assert not any(outcome.value), "a thread is stuck"
    assert not errors, errors
    del cyclic.self_ref
