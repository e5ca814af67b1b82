"""SPEC §1: the decorator's forms and parameters, the wrapper's metadata, methods, and the
decoration-time checks of scope / refresh_mode / async functions."""

from __future__ import annotations

import functools
import inspect
import re
import sys

import fastcache
import pytest
from fastcache import cache_resource

# --- forms ---------------------------------------------------------------------------


def test_bare_decorator_caches():
    calls = []

    @cache_resource
    def bare(x):
        calls.append(x)
        return object()

    assert isinstance(bare, fastcache.CachedFunction)
    assert bare(1) is bare(1)
    assert calls == [1]


def test_decorator_called_with_no_arguments_caches():
    calls = []

    @cache_resource()
    def empty_parens(x):
        calls.append(x)
        return object()

    assert isinstance(empty_parens, fastcache.CachedFunction)
    assert empty_parens(1) is empty_parens(1)
    assert calls == [1]


def test_decorator_called_with_keywords_caches_and_applies_them():
    calls = []

    @cache_resource(max_entries=1)
    def with_options(x):
        calls.append(x)
        return object()

    assert with_options(1) is with_options(1)
    with_options(2)  # evicts 1: the keyword was applied
    with_options(1)
    assert calls == [1, 2, 1]


def test_plain_call_on_a_function_caches():
    calls = []

    def plain(x):
        calls.append(x)
        return object()

    cached = cache_resource(plain)
    assert isinstance(cached, fastcache.CachedFunction)
    assert cached(1) is cached(1)
    assert calls == [1]


def test_plain_call_with_function_and_keywords_applies_them():
    calls = []

    def plain_with_options(x):
        calls.append(x)
        return object()

    cached = cache_resource(plain_with_options, max_entries=1)
    assert cached(1) is cached(1)
    cached(2)
    cached(1)
    assert calls == [1, 2, 1]


def test_second_positional_argument_is_a_type_error():
    def target(x):
        return x

    with pytest.raises(TypeError):
        cache_resource(target, 60)


@pytest.mark.parametrize("keyword", ["experimental_allow_widgets", "ttl_seconds", "maxsize"])
def test_unknown_keyword_is_a_type_error(keyword):
    def target(x):
        return x

    with pytest.raises(TypeError):
        cache_resource(**{keyword: True})
    with pytest.raises(TypeError):
        cache_resource(target, **{keyword: True})


def test_decorating_a_non_callable_is_a_type_error():
    with pytest.raises(TypeError):
        cache_resource(42)


def test_every_streamlit_parameter_is_accepted():
    @cache_resource(
        ttl=3600,
        max_entries=10,
        show_spinner="Loading...",
        show_time=True,
        validate=lambda value: True,
        hash_funcs={bytes: len},
        on_release=lambda value: None,
        scope="global",
        refresh_mode="foreground",
    )
    def all_options(x):
        return [x]

    assert all_options(1) is all_options(1)


def test_cache_parameters_returns_the_arguments_as_given():
    def check(value):
        return True

    def release(value):
        return None

    hash_funcs = {bytes: len}

    @cache_resource(
        max_entries=3, show_spinner=False, validate=check, on_release=release, hash_funcs=hash_funcs
    )
    def described(x):
        return x

    params = described.cache_parameters()
    assert params == {
        "ttl": None,
        "max_entries": 3,
        "show_spinner": False,
        "show_time": False,
        "validate": check,
        "hash_funcs": hash_funcs,
        "on_release": release,
        "scope": "global",
        "refresh_mode": "foreground",
    }
    params["max_entries"] = 99
    assert described.cache_parameters()["max_entries"] == 3


# --- metadata --------------------------------------------------------------------------


def test_wrapper_carries_functools_metadata():
    def documented(a: int, b: str = "x") -> list:
        """Loads something."""
        return [a, b]

    documented.custom_marker = "kept"
    cached = cache_resource(documented)

    assert cached.__module__ == documented.__module__ == __name__
    assert cached.__name__ == "documented"
    assert cached.__qualname__ == documented.__qualname__
    assert cached.__doc__ == "Loads something."
    assert cached.__annotations__ == {"a": "int", "b": "str", "return": "list"}
    assert cached.custom_marker == "kept"
    assert cached.__wrapped__ is documented


