"""Interpreter exit while threads are inside fastcache (SPEC §11, issue 9 item 1): the
process exits as it would with ``functools.lru_cache`` — no abort, no "Fatal Python error".

At exit, CPython 3.11–3.13 end a daemon thread that asks for the interpreter again by
unwinding its stack; with native frames in the way that used to abort the process. Each
scenario runs as its own process, several times (the timing of the end varies), and next
to a control: the same program with ``functools.lru_cache`` (or, where fastcache's own
threads are involved, a plain daemon thread doing the same work), to show the scenario
itself exits cleanly without fastcache.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from concurrent.futures import ThreadPoolExecutor

import pytest

RUNS = 6
CONTROL_RUNS = 2
TIMEOUT = 60

# A CPU-bound body: long enough to be cut short by the exit, holding no lock and
# letting the interpreter go every few milliseconds as any Python loop does.
BUSY = "sum(i * i for i in range(50_000_000))"

SCENARIOS = {
    # A daemon thread inside a cached body when the main script ends.
    "daemon_thread_in_cached_body": (
        """
        import threading
        inside = threading.Event()

        @CACHE
        def load_model(name):
            inside.set()
            return {BUSY}

        threading.Thread(target=load_model, args=("bert",), daemon=True).start()
        assert inside.wait(10)
        """
    ),
    # Streamlit-like: a threading HTTP server whose handler loads a cached model; Ctrl-C.
    "http_server_interrupted_during_a_load": (
        """
        import os, signal, threading, urllib.request
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        inside = threading.Event()

        @CACHE
        def load_model(name):
            inside.set()
            return {BUSY}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                load_model("bert")
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        url = "http://127.0.0.1:%d/" % server.server_address[1]

        def client():
            try:
                urllib.request.urlopen(url, timeout=30)
            except Exception:
                pass

        def press_ctrl_c():
            if inside.wait(10):
                os.kill(os.getpid(), signal.SIGINT)

        threading.Thread(target=client, daemon=True).start()
        threading.Thread(target=press_ctrl_c, daemon=True).start()
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        """
    ),
    # Threads waiting for another thread's computation of the same key.
    "threads_waiting_on_another_computation": (
        """
        import threading, time
        inside = threading.Event()

        @CACHE
        def load_model(name):
            inside.set()
            return {BUSY}

        threading.Thread(target=load_model, args=("bert",), daemon=True).start()
        assert inside.wait(10)
        for _ in range(3):
            threading.Thread(target=load_model, args=("bert",), daemon=True).start()
        time.sleep(0.2)  # let the waiters reach the wait (either way the exit must be clean)
        """
    ),
    # A daemon thread inside a slow validate.
    "daemon_thread_in_validate": (
        """
        import threading
        inside = threading.Event()
        calls = []

        def validate(value):
            inside.set()
            return {BUSY} >= 0

        @CACHE_VALIDATE
        def load_model(name):
            calls.append(name)
            return [name]

        load_model("bert")
        threading.Thread(target=load_model, args=("bert",), daemon=True).start()
        assert inside.wait(10)
        """
    ),
    # A daemon thread inside a slow hash function.
    "daemon_thread_in_hash_funcs": (
        """
        import threading
        inside = threading.Event()

        class Model:
            pass

        def hash_model(model):
            inside.set()
            return {BUSY}

        @CACHE_HASH_FUNCS
        def load(model):
            return [model]

        threading.Thread(target=load, args=(Model(),), daemon=True).start()
        assert inside.wait(10)
        """
    ),
    # An async cached function computing on an event loop in a daemon thread.
    "async_cached_body_on_a_daemon_loop": (
        """
        import asyncio, threading
        inside = threading.Event()

        @CACHE
        async def load_model(name):
            inside.set()
            return {BUSY}

        threading.Thread(target=asyncio.run, args=(load_model("bert"),), daemon=True).start()
        assert inside.wait(10)
        """
    ),
}

# Scenarios with fastcache's own threads: the control runs the same work on a plain
# daemon thread.
OWN_THREAD_SCENARIOS = {
    # A CPU-bound background refresh running on fastcache's refresh worker.
    "background_refresh_running": (
        """
        import threading, time
        import fastcache

        inside = threading.Event()
        calls = []

        @fastcache.cache_resource(ttl=0.2, refresh_mode="background")
        def load_model(name):
            calls.append(name)
            if len(calls) > 1:
                inside.set()
                return {BUSY}
            return [name]

        load_model("bert")
        time.sleep(0.25)  # the entry turns stale
        load_model("bert")  # served stale; the refresh starts on a worker
        assert inside.wait(10)
        """,
        """
        import threading
        inside = threading.Event()

        def refresh():
            inside.set()
            return {BUSY}

        threading.Thread(target=refresh, daemon=True).start()
        assert inside.wait(10)
        """,
    ),
    # A slow (CPU-bound) on_release running in the expiry thread.
    "slow_on_release_in_the_expiry_thread": (
        """
        import threading
        import fastcache

        inside = threading.Event()

        def on_release(value):
            inside.set()
            {BUSY}

        @fastcache.cache_resource(ttl=0.05, on_release=on_release)
        def load(key):
            return [key]

        for key in range(3):
            load(key)
        assert inside.wait(10)
        """,
        """
        import threading
        inside = threading.Event()

        def release():
            inside.set()
            {BUSY}

        threading.Thread(target=release, daemon=True).start()
        assert inside.wait(10)
        """,
    ),
    # An on_release that never returns: exit must not wait for it.
    "on_release_blocked_forever_in_the_expiry_thread": (
        """
        import threading
        import fastcache

        inside = threading.Event()

        def on_release(value):
            inside.set()
            threading.Event().wait()

        @fastcache.cache_resource(ttl=0.05, on_release=on_release)
        def load(key):
            return [key]

        load(1)
        assert inside.wait(10)
        """,
        """
        import threading
        inside = threading.Event()

        def release():
            inside.set()
            threading.Event().wait()

        threading.Thread(target=release, daemon=True).start()
        assert inside.wait(10)
        """,
    ),
    # A background refresh that never returns.
    "background_refresh_blocked_forever": (
        """
        import threading, time
        import fastcache

        inside = threading.Event()
        calls = []

        @fastcache.cache_resource(ttl=0.2, refresh_mode="background")
        def load_model(name):
            calls.append(name)
            if len(calls) > 1:
                inside.set()
                threading.Event().wait()
            return [name]

        load_model("bert")
        time.sleep(0.25)
        load_model("bert")
        assert inside.wait(10)
        """,
        """
        import threading
        inside = threading.Event()

        def refresh():
            inside.set()
            threading.Event().wait()

        threading.Thread(target=refresh, daemon=True).start()
        assert inside.wait(10)
        """,
    ),
}


def program(body: str, implementation: str) -> str:
    """The scenario's program with ``CACHE`` (and its variants) bound to one cache."""
    if implementation == "fastcache":
        prelude = """
        import fastcache
        CACHE = fastcache.cache_resource
        CACHE_VALIDATE = lambda f: fastcache.cache_resource(validate=validate)(f)
        CACHE_HASH_FUNCS = lambda f: fastcache.cache_resource(hash_funcs={Model: hash_model})(f)
        """
    else:
        # lru_cache has neither validate nor hash_funcs: the control calls them as
        # fastcache would, in the same place (before the body, on every call).
        prelude = """
        import functools
        CACHE = functools.lru_cache(maxsize=None)

        def CACHE_VALIDATE(f):
            cached = functools.lru_cache(maxsize=None)(f)
            return lambda *args: [cached(*args), validate(cached(*args))][0]

        def CACHE_HASH_FUNCS(f):
            return lambda *args: [hash_model(a) for a in args] and f(*args)
        """
    return textwrap.dedent(prelude) + textwrap.dedent(body).replace("{BUSY}", BUSY)


