"""Inside a Streamlit app, the elements a cached function writes while computing (main
area, sidebar, containers and columns it creates) are replayed on every hit, as
`st.cache_resource` does, with Streamlit's `CachedWidgetWarning` and
`CacheReplayClosureError`. Each app runs with fastcache and with `st.cache_resource`, and
the pages must be equal."""

from __future__ import annotations

import threading

import pytest
from streamlit.testing.v1 import AppTest

APP = """
import asyncio
import streamlit as st
import fastcache
import app_support

cache = st.cache_resource if st.query_params.get("impl") == "st" else fastcache.cache_resource

@cache
def build(n):
    app_support.runs["build"] += 1
    st.text(f"main text {n}")
    st.sidebar.markdown(f"sidebar {n}")
    box = st.container(border=True)
    box.text("inside container")
    a, b = st.columns(2)
    a.text("col a")
    with b:
        st.text("col b")
    return n * 2

@cache
def with_widget():
    st.button("a widget inside a cached function")
    return 1

outside = st.container()

@cache
def closure():
    outside.text("written to a container made outside")
    return 1

@cache
def writes_nothing():
    app_support.runs["writes_nothing"] += 1
    return 7

@cache
async def build_async(n):
    st.text(f"async text {n}")
    st.sidebar.markdown(f"async sidebar {n}")
    return n

@cache(ttl=3600, refresh_mode="background")
def background():
    st.text("written while refreshing in the background")
    return 8

app_support.functions["build"] = build
st.text("before")
case = st.query_params["case"]
if case == "replay":
    st.text(f"value {build(21)}")
elif case == "inside_container":
    with st.container():
        st.text(f"value {build(3)}")
elif case == "widget":
    with_widget()
elif case == "closure":
    closure()
elif case == "nothing":
    st.text(f"value {writes_nothing()}")
elif case == "async":
    st.text(f"value {asyncio.run(build_async(5))}")
elif case == "background":
    st.text(f"value {background()}")
st.text("after")
"""


def _page(app):
    """The page as nested (element type, value) pairs, sidebar included."""

    def walk(node):
        kind = type(node).__name__
        if kind == "Exception":
            value = (node.proto.type, node.value, node.is_markdown)
        elif kind in ("Block", "Column", "SpecialBlock", "Sidebar", "ElementTree"):
            value = None
        else:
            value = getattr(node, "value", None)
        children = [walk(child) for child in getattr(node, "children", {}).values()]
        return (kind, value, children)

    return walk(app._tree)


def _pages(case, impl, runs=2):
    app = AppTest.from_string(APP)
    app.query_params["case"] = case
    app.query_params["impl"] = impl
    pages = []
    for _ in range(runs):
        app.run(timeout=10)
        pages.append(_page(app))
    return app, pages


def _texts(page):
    kind, value, children = page
    found = [value] if kind == "Text" else []
    for child in children:
        found += _texts(child)
    return found


def test_elements_written_on_a_miss_are_replayed_on_every_hit(app_state):
    app, (first, second) = _pages("replay", "fastcache", runs=2)
    app.run(timeout=10)
    assert app_state.runs["build"] == 1
    assert first == second == _page(app)
    assert _texts(first) == [
        "before",
        "main text 21",
        "inside container",
        "col a",
        "col b",
        "value 42",
        "after",
    ]
    assert [m.value for m in app.sidebar.markdown] == ["sidebar 21"]
    assert app.text[1].value == "main text 21"


@pytest.mark.parametrize("case", ["replay", "inside_container", "widget", "closure", "async"])
def test_pages_equal_st_cache_resources_on_the_miss_and_on_hits(case, app_state):
    _, ours = _pages(case, "fastcache")
    app_state.reset()
    _, theirs = _pages(case, "st")
    assert ours == theirs


def test_an_async_functions_elements_are_replayed_on_hits(app_state):
    _, (first, second) = _pages("async", "fastcache")
    assert first == second
    assert _texts(first) == ["before", "async text 5", "value 5", "after"]


