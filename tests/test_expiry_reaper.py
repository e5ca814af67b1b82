"""Eager expiry (SPEC §5, issue 5 point 3): expired entries are released within about a
second even when the function is never called again, by one background reaper that holds
no lock while it calls Python and shuts down cleanly at interpreter exit."""

from __future__ import annotations

import gc
import logging
import os
import subprocess
import sys
import textwrap
import threading
import time
import weakref

import pytest
from fastcache import cache_resource


class Resource:
    def __init__(self, key, serial=0):
        self.key = key
        self.serial = serial

    def __repr__(self):
        return f"Resource({self.key!r}, serial={self.serial})"


def wait_for(condition, timeout=5.0):
    end = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > end:
            return False
        time.sleep(0.005)
    return True


def freed(ref, timeout=2.0):
    """True once the weakly referenced object is gone (the reaper may still hold it for the
    moment between on_release returning and dropping its reference)."""

    def gone():
        gc.collect()
        return ref() is None

    return wait_for(gone, timeout)


def run_script(code, timeout=30):
    try:
        return subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code)],
            check=False,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("the process did not exit: something keeps the interpreter alive")


def test_expired_entry_is_released_and_freed_without_further_calls():
    released = threading.Event()
    release_times = []
    calls = []

    def on_release(value):
        release_times.append(time.monotonic())
        released.set()

    @cache_resource(ttl=0.2, on_release=on_release)
    def load(key):
        calls.append(key)
        return Resource(key)

    value = load(1)
    ref = weakref.ref(value)
    del value
    assert released.wait(1.5), "the expired entry was not released within 1.5 s"
    assert freed(ref), "the expired value is still referenced after its release"
    assert calls == [1], "nothing may call the function again"
    assert len(release_times) == 1
    assert load.cache_info().currsize == 0


def test_entry_is_not_released_before_its_ttl():
    ttl = 0.3
    release_times = []
    released = threading.Event()

    def on_release(value):
        release_times.append(time.monotonic())
        released.set()

    @cache_resource(ttl=ttl, on_release=on_release)
    def load(key):
        return Resource(key)

    t_before = time.monotonic()  # the write happens after this instant
    load(1)
    assert released.wait(2.0)
    assert release_times[0] - t_before >= ttl - 0.001, "released before its ttl ran out"


def test_every_cache_with_a_ttl_is_reaped():
    released = []
    lock = threading.Lock()

    def on_release(value):
        with lock:
            released.append((value.key, value.serial))

    @cache_resource(ttl=0.2, on_release=on_release)
    def short(key):
        return Resource(key, 1)

    @cache_resource(ttl=0.4, max_entries=10, on_release=on_release)
    def longer(key):
        return Resource(key, 2)

    for key in range(5):
        short(key)
        longer(key)
    expected = sorted([(k, 1) for k in range(5)] + [(k, 2) for k in range(5)])

    def all_released():
        with lock:
            return sorted(released) == expected

    assert wait_for(all_released, timeout=1.9), f"released so far: {sorted(released)}"
    assert short.cache_info().currsize == 0
    assert longer.cache_info().currsize == 0


def test_entries_without_ttl_are_not_reaped():
    expired = threading.Event()
    kept_released = []

    @cache_resource(ttl=0.2, on_release=lambda v: expired.set())
    def short(key):
        return Resource(key)

    @cache_resource(on_release=kept_released.append)
    def kept(key):
        return Resource(key)

    permanent = kept(1)
    short(1)
    assert expired.wait(1.5)
    assert kept_released == []
    assert kept(1) is permanent
    assert kept.cache_info().currsize == 1


def test_reaper_holds_no_lock_while_calling_on_release():
    """on_release may call any cached function, the same one included."""
    done = threading.Event()
    results = []

    @cache_resource
    def other(key):
        return Resource(key, "other")

    def on_release(value):
        if value.serial == 0:
            results.append(load(value.key + 100))  # same function, another key
            results.append(other(value.key))
            done.set()

    serials = iter(range(1000))

    @cache_resource(ttl=0.2, on_release=on_release)
    def load(key):
        return Resource(key, next(serials))

    load(1)
    assert done.wait(3), "on_release called from the reaper could not use the caches"
    assert [r.key for r in results] == [101, 1]


