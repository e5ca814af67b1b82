"""`scope="session"` inside a Streamlit app: one set of entries per browser session, kept
across that session's reruns, cleared per session by `cached.clear()`, all cleared by the
global clears, released when Streamlit releases its own session-scoped values (when the
session ends), and Streamlit's error outside a script thread. A value from one session is
never returned to another."""

from __future__ import annotations

import fastcache
import pytest
from streamlit.errors import StreamlitAPIException
from streamlit.runtime import caching
from streamlit.testing.v1 import AppTest

# Beside fastcache's session-scoped cart, Streamlit's own session-scoped "basket": both
# must be released at the same moments.
APP = """
import streamlit as st
import fastcache
import app_support

def release(name):
    return lambda value: app_support.released.append((name, value["id"]))

@fastcache.cache_resource(scope="session", on_release=release("cart"), max_entries=2)
def cart(user):
    app_support.runs["cart"] += 1
    return {"id": f"cart {app_support.runs['cart']}", "user": user, "items": []}

@st.cache_resource(scope="session", on_release=release("basket"))
def basket():
    app_support.runs["basket"] += 1
    return {"id": f"basket {app_support.runs['basket']}"}

app_support.functions["cart"] = cart
action = st.query_params.get("action", "")
if action == "clear":
    cart.clear()
elif action == "clear_one":
    cart.clear("me")
user = st.query_params.get("user", "me")
mine = cart(user)
mine["items"].append(1)
basket()
st.text(f"{mine['id']} for {mine['user']}: {len(mine['items'])} items")
"""


def _session(action="", user="me"):
    app = AppTest.from_string(APP)
    app.query_params["action"] = action
    app.query_params["user"] = user
    return app


def _shown(app):
    app.run(timeout=10)
    assert not app.exception, app.exception
    return app.text[0].value


def test_each_session_keeps_its_own_entries_across_its_reruns(separate_sessions, app_state):
    a, b = _session(), _session()
    assert _shown(a) == "cart 1 for me: 1 items"
    assert _shown(b) == "cart 2 for me: 1 items"
    assert _shown(a) == "cart 1 for me: 2 items"
    assert _shown(b) == "cart 2 for me: 2 items"
    assert app_state.runs["cart"] == 2


def test_a_value_from_one_session_is_never_returned_to_another(separate_sessions, app_state):
    sessions = [_session() for _ in range(5)]
    for _ in range(3):
        seen = [_shown(app).split(" for ")[0] for app in sessions]
        assert seen == [f"cart {n}" for n in range(1, 6)]
    assert app_state.runs["cart"] == 5


def test_clear_inside_a_session_clears_that_sessions_entries_only(separate_sessions, app_state):
    a, b = _session(), _session()
    _shown(a), _shown(b)
    a.query_params["action"] = "clear"
    assert _shown(a) == "cart 3 for me: 1 items"
    assert _shown(b) == "cart 2 for me: 2 items"
    assert app_state.released == [("cart", "cart 1")]


def test_clear_with_arguments_inside_a_session_clears_that_sessions_entry(
    separate_sessions, app_state
):
    a, b = _session(), _session()
    _shown(a), _shown(b)
    a.query_params["action"] = "clear_one"
    assert _shown(a) == "cart 3 for me: 1 items"
    assert _shown(b) == "cart 2 for me: 2 items"
    assert app_state.released == [("cart", "cart 1")]


def test_max_entries_counts_per_session(separate_sessions, app_state):
    a, b = _session(user="u1"), _session(user="u1")
    _shown(a), _shown(b)
    for user in ("u2", "u3"):  # a's third entry evicts a's least recently used
        a.query_params["user"] = user
        _shown(a)
    assert app_state.released == [("cart", "cart 1")]
    assert _shown(b) == "cart 2 for u1: 2 items"


def test_session_end_releases_that_sessions_values_when_streamlit_releases_its_own(
    separate_sessions, app_state
):
    a, b = _session(), _session()
    _shown(a), _shown(b)
    # What Streamlit runs when a session ends (websocket closed, session shut down).
    caching.clear_session_resource_cache(separate_sessions(a))
    assert sorted(app_state.released) == [("basket", "basket 1"), ("cart", "cart 1")]
    assert _shown(b) == "cart 2 for me: 2 items"
    assert _shown(a) == "cart 3 for me: 1 items"


def test_streamlits_global_clear_releases_every_sessions_values(separate_sessions, app_state):
    a, b = _session(), _session()
    _shown(a), _shown(b)
    import streamlit as st

    st.cache_resource.clear()
    assert sorted(app_state.released) == [
        ("basket", "basket 1"),
        ("basket", "basket 2"),
        ("cart", "cart 1"),
        ("cart", "cart 2"),
    ]
    assert _shown(a) == "cart 3 for me: 1 items"


def test_fastcaches_global_clear_releases_every_sessions_values(separate_sessions, app_state):
    a, b = _session(), _session()
    _shown(a), _shown(b)
    fastcache.cache_resource.clear()
    assert sorted(app_state.released) == [("cart", "cart 1"), ("cart", "cart 2")]


# Every session's entry holds one process-wide pool: it is released when the last
# session holding it ends, never while another session is still served it.
SHARED_POOL_APP = """
import fastcache
import app_support

POOL = app_support.functions.setdefault("pool", {"id": "pool"})

@fastcache.cache_resource(
    scope="session", on_release=lambda value: app_support.released.append(value["id"])
)
def pool():
    app_support.runs["pool"] += 1
    return POOL

import streamlit as st
st.text(pool()["id"])
"""


def test_a_pool_shared_by_sessions_is_released_when_the_last_of_them_ends(
    separate_sessions, app_state
):
    a, b = AppTest.from_string(SHARED_POOL_APP), AppTest.from_string(SHARED_POOL_APP)
    assert _shown(a) == "pool" and _shown(b) == "pool"
    assert app_state.runs["pool"] == 2  # one entry per session, both holding the pool
    caching.clear_session_resource_cache(separate_sessions(a))
    assert app_state.released == [], "released while session b still holds it"
    assert _shown(b) == "pool" and app_state.runs["pool"] == 2  # b's entry still serves it
    caching.clear_session_resource_cache(separate_sessions(b))
    assert app_state.released == ["pool"]


SESSION_ERROR = (
    "A session-scoped cache was accessed outside of the app execution thread. Make sure "
    "all session-scoped caches are read during rendering and not read in background threads."
)


def test_outside_a_script_thread_a_call_or_clear_raises_streamlits_error(app_state):
    _shown(_session())
    cart = app_state.functions["cart"]  # called from the test's thread: no script run
    for attempt in (lambda: cart("me"), cart.clear, lambda: cart.clear("me")):
        with pytest.raises(fastcache.SessionScopeError) as info:
            attempt()
        assert str(info.value) == SESSION_ERROR
        assert isinstance(info.value, RuntimeError)
        assert isinstance(info.value, StreamlitAPIException)  # shown as Streamlit's own
    assert app_state.runs["cart"] == 1
