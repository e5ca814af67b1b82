"""Fork safety (SPEC §6, issue 5 point 5): after ``os.fork()`` the child can use every cache,
including keys a parent thread was computing at the moment of the fork.

Each child runs its checks and leaves with ``os._exit`` (0 on success); the parent waits
for it with a deadline and kills it if it hangs, so a lock left held in the child fails
the test instead of hanging the suite.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import threading
import time
import traceback

import pytest
from fastcache import cache_resource

pytestmark = [
    pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX only"),
    # Python 3.12+ warns about forking a multi-threaded process; forking one is the point.
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning"),
]

CHILD_DEADLINE = 5.0


def run_in_child(check, deadline=CHILD_DEADLINE):
    """Forks; the child runs ``check()`` and exits 0 if it returned, 1 if it raised. The
    parent fails the test if the child is not done within ``deadline`` or did not exit 0."""
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 1
        try:
            check()
            code = 0
        except BaseException:  # noqa: BLE001 - any failure is the child's exit status
            with contextlib.suppress(OSError):
                os.write(2, traceback.format_exc().encode())
        finally:
            os._exit(code)
    end = time.monotonic() + deadline
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > end:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"the forked child was still running after {deadline} s: it hangs")
        time.sleep(0.01)
    code = os.waitstatus_to_exitcode(status)
    assert code == 0, f"the forked child failed (exit status {code}); its traceback is above"


def test_child_recomputes_a_key_a_parent_thread_was_computing_at_fork():
    parent = os.getpid()
    started = threading.Event()
    gate = threading.Event()

    @cache_resource
    def load(key):
        if key == "K" and os.getpid() == parent:
            started.set()
            gate.wait(30)
        return ("value", key, os.getpid())

    @cache_resource
    def other(key):
        return ("other", key, os.getpid())

    inherited = other(1)
    thread = threading.Thread(target=load, args=("K",), daemon=True)
    thread.start()
    assert started.wait(5)

    def check():
        me = os.getpid()
        assert load("K") == ("value", "K", me), "the child must compute K itself"
        assert load("K") == ("value", "K", me)
        assert load("other key") == ("value", "other key", me)
        assert other(1) is inherited, "entries cached before the fork are hits in the child"
        assert other(2) == ("other", 2, me)
        cache_resource.clear()
        assert load("K") == ("value", "K", me)
        load.clear("K")
        load.clear()
        assert other(1) == ("other", 1, me)

    try:
        run_in_child(check)
    finally:
        gate.set()
        thread.join(10)
    assert not thread.is_alive()
    assert load("K") == ("value", "K", parent), "the parent's computation still completes"


def test_child_can_use_an_async_key_a_parent_loop_was_computing():
    import asyncio

    parent = os.getpid()
    started = threading.Event()
    gate = threading.Event()

    @cache_resource
    async def load(key):
        if os.getpid() == parent:
            started.set()
            while not gate.is_set():
                await asyncio.sleep(0.005)
        return ("value", key, os.getpid())

    async def parent_main():
        return await load("K")

    thread = threading.Thread(target=lambda: asyncio.run(parent_main()), daemon=True)
    thread.start()
    assert started.wait(5)

    def check():
        async def child_main():
            return await load("K")

        assert asyncio.run(child_main()) == ("value", "K", os.getpid())

    try:
        run_in_child(check)
    finally:
        gate.set()
        thread.join(10)
    assert not thread.is_alive()


def test_fork_while_other_threads_use_the_caches():
    """Forks at random moments of other threads' calls, clears and evictions: no lock they
    might have held at that instant may stay held in the child."""
    stop = threading.Event()
    errors = []

    @cache_resource(max_entries=8, on_release=lambda v: None)
    def bounded(key):
        return [key]

    @cache_resource(ttl=0.01)
    def short(key):
        return [key]

    def hammer(seed):
        rng = random.Random(seed)
        try:
            while not stop.is_set():
                key = rng.randrange(32)
                op = rng.random()
                if op < 0.7:
                    bounded(key)
                    short(key)
                elif op < 0.9:
                    bounded.clear(key)
                else:
                    cache_resource.clear()
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            errors.append(exc)

    threads = [threading.Thread(target=hammer, args=(i,), daemon=True) for i in range(6)]
    for thread in threads:
        thread.start()

    def check():
        # Several threads contend for the caches in the child too, so a lock that the
        # fork left in a bad state (held, or with waiters that do not exist here) shows.
        child_errors = []

        def use(seed):
            rng = random.Random(seed)
            try:
                for _ in range(100):
                    key = rng.randrange(32)
                    assert bounded(key) == [key]
                    assert short(key) == [key]
                    if rng.random() < 0.1:
                        bounded.clear(key)
            except BaseException as exc:  # noqa: BLE001 - handed back to the test
                child_errors.append(exc)

        users = [threading.Thread(target=use, args=(i,), daemon=True) for i in range(3)]
        for user in users:
            user.start()
        use(99)
        for user in users:
            user.join(CHILD_DEADLINE)
        assert not any(u.is_alive() for u in users), "a thread of the child is stuck"
        assert not child_errors, child_errors
        bounded.clear()
        cache_resource.clear()
        assert bounded(1) == [1]

    try:
        for _ in range(40):
            time.sleep(0.01)
            run_in_child(check)
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
    assert not errors, errors


def test_child_can_use_a_key_whose_background_refresh_was_running_at_fork():
    parent = os.getpid()
    ttl = 0.2
    refresh_started = threading.Event()
    gate = threading.Event()
    runs = []

    @cache_resource(ttl=ttl, refresh_mode="background")
    def load(key):
        runs.append(key)
        if len(runs) > 1 and os.getpid() == parent:
            refresh_started.set()
            gate.wait(30)
        return ("value", key, os.getpid())

    first = load(1)
    time.sleep(ttl + 0.02)
    assert load(1) is first  # stale hit; its refresh blocks in a parent worker thread
    assert refresh_started.wait(5)

    def check():
        value = load(1)
        assert value[:2] == ("value", 1)
        time.sleep(2 * ttl)  # past the stale window: a blocking miss in the child
        assert load(1) == ("value", 1, os.getpid())
        assert load(2) == ("value", 2, os.getpid())

    try:
        run_in_child(check)
    finally:
        gate.set()


def test_expired_entries_are_still_reaped_in_the_child():
    """A pre-forking server (gunicorn --preload) forks after the caches are in use: the
    child's expired entries must still be released without further calls."""

    @cache_resource(ttl=0.2)
    def warm(key):
        return [key]

    warm(1)  # the parent now has a reaper

    def check():
        released = threading.Event()

        @cache_resource(ttl=0.2, on_release=lambda v: released.set())
        def load(key):
            return [key]

        load(1)
        assert released.wait(1.5), "no entry of the child was reaped"

    run_in_child(check, deadline=CHILD_DEADLINE)


