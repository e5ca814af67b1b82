"""Inside a Streamlit app, a miss shows Streamlit's own spinner, as `st.cache_resource`
does: same text, after Streamlit's delay, none on hits, none for a cached function called
by another. Checked message for message against `st.cache_resource` in the same app."""

from __future__ import annotations

import logging
import subprocess
import sys
import warnings

import pytest
from streamlit.testing.v1 import AppTest

# `cache` is fastcache's decorator or Streamlit's, by query parameter, so each case runs
# the very same script with both.
APP = """
import asyncio
import streamlit as st
import fastcache
import app_support

cache = st.cache_resource if st.query_params.get("impl") == "st" else fastcache.cache_resource

@cache(show_time=True)
def load_model(name):
    app_support.wait_for_spinner()
    return f"model {name}"

@cache
def no_args():
    app_support.wait_for_spinner()
    return 1

@cache
def defaults(size=3):
    app_support.wait_for_spinner()
    return size

@cache(show_spinner="Loading the index...")
def custom():
    app_support.wait_for_spinner()
    return 2

@cache(show_spinner=False)
def silent():
    return 3

@cache
def outer():
    app_support.wait_for_spinner()
    return inner() + 1

@cache
def inner():
    return 10

class Model:
    @cache
    def predict(_self):
        app_support.wait_for_spinner()
        return 4

@cache
def quick():
    return 5

@cache
async def load_async(name):
    app_support.wait_for_spinner()
    return name

case = st.query_params["case"]
app_support.spinner_shown.clear()
if case == "method":
    result = Model().predict()
elif case == "load_async":
    result = asyncio.run(load_async("a"))
else:
    result = globals()[case]("a") if case == "load_model" else globals()[case]()
st.text(f"result {result}")
"""

CASES = {
    "load_model": [("Running `load_model(...)`.", True, True)],
    "no_args": [("Running `no_args()`.", True, False)],
    "defaults": [("Running `defaults()`.", True, False)],
    "custom": [("Loading the index...", True, False)],
    "outer": [("Running `outer()`.", True, False)],
    "method": [("Running `Model.predict(...)`.", True, False)],
    "load_async": [("Running `load_async(...)`.", True, False)],
}


def _run(case, impl, app_messages):
    app = AppTest.from_string(APP)
    app.query_params["case"] = case
    app.query_params["impl"] = impl
    shown = []
    for _ in range(2):
        app_messages.clear()
        app.run(timeout=10)
        assert not app.exception, app.exception
        shown.append(app_messages.transients())
    return shown


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_miss_shows_streamlits_spinner_and_a_hit_none_as_st_cache_resource(
    case, app_messages, app_state
):
    ours = _run(case, "fastcache", app_messages)
    # The spinner, then its removal (an empty transient); nothing at all on the hit.
    assert ours == [[CASES[case], []], []]
    app_state.reset()
    assert ours == _run(case, "st", app_messages)


def test_show_spinner_false_shows_none_as_st_cache_resource(app_messages, app_state):
    ours = _run("silent", "fastcache", app_messages)
    assert ours == [[], []]  # not even the spinner's removal
    app_state.reset()
    assert ours == _run("silent", "st", app_messages)


def test_a_cached_function_called_by_another_shows_no_spinner(app_messages, app_state):
    first_run, _ = _run("outer", "fastcache", app_messages)
    texts = [text for shown in first_run for text, _, _ in shown]
    assert texts == ["Running `outer()`."]


def test_a_spinner_shows_only_after_streamlits_delay(app_state):
    # With Streamlit's own delay (0.5 s), a quick miss ends before the spinner would show:
    # no spinner element, exactly as with st.cache_resource.
    recorded = []
    from streamlit.runtime.forward_msg_queue import ForwardMsgQueue

    original = ForwardMsgQueue.enqueue

    def enqueue(queue, msg):
        recorded.append(msg)
        original(queue, msg)

    app = AppTest.from_string(APP)
    app.query_params["case"] = "quick"
    app.query_params["impl"] = "fastcache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(ForwardMsgQueue, "enqueue", enqueue)
        app.run(timeout=10)
    transients = [m for m in recorded if m.WhichOneof("type") == "delta"]
    spinners = [
        e
        for m in transients
        if m.delta.WhichOneof("type") == "new_transient"
        for e in m.delta.new_transient.elements
        if e.HasField("spinner")
    ]
    assert spinners == []
    assert app.text[0].value == "result 5"


def test_outside_a_script_run_nothing_is_shown_printed_or_warned(capsys, caplog):
    import fastcache
    import streamlit  # noqa: F401 - imported, as in a process that runs an app

    @fastcache.cache_resource(show_spinner="Loading...")
    def load(n):
        return n + 1

    handler_records = []

    class Collect(logging.Handler):
        def emit(self, record):
            handler_records.append(record)

    streamlit_logger = logging.getLogger("streamlit")
    collect = Collect(level=logging.DEBUG)
    streamlit_logger.addHandler(collect)
    try:
        with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.DEBUG):
            warnings.simplefilter("always")
            assert load(1) == 2  # a miss
            assert load(1) == 2  # a hit
    finally:
        streamlit_logger.removeHandler(collect)
    assert caught == []
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []
    assert [r for r in handler_records if r.levelno >= logging.WARNING] == []
    out, err = capsys.readouterr()
    assert out == err == ""


MISS_HOOK_CALLS = """
import threading
import streamlit
import fastcache
import fastcache.streamlit as integration
from streamlit.runtime.scriptrunner_utils.script_run_context import SCRIPT_RUN_CONTEXT_ATTR_NAME

asked = []

def counting_begin_miss(*args):
    asked.append(threading.current_thread().name)
    return None  # no spinner or recording: there is no real script run here

integration._begin_miss = counting_begin_miss  # before the first miss looks the hook up

@fastcache.cache_resource
def load(x):
    return x

load(1)  # the main thread of a process that imported Streamlit: no script run

worker = threading.Thread(target=load, args=(2,), name="worker")
worker.start()
worker.join()

def as_a_script_thread():
    # Streamlit keeps a script run's context as this attribute of the thread running it.
    setattr(threading.current_thread(), SCRIPT_RUN_CONTEXT_ATTR_NAME, object())
    load(3)

script = threading.Thread(target=as_a_script_thread, name="script")
script.start()
script.join()
print(asked)
"""


def test_a_miss_asks_streamlit_only_on_a_thread_that_carries_a_script_run():
    # Outside every script run a miss begins no spinner or recording, and since the
    # thread carries no script-run context it does not even call into the Python hook.
    proc = subprocess.run(
        [sys.executable, "-c", MISS_HOOK_CALLS],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().splitlines()[-1] == "['script']"
