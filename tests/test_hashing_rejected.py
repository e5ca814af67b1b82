"""SPEC §4 "Still rejected" and §7: identity-only objects raise `UnhashableParamError`
naming the argument, its type and the function, with the three ways out."""

from __future__ import annotations

import ctypes
import threading

import fastcache
import pytest
from fastcache import cache_resource


class Plain:
    """Only object's identity hash and equality."""

    def __init__(self, x=1):
        self.x = x


class EqOnly:
    """Defines __eq__ without __hash__: Python makes it unhashable."""

    def __eq__(self, other):
        return True


def _generator():
    yield 1


def _closure_over(value):
    def inner():
        return value

    return inner


REJECTED = [
    ("plain-instance", Plain()),
    ("plain-instance-with-state", Plain(5)),
    ("eq-without-hash", EqOnly()),
    ("object", object()),
    ("generator", _generator()),
    ("lock", threading.Lock()),
    ("rlock", threading.RLock()),
    ("event", threading.Event()),
    ("instance-in-a-list", [1, Plain()]),
    ("instance-in-a-dict-value", {"a": Plain()}),
    ("instance-in-a-closure", _closure_over(Plain())),
]


@pytest.mark.parametrize("value", [r[1] for r in REJECTED], ids=[r[0] for r in REJECTED])
def test_identity_only_values_are_rejected(value):
    @cache_resource
    def load(resource):
        return object()

    with pytest.raises(fastcache.UnhashableParamError):
        load(value)


def test_error_names_argument_type_function_and_the_three_ways_out():
    @cache_resource
    def open_pool(url, pool):
        return object()

    with pytest.raises(fastcache.UnhashableParamError) as info:
        open_pool("db", Plain())
    message = str(info.value)
    fqn = f"{Plain.__module__}.{Plain.__qualname__}"
    assert message.startswith(f"Cannot hash argument 'pool' (of type `{fqn}`) in 'open_pool'.")
    assert "def open_pool(_pool, ...):" in message  # 1. a leading underscore
    assert f'hash_funcs={{"{fqn}": some_function}}' in message  # 2. hash_funcs
    assert "`__hash__` and `__eq__`" in message  # 3. value semantics
    assert isinstance(info.value, TypeError)


def test_error_for_a_generator_names_the_builtin_type():
    @cache_resource
    def consume(items):
        return object()

    with pytest.raises(fastcache.UnhashableParamError, match="`builtins.generator`"):
        consume(_generator())


def test_giving_the_class_hash_and_eq_makes_it_accepted():
    class Point:
        def __init__(self, x):
            self.x = x

        def __hash__(self):
            return hash(self.x)

        def __eq__(self, other):
            return isinstance(other, Point) and other.x == self.x

    @cache_resource
    def at(point):
        return object()

    assert at(Point(1)) is at(Point(1))
    assert at(Point(1)) is not at(Point(2))


def test_a_rejected_value_is_accepted_through_hash_funcs():
    @cache_resource(hash_funcs={Plain: lambda p: p.x})
    def load(resource):
        return object()

    assert load(Plain(1)) is load(Plain(1))
    assert load(Plain(1)) is not load(Plain(2))


def test_an_exception_from_hash_is_not_swallowed():
    class Broken:
        def __hash__(self):
            raise RuntimeError("hash is broken")

        def __eq__(self, other):
            return False

    @cache_resource
    def load(resource):
        return object()

    with pytest.raises(RuntimeError, match="hash is broken"):
        load(Broken())


def test_an_exception_from_reduce_is_not_swallowed():
    class Odd:
        def __reduce__(self):
            raise RuntimeError("reduce is broken")

    @cache_resource
    def load(resource):
        return object()

    with pytest.raises(RuntimeError, match="reduce is broken"):
        load(Odd())


def test_reduce_refusing_to_pickle_is_unhashable():
    class Refuses:
        def __reduce__(self):
            raise TypeError("cannot pickle 'Refuses' object")

    @cache_resource
    def load(resource):
        return object()

    with pytest.raises(fastcache.UnhashableParamError):
        load(Refuses())


def test_ctypes_pointer_is_an_unhashable_param_error():
    @cache_resource
    def load(resource):
        return object()

    with pytest.raises(fastcache.UnhashableParamError, match="LP_c_int"):
        load(ctypes.pointer(ctypes.c_int(5)))
    assert load(ctypes.c_int(5)) is load(ctypes.c_int(5))  # no pointer: pickled, hashed


def test_nesting_without_end_is_a_recursion_error_not_a_crash():
    class Matryoshka:
        def __reduce__(self):
            return (Matryoshka, (Matryoshka(),))

    @cache_resource
    def load(resource):
        return object()

    with pytest.raises(RecursionError):
        load(Matryoshka())
    deep = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(RecursionError):
        load(deep)
    shallow = []
    for _ in range(500):
        shallow = [shallow]
    assert load(shallow) is load(shallow)
