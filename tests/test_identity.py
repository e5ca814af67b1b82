"""SPEC §2: a function's cache is found again by (module, qualname, source); options that
change replace the cache and release its entries; callables that compute different things
(partials, callable instances, bound methods, lambdas on one line, closures) never share a
cache, while a rerun of the same code still finds its own."""

from __future__ import annotations

import functools
import gc
import itertools
import math
import textwrap
import threading
import warnings
import weakref
from datetime import timedelta

import fastcache
import pytest
from fastcache import cache_resource
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


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


# --- callables that compute different things never share a cache ----------------------


def connect(database, port):
    return Resource((database, port))


def test_partials_of_one_function_with_different_arguments_are_distinct():
    to_a = cache_resource(functools.partial(connect, "db-A"))
    to_b = cache_resource(functools.partial(connect, "db-B"))
    assert to_a(5).label == ("db-A", 5)
    assert to_b(5).label == ("db-B", 5)
    assert to_a(5) is to_a(5)


def test_partials_with_equal_arguments_share_the_cache():
    first = cache_resource(functools.partial(connect, "db-A"))
    again = cache_resource(functools.partial(connect, "db-A"))  # a rerun builds it anew
    assert again(5) is first(5)


def test_partials_of_different_functions_are_distinct():
    def other(database, port):
        return Resource(("other", database, port))

    assert cache_resource(functools.partial(connect, "db"))(1).label == ("db", 1)
    assert cache_resource(functools.partial(other, "db"))(1).label == ("other", "db", 1)


def test_partial_argument_without_content_is_an_error_at_decoration():
    class Pool:
        pass

    with pytest.raises(TypeError, match="Pool"):
        cache_resource(functools.partial(connect, Pool()))


class Loader:
    def __init__(self, source):
        self.source = source

    def __call__(self, x):
        return Resource((self.source, x))

    def load(self, x):
        return Resource((self.source, "load", x))


def test_callable_instances_are_told_apart_by_their_content():
    load_a, load_b = cache_resource(Loader("A")), cache_resource(Loader("B"))
    assert load_a(1).label == ("A", 1)
    assert load_b(1).label == ("B", 1)


def test_callable_instance_with_equal_content_finds_its_cache_again():
    first = cache_resource(Loader("A"))
    assert cache_resource(Loader("A"))(1) is first(1)


def test_callable_instance_without_content_is_an_error_at_decoration():
    class Socketish:
        pass

    with pytest.raises(TypeError, match="Socketish") as info:
        cache_resource(Loader(Socketish()))
    assert "fastcache.cache_resource" in str(info.value)


def test_callable_instance_holding_a_lock_is_an_error_at_decoration():
    class Guarded:
        def __init__(self):
            self.lock = threading.Lock()

        def __call__(self):
            return Resource()

    with pytest.raises(TypeError, match="lock"):
        cache_resource(Guarded())


def test_bound_methods_decorated_directly_are_told_apart_by_their_instance():
    load_a = cache_resource(Loader("A").load)
    load_b = cache_resource(Loader("B").load)
    assert load_a(1).label == ("A", "load", 1)
    assert load_b(1).label == ("B", "load", 1)


def test_builtin_bound_methods_of_different_objects_are_distinct():
    get_1 = cache_resource({"k": 1}.get)
    get_2 = cache_resource({"k": 2}.get)
    assert get_1("k") == 1
    assert get_2("k") == 2


def test_builtin_functions_are_keyed_by_name():
    assert cache_resource(len)("abc") == 3
    assert cache_resource(abs)(-3) == 3


def test_two_lambdas_on_one_line_are_distinct():
    dec = cache_resource(max_entries=5)
    inc, dbl = dec(lambda x: x + 1), dec(lambda x: x * 2)
    assert inc(10) == 11
    assert dbl(10) == 20


def make_reader(source):
    @cache_resource
    def read(x):
        return Resource((source, x))

    return read


def make_reader_with_default(source):
    @cache_resource
    def read(x, _source=source):
        return Resource((_source, x))

    return read


@pytest.mark.parametrize("factory", [make_reader, make_reader_with_default])
def test_closures_from_one_factory_over_different_values_are_distinct(factory):
    assert factory("A")(1).label == ("A", 1)
    assert factory("B")(1).label == ("B", 1)


@pytest.mark.parametrize("factory", [make_reader, make_reader_with_default])
def test_closures_from_one_factory_over_equal_values_share_the_cache(factory):
    first = factory(["A", 1])(1)
    assert factory(["A", 1])(1) is first


# Iterators a closure or a default may hold: state that moves on, with no content two
# decorations could compare (pickling itertools objects is deprecated since Python 3.12).
CAPTURED_ITERATORS = {
    "itertools.count": itertools.count,
    "itertools.cycle": lambda: itertools.cycle("ab"),
    "itertools.islice": lambda: itertools.islice(range(100), 50),
    "itertools.chain": lambda: itertools.chain([1], [2]),
    "generator": lambda: (n for n in range(100)),
    "map": lambda: map(str, range(100)),
    "filter": lambda: filter(None, range(100)),
    "zip": lambda: zip(range(100), range(100)),
}


def make_numbering(source, ids):
    @cache_resource
    def number(x):
        return Resource((source, x, next(ids, None)))

    return number


def make_numbering_with_default(source, ids):
    @cache_resource
    def number(x, _ids=ids):
        return Resource((source, x, next(_ids, None)))

    return number


