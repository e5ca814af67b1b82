"""Shared fixtures for the fastcache test suite.

Every test defines its cached functions inside the test body, so caches never leak between
tests; the autouse fixture below also clears every cache after each test.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

import fastcache
import pytest

# A suite started in the background by a non-interactive shell (`./scripts/test &`, nohup,
# some CI runners) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt,
# neither in this process nor in the subprocesses the tests start: the Ctrl-C tests would
# test the shell, not fastcache. Python's own handler is put back (children then start with
# the default disposition, as from a terminal).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

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


# --- Streamlit apps (AppTest). Streamlit is imported inside the fixtures only: importing
# the test suite must not import it.


class AppMessages:
    """Every message the apps' script runs send to the browser. AppTest's element tree
    leaves transient elements out, so the spinner is observed here."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        self._added = threading.Condition()

    def add(self, msg: Any) -> None:
        import app_support

        with self._added:
            self.messages.append(msg)
            self._added.notify_all()
        if self._spinner_elements(msg):
            app_support.spinner_shown.set()

    def wait_for_spinners(self, count: int, timeout: float = HANG_TIMEOUT) -> None:
        """Until `count` spinners have been shown (script runs send from their threads)."""
        with self._added:
            shown = self._added.wait_for(lambda: len(self.spinner_texts()) >= count, timeout)
        assert shown, f"spinners shown: {self.spinner_texts()}"

    @staticmethod
    def _spinner_elements(msg: Any) -> list[Any]:
        if msg.WhichOneof("type") != "delta" or msg.delta.WhichOneof("type") != "new_transient":
            return []
        return [e.spinner for e in msg.delta.new_transient.elements if e.HasField("spinner")]

    def transients(self) -> list[list[tuple[str, bool, bool]]]:
        """Each transient message as its spinners' (text, cache, show_time); a spinner
        that goes away is an empty one."""
        return [
            [(s.text, s.cache, s.show_time) for s in self._spinner_elements(m)]
            for m in self.messages
            if m.WhichOneof("type") == "delta" and m.delta.WhichOneof("type") == "new_transient"
        ]

    def spinner_texts(self) -> list[str]:
        return [text for shown in self.transients() for text, _, _ in shown]

    def clear(self) -> None:
        self.messages.clear()


@pytest.fixture
def app_messages(monkeypatch):
    """Records what the apps send (see `AppMessages`), with Streamlit's spinner delay set
    to zero so a spinner shows at once."""
    from streamlit.elements import spinner
    from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

    recorder = AppMessages()
    original = ForwardMsgQueue.enqueue

    def enqueue(queue: Any, msg: Any) -> None:
        recorder.add(msg)
        original(queue, msg)

    monkeypatch.setattr(ForwardMsgQueue, "enqueue", enqueue)
    monkeypatch.setattr(spinner, "DELAY_SECS", 0.0)
    return recorder


@pytest.fixture
def app_state():
    """The state the apps share with the test (`tests/app_support.py`), reset, and every
    cache (Streamlit's included) empty."""
    import app_support
    from streamlit.runtime import caching

    caching.cache_resource.clear()  # Streamlit's own caches too, between tests
    app_support.reset()
    yield app_support
    caching.cache_resource.clear()
    app_support.reset()


@pytest.fixture
def separate_sessions(monkeypatch):
    """Gives every AppTest its own browser session id (AppTest otherwise runs every app
    in one session, "test session id"). Returns the id of a given AppTest."""
    import itertools

    import streamlit.testing.v1.app_test as app_test_module
    from streamlit.testing.v1.local_script_runner import LocalScriptRunner

    ids: dict[int, str] = {}
    numbers = itertools.count(1)

    class OwnSessionRunner(LocalScriptRunner):
        def __init__(self, script_path: str, session_state: Any, *args: Any, **kwargs: Any):
            super().__init__(script_path, session_state, *args, **kwargs)
            self._session_id = ids.setdefault(id(session_state), f"session-{next(numbers)}")

    monkeypatch.setattr(app_test_module, "LocalScriptRunner", OwnSessionRunner)

    def session_of(app: Any) -> str:
        return ids[id(app._session_state)]

    return session_of
