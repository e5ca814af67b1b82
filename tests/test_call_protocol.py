"""How a cached function is called: through the vectorcall entry (the arguments as the
interpreter holds them), through `__call__` (a tuple and a dict), bound to an instance or
not. Every route reaches the same entries; a hit on simple arguments takes a path that
writes its key without the general encoder, and must find exactly the entries the
general path writes."""

from __future__ import annotations

import functools
import gc
import itertools
import math
import operator
import sys
import tracemalloc

import pytest
from fastcache import cache_resource
from hypothesis import given, settings
from hypothesis import strategies as st


def test_every_way_of_calling_reaches_the_same_entry():
    calls = []

    @cache_resource
    def load(a, b=2, *, c=3):
        calls.append((a, b, c))
        return object()

    first = load(1)
    # Through CALL_FUNCTION_EX (a tuple and a dict handed to PyObject_Call).
    positional, no_keywords, keywords = [1], {}, {"a": 1, "b": 2}
    routes = [
        lambda: load(1),
        lambda: load(1, 2),
        lambda: load(a=1),
        lambda: load(1, c=3),
        lambda: load(b=2, a=1, c=3),
        lambda: load(*positional, **no_keywords),
        lambda: load(**keywords),
        lambda: type(load).__call__(load, 1),
        lambda: functools.partial(load, 1)(),
        lambda: functools.partial(load, c=3)(1),
        lambda: operator.call(load, 1) if hasattr(operator, "call") else load(1),
        lambda: next(map(load, [1])),
    ]
    for route in routes:
        assert route() is first
    assert calls == [(1, 2, 3)]
    assert load.cache_info().hits == len(routes)


def test_every_way_of_calling_a_method_passes_the_instance_first():
    calls = []

    class Model:
        @cache_resource
        def predict(_self, x, scale=1):
            calls.append((x, scale))
            return object()

    model = Model()
    first = model.predict(1)
    bound = model.predict
    scale = {"scale": 1}
    routes = [
        lambda: model.predict(1),
        lambda: model.predict(x=1),
        lambda: model.predict(1, scale=1),
        lambda: Model.predict(model, 1),
        lambda: Model.predict(model, x=1),
        lambda: bound(1),
        lambda: bound(x=1, scale=1),
        lambda: bound(*[1], **scale),
        lambda: type(bound).__call__(bound, 1),
        lambda: functools.partial(bound, 1)(),
        lambda: functools.partial(Model.predict, model)(1),
        lambda: Model().predict(1),  # `_self` is not part of the key
    ]
    for route in routes:
        assert route() is first
    assert calls == [(1, 1)]


def test_many_arguments_and_long_keys_go_beyond_the_inline_buffers():
    @cache_resource
    def wide(a, b, c, d, e, f, g, h, i, j, k=11, *, m=12, n=13):
        return (a, b, c, d, e, f, g, h, i, j, k, m, n)

    long_text = "x" * 500
    args = (1, 2, 3, 4, 5, 6, 7, 8, 9, long_text)
    value = wide(*args)
    assert wide(1, 2, 3, 4, 5, 6, 7, 8, 9, j=long_text, k=11, n=13) is value
    assert wide(*args[:-1], long_text + "y") is not value
    assert wide(*args, m=0) is not value

    class Wide:
        @cache_resource
        def method(_self, a, b, c, d, e, f, g, h, i, *, j="j" * 200):
            return object()

    obj = Wide()
    bound_value = obj.method(1, 2, 3, 4, 5, 6, 7, 8, 9)
    assert obj.method(1, 2, 3, 4, 5, 6, 7, 8, 9, j="j" * 200) is bound_value
    bound = obj.method
    assert bound(1, 2, 3, 4, 5, 6, 7, 8, i=9) is bound_value
    assert bound(1, 2, 3, 4, 5, 6, 7, 8, 0) is not bound_value


