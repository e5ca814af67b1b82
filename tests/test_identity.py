"""SPEC §2: a function's cache is found again by (module, qualname, source); options that
change replace the cache and release its entries."""

from __future__ import annotations

import gc
import math
import textwrap
import threading
import weakref
from datetime import timedelta

import fastcache
import pytest
from fastcache import cache_resource


class Resource:
    def __init__(self, label=None):
        self.label = label

    def __repr__(self):
        return f"Resource({self.label!r})"


# --- re-executing a def ----------------------------------------------------------------


def test_re_executed_def_finds_the_same_cache_and_entries():
    calls = []

    def define():
        @cache_resource
        def rerun_target(x):
            calls.append(x)
            return Resource(x)

        return rerun_target

    first, second = define(), define()
    assert first is not second
    value = first(1)
    assert second(1) is value
    assert calls == [1]
    second.clear()
    assert first(1) is not value  # one cache behind both wrappers


_APP_SOURCE = """
import fastcache

@fastcache.cache_resource(show_spinner={spinner!r})
def load(x):
    return [{marker!r}, x]
"""


def _run_script(path, module_name):
    """Runs a script file the way a Streamlit rerun does: compile and exec it afresh."""
    namespace = {"__name__": module_name}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - simulates a rerun
    return namespace["load"]


def test_rerunning_an_unchanged_script_file_finds_the_same_entries(tmp_path):
    path = tmp_path / "app_same.py"
    path.write_text(_APP_SOURCE.format(spinner=True, marker="v1"))
    load = _run_script(path, "fc_app_same")
    value = load(1)
    rerun = _run_script(path, "fc_app_same")
    assert rerun is not load
    assert rerun(1) is value


def test_editing_the_body_gives_a_new_empty_cache(tmp_path):
    path = tmp_path / "app_edit.py"
    path.write_text(_APP_SOURCE.format(spinner=True, marker="v1"))
    value = _run_script(path, "fc_app_edit")(1)
    path.write_text(_APP_SOURCE.format(spinner=True, marker="version2"))
    edited = _run_script(path, "fc_app_edit")
    assert edited(1) == ["version2", 1]
    assert edited(1) is not value


def test_editing_only_a_decorator_line_gives_a_new_cache(tmp_path):
    path = tmp_path / "app_decorator.py"
    path.write_text(_APP_SOURCE.format(spinner="Loading", marker="v1"))
    value = _run_script(path, "fc_app_decorator")(1)
    path.write_text(_APP_SOURCE.format(spinner="Loading the model", marker="v1"))
    edited = _run_script(path, "fc_app_decorator")
    assert edited(1) == value
    assert edited(1) is not value


def test_same_source_in_another_module_is_another_cache(tmp_path):
    path = tmp_path / "app_module.py"
    path.write_text(_APP_SOURCE.format(spinner=True, marker="v1"))
    in_a = _run_script(path, "fc_app_module_a")
    in_b = _run_script(path, "fc_app_module_b")
    assert in_a(1) is not in_b(1)


def test_same_source_under_another_qualname_is_another_cache():
    def outer_one():
        @cache_resource
        def same_body(x):
            return Resource(x)

        return same_body

    def outer_two():
        @cache_resource
        def same_body(x):
            return Resource(x)

        return same_body

    assert outer_one()(1) is not outer_two()(1)


# --- no source available (exec'd code) -------------------------------------------------

_EXEC_SOURCE = """
import fastcache

@fastcache.cache_resource
def query(x):
    return ({sql!r}, x, [])
"""


def _exec_without_source(source, module_name="fc_exec_app"):
    namespace = {"__name__": module_name}
    exec(compile(source, "<fastcache-test-exec>", "exec"), namespace)  # noqa: S102 - code without source
    return namespace["query"]


def test_exec_of_identical_code_without_source_shares_the_cache():
    source = _EXEC_SOURCE.format(sql="SELECT * FROM users")
    first = _exec_without_source(source)
    second = _exec_without_source(source)
    assert second(1) is first(1)


def test_exec_of_code_differing_only_in_a_string_constant_does_not_share_the_cache():
    users = _exec_without_source(_EXEC_SOURCE.format(sql="SELECT * FROM users"))
    orders = _exec_without_source(_EXEC_SOURCE.format(sql="SELECT * FROM orders"))
    assert users(1)[0] == "SELECT * FROM users"
    assert orders(1)[0] == "SELECT * FROM orders"


def test_exec_of_code_differing_only_in_a_nested_constant_does_not_share_the_cache():
    template = """
import fastcache

@fastcache.cache_resource
def query(x):
    rows = [lambda: {sql!r}]
    return (rows[0](), x)
"""
    users = _exec_without_source(template.format(sql="users"))
    orders = _exec_without_source(template.format(sql="orders"))
    assert users(1) == ("users", 1)
    assert orders(1) == ("orders", 1)


def test_exec_of_code_differing_only_in_a_global_name_does_not_share_the_cache():
    template = """
import fastcache
USERS = "users"
ORDERS = "orders"

@fastcache.cache_resource
def query(x):
    return ({name}, x)
"""
    users = _exec_without_source(template.format(name="USERS"))
    orders = _exec_without_source(template.format(name="ORDERS"))
    assert users(1) == ("users", 1)
    assert orders(1) == ("orders", 1)


# --- options that replace the cache ----------------------------------------------------


def _factory(released):
    """Re-executes one def with the options given: the same identity every time."""

    def define(**options):
        @cache_resource(on_release=released, **options)
        def configurable(x):
            return Resource(x)

        return configurable

    return define


