"""SPEC §3 and the §4 types this version hashes: binding arguments to the signature,
underscore parameters, and the unambiguous, type-tagged key."""

from __future__ import annotations

import copy
import struct
import sys
from collections import OrderedDict, namedtuple

import fastcache
import pytest
from fastcache import cache_resource
from hypothesis import given, settings
from hypothesis import strategies as st


def _entries(cached, calls):
    """Calls ``cached`` once per argument tuple and returns how many distinct entries
    (distinct returned objects) the calls produced."""
    results = [cached(*args, **kwargs) for args, kwargs in calls]
    return len({id(r) for r in results}), results


def _identity_cache():
    """A cached function of one argument returning a fresh object per entry."""

    @cache_resource
    def keyed(value):
        return object()

    return keyed


# --- binding to the signature ----------------------------------------------------------


def test_positional_keyword_and_default_spellings_are_one_entry():
    calls = []

    @cache_resource
    def spelled(a, b=2):
        calls.append((a, b))
        return object()

    value = spelled(1)
    assert spelled(a=1) is value
    assert spelled(1, 2) is value
    assert spelled(1, b=2) is value
    assert spelled(b=2, a=1) is value
    assert spelled(a=1, b=2) is value
    assert calls == [(1, 2)]
    assert spelled(1, 3) is not value


def test_keyword_order_is_irrelevant_for_keyword_only_parameters():
    @cache_resource
    def kw_only(*, host, port, user="admin"):
        return object()

    assert kw_only(host="h", port=1) is kw_only(port=1, host="h", user="admin")
    assert kw_only(host="h", port=1) is not kw_only(host="h", port=2)


def test_positional_only_parameters_bind_by_position():
    @cache_resource
    def posonly(a, /, b):
        return object()

    assert posonly(1, 2) is posonly(1, b=2)
    assert posonly(1, 2) is not posonly(2, 1)


def test_default_value_spelled_out_is_the_same_entry_as_omitted():
    @cache_resource
    def with_defaults(a, b=None, *, c=(1, 2)):
        return object()

    assert with_defaults(1) is with_defaults(1, None, c=(1, 2))


def test_var_args_are_hashed_in_order():
    calls = []

    @cache_resource
    def variadic(*args):
        calls.append(args)
        return object()

    assert variadic(1, 2) is variadic(1, 2)
    assert variadic(1, 2) is not variadic(2, 1)
    assert variadic() is not variadic(None)
    assert calls == [(1, 2), (2, 1), (), (None,)]


def test_var_args_are_not_confused_with_named_parameters():
    @cache_resource
    def mixed(a, b=0, *rest):
        return object()

    # (1, 0) binds a=1, b=0 with no rest; (1, 0, 0) puts an extra 0 in *rest.
    assert mixed(1) is mixed(1, 0)
    assert mixed(1, 0) is not mixed(1, 0, 0)


def test_var_kwargs_keys_are_hashed_in_any_order():
    @cache_resource
    def options(**kwargs):
        return object()

    assert options(a=1, b=2) is options(b=2, a=1)
    assert options(a=1, b=2) is not options(a=1, b=3)
    assert options(a=1) is not options(b=1)


def test_var_kwargs_names_are_part_of_the_key():
    @cache_resource
    def named_kwargs(x=None, **kwargs):
        return object()

    # The same value under different names, or as a parameter vs an extra keyword.
    assert named_kwargs(y=1) is not named_kwargs(z=1)
    assert named_kwargs(x=1) is not named_kwargs(y=1)


# --- underscore parameters -------------------------------------------------------------


class Unhashable:
    """Instances have only object identity: fastcache refuses to hash them."""


def test_underscore_positional_parameter_is_excluded_and_never_hashed():
    calls = []

    @cache_resource
    def connect(url, _session):
        calls.append(url)
        return object()

    value = connect("db", Unhashable())
    assert connect("db", Unhashable()) is value
    assert connect("db", _session=Unhashable()) is value
    assert calls == ["db"]


def test_underscore_keyword_only_parameter_is_excluded_and_never_hashed():
    @cache_resource
    def connect_kw(url, *, _pool=None):
        return object()

    value = connect_kw("db", _pool=Unhashable())
    assert connect_kw("db") is value
    assert connect_kw("db", _pool=Unhashable()) is value