def test_signature_and_unwrap_see_the_original():
    def signed(a, b=2, *args, _conn=None, **kwargs):
        return a

    cached = cache_resource(signed)
    assert inspect.signature(cached) == inspect.signature(signed)
    assert inspect.unwrap(cached) is signed


def test_metadata_of_a_decorated_function_with_existing_wrapped_chain():
    def inner(x):
        return x

    @functools.wraps(inner)
    def outer(x):
        return inner(x)

    cached = cache_resource(outer)
    assert cached.__wrapped__ is outer
    assert inspect.unwrap(cached) is inner


def test_hit_runs_no_python_frame():
    @cache_resource
    def native_hit(x):
        return object()

    class Holder:
        @cache_resource
        def method(_self, x):
            return object()

    holder = Holder()
    native_hit(1)
    holder.method(1)
    python_calls = []

    def profiler(frame, event, arg):
        if event == "call":
            python_calls.append(frame.f_code.co_name)

    sys.setprofile(profiler)
    try:
        native_hit(1)
        native_hit(x=1)
        holder.method(1)
    finally:
        sys.setprofile(None)
    assert python_calls == []


# --- methods ---------------------------------------------------------------------------


def test_method_with_underscore_self_shares_entries_across_instances():
    calls = []

    class Repository:
        @cache_resource
        def connect(_self, url):
            calls.append(url)
            return object()

    first, second = Repository(), Repository()
    assert first.connect("db") is second.connect("db")
    assert first.connect("other") is not first.connect("db")
    assert calls == ["db", "other"]


def test_method_self_is_hashed_when_named_self():
    calls = []

    class Name(str):
        @cache_resource
        def shout(self, suffix):
            calls.append((str(self), suffix))
            return object()

    assert Name("a").shout("!") is Name("a").shout("!")
    assert Name("a").shout("!") is not Name("b").shout("!")
    assert calls == [("a", "!"), ("b", "!")]


def test_method_of_plain_class_with_hashed_self_is_unhashable():
    class Plain:
        @cache_resource
        def load(self):
            return 1

    with pytest.raises(fastcache.UnhashableParamError, match="Cannot hash argument 'self'"):
        Plain().load()


def test_access_through_the_class_is_the_wrapper_itself():
    class Service:
        @cache_resource
        def fetch(_self, x):
            return [x]

    assert Service.fetch is Service.__dict__["fetch"]
    assert isinstance(Service.fetch, fastcache.CachedFunction)
    # Called through the class, the instance is passed explicitly.
    service = Service()
    assert Service.fetch(service, 1) is service.fetch(1)


def test_bound_method_exposes_instance_function_and_metadata():
    class Service:
        @cache_resource
        def fetch(_self, x):
            """Fetches."""
            return [x]

    service = Service()
    bound = service.fetch
    assert isinstance(bound, fastcache.BoundCachedMethod)
    assert bound.__self__ is service
    assert bound.__func__ is Service.__dict__["fetch"]
    assert bound.__name__ == "fetch"
    assert bound.__doc__ == "Fetches."  # as a Python bound method (and Streamlit) report it


def test_bound_clear_with_arguments_prepends_the_instance():
    class Key(str):
        @cache_resource
        def resource(self, n):
            return object()

    a, b = Key("a"), Key("b")
    a1, a2, b1 = a.resource(1), a.resource(2), b.resource(1)
    a.resource.clear(1)
    assert a.resource(1) is not a1
    assert a.resource(2) is a2
    assert b.resource(1) is b1


def test_bound_clear_without_arguments_clears_the_whole_function():
    class Key(str):
        @cache_resource
        def resource_all(self, n):
            return object()

    a, b = Key("a"), Key("b")
    a1, b1 = a.resource_all(1), b.resource_all(1)
    a.resource_all.clear()
    assert a.resource_all(1) is not a1
    assert b.resource_all(1) is not b1


def test_classmethod_stacked_over_the_decorator():
    calls = []

    class Factory:
        @classmethod
        @cache_resource
        def build(cls, n):
            calls.append((cls.__name__, n))
            return object()

    class SubFactory(Factory):
        pass

    assert Factory.build(1) is Factory.build(1)
    assert Factory().build(1) is Factory.build(1)
    assert SubFactory.build(1) is not Factory.build(1)  # cls is part of the key
    assert calls == [("Factory", 1), ("SubFactory", 1)]


