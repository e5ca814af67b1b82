"""`fastcache.streamlit.install()` at the top of an unchanged app makes every
`@st.cache_resource` in it (and in modules it imports afterwards) a fastcache cache;
calling it on every rerun changes nothing more; `uninstall()` gives Streamlit back its
own decorator."""

from __future__ import annotations

import sys

import fastcache
import fastcache.streamlit
import pytest
import streamlit
from streamlit.runtime.caching import cache_resource as streamlits_cache_resource
from streamlit.testing.v1 import AppTest

# An unchanged st.cache_resource app, with install() added at its top.
APP = """
import fastcache.streamlit
fastcache.streamlit.install()

import streamlit as st
import app_support

@st.cache_resource(ttl=3600, max_entries=4, show_spinner="Loading...", show_time=True,
                   validate=lambda value: True, on_release=lambda value: None,
                   hash_funcs={}, scope="global", refresh_mode="foreground")
def load(n):
    app_support.runs["load"] += 1
    return [n]

@st.cache_resource
def bare():
    return 1

import module_after_install

app_support.functions.update(load=load, bare=bare, helper=module_after_install.helper,
                             decorator=st.cache_resource)
st.text(f"{load(1)} {bare()} {module_after_install.helper()}")
"""

MODULE = """
from streamlit import cache_resource

@cache_resource
def helper():
    return "helper"
"""


@pytest.fixture
def installed(tmp_path, monkeypatch):
    (tmp_path / "module_after_install.py").write_text(MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    original = streamlit.cache_resource
    yield original
    fastcache.streamlit.uninstall()
    sys.modules.pop("module_after_install", None)
    assert streamlit.cache_resource is original


def test_install_makes_st_cache_resource_a_fastcache_cache(installed, app_state):
    app = AppTest.from_string(APP)
    app.run(timeout=10)
    assert not app.exception, app.exception
    assert app.text[0].value == "[1] 1 helper"
    for name in ("load", "bare", "helper"):
        assert isinstance(app_state.functions[name], fastcache.CachedFunction), name
    assert app_state.functions["load"].cache_parameters()["max_entries"] == 4


def test_install_on_every_rerun_changes_nothing_more(installed, app_state):
    app = AppTest.from_string(APP)
    decorators = []
    for _ in range(3):
        app.run(timeout=10)
        assert not app.exception, app.exception
        decorators.append(app_state.functions["decorator"])
    assert decorators[0] is decorators[1] is decorators[2] is streamlit.cache_resource
    assert app_state.runs["load"] == 1  # one cache across reruns
    fastcache.streamlit.uninstall()  # a single uninstall restores Streamlit's
    assert streamlit.cache_resource is installed


def test_uninstall_gives_streamlit_its_own_decorator_back(installed, app_state):
    app = AppTest.from_string(APP)
    app.run(timeout=10)
    decorated_before = app_state.functions["load"]
    fastcache.streamlit.uninstall()
    # A function decorated while installed keeps its fastcache cache.
    assert isinstance(decorated_before, fastcache.CachedFunction)
    assert decorated_before(1) == [1]
    assert app_state.runs["load"] == 1
    assert streamlit.cache_resource is installed is streamlits_cache_resource
    uninstalled = AppTest.from_string(APP.replace("fastcache.streamlit.install()", ""))
    uninstalled.run(timeout=10)
    assert not uninstalled.exception, uninstalled.exception
    assert not isinstance(app_state.functions["load"], fastcache.CachedFunction)
    fastcache.streamlit.uninstall()  # again: nothing to do
    assert streamlit.cache_resource is installed


def test_installed_clear_clears_streamlits_caches_and_fastcaches(installed, app_state):
    released = []

    @streamlits_cache_resource(on_release=released.append)
    def streamlits_own():
        return ["streamlit's"]

    fastcache.streamlit.install()

    @streamlit.cache_resource(on_release=released.append)
    def ours():
        return ["fastcache's"]

    theirs, mine = streamlits_own(), ours()
    streamlit.cache_resource.clear()
    assert sorted(map(id, released)) == sorted([id(theirs), id(mine)])


def test_a_module_imported_before_install_keeps_streamlits_decorator(installed, tmp_path):
    (tmp_path / "module_before_install.py").write_text(MODULE)
    try:
        import module_before_install

        fastcache.streamlit.install()
        assert not isinstance(module_before_install.helper, fastcache.CachedFunction)
    finally:
        sys.modules.pop("module_before_install", None)
