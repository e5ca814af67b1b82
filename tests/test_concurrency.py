"""SPEC §6 single flight and no deadlocks: one computation per key, different keys in
parallel, exceptions never cached, same-key recursion raising instead of hanging, callbacks
outside every lock, waiters detached from the interpreter and interruptible."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import threading
import time

import fastcache
from conftest import HANG_TIMEOUT
from fastcache import cache_resource


class Resource:
    def __init__(self, label=None):
        self.label = label

    def __repr__(self):
        return f"Resource({self.label!r})"


def test_32_threads_on_one_key_compute_once_and_get_the_identical_object(in_thread):
    computations = []
    barrier = threading.Barrier(32)

    @cache_resource
    def shared_resource(x):
        computations.append(x)
        time.sleep(0.2)  # keep the computation running while the others arrive
        return Resource(x)

    def call():
        barrier.wait(HANG_TIMEOUT)
        return shared_resource("key")

    calls = [in_thread(call) for _ in range(32)]
    results = [c.get() for c in calls]
    assert len(computations) == 1
    assert all(r is results[0] for r in results)
    assert shared_resource.cache_info().misses == 1
    assert shared_resource.cache_info().currsize == 1


def test_different_keys_compute_in_parallel(in_thread):
    both_computing = threading.Barrier(2)

    @cache_resource
    def parallel(x):
        # Only returns if the other key's computation runs at the same time.
        both_computing.wait(HANG_TIMEOUT)
        return Resource(x)

    first, second = in_thread(parallel, 1), in_thread(parallel, 2)
    assert first.get().label == 1
    assert second.get().label == 2


def test_raising_computation_is_not_cached_and_a_waiter_retries(in_thread):
    started, proceed = threading.Event(), threading.Event()
    attempts = []

    @cache_resource
    def flaky(x):
        attempts.append(threading.current_thread().name)
        if len(attempts) == 1:
            started.set()
            assert proceed.wait(HANG_TIMEOUT)
            raise ConnectionError("first attempt fails")
        return Resource(x)

    owner = in_thread(flaky, 1)
    assert started.wait(HANG_TIMEOUT)
    waiter = in_thread(flaky, 1)
    time.sleep(0.1)  # let the waiter reach the in-flight computation
    proceed.set()
    owner.join()
    assert isinstance(owner.error, ConnectionError)  # the raising caller gets it
    value = waiter.get()  # the waiter retried and computed the value itself
    assert value.label == 1
    assert flaky(1) is value
    assert len(attempts) == 2


def test_raising_computation_then_successful_one():
    attempts = []

    @cache_resource
    def flaky_sequential(x):
        attempts.append(x)
        if len(attempts) == 1:
            raise TimeoutError("first attempt fails")
        return Resource(x)

    try:
        flaky_sequential(1)
    except TimeoutError:
        pass
    else:
        raise AssertionError("the first computation should have raised")
    value = flaky_sequential(1)
    assert flaky_sequential(1) is value
    assert attempts == [1, 1]


def test_same_key_recursion_raises_reentrant_call_error_within_a_second(in_thread):
    @cache_resource
    def recursive(x):
        return recursive(x)

    started = time.monotonic()
    outcome = in_thread(recursive, 1).join(HANG_TIMEOUT)
    elapsed = time.monotonic() - started
    assert isinstance(outcome.error, fastcache.ReentrantCallError)
    assert isinstance(outcome.error, RecursionError)
    assert elapsed < 1.0
    assert "recursive" in str(outcome.error)


def test_same_key_recursion_leaves_the_key_usable(in_thread):
    recurse = {"on": True}

    @cache_resource
    def sometimes_recursive(x):
        if recurse["on"]:
            return sometimes_recursive(x)
        return Resource(x)

    outcome = in_thread(sometimes_recursive, 1).join()
    assert isinstance(outcome.error, fastcache.ReentrantCallError)
    recurse["on"] = False
    value = in_thread(sometimes_recursive, 1).get()
    assert value.label == 1
    assert sometimes_recursive(1) is value


def test_reentrant_error_caught_inside_the_computation_lets_it_finish(in_thread):
    @cache_resource
    def catches_own_recursion(x):
        try:
            catches_own_recursion(x)
        except fastcache.ReentrantCallError:
            return Resource("recovered")
        return Resource("unexpected")

    value = in_thread(catches_own_recursion, 1).get()
    assert value.label == "recovered"
    assert catches_own_recursion(1) is value


def test_recursion_through_other_keys_works(in_thread):
    @cache_resource
    def fib(n):
        return n if n < 2 else fib(n - 1) + fib(n - 2)

    assert in_thread(fib, 60).get() == 1548008755920
    assert fib.cache_info().currsize == 61


def test_on_release_runs_outside_the_cache_lock(in_thread):
    in_release, finish_release = threading.Event(), threading.Event()

    def slow_release(value):
        in_release.set()
        assert finish_release.wait(HANG_TIMEOUT)

    @cache_resource(on_release=slow_release)
    def releasing(x):
        return Resource(x)

    releasing(1)
    clearing = in_thread(releasing.clear)
    assert in_release.wait(HANG_TIMEOUT)
    # While on_release is still running, the same cache serves and computes.
    assert in_thread(releasing, 2).get().label == 2
    assert in_thread(releasing, 2).get().label == 2
    finish_release.set()
    clearing.get()


def test_validate_runs_outside_the_cache_lock(in_thread):
    in_validate, finish_validate = threading.Event(), threading.Event()
    blocking = threading.local()

    def slow_validate(value):
        if getattr(blocking, "on", False):
            in_validate.set()
            assert finish_validate.wait(HANG_TIMEOUT)
        return True

    @cache_resource(validate=slow_validate)
    def validated(x):
        return Resource(x)

    value = validated(1)

    def slow_hit():
        blocking.on = True
        return validated(1)

    hit = in_thread(slow_hit)
    assert in_validate.wait(HANG_TIMEOUT)
    # While one thread validates key 1, other calls (same key included) go through.
    assert in_thread(validated, 2).get().label == 2
    assert in_thread(validated, 1).get() is value
    finish_validate.set()
    assert hit.get() is value


def test_hash_funcs_run_outside_the_cache_lock(in_thread):
    in_hash, finish_hash = threading.Event(), threading.Event()

    class Slow:
        pass

    def slow_hash(obj):
        in_hash.set()
        assert finish_hash.wait(HANG_TIMEOUT)
        return "slow"

    @cache_resource(hash_funcs={Slow: slow_hash})
    def hashed(x):
        return Resource(x)

    hashing = in_thread(hashed, Slow())
    assert in_hash.wait(HANG_TIMEOUT)
    assert in_thread(hashed, 1).get().label == 1
    finish_hash.set()
    assert isinstance(hashing.get().label, Slow)


def test_concurrent_churn_releases_every_value_exactly_once(in_thread, released):
    @cache_resource(max_entries=4, on_release=released)
    def churned(x):
        return Resource(x)

    barrier = threading.Barrier(8)
    produced = []
    produced_lock = threading.Lock()

    def worker(seed):
        barrier.wait(HANG_TIMEOUT)
        seen = []
        for i in range(300):
            key = (seed * 7 + i) % 10
            seen.append(churned(key))
            if i % 50 == 0:
                churned.clear(key)
        with produced_lock:
            produced.extend(seen)

    for call in [in_thread(worker, n) for n in range(8)]:
        call.get()
    fastcache.cache_resource.clear()
    distinct = {id(v): v for v in produced}
    assert churned.cache_info().currsize == 0
    for value in distinct.values():
        assert released.count(value) == 1, f"{value!r} released {released.count(value)} times"


def _run_script(script, timeout=60):
    """Runs a Python script in a fresh interpreter (a deadlock there cannot hang the suite)."""
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(script)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_waiting_threads_do_not_hold_the_gil():
    result = _run_script(
        """
        import threading, time
        import fastcache

        started, proceed = threading.Event(), threading.Event()

        @fastcache.cache_resource
        def slow(x):
            started.set()
            proceed.wait(30)
            return x

        owner = threading.Thread(target=slow, args=(1,))
        owner.start()
        started.wait(30)
        waiters = [threading.Thread(target=slow, args=(1,)) for _ in range(4)]
        for w in waiters:
            w.start()
        time.sleep(0.2)  # the waiters are now waiting for the owner
        # Pure Python work on this thread: impossible if a waiter held the GIL.
        deadline = time.monotonic() + 0.2
        spins = 0
        while time.monotonic() < deadline:
            spins += 1
        proceed.set()
        owner.join(30)
        for w in waiters:
            w.join(30)
        print("spins", spins, "alive", sum(t.is_alive() for t in [owner, *waiters]))
        """,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    words = result.stdout.split()
    assert words[0] == "spins" and int(words[1]) > 1000
    assert words[2:] == ["alive", "0"]


def test_waiting_main_thread_receives_keyboard_interrupt():
    result = _run_script(
        """
        import os, signal, threading, time
        import fastcache

        started, proceed = threading.Event(), threading.Event()

        @fastcache.cache_resource
        def slow(x):
            started.set()
            proceed.wait(30)
            return x

        owner = threading.Thread(target=slow, args=(1,))
        owner.start()
        started.wait(30)
        threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        begin = time.monotonic()
        try:
            slow(1)  # waits for the owner's computation
            print("not interrupted")
        except KeyboardInterrupt:
            print("interrupted", time.monotonic() - begin)
        proceed.set()
        owner.join(30)
        print("after", slow(1))
        """,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("interrupted"), result.stdout
    assert float(lines[0].split()[1]) < 5.0
    assert lines[1] == "after 1"