@pytest.mark.parametrize(
    "before, after",
    [
        ({"ttl": 60}, {"ttl": 120}),
        ({"ttl": None}, {"ttl": 60}),
        ({"max_entries": 5}, {"max_entries": 6}),
        ({"max_entries": None}, {"max_entries": 6}),
        ({}, {"validate": lambda value: True}),
        ({"validate": lambda value: True}, {}),
        ({"ttl": 60}, {"ttl": 60, "refresh_mode": "background"}),
    ],
    ids=[
        "ttl",
        "ttl-none-to-number",
        "max_entries",
        "max_entries-added",
        "validate-added",
        "validate-removed",
        "refresh_mode",
    ],
)
def test_changed_option_replaces_the_cache_and_releases_old_entries(released, before, after):
    define = _factory(released)
    old = define(**before)
    one, two = old(1), old(2)
    new = define(**after)
    released.assert_each_released_once(one, two)
    fresh = new(1)
    assert fresh is not one
    assert released.count(fresh) == 0


@pytest.mark.parametrize(
    "before, after",
    [
        ({"ttl": 3600}, {"ttl": 3600.0}),
        ({"ttl": 3600}, {"ttl": timedelta(hours=1)}),
        ({"ttl": None}, {"ttl": math.inf}),
        ({"validate": lambda value: True}, {"validate": lambda value: value is not None}),
        ({"hash_funcs": {bytes: len}}, {"hash_funcs": {bytes: bytes.upper}}),
        ({"show_spinner": True}, {"show_spinner": "Loading..."}),
        ({"show_time": False}, {"show_time": True}),
    ],
    ids=[
        "ttl-float",
        "ttl-timedelta",
        "ttl-none-inf",
        "validate-other-function",
        "hash_funcs",
        "show_spinner",
        "show_time",
    ],
)
def test_unchanged_cache_options_keep_the_cache(released, before, after):
    define = _factory(released)
    value = define(**before)(1)
    assert define(**after)(1) is value
    assert len(released) == 0


def test_replacing_a_cache_frees_its_values(released):
    define = _factory(released)
    old = define(max_entries=3)
    ref = weakref.ref(old(1))
    released.values.clear()  # keep no reference in the recorder
    define(max_entries=4)
    released.values.clear()
    gc.collect()
    assert ref() is None


def test_global_clear_reaches_a_replaced_cache_still_used_by_its_old_wrapper(released):
    define = _factory(released)
    old = define(max_entries=3)
    define(max_entries=4)
    kept_by_old = old(1)  # the old wrapper still works, on its own (replaced) cache
    assert old(1) is kept_by_old
    fastcache.cache_resource.clear()
    released.assert_each_released_once(kept_by_old)


def test_values_left_in_a_replaced_cache_are_released_when_its_last_wrapper_goes(released):
    define = _factory(released)
    old = define(ttl=60)
    define(ttl=120)  # replaces the cache; `old` keeps working on the replaced one
    computed_after = [old(1), old(2)]
    assert old(1) is computed_after[0]
    assert len(released) == 0, "still cached: nothing is released yet"
    del old
    gc.collect()
    released.assert_each_released_once(*computed_after)


def test_clear_of_an_old_wrapper_releases_its_entries_once(released):
    define = _factory(released)
    old = define(max_entries=3)
    define(max_entries=4)
    value = old(1)
    old.clear()
    released.assert_each_released_once(value)
    del old
    gc.collect()
    released.assert_each_released_once(value)


def test_every_value_is_released_exactly_once_when_threads_keep_redecorating():
    """Threads re-decorate one function with alternating ttls (each replacing the cache)
    and call through the wrappers they hold: once every wrapper is gone and the caches
    are cleared, every value created has been released exactly once."""
    lock = threading.Lock()
    created, released = [], {}

    def on_release(value):
        with lock:
            released[id(value)] = released.get(id(value), 0) + 1

    def configurable(x):
        value = Resource(x)
        with lock:
            created.append(value)
        return value

    errors = []

    def worker(seed):
        try:
            held = []
            for i in range(300):
                wrapper = cache_resource(ttl=60 + (seed + i) % 3, on_release=on_release)(
                    configurable
                )
                held.append(wrapper)
                for x in range(3):
                    wrapper(x)
                if len(held) > 4:
                    held.pop(0)  # an old wrapper goes, its (maybe replaced) cache with it
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(t.is_alive() for t in threads)
    assert not errors, errors
    fastcache.cache_resource.clear()
    gc.collect()
    assert len(created) > 1000
    never = [v for v in created if id(v) not in released]
    twice = [v for v in created if released.get(id(v), 0) > 1]
    assert not never, f"{len(never)} of {len(created)} values were never released"
    assert not twice, f"{len(twice)} values were released more than once"


def test_hash_funcs_do_not_change_identity_for_exec_code():
    source = textwrap.dedent(
        """
        import fastcache

        @fastcache.cache_resource(hash_funcs=HASH_FUNCS)
        def query(x):
            return [x]
        """
    )
    first_ns = {"__name__": "fc_exec_hf", "HASH_FUNCS": {bytes: len}}
    exec(compile(source, "<fastcache-test-hf>", "exec"), first_ns)  # noqa: S102 - code without source
    second_ns = {"__name__": "fc_exec_hf", "HASH_FUNCS": {bytes: bytes.lower}}
    exec(compile(source, "<fastcache-test-hf>", "exec"), second_ns)  # noqa: S102 - code without source
    assert second_ns["query"](1) is first_ns["query"](1)
