"""Property: for generated nested values of the supported built-in types, two calls share a
cache entry exactly when the arguments are equal — Python equality, refined by type (SPEC §4:
`1`, `1.0` and `True` are three entries; `0.0` and `-0.0` two)."""

from __future__ import annotations

import copy
import datetime
import math
import struct
import uuid

from fastcache import cache_resource
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


@cache_resource
def keyed(value):
    return object()


def canonical(x):
    """Python's equality with types made visible: what fastcache promises to key by."""
    t = type(x)
    if t in (list, tuple):
        return (t.__name__, tuple(canonical(i) for i in x))
    if t is dict:
        return ("dict", frozenset((canonical(k), canonical(v)) for k, v in x.items()))
    if t in (set, frozenset):
        return (t.__name__, frozenset(canonical(i) for i in x))
    if t is float:
        # Bits: 0.0 and -0.0 differ, and a NaN equals itself.
        return ("float", struct.pack("<d", x))
    if t is bytearray:
        return ("bytearray", bytes(x))
    if t is complex:
        return ("complex", struct.pack("<dd", x.real, x.imag))
    return (t.__name__, x)


hashable_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=False),
    st.sampled_from([0.0, -0.0, 1.0, math.inf]),
    st.complex_numbers(allow_nan=False, max_magnitude=1e6),
    st.text(max_size=8),
    st.binary(max_size=8),
    st.dates(min_value=datetime.date(2000, 1, 1), max_value=datetime.date(2000, 1, 10)),
    st.uuids().map(lambda u: uuid.UUID(int=u.int % 4)),
    st.sampled_from([1, 1.0, True, "1", b"1", 0, 0.0, False, "", b""]),
)

hashables = st.recursive(
    hashable_leaves,
    lambda inner: st.one_of(
        st.tuples(inner, inner),
        st.lists(inner, max_size=3).map(tuple),
        st.frozensets(inner, max_size=3),
    ),
    max_leaves=6,
)

values = st.recursive(
    hashable_leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=4).map(tuple),
        st.dictionaries(hashables, inner, max_size=4),
        st.sets(hashables, max_size=4),
        st.frozensets(hashables, max_size=4),
        st.binary(max_size=6).map(bytearray),
    ),
    max_leaves=12,
)


def _shuffled(value):
    """An equal value built in another order (dict insertion order, set build order)."""
    if type(value) is dict:
        return {k: _shuffled(v) for k, v in reversed(list(value.items()))}
    if type(value) is list:
        return [_shuffled(v) for v in value]
    if type(value) is tuple:
        return tuple(_shuffled(v) for v in value)
    if type(value) is set:
        rebuilt = set()
        for item in sorted(value, key=repr, reverse=True):
            rebuilt.add(item)
        return rebuilt
    return copy.deepcopy(value)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=values, b=values)
def test_entries_shared_exactly_when_values_are_equal(a, b):
    assert (keyed(a) is keyed(b)) == (canonical(a) == canonical(b))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=values)
def test_an_equal_value_built_differently_shares_the_entry(a):
    assert keyed(a) is keyed(_shuffled(a))