def test_underscore_var_kwargs_keys_are_excluded_and_never_hashed():
    @cache_resource
    def connect_extra(url, **options):
        return object()

    value = connect_extra("db", _client=Unhashable(), timeout=5)
    assert connect_extra("db", timeout=5) is value
    assert connect_extra("db", timeout=5, _other=Unhashable()) is value
    assert connect_extra("db", timeout=6, _client=Unhashable()) is not value


def test_var_args_values_are_always_hashed_even_for_an_underscore_name():
    @cache_resource
    def star_underscore(*_args):
        return object()

    with pytest.raises(fastcache.UnhashableParamError):
        star_underscore(Unhashable())
    assert star_underscore(1) is not star_underscore(2)


# --- the encoding is unambiguous -------------------------------------------------------


def test_concatenation_collision_gives_two_entries():
    calls = []

    @cache_resource
    def load(a, b=None):
        calls.append((a, b))
        return object()

    first = load("doc1", "acme")
    second = load("doc1str:bstr:acme")
    assert first is not second
    assert calls == [("doc1", "acme"), ("doc1str:bstr:acme", None)]
    assert load.cache_info().currsize == 2


@pytest.mark.parametrize(
    "left, right",
    [
        (("ab", "c"), ("a", "bc")),
        ((("a",), "b"), (("a", "b"),)),
        ((["a", ["b"]],), ([["a"], "b"],)),
        (("",), (None,)),
        ((b"ab", b""), (b"a", b"b")),
    ],
)
def test_split_points_are_part_of_the_key(left, right):
    @cache_resource
    def split(*args):
        return object()

    assert split(*left) is not split(*right)


def test_type_matters_for_equal_looking_scalars():
    keyed = _identity_cache()
    count, _ = _entries(keyed, [((v,), {}) for v in (1, 1.0, True, "1", b"1")])
    assert count == 5


@pytest.mark.parametrize(
    "left, right",
    [
        ([1, 2], (1, 2)),
        (0.0, -0.0),
        (b"1", bytearray(b"1")),
        (1.0, complex(1, 0)),
        (0, False),
        (None, ()),
        ((), []),
        ({}, []),
        ((1,), 1),
    ],
    ids=repr,
)
def test_equal_comparing_values_of_different_types_are_distinct(left, right):
    keyed = _identity_cache()
    assert keyed(left) is not keyed(right)


def test_equal_values_built_separately_share_an_entry():
    keyed = _identity_cache()
    nested = lambda: {"a": [1, (2.5, None)], "b": {3, 4}, "c": frozenset({"x"}), "d": b"\x00"}
    assert keyed(nested()) is keyed(nested())


def test_big_ints_are_hashed_exactly():
    keyed = _identity_cache()
    big = 2**64
    assert keyed(big) is keyed(2**64)
    assert keyed(big) is not keyed(big + 1)
    assert keyed(2**70) is not keyed(-(2**70))
    assert keyed(2**63) is not keyed(-(2**63))
    assert keyed(10**100) is keyed(10**100)
    assert keyed(2**63 - 1) is not keyed(2**63)


def test_dict_order_is_ignored():
    keyed = _identity_cache()
    assert keyed({"a": 1, "b": 2}) is keyed({"b": 2, "a": 1})
    assert keyed({"a": 1, "b": 2}) is not keyed({"a": 2, "b": 1})


def test_ordered_dict_order_is_kept():
    keyed = _identity_cache()
    ab = OrderedDict([("a", 1), ("b", 2)])
    ba = OrderedDict([("b", 2), ("a", 1)])
    assert keyed(ab) is keyed(OrderedDict([("a", 1), ("b", 2)]))
    assert keyed(ab) is not keyed(ba)


def test_set_and_frozenset_iteration_order_is_ignored():
    keyed = _identity_cache()
    first, second = set(), set()
    first.add(8)
    first.add(0)
    second.add(0)
    second.add(8)
    assert list(first) != list(second), "precondition: equal sets iterating differently"
    assert keyed(first) is keyed(second)
    assert keyed(frozenset(first)) is keyed(frozenset(second))
    assert keyed({1, 2}) is not keyed({1, 3})


