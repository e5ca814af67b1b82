"""Inside a Streamlit app, fastcache's errors are shown in the page as Streamlit shows its
own (the title names the class, the body is Markdown naming the parameter, its type and
the function), and stay the documented Python classes."""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

APP = """
import threading
import streamlit as st
import fastcache

cache = st.cache_resource if st.query_params.get("impl") == "st" else fastcache.cache_resource

class Point:
    pass

def broken_hash(point):
    raise ValueError("cannot hash this point")

@cache
def load(conn):
    return 1

@cache(hash_funcs={Point: broken_hash})
def plot(point):
    return 2

@cache(scope="session")
def per_session():
    return 3

case = st.query_params["case"]
if case == "unhashable":
    load(threading.Lock())
elif case == "user_hash":
    plot(Point())
elif case == "session":
    failure = []
    def worker():
        try:
            per_session()
        except Exception as exc:
            failure.append(exc)
    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    raise failure[0]
elif case == "caught":
    try:
        load(threading.Lock())
    except TypeError as exc:
        st.text(f"caught {isinstance(exc, fastcache.UnhashableParamError)}")
"""


def _error(case, impl="fastcache"):
    app = AppTest.from_string(APP)
    app.query_params["case"] = case
    app.query_params["impl"] = impl
    app.run(timeout=10)
    assert len(app.exception) == 1, app
    return app.exception[0]


def test_unhashable_param_error_shows_like_streamlits(app_state):
    ours, theirs = _error("unhashable"), _error("unhashable", "st")
    assert ours.proto.type == "fastcache.UnhashableParamError"
    assert theirs.proto.type.endswith(".UnhashableParamError")
    assert ours.is_markdown and theirs.is_markdown
    assert ours.proto.is_warning == theirs.proto.is_warning is False
    # Same first paragraph (the parameter, its type, the function), same code block shape.
    first = "Cannot hash argument 'conn' (of type `_thread.lock`) in 'load'."
    assert ours.value.split("\n\n")[0] == theirs.value.split("\n\n")[0] == first
    assert "```\n@fastcache.cache_resource\ndef load(_conn, ...):\n    ...\n```" in ours.value
    assert "```\n@st.cache_resource\ndef load(_conn, ...):\n    ...\n```" in theirs.value


def test_user_hash_error_shows_like_streamlits(app_state):
    ours, theirs = _error("user_hash"), _error("user_hash", "st")
    assert ours.proto.type == "fastcache.UserHashError"
    assert ours.is_markdown and theirs.is_markdown
    assert ours.value.splitlines()[0] == "ValueError: cannot hash this point"
    assert theirs.value.splitlines()[0] == "cannot hash this point"
    assert "broken_hash" in ours.value and "'plot'" in ours.value


def test_session_error_shows_like_streamlits(app_state):
    ours, theirs = _error("session"), _error("session", "st")
    assert ours.proto.type == "fastcache.SessionScopeError"
    assert theirs.proto.type == "streamlit.errors.StreamlitAPIException"
    assert ours.is_markdown and theirs.is_markdown
    assert ours.value == theirs.value


def test_in_the_app_the_errors_are_still_the_documented_classes(app_state):
    app = AppTest.from_string(APP)
    app.query_params["case"] = "caught"
    app.run(timeout=10)
    assert not app.exception
    assert app.text[0].value == "caught True"