def test_on_release_error_in_the_reaper_is_logged_and_other_entries_still_released(caplog):
    released = []
    lock = threading.Lock()

    def on_release(value):
        with lock:
            released.append(value.key)
        if value.key == 0:
            raise RuntimeError("release failed")

    @cache_resource(ttl=0.2, on_release=on_release)
    def load(key):
        return Resource(key)

    with caplog.at_level(logging.ERROR, logger="fastcache"):
        for key in range(3):
            load(key)

        def all_released():
            with lock:
                return sorted(released) == [0, 1, 2]

        assert wait_for(all_released, timeout=2.0), released
        assert wait_for(lambda: any(r.name == "fastcache" for r in caplog.records), 2.0)
    assert load.cache_info().currsize == 0


def test_process_with_ttl_caches_exits_cleanly():
    proc = run_script(
        """
        import threading
        import fastcache

        released = threading.Event()

        @fastcache.cache_resource(ttl=0.2, on_release=lambda v: released.set())
        def short(key):
            return [key]

        @fastcache.cache_resource(ttl=3600)
        def long(key):
            return [key]

        for key in range(10):
            short(key)
            long(key)
        assert released.wait(3)
        print("done", flush=True)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n"
    assert proc.stderr == ""


def test_exit_while_the_reaper_is_releasing_is_clean():
    # The main script ends while the reaper is inside a slow on_release.
    for _ in range(3):
        proc = run_script(
            """
            import threading, time
            import fastcache

            releasing = threading.Event()

            def on_release(value):
                releasing.set()
                time.sleep(0.05)

            @fastcache.cache_resource(ttl=0.05, on_release=on_release)
            def load(key):
                return [key]

            for key in range(50):
                load(key)
            assert releasing.wait(3)
            """
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == ""


def test_a_ttl_beyond_the_clock_never_expires_and_eager_expiry_keeps_working():
    # `ttl=sys.maxsize` is a common way to say "never": it must neither expire nor stop
    # the reaper from expiring other caches' entries.
    proc = run_script(
        """
        import sys, threading
        import fastcache

        released = threading.Event()

        @fastcache.cache_resource(ttl=sys.maxsize, max_entries=2)
        def maxsize(key):
            return [key]

        @fastcache.cache_resource(ttl=1e300)
        def huge(key):
            return [key]

        @fastcache.cache_resource(ttl=0.1, on_release=lambda v: released.set())
        def short(key):
            return [key]

        kept = [maxsize(k) for k in range(3)] + [huge(0)]
        short(0)
        assert released.wait(3), "the reaper stopped expiring entries"
        assert maxsize(2) is kept[2] and maxsize(1) is kept[1], "a never-expiring entry left"
        assert huge(0) is kept[3]
        assert maxsize.cache_info().currsize == 2
        print("done", flush=True)
        """
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "done\n"
    assert proc.stderr == ""


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_no_background_thread_without_a_ttl():
    """The reaper costs nothing (not even a thread) when no cache has a ttl."""
    proc = run_script(
        """
        import os

        def threads():
            return len(os.listdir("/proc/self/task"))

        before = threads()
        import fastcache

        @fastcache.cache_resource
        def load(key):
            return [key]

        @fastcache.cache_resource(max_entries=2)
        def bounded(key):
            return [key]

        for key in range(5):
            load(key)
            bounded(key)
        load.clear()
        fastcache.cache_resource.clear()
        print(before, threads())
        """
    )
    assert proc.returncode == 0, proc.stderr
    before, after = map(int, proc.stdout.split())
    assert after == before, f"{after - before} extra OS threads without any ttl"


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc")
def test_one_reaper_thread_serves_every_cache_with_a_ttl():
    proc = run_script(
        """
        import os
        import threading
        import fastcache

        def threads():
            return len(os.listdir("/proc/self/task"))

        before = threads()
        released = threading.Semaphore(0)

        @fastcache.cache_resource(ttl=0.1, on_release=lambda v: released.release())
        def first(key):
            return [key]

        @fastcache.cache_resource(ttl=0.2, on_release=lambda v: released.release())
        def second(key):
            return [key]

        @fastcache.cache_resource(ttl="150ms", max_entries=3, on_release=lambda v: released.release())
        def third(key):
            return [key]

        for key in range(3):
            first(key)
            second(key)
            third(key)
        for _ in range(9):
            assert released.acquire(timeout=3)
        print(before, threads())
        """
    )
    assert proc.returncode == 0, proc.stderr
    before, after = map(int, proc.stdout.split())
    assert after - before == 1, f"{after - before} background threads for three ttl caches"