# --- releases in a child: only the process that created a value releases it ---------


def _recording_release():
    """An on_release recording (pid, label) of each value it is given, in the process
    that calls it."""
    seen = []

    def on_release(value):
        seen.append((os.getpid(), value[0]))

    return on_release, seen


@pytest.mark.parametrize("how", ["clear()", "clear(args)", "cache_resource.clear()"])
def test_child_clearing_an_inherited_entry_drops_it_without_on_release(how):
    on_release, seen = _recording_release()

    @cache_resource(on_release=on_release)
    def load(key):
        return (key, os.getpid())

    inherited = load("parent's")

    def check():
        assert load("parent's") is inherited, "inherited entries are hits in the child"
        own = load("child's")
        {
            "clear()": load.clear,
            "clear(args)": lambda: (load.clear("parent's"), load.clear("child's")),
            "cache_resource.clear()": cache_resource.clear,
        }[how]()
        assert seen == [(os.getpid(), "child's")], f"released in the child: {seen}"
        assert load("parent's") is not inherited, "the inherited entry left the child's cache"
        assert own[1] == os.getpid()

    run_in_child(check)
    assert seen == []
    assert load("parent's") is inherited, "the parent keeps its entry"
    load.clear()
    assert seen == [(os.getpid(), "parent's")]


def test_child_evicting_an_inherited_entry_drops_it_without_on_release():
    on_release, seen = _recording_release()

    @cache_resource(max_entries=1, on_release=on_release)
    def load(key):
        return (key, os.getpid())

    load("parent's")

    def check():
        load("child's")  # evicts the inherited entry
        assert seen == [], f"the inherited entry was released in the child: {seen}"
        load("child's again")  # evicts the child's own entry
        assert seen == [(os.getpid(), "child's")]

    run_in_child(check)
    assert seen == []


def test_child_expiring_an_inherited_entry_drops_it_without_on_release():
    on_release, seen = _recording_release()
    ttl = 0.2

    @cache_resource(ttl=ttl, on_release=on_release)
    def load(key):
        return (key, os.getpid())

    load("parent's")

    def check():
        own = load("child's")
        deadline = time.monotonic() + 3
        # Expiry is eager: the reaper releases both without further calls.
        while len(seen) < 1 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(ttl)  # give a wrongful release of the inherited entry time to show
        assert seen == [(os.getpid(), "child's")], seen
        assert own[1] == os.getpid()
        assert load.cache_info().currsize == 0

    run_in_child(check)


def test_child_failing_validate_on_an_inherited_entry_drops_it_without_on_release():
    on_release, seen = _recording_release()
    parent = os.getpid()

    @cache_resource(validate=lambda v: v[1] == os.getpid(), on_release=on_release)
    def load(key):
        return (key, os.getpid())

    load("parent's")

    def check():
        fresh = load("parent's")  # validate rejects the parent's value
        assert fresh[1] == os.getpid() != parent
        assert seen == [], f"the inherited entry was released in the child: {seen}"

    run_in_child(check)
    assert seen == []


def test_child_logs_an_inherited_entry_it_drops_as_a_drop_not_a_release():
    @cache_resource
    def logged_inherited(x):
        return object()

    logged_inherited(1)

    def check():
        records = []

        class Keep(logging.Handler):
            def emit(self, record):
                records.append(record)

        logger = logging.getLogger("fastcache")
        logger.addHandler(Keep())
        logger.setLevel(logging.DEBUG)
        logged_inherited.clear()
        events = [
            (r.fastcache_event, r.fastcache_reason)
            for r in records
            if r.fastcache_function == logged_inherited.__qualname__
        ]
        assert events == [("drop", "cleared")], events

    run_in_child(check)