def _python_allocations_during(call, times=2000):
    """Bytes of Python objects allocated at the peak while calling `call` repeatedly,
    beyond what was allocated before (tracemalloc's own bookkeeping included: compare
    with an empty call). Objects taken from a free list (small tuples) are not seen."""
    gc.collect()
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        for _ in itertools.repeat(None, times):
            call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak - before


def test_a_hit_allocates_no_python_object():
    @cache_resource
    def load(x, name, scale=1.5):
        return object()

    class Model:
        @cache_resource
        def predict(_self, x, flag=None):
            return object()

    model = Model()
    bound = model.predict
    routes = {
        "positional": lambda: load(42, "model-a"),
        "keywords": lambda: load(x=42, name="model-a", scale=1.5),
        "method": lambda: model.predict(1, True),
        "bound method": lambda: bound(1, flag=None),
        "bytes and None": lambda: load(b"raw", None),
    }
    for route in routes.values():
        route()
    nothing = _python_allocations_during(lambda: None)
    allocated = {name: _python_allocations_during(route) for name, route in routes.items()}
    assert allocated == dict.fromkeys(routes, nothing)


# `Py_TPFLAGS_HAVE_VECTORCALL`: calls read the entry from the instance instead of building
# an argument tuple (and a dict for keywords) for `tp_call`.
HAVE_VECTORCALL = 1 << 11


def test_cached_functions_and_bound_methods_are_called_through_vectorcall():
    class Model:
        @cache_resource
        def predict(_self, x):
            return x

    assert type(Model.predict).__flags__ & HAVE_VECTORCALL
    assert type(Model().predict).__flags__ & HAVE_VECTORCALL


def test_hits_neither_leak_nor_drop_references_to_the_value():
    @cache_resource
    def load(x, name):
        return object()

    class Model:
        @cache_resource
        def predict(_self, x):
            return object()

    value = load(1, "a")
    method_value = Model().predict(1)
    model = Model()
    before = sys.getrefcount(value), sys.getrefcount(method_value)
    for _ in range(1000):
        load(1, "a")
        load(x=1, name="a")
        model.predict(1)
        model.predict(x=1)
    assert (sys.getrefcount(value), sys.getrefcount(method_value)) == before


def test_an_exception_passes_through_the_entry_and_nothing_is_stored():
    attempts = []

    @cache_resource
    def flaky(x):
        attempts.append(x)
        if len(attempts) < 3:
            raise ValueError(f"attempt {len(attempts)}")
        return object()

    with pytest.raises(ValueError, match="attempt 1"):
        flaky(1)
    with pytest.raises(ValueError, match="attempt 2"):
        flaky(x=1)
    value = flaky(1)
    assert flaky(1) is value
    assert attempts == [1, 1, 1]


simple_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),  # beyond 64 bits too: those take the general path
    st.floats(allow_nan=True),
    st.text(),  # lone surrogates too: no UTF-8 form, the general path
    st.binary(),
    st.integers().map(str).map(lambda s: s.encode()),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(simple_values, min_size=1, max_size=3), st.booleans())
def test_the_fast_path_and_the_general_path_write_the_same_key(values, by_keyword):
    # A call writes its key on the fast path when every argument is of a simple kind;
    # `clear(...)` always writes it with the general encoder. Clearing must find the
    # entry the call stored, and only that one.
    calls = []

    @cache_resource
    def load(a, b=None, c=None):
        calls.append(1)
        return object()

    load.clear()  # every example decorates the same function again: one cache for all
    names = ["a", "b", "c"][: len(values)]
    call = (lambda: load(**dict(zip(names, values)))) if by_keyword else (lambda: load(*values))
    value = call()
    assert call() is value
    other = load("a different key", 0.5)
    load.clear(*values)
    assert call() is not value
    assert load("a different key", 0.5) is other
    assert len(calls) == 3


def test_floats_keep_their_bits_on_the_fast_path():
    @cache_resource
    def load(x):
        return object()

    assert load(0.0) is not load(-0.0)
    assert load(math.nan) is load(math.nan)
    assert load(1.0) is not load(1)
    assert load(True) is not load(1)