@pytest.mark.parametrize("factory", [make_numbering, make_numbering_with_default])
@pytest.mark.parametrize("iterator", CAPTURED_ITERATORS.values(), ids=CAPTURED_ITERATORS.keys())
def test_closures_over_iterators_decorate_without_warnings_and_count_them_by_class(
    factory, iterator
):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = factory("A", iterator())
        value = first(1)
        ids = iterator()
        next(ids)  # how far an iterator has gone is no part of the identity
        # A rerun over a fresh iterator finds the cache, as for other values without content.
        assert factory("A", ids)(1) is value
        # What else the closure holds still tells closures apart.
        assert factory("B", iterator())(1).label[0] == "B"
    assert [str(w.message) for w in caught] == []


@pytest.mark.parametrize("iterator", CAPTURED_ITERATORS.values(), ids=CAPTURED_ITERATORS.keys())
def test_a_captured_iterator_does_not_warn_when_warnings_are_errors(iterator):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert make_numbering("A", iterator())(1).label[:2] == ("A", 1)


_FACTORY_APP = """
import fastcache

def make(source):
    @fastcache.cache_resource
    def read(x):
        return [source, x]
    return read

class Client:  # no content: a fresh one on every run
    pass

client = Client()

def make_with_client(source):
    @fastcache.cache_resource
    def read(x, _client=client):
        return [source, x]
    return read

read_a, read_b = make("A"), make("B")
read_client = make_with_client("C")
"""


def test_rerunning_a_script_with_closures_finds_each_closure_cache(tmp_path):
    path = tmp_path / "app_factory.py"
    path.write_text(_FACTORY_APP)
    namespace = {"__name__": "fc_app_factory"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)  # noqa: S102 - a rerun
    first = {name: namespace[name](1) for name in ("read_a", "read_b", "read_client")}
    assert first["read_a"] == ["A", 1]
    assert first["read_b"] == ["B", 1]
    rerun = {"__name__": "fc_app_factory"}
    exec(compile(path.read_text(), str(path), "exec"), rerun)  # noqa: S102 - a rerun
    for name, value in first.items():
        assert rerun[name](1) is value, name


def test_closure_capturing_another_cached_function_finds_its_cache_on_a_rerun():
    def page():
        @cache_resource
        def client():
            return Resource("client")

        @cache_resource
        def table(name):
            return Resource((client().label, name))

        return table

    first = page()("users")
    assert page()("users") is first


def test_closures_capturing_different_classes_are_distinct():
    def make(kind):
        @cache_resource
        def build():
            return kind()

        return build

    class One:
        pass

    class Two:
        pass

    assert type(make(One)()) is One
    assert type(make(Two)()) is Two


def test_functools_wraps_wrappers_of_one_function_are_distinct():
    def timed(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            return ("timed", func(*args, **kwargs))

        return wrapper

    def retried(func):
        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            return ("retried", func(*args, **kwargs))

        return wrapper

    def fetch(x):
        return x

    assert cache_resource(timed(fetch))(1) == ("timed", 1)
    assert cache_resource(retried(fetch))(1) == ("retried", 1)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(st.integers(), st.text(max_size=4), st.tuples(st.integers(), st.booleans())),
    st.one_of(st.integers(), st.text(max_size=4), st.tuples(st.integers(), st.booleans())),
)
def test_closures_share_a_cache_exactly_when_their_captured_values_are_equal(a, b):
    same = (type(a), a) == (type(b), b) and repr(a) == repr(b)
    assert (make_reader(a)(0) is make_reader(b)(0)) == same


# --- decorating a cached function again ------------------------------------------------


def test_stacked_decorators_cache_once_and_return_the_value():
    calls = []

    @cache_resource
    @cache_resource
    def stacked(x):
        calls.append(x)
        return Resource(x)

    value = stacked(1)
    assert value.label == 1
    assert stacked(1) is value
    assert calls == [1]


def test_decorating_an_already_cached_function_shares_its_entries():
    calls = []

    @cache_resource
    def plain(x):
        calls.append(x)
        return Resource(x)

    again = cache_resource(plain)
    assert again(1) is plain(1)
    assert calls == [1]


def test_decorating_a_cached_function_with_other_options_caches_once(released):
    calls = []

    @cache_resource
    def plain(x):
        calls.append(x)
        return Resource(x)

    limited = cache_resource(max_entries=1, on_release=released)(plain)
    value = limited(1)
    assert limited(1) is value
    assert calls == [1]


def test_decorating_a_cached_method_looked_up_on_an_instance_works():
    class Service:
        def __init__(self, name):
            self.name = name

        @cache_resource
        def fetch(self, x):
            return Resource((self.name, x))

    fetch_a = cache_resource(Service("a").fetch)
    assert fetch_a(1).label == ("a", 1)
    assert fetch_a(1) is fetch_a(1)


def test_lru_cache_wrappers_of_closures_over_different_values_are_distinct():
    def make(source):
        @functools.lru_cache
        def read(x):
            return Resource((source, x))

        return read

    assert cache_resource(make("A"))(1).label == ("A", 1)
    assert cache_resource(make("B"))(1).label == ("B", 1)


def test_wrapper_objects_holding_state_without_content_are_told_apart_by_what_they_wrap():
    class Retrying:
        def __init__(self, func):
            self.__wrapped__ = func
            self.lock = threading.Lock()  # no content: counted by its class

        def __call__(self, *args):
            return self.__wrapped__(*args)

    assert cache_resource(Retrying(make_reader("A")))(1).label == ("A", 1)
    assert cache_resource(Retrying(make_reader("B")))(1).label == ("B", 1)


def test_a_staticmethod_object_is_its_function():
    def double(x):
        return Resource(x * 2)

    cached = cache_resource(staticmethod(double))
    assert cached(2).label == 4
    assert cached(2) is cached(2)