def test_a_widget_inside_a_cached_function_shows_cached_widget_warning(app_state):
    app, (first, second) = _pages("widget", "fastcache")
    for _ in (first, second):
        assert len(app.exception) == 1
        warning = app.exception[0]
        assert warning.proto.type == "CachedWidgetWarning"
        assert warning.proto.is_warning
        assert len(app.button) == 1


def test_writing_to_a_container_made_outside_raises_cache_replay_closure_error(app_state):
    app, (first, _second) = _pages("closure", "fastcache")
    assert not _has_exception(first)
    assert len(app.exception) == 1
    assert app.exception[0].proto.type.endswith("CacheReplayClosureError")
    assert "layout block" in app.exception[0].value


def _has_exception(page):
    kind, _, children = page
    return kind == "Exception" or any(_has_exception(c) for c in children)


def test_a_hit_on_a_function_that_wrote_nothing_replays_nothing(app_state):
    _app, (first, second) = _pages("nothing", "fastcache")
    assert app_state.runs["writes_nothing"] == 1
    assert _texts(first) == _texts(second) == ["before", "value 7", "after"]


def test_background_refresh_shows_elements_live_and_warns_as_st_cache_resource(app_state):
    _app, ours = _pages("background", "fastcache")
    assert "written while refreshing in the background" in _texts(ours[0])
    assert "written while refreshing in the background" not in _texts(ours[1])
    assert _has_exception(ours[0])
    app_state.reset()
    _, theirs = _pages("background", "st")
    assert ours == theirs


def test_a_hit_outside_a_script_run_replays_nothing_and_returns_the_value(app_state, recwarn):
    _pages("replay", "fastcache", runs=1)
    build = app_state.functions["build"]
    assert build(21) == 42  # the test's thread: no script run to replay into
    assert app_state.runs["build"] == 1
    assert len(recwarn) == 0


WAITING_APP = """
import streamlit as st
import fastcache
import app_support

@fastcache.cache_resource
def shared_slow():
    app_support.runs["shared_slow"] += 1
    st.text("written while computing")
    app_support.computing.set()
    app_support.proceed.wait(10)
    return 1

st.text(f"value {shared_slow()}")
"""


def test_a_session_waiting_for_anothers_computation_shows_the_spinner_then_replays(
    app_messages, app_state, separate_sessions, in_thread
):
    app_state.computing, app_state.proceed = threading.Event(), threading.Event()
    first, second = AppTest.from_string(WAITING_APP), AppTest.from_string(WAITING_APP)
    computing = in_thread(first.run, timeout=20)
    assert app_state.computing.wait(10)
    waiting = in_thread(second.run, timeout=20)
    # The second session's spinner shows while it waits (the first one's is already on).
    app_messages.wait_for_spinners(2)
    app_state.proceed.set()
    computing.get(), waiting.get()
    assert app_state.runs["shared_slow"] == 1
    assert app_messages.spinner_texts() == ["Running `shared_slow()`."] * 2
    for app in (first, second):
        assert [t.value for t in app.text] == ["written while computing", "value 1"]


def test_a_session_waiting_for_anothers_computation_can_still_be_stopped(
    app_messages, app_state, in_thread, monkeypatch
):
    import streamlit.testing.v1.app_test as app_test_module
    from streamlit.testing.v1.local_script_runner import LocalScriptRunner

    runners = []

    class RecordedRunner(LocalScriptRunner):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            runners.append(self)

    monkeypatch.setattr(app_test_module, "LocalScriptRunner", RecordedRunner)
    app_state.computing, app_state.proceed = threading.Event(), threading.Event()
    first, second = AppTest.from_string(WAITING_APP), AppTest.from_string(WAITING_APP)
    computing = in_thread(first.run, timeout=20)
    assert app_state.computing.wait(10)
    waiting = in_thread(second.run, timeout=20)
    app_messages.wait_for_spinners(2)  # the second run is waiting
    runners[1].request_stop()  # the Stop button
    waiting.get()  # its run ends although the computation it waited for goes on
    assert [t.value for t in second.text] == []
    assert not app_state.proceed.is_set()
    app_state.proceed.set()
    computing.get()
    assert [t.value for t in first.text] == ["written while computing", "value 1"]
    assert app_state.runs["shared_slow"] == 1
