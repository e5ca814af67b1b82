"""Streamlit's own clears — `st.cache_resource.clear()`, and the menu's "Clear cache",
which runs the same clear on the server — also clear every fastcache cache, each value
going through its `on_release` once. (The menu's message over a real server's websocket
is tested in test_streamlit_server.py.)"""

from __future__ import annotations

import fastcache
import streamlit as st
from streamlit.testing.v1 import AppTest

APP = """
import streamlit as st
import fastcache
import app_support

def release(name):
    return lambda value: app_support.released.append((name, value))

@fastcache.cache_resource(on_release=release("model"))
def model(name):
    app_support.runs["model"] += 1
    return f"model {name} #{app_support.runs['model']}"

@fastcache.cache_resource(scope="session", on_release=release("cart"))
def cart():
    app_support.runs["cart"] += 1
    return f"cart #{app_support.runs['cart']}"

@st.cache_resource(on_release=release("streamlit's"))
def streamlits_own():
    app_support.runs["theirs"] += 1
    return "streamlit's #%d" % app_support.runs["theirs"]

if st.query_params.get("clear") == "st":
    st.cache_resource.clear()
    st.query_params["clear"] = ""
st.text(" | ".join([model("a"), model("b"), cart(), streamlits_own()]))
"""


def _run(app):
    app.run(timeout=10)
    assert not app.exception, app.exception
    return app.text[0].value


def test_st_cache_resource_clear_clears_every_fastcache_cache(app_state):
    app = AppTest.from_string(APP)
    assert _run(app) == "model a #1 | model b #2 | cart #1 | streamlit's #1"
    assert _run(app) == "model a #1 | model b #2 | cart #1 | streamlit's #1"
    st.cache_resource.clear()  # the test's thread, outside a script run
    assert sorted(app_state.released) == [
        ("cart", "cart #1"),
        ("model", "model a #1"),
        ("model", "model b #2"),
        ("streamlit's", "streamlit's #1"),
    ]
    assert _run(app) == "model a #3 | model b #4 | cart #2 | streamlit's #2"


def test_st_cache_resource_clear_inside_the_app_clears_fastcache(app_state):
    app = AppTest.from_string(APP)
    _run(app)
    app.query_params["clear"] = "st"
    assert _run(app) == "model a #3 | model b #4 | cart #2 | streamlit's #2"
    assert sorted(app_state.released) == [
        ("cart", "cart #1"),
        ("model", "model a #1"),
        ("model", "model b #2"),
        ("streamlit's", "streamlit's #1"),
    ]


def test_each_value_is_released_once_however_many_clears_follow(app_state):
    app = AppTest.from_string(APP)
    _run(app)
    st.cache_resource.clear()
    fastcache.cache_resource.clear()
    st.cache_resource.clear()
    assert len(app_state.released) == 4
    assert len(set(app_state.released)) == 4