def test_staticmethod_stacked_over_the_decorator():
    calls = []

    class Tools:
        @staticmethod
        @cache_resource
        def tool(n):
            calls.append(n)
            return object()

    assert Tools.tool(1) is Tools().tool(1)
    assert calls == [1]
    Tools.tool.clear()
    Tools.tool(1)
    assert calls == [1, 1]


def test_decorator_stacked_over_staticmethod():
    calls = []

    class Tools:
        @cache_resource
        @staticmethod
        def tool(n):
            calls.append(n)
            return object()

    assert Tools().tool(1) is Tools.tool(1)
    assert Tools().tool(2) is not Tools.tool(1)
    assert calls == [1, 2]
    Tools.tool.clear()
    Tools().tool(1)
    assert calls == [1, 2, 1]


def test_decorator_stacked_over_classmethod():
    calls = []

    class Factory:
        @cache_resource
        @classmethod
        def build(cls, n):
            calls.append((cls.__name__, n))
            return object()

    class SubFactory(Factory):
        pass

    assert Factory.build(1) is Factory().build(1)
    assert SubFactory.build(1) is not Factory.build(1)  # cls is part of the key
    assert calls == [("Factory", 1), ("SubFactory", 1)]


# --- clear -----------------------------------------------------------------------------


def test_clear_without_arguments_clears_every_entry_of_the_function():
    @cache_resource
    def cleared_all(x):
        return object()

    one, two = cleared_all(1), cleared_all(2)
    cleared_all.clear()
    assert cleared_all(1) is not one
    assert cleared_all(2) is not two


def test_clear_with_arguments_clears_only_that_entry():
    @cache_resource
    def cleared_one(x, y=0):
        return object()

    one, two = cleared_one(1), cleared_one(2)
    cleared_one.clear(x=1, y=0)  # any spelling of the call selects the entry
    assert cleared_one(1) is not one
    assert cleared_one(2) is two


def test_clear_with_arguments_of_a_missing_entry_is_harmless():
    @cache_resource
    def cleared_missing(x):
        return object()

    one = cleared_missing(1)
    cleared_missing.clear(2)
    assert cleared_missing(1) is one


def test_clear_with_arguments_that_do_not_fit_the_signature_is_a_type_error():
    @cache_resource
    def cleared_badly(x):
        return object()

    with pytest.raises(TypeError):
        cleared_badly.clear(1, 2, 3)


def test_cache_resource_clear_clears_every_function():
    @cache_resource
    def first_fn(x):
        return object()

    @cache_resource
    def second_fn(x):
        return object()

    a, b = first_fn(1), second_fn(1)
    fastcache.cache_resource.clear()
    assert first_fn(1) is not a
    assert second_fn(1) is not b


# --- cache_info ------------------------------------------------------------------------


def test_cache_info_counts_hits_misses_and_size():
    @cache_resource(max_entries=5)
    def counted(x):
        return object()

    assert counted.cache_info() == fastcache.CacheInfo(hits=0, misses=0, maxsize=5, currsize=0)
    counted(1)
    counted(1)
    counted(x=1)
    counted(2)
    info = counted.cache_info()
    assert isinstance(info, fastcache.CacheInfo)
    assert info == (2, 2, 5, 2)
    assert (info.hits, info.misses, info.maxsize, info.currsize) == (2, 2, 5, 2)
    counted.clear(1)
    assert counted.cache_info().currsize == 1


def test_cache_info_maxsize_is_none_without_max_entries():
    @cache_resource
    def unbounded(x):
        return x

    unbounded(1)
    assert unbounded.cache_info().maxsize is None
    assert unbounded.cache_info().currsize == 1


# --- a call that does not fit the signature --------------------------------------------


@pytest.mark.parametrize(
    "args, kwargs",
    [
        ((1, 2, 3), {}),  # too many positionals
        ((), {}),  # missing a required argument
        ((1,), {"c": 3}),  # unexpected keyword
        ((1,), {"a": 1}),  # duplicate value for a
    ],
)
def test_call_not_fitting_the_signature_raises_the_functions_own_type_error(args, kwargs):
    def strict(a, b=2):
        return object()

    cached = cache_resource(strict)
    with pytest.raises(TypeError) as expected:
        strict(*args, **kwargs)
    with pytest.raises(TypeError) as got:
        cached(*args, **kwargs)
    assert str(got.value) == str(expected.value)
    assert cached.cache_info().currsize == 0


