"""Deep inputs (SPEC §11, issue 9 item 2): nesting, hash functions that hand values to each
other, deep cached recursion and deep work in a background refresh end in a Python
exception or succeed — never in a crash — on any thread stack Python itself survives.

A stack overflow kills the process, so each case runs in its own process: a regression
fails the test instead of the suite.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

TIMEOUT = 120


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        check=False,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def outcome(code: str) -> str:
    """What the program printed last, after checking that it did not crash."""
    proc = run(code)
    assert proc.returncode == 0, f"exit code {proc.returncode}\n{proc.stderr[-3000:]}"
    return proc.stdout.strip().splitlines()[-1]


ON_A_THREAD = """
import sys, threading
import fastcache

def on_a_thread(stack_size, work):
    # The outcome of work() on a new thread with that stack: "ok", or the exception's type.
    result = []

    def target():
        try:
            work()
            result.append("ok")
        except Exception as exc:
            result.append(type(exc).__name__)

    threading.stack_size(stack_size)
    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    return result[0]
"""


def test_hash_funcs_that_hand_values_to_each_other_raise_recursion_error():
    code = """
        import fastcache

        @fastcache.cache_resource(hash_funcs={list: tuple, tuple: list})
        def load(value):
            return value

        try:
            load([1, 2])
        except RecursionError as exc:
            print("RecursionError", "hash_funcs" in str(exc))
        """
    assert outcome(code) == "RecursionError True"


@pytest.mark.parametrize("stack_kib", [256, 1024])
def test_a_list_nested_990_deep_never_crashes_a_small_thread(stack_kib):
    code = (
        ON_A_THREAD
        + f"""
@fastcache.cache_resource
def load(value):
    return 1

deep = []
for _ in range(990):
    deep = [deep]

python_itself = on_a_thread({stack_kib} * 1024, lambda: repr(deep))
print(python_itself, on_a_thread({stack_kib} * 1024, lambda: load(deep)))
"""
    )
    python_itself, fastcache_outcome = outcome(code).split()
    assert python_itself in ("ok", "RecursionError")
    assert fastcache_outcome in ("ok", "RecursionError")


def test_a_dataclass_nested_600_deep_never_crashes_a_2_mib_thread():
    code = (
        ON_A_THREAD
        + """
import dataclasses

@dataclasses.dataclass(frozen=True)
class Node:
    child: object

@fastcache.cache_resource
def load(value):
    return 1

deep = None
for _ in range(600):
    deep = Node(deep)

print(on_a_thread(2 * 1024 * 1024, lambda: load(deep)))
"""
    )
    assert outcome(code) in ("ok", "RecursionError")


@pytest.mark.parametrize("stack_kib", [256, 1024, 8192])
def test_nesting_beyond_the_stack_is_a_recursion_error(stack_kib):
    code = (
        ON_A_THREAD
        + f"""
@fastcache.cache_resource
def load(value):
    return 1

class Matryoshka:
    def __reduce__(self):
        return (Matryoshka, (Matryoshka(),))

deep = []
for _ in range(100_000):
    deep = [deep]
print(
    on_a_thread({stack_kib} * 1024, lambda: load(deep)),
    on_a_thread({stack_kib} * 1024, lambda: load(Matryoshka())),
)
"""
    )
    assert outcome(code) == "RecursionError RecursionError"


def test_cached_recursion_beyond_the_stack_is_a_recursion_error_not_a_crash():
    code = """
        import sys
        import fastcache

        sys.setrecursionlimit(10_000_000)

        @fastcache.cache_resource
        def depth(n):
            return 0 if n == 0 else depth(n - 1) + 1

        try:
            depth(1_000_000)
            print("ok")
        except RecursionError:
            print("RecursionError")
        """
    assert outcome(code) == "RecursionError"


def test_cached_recursion_reaches_a_thousand_levels():
    code = """
        import sys
        import fastcache

        sys.setrecursionlimit(100_000)

        @fastcache.cache_resource
        def depth(n):
            return 0 if n == 0 else depth(n - 1) + 1

        print(depth(1000))
        """
    assert outcome(code) == "1000"


def test_work_that_succeeds_in_the_foreground_succeeds_as_a_background_refresh():
    # repr of a deep list recurses in C: on the main thread it needs more than Rust's
    # 2 MiB thread default (CPython 3.11), so it works on a refresh worker only because
    # the workers get the main thread's stack. (Where this Python bounds that recursion
    # itself, both raise RecursionError alike.)
    code = """
        import sys, threading, time
        import fastcache

        sys.setrecursionlimit(100_000)
        deep = []
        for _ in range(20_000):
            deep = [deep]
        refreshed = threading.Event()
        outcomes = []

        def attempt():
            try:
                return len(repr(deep))
            except RecursionError:
                return "RecursionError"

        @fastcache.cache_resource(ttl=0.2, refresh_mode="background")
        def load(key):
            outcomes.append(attempt())
            if len(outcomes) > 1:
                refreshed.set()
            return outcomes[-1]

        load(1)  # in the foreground, on the main thread
        time.sleep(0.25)
        load(1)  # stale: refreshed on a worker
        assert refreshed.wait(30), "the refresh did not finish"
        print(outcomes[0] == outcomes[1], outcomes[0])
        """
    same, foreground = outcome(code).split()
    assert same == "True", foreground