def run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code],
        check=False,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )


def assert_all_exit_cleanly(code: str, runs: int, what: str) -> None:
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(run, [code] * runs))
    for result in results:
        assert result.returncode == 0, (
            f"{what}: exit code {result.returncode}\n{result.stderr[-3000:]}"
        )
        for marker in ("Fatal Python error", "FATAL", "panicked", "Traceback"):
            assert marker not in result.stderr, f"{what}: {marker!r} in\n{result.stderr[-3000:]}"


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_exit_is_as_clean_as_with_lru_cache(scenario):
    body = SCENARIOS[scenario]
    assert_all_exit_cleanly(program(body, "lru_cache"), CONTROL_RUNS, f"{scenario} (lru_cache)")
    assert_all_exit_cleanly(program(body, "fastcache"), RUNS, f"{scenario} (fastcache)")


@pytest.mark.parametrize("scenario", sorted(OWN_THREAD_SCENARIOS))
def test_exit_is_clean_while_fastcache_threads_run_python(scenario):
    with_fastcache, control = OWN_THREAD_SCENARIOS[scenario]
    control_code = textwrap.dedent(control).replace("{BUSY}", BUSY)
    assert_all_exit_cleanly(control_code, CONTROL_RUNS, f"{scenario} (plain daemon thread)")
    code = textwrap.dedent(with_fastcache).replace("{BUSY}", BUSY)
    assert_all_exit_cleanly(code, RUNS, f"{scenario} (fastcache)")