def test_positional_only_parameter_given_by_keyword_raises_the_functions_own_type_error():
    def posonly(a, /):
        return object()

    cached = cache_resource(posonly)
    with pytest.raises(TypeError) as expected:
        posonly(a=1)
    with pytest.raises(TypeError) as got:
        cached(a=1)
    assert str(got.value) == str(expected.value)


# --- a wrapper that adds a parameter (functools.wraps) ---------------------------------


def with_timeout(func):
    """A decorator in the common style: it shows ``func``'s signature (functools.wraps) and
    takes a ``timeout`` keyword of its own."""

    @functools.wraps(func)
    def wrapper(*args, timeout=None, **kwargs):
        return func(*args, **kwargs), timeout

    return wrapper


def test_call_using_a_keyword_the_wrapper_adds_is_cached():
    calls = []

    @cache_resource
    @with_timeout
    def connect(url):
        calls.append(url)
        return object()

    first = connect("db", timeout=5)
    assert connect("db", timeout=5) is first
    assert calls == ["db"]
    assert connect("db", timeout=6) is not first
    assert connect("other", timeout=5) is not first


def test_call_fitting_the_shown_signature_and_the_wrappers_are_separate_entries():
    @cache_resource
    @with_timeout
    def connect(url):
        return object()

    assert connect("db") is connect(url="db")
    assert connect("db") is not connect("db", timeout=5)
    assert connect.cache_info().currsize == 2


def test_call_fitting_neither_signature_raises_pythons_type_error():
    @with_timeout
    def strict(url):
        return object()

    cached = cache_resource(strict)
    with pytest.raises(TypeError) as expected:
        strict("a", "b")
    with pytest.raises(TypeError) as got:
        cached("a", "b")
    assert str(got.value) == str(expected.value)


def test_call_fitting_no_reported_signature_but_running_is_uncached_with_a_warning():
    def anything(*args, **kwargs):
        return object()

    anything.__signature__ = inspect.Signature(
        [inspect.Parameter("url", inspect.Parameter.POSITIONAL_OR_KEYWORD)]
    )
    cached = cache_resource(anything)
    with pytest.warns(RuntimeWarning, match="ran without the cache"):
        value = cached("a", "b")
    with pytest.warns(RuntimeWarning):
        assert cached("a", "b") is not value
    assert cached.cache_info().currsize == 0


# --- scope / refresh_mode / async ------------------------------------------------------


def test_invalid_scope_is_rejected_with_streamlits_text():
    with pytest.raises(
        ValueError,
        match=re.escape("Invalid `scope` value. Supported values: 'global', 'session'."),
    ):
        cache_resource(scope="user")


def test_invalid_refresh_mode_is_rejected_with_streamlits_text():
    with pytest.raises(
        ValueError,
        match=re.escape("Invalid `refresh_mode` value. Supported values: foreground, background."),
    ):
        cache_resource(refresh_mode="eager")


def test_background_refresh_without_ttl_is_rejected_with_streamlits_text():
    with pytest.raises(
        ValueError,
        match=re.escape(
            'The `ttl` parameter is required. Set a positive `ttl` (for example `ttl="1h"`) '
            'or use `refresh_mode="foreground"`.'
        ),
    ):
        cache_resource(refresh_mode="background")


@pytest.mark.parametrize("ttl", [0, -5, 0.0])
def test_background_refresh_with_non_positive_ttl_is_rejected_with_streamlits_text(ttl):
    with pytest.raises(
        ValueError,
        match=re.escape(
            "Invalid `ttl` value. Supported values: a positive duration. Background refresh "
            'requires a positive `ttl` (for example `ttl="1h"`) or `refresh_mode="foreground"`.'
        ),
    ):
        cache_resource(refresh_mode="background", ttl=ttl)


def test_generator_function_is_rejected_at_decoration():
    def rows(x):
        yield x

    with pytest.raises(TypeError, match="rows is a generator function"):
        cache_resource(rows)
    with pytest.raises(TypeError, match="generator function"):
        cache_resource(ttl=60)(rows)


def test_async_generator_function_is_rejected_at_decoration():
    async def stream(x):
        yield x

    with pytest.raises(TypeError, match="async generator"):
        cache_resource(stream)


@pytest.mark.parametrize("callback", ["validate", "on_release"])
def test_async_callbacks_are_rejected_at_decoration(callback):
    async def check(value):
        return True

    with pytest.raises(TypeError, match=f"`{callback}`.*synchronous"):
        cache_resource(**{callback: check})