def test_self_referencing_list_is_hashable():
    keyed = _identity_cache()
    loop = [1]
    loop.append(loop)
    other = [2]
    other.append(other)
    value = keyed(loop)
    assert keyed(loop) is value
    assert keyed(other) is not value


def test_self_referencing_dict_is_hashable():
    keyed = _identity_cache()
    loop = {"name": "a"}
    loop["self"] = loop
    assert keyed(loop) is keyed(loop)


def test_namedtuples_are_keyed_with_their_class():
    Point = namedtuple("Point", "x y")
    Pair = namedtuple("Pair", "x y")
    keyed = _identity_cache()
    assert keyed(Point(1, 2)) is keyed(Point(1, 2))
    assert keyed(Point(1, 2)) is not keyed((1, 2))
    assert keyed(Point(1, 2)) is not keyed(Pair(1, 2))
    assert keyed(Point(1, 2)) is not keyed(Point(2, 1))


def test_builtin_subclass_instances_are_keyed_with_their_class():
    class Tag(str):
        pass

    class Count(int):
        pass

    keyed = _identity_cache()
    assert keyed(Tag("a")) is keyed(Tag("a"))
    assert keyed(Tag("a")) is not keyed("a")
    assert keyed(Count(1)) is not keyed(1)
    assert keyed(Tag("a")) is not keyed(Tag("b"))


def test_classes_are_keyed_by_module_and_qualname():
    def make_first():
        class Thing:
            pass

        return Thing

    def make_second():
        class Thing:
            pass

        return Thing

    first, second = make_first(), make_second()
    assert first.__name__ == second.__name__
    keyed = _identity_cache()
    assert keyed(first) is keyed(first)
    assert keyed(first) is not keyed(second)
    assert keyed(int) is not keyed(str)


def test_strings_with_lone_surrogates_are_hashable_and_distinct():
    keyed = _identity_cache()
    assert keyed("\ud800") is keyed("\ud800")
    assert keyed("\ud800") is not keyed("\ud801")


def test_argument_references_are_not_leaked_by_calls():
    keyed = _identity_cache()
    argument = ["payload", 2**80, {"k": (1, 2)}]
    keyed(argument)
    before = sys.getrefcount(argument)
    for _ in range(1000):
        keyed(argument)
    assert sys.getrefcount(argument) == before


# --- property: same entry exactly when the values are the same (type-strict) -----------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**200), max_value=2**200)
    | st.floats(allow_nan=False)
    | st.complex_numbers(allow_nan=False)
    | st.text(max_size=8)
    | st.binary(max_size=8)
)
_hashable = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4)
        | st.lists(children, max_size=4).map(tuple)
        | st.frozensets(st.integers() | st.text(max_size=4), max_size=4)
        | st.sets(st.integers() | st.text(max_size=4), max_size=4)
        | st.dictionaries(st.text(max_size=4) | st.integers(), children, max_size=4)
    ),
    max_leaves=12,
)


def _strict(value):
    """A type-strict canonical form: equal exactly when fastcache must see one entry."""
    kind = type(value)
    if kind is float:
        return (kind, struct.pack("<d", value))
    if kind is complex:
        return (kind, struct.pack("<dd", value.real, value.imag))
    if kind in (list, tuple):
        return (kind, tuple(_strict(v) for v in value))
    if kind in (set, frozenset):
        return (kind, frozenset(_strict(v) for v in value))
    if kind is dict:
        return (kind, frozenset((_strict(k), _strict(v)) for k, v in value.items()))
    if kind is bytearray:
        return (kind, bytes(value))
    return (kind, value)


def _reordered(value):
    """An equal copy, with dicts rebuilt in reverse insertion order."""
    if type(value) is dict:
        return {k: _reordered(v) for k, v in reversed(list(value.items()))}
    if type(value) is list:
        return [_reordered(v) for v in value]
    if type(value) is tuple:
        return tuple(_reordered(v) for v in value)
    return copy.copy(value)


@cache_resource
def _property_target(value):
    return object()


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_same_entry_exactly_when_values_are_strictly_equal(data):
    first = data.draw(_hashable, label="first")
    second = data.draw(st.one_of(st.just(_reordered(first)), _hashable), label="second")
    _property_target.clear()
    same_entry = _property_target(first) is _property_target(second)
    assert same_entry == (_strict(first) == _strict(second))
