"""Shared fixtures for the fastcache test suite.

Every test defines its cached functions inside the test body, so caches never leak between
tests; the autouse fixture below also clears every cache after each test.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

import fastcache
import pytest

# How long a test waits for a thread that could hang before calling it a failure. Generous
# for a loaded machine; a regression that deadlocks shows up as a failure after this long,
# never as a hung suite.
HANG_TIMEOUT = 10.0


@pytest.fixture(autouse=True)
def _clear_every_cache_after_each_test():
    yield
    fastcache.cache_resource.clear()


class ReleaseRecorder:
    """An ``on_release`` callback that remembers every value it was given, by identity."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.values: list[Any] = []

    def __call__(self, value: Any) -> None:
        with self._lock:
            self.values.append(value)

    def count(self, value: Any) -> int:
        """How many times ``value`` (this very object) was released."""
        with self._lock:
            return sum(1 for v in self.values if v is value)

    def __len__(self) -> int:
        with self._lock:
            return len(self.values)

    def assert_each_released_once(self, *values: Any) -> None:
        for value in values:
            assert self.count(value) == 1, (
                f"{value!r} was released {self.count(value)} times, expected exactly once"
            )


@pytest.fixture
def released() -> ReleaseRecorder:
    """An ``on_release`` recorder: pass it as ``on_release=released``."""
    return ReleaseRecorder()


class ThreadResult:
    """Outcome of a function run in a thread: its return value or its exception."""

    def __init__(self) -> None:
        self.value: Any = None
        self.error: BaseException | None = None
        self.thread: threading.Thread | None = None

    def join(self, timeout: float = HANG_TIMEOUT) -> ThreadResult:
        assert self.thread is not None
        self.thread.join(timeout)
        assert not self.thread.is_alive(), f"thread did not finish within {timeout} s (hang)"
        return self

    def get(self, timeout: float = HANG_TIMEOUT) -> Any:
        """Joins (failing the test on a hang) and returns the value or raises the error."""
        self.join(timeout)
        if self.error is not None:
            raise self.error
        return self.value


def start_thread(func: Callable[..., Any], *args: Any, **kwargs: Any) -> ThreadResult:
    result = ThreadResult()

    def run() -> None:
        try:
            result.value = func(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            result.error = exc

    result.thread = threading.Thread(target=run, daemon=True)
    result.thread.start()
    return result


@pytest.fixture
def in_thread() -> Callable[..., ThreadResult]:
    """Starts ``func(*args, **kwargs)`` in a daemon thread; ``.get()`` joins it with a
    timeout (a hang fails the test instead of hanging the suite)."""
    return start_thread


def run_in_event_loop(main: Callable[[], Any], timeout: float = 10.0) -> Any:
    """``asyncio.run(main())`` in a daemon thread; fails the test if it is not done in
    time (a cached await that hangs fails instead of hanging the suite)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(main())
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        pytest.fail(f"the event loop was still running after {timeout} s: a cached await hangs")
    if "error" in box:
        raise box["error"]
    return box.get("value")


@pytest.fixture
def run_async() -> Callable[..., Any]:
    """Runs a coroutine function on a fresh event loop in a thread, with a deadline."""
    return run_in_event_loop


@pytest.fixture
def debug_log():
    """Turns on debug records of the ``fastcache`` logger, restoring the previous level
    afterwards."""
    logger = logging.getLogger("fastcache")
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    yield logger
    logger.setLevel(previous)