@pytest.mark.parametrize("callback", ["validate", "on_release"])
def test_non_callable_callbacks_are_rejected_at_decoration(callback):
    with pytest.raises(TypeError, match=callback):
        cache_resource(**{callback: "not a function"})


def test_session_scope_outside_streamlit_raises_streamlits_session_error():
    @cache_resource(scope="session")
    def per_session(x):
        return object()

    with pytest.raises(fastcache.SessionScopeError) as info:
        per_session(1)
    assert isinstance(info.value, RuntimeError)
    assert str(info.value).startswith(
        "A session-scoped cache was accessed outside of the app execution thread. "
    )


def test_exceptions_subclass_the_matching_builtins():
    assert issubclass(fastcache.UnhashableParamError, TypeError)
    assert issubclass(fastcache.BadTTLStringError, ValueError)
    assert issubclass(fastcache.ReentrantCallError, RecursionError)
    assert issubclass(fastcache.SessionScopeError, RuntimeError)
    assert issubclass(fastcache.UserHashError, Exception)


# --- statistics reset as functools' cache_clear does ----------------------------------


def test_clear_resets_cache_info():
    @cache_resource(max_entries=5)
    def counted_then_cleared(x):
        return object()

    counted_then_cleared(1)
    counted_then_cleared(1)
    counted_then_cleared(2)
    assert counted_then_cleared.cache_info() == (1, 2, 5, 2)
    counted_then_cleared.clear()
    assert counted_then_cleared.cache_info() == (0, 0, 5, 0)
    counted_then_cleared(1)
    assert counted_then_cleared.cache_info() == (0, 1, 5, 1)


def test_clearing_one_entry_keeps_the_counts():
    @cache_resource
    def one_entry_cleared(x):
        return object()

    one_entry_cleared(1)
    one_entry_cleared(1)
    one_entry_cleared(2)
    one_entry_cleared.clear(1)
    assert one_entry_cleared.cache_info() == (1, 2, None, 1)


def test_global_clear_resets_every_cache_info():
    @cache_resource
    def first_counted(x):
        return object()

    @cache_resource
    def second_counted(x):
        return object()

    for fn in (first_counted, second_counted):
        fn(1)
        fn(1)
    fastcache.cache_resource.clear()
    assert first_counted.cache_info() == (0, 0, None, 0)
    assert second_counted.cache_info() == (0, 0, None, 0)


def test_cache_clear_is_clear(released):
    @cache_resource(on_release=released)
    def aliased(x):
        return object()

    a, b = aliased(1), aliased(2)
    aliased.cache_clear(1)
    released.assert_each_released_once(a)
    assert aliased(2) is b
    aliased.cache_clear()
    released.assert_each_released_once(a, b)
    assert aliased.cache_info() == (0, 0, None, 0)


def test_bound_method_has_cache_clear_cache_info_and_cache_parameters(released):
    class Model:
        def __init__(self, name):
            self.name = name

        def __eq__(self, other):
            return isinstance(other, Model) and other.name == self.name

        def __hash__(self):
            return hash(self.name)

        @cache_resource(max_entries=4, on_release=released)
        def predict(self, x):
            return object()

    first, second = Model("a"), Model("b")
    kept, dropped = first.predict(1), second.predict(1)
    second.predict.cache_clear(1)
    released.assert_each_released_once(dropped)
    assert first.predict(1) is kept
    assert first.predict.cache_info() == (1, 2, 4, 1)
    assert first.predict.cache_parameters()["max_entries"] == 4
    first.predict.cache_clear()
    released.assert_each_released_once(kept, dropped)
    assert Model.predict.cache_info() == (0, 0, 4, 0)


# --- repr -------------------------------------------------------------------------------


def test_repr_names_the_function_and_spells_its_options():
    def shaped(x):
        return x

    assert repr(cache_resource(shaped)) == f"<fastcache cached function {shaped!r}>"
    assert repr(cache_resource(shaped, ttl=3600, max_entries=8)) == (
        f"<fastcache cached function {shaped!r} (ttl 1h, max_entries 8)>"
    )
    assert repr(cache_resource(shaped, ttl=90.5, refresh_mode="background")) == (
        f"<fastcache cached function {shaped!r} (ttl 1m 31s, background refresh)>"
    )
