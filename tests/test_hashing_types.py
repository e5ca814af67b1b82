"""SPEC §4: every standard-library and plain-Python type fastcache hashes, keyed by content.

Each row is a pair of values and whether they must share a cache entry. The cached function
returns a fresh ``object()`` per computation, so two calls share an entry exactly when they
return the same object.
"""

from __future__ import annotations

import array
import collections
import dataclasses
import datetime
import decimal
import enum
import fractions
import functools
import io
import math
import pathlib
import re
import tempfile
import threading
import types
import uuid
from collections import namedtuple

import pytest
from fastcache import cache_resource


def keyed_cache():
    @cache_resource
    def keyed(value):
        return object()

    return keyed


def assert_pair(a, b, same):
    keyed = keyed_cache()
    first = keyed(a)
    assert keyed(a) is first, "a value must hit its own entry"
    if same:
        assert keyed(b) is first, f"{a!r} and {b!r} should share an entry"
    else:
        assert keyed(b) is not first, f"{a!r} and {b!r} must not share an entry"


# --- fixtures of the table -----------------------------------------------------------------

Point = namedtuple("Point", "x y")
Pair = namedtuple("Pair", "x y")


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Shade(enum.Enum):
    RED = 1


class Level(enum.IntEnum):
    LOW = 1


def _enum_with_value(value):
    # The same class name, member name and module, a different value: a rerun after the
    # value was edited.
    return enum.Enum("Setting", {"MODE": value}, module=__name__).MODE


@dataclasses.dataclass
class Config:
    name: str
    sizes: list


@dataclasses.dataclass
class OtherConfig:
    name: str
    sizes: list


@dataclasses.dataclass(frozen=True)
class Frozen:
    name: str


@dataclasses.dataclass(frozen=True)
class Guarded:
    """Frozen, with a lock field: its fields cannot be encoded, its hash/eq can."""

    name: str
    lock: object = dataclasses.field(default=None, compare=False, hash=False)


_SHARED_LOCK = threading.Lock()


class Version:
    """A user class with value semantics (its own __hash__ and __eq__)."""

    def __init__(self, major, minor):
        self.major, self.minor = major, minor

    def __hash__(self):
        return hash((self.major, self.minor))

    def __eq__(self, other):
        return isinstance(other, Version) and (self.major, self.minor) == (other.major, other.minor)


class Reducible:
    """A plain class that says how it is pickled."""

    def __init__(self, value):
        self.value = value

    def __reduce__(self):
        return (Reducible, (self.value,))


def _two_classes_named_thing():
    def first():
        class Thing:
            pass

        return Thing

    def second():
        class Thing:
            pass

        return Thing

    return first(), second()


THING_A, THING_B = _two_classes_named_thing()


def _make_adder(n):
    return lambda x: x + n


def plain_function(x):
    return x + 1


def other_function(x):
    return x + 1


ONE_LINE_LAMBDAS = (lambda x: x[0], lambda x: x[1])


def _self_loop_dict(name):
    d = {"name": name}
    d["self"] = d
    return d


def _self_loop_list(head):
    loop = [head]
    loop.append(loop)
    return loop


def _seek(stream, position):
    stream.seek(position)
    return stream


UTC = datetime.UTC
PLUS_ONE = datetime.timezone(datetime.timedelta(hours=1))
UUID_A = uuid.UUID("12345678-1234-5678-1234-567812345678")


CASES = [
    # numbers and the types that look alike
    ("int", 1, 1, True),
    ("int-differs", 1, 2, False),
    ("big-int", 2**100, 2**100, True),
    ("big-int-differs", 2**100, 2**100 + 1, False),
    ("int-vs-float", 1, 1.0, False),
    ("int-vs-bool", 1, True, False),
    ("int-vs-str", 1, "1", False),
    ("str-vs-bytes", "1", b"1", False),
    ("float-signed-zero", 0.0, -0.0, False),
    ("float-nan", math.nan, math.nan, True),
    ("complex", 1 + 2j, 1 + 2j, True),
    ("complex-differs", 1 + 2j, 1 - 2j, False),
    ("complex-vs-float", complex(1, 0), 1.0, False),
    ("bool", True, False, False),
    ("none-vs-false", None, False, False),
    ("bytes", b"abc", b"abc", True),
    ("bytearray", bytearray(b"abc"), bytearray(b"abc"), True),
    ("bytearray-vs-bytes", bytearray(b"abc"), b"abc", False),
    ("long-bytes-differ-at-end", b"x" * 100_000 + b"a", b"x" * 100_000 + b"b", False),
    ("long-bytes", b"x" * 100_000, b"x" * 100_000, True),
    ("long-str", "y" * 10_000, "y" * 10_000, True),
    ("long-str-differs", "y" * 10_000, "y" * 9_999 + "z", False),
    ("str-surrogate", "\ud800", "\ud801", False),
    # containers
    ("list-vs-tuple", [1, 2], (1, 2), False),
    ("tuple-nesting", ((1,), 2), ((1, 2),), False),
    ("dict-order-ignored", {"a": 1, "b": 2}, {"b": 2, "a": 1}, True),
    ("dict-values", {"a": 1}, {"a": 2}, False),
    (
        "ordereddict-order-kept",
        collections.OrderedDict(a=1, b=2),
        collections.OrderedDict(b=2, a=1),
        False,
    ),
    ("ordereddict-vs-dict", collections.OrderedDict(a=1), {"a": 1}, False),
    ("defaultdict", collections.defaultdict(int, a=1), collections.defaultdict(int, a=1), True),
    ("counter", collections.Counter("aab"), collections.Counter("aba"), True),
    ("counter-differs", collections.Counter("aab"), collections.Counter("abb"), False),
    ("set-order-ignored", {3, 1, 2}, {1, 2, 3}, True),
    ("set-vs-frozenset", {1, 2}, frozenset({1, 2}), False),
    ("frozenset", frozenset({"x", "y"}), frozenset({"y", "x"}), True),
    ("namedtuple", Point(1, 2), Point(1, 2), True),
    ("namedtuple-vs-tuple", Point(1, 2), (1, 2), False),
    ("namedtuple-classes", Point(1, 2), Pair(1, 2), False),
    ("self-referencing-list", _self_loop_list(1), _self_loop_list(1), True),
    ("self-referencing-list-differs", _self_loop_list(1), _self_loop_list(2), False),
    ("self-referencing-dict", _self_loop_dict("a"), _self_loop_dict("a"), True),
    ("mappingproxy", types.MappingProxyType({"a": 1}), types.MappingProxyType({"a": 1}), True),
    (
        "mappingproxy-differs",
        types.MappingProxyType({"a": 1}),
        types.MappingProxyType({"a": 2}),
        False,
    ),
    ("mappingproxy-vs-dict", types.MappingProxyType({"a": 1}), {"a": 1}, False),
    ("dict-keys", {"a": 1, "b": 2}.keys(), {"b": 3, "a": 4}.keys(), True),
    ("dict-keys-differ", {"a": 1}.keys(), {"b": 1}.keys(), False),
    ("dict-values-view", {"a": 1}.values(), {"b": 1}.values(), True),
    ("dict-values-view-differ", {"a": 1}.values(), {"a": 2}.values(), False),
    ("dict-items", {"a": 1, "b": 2}.items(), {"b": 2, "a": 1}.items(), True),
    ("dict-items-differ", {"a": 1}.items(), {"a": 2}.items(), False),
    ("range", range(10), range(10), True),
    ("range-differs", range(10), range(11), False),
    ("slice", slice(1, 2), slice(1, 2), True),
    ("slice-differs", slice(1, 2), slice(1, 3), False),
    ("ellipsis", ..., ..., True),
    ("ellipsis-vs-none", ..., None, False),
    # standard library values
    ("uuid", UUID_A, uuid.UUID(str(UUID_A)), True),
    ("uuid-differs", UUID_A, uuid.UUID(int=UUID_A.int + 1), False),
    ("uuid-vs-its-string", UUID_A, str(UUID_A), False),
    ("datetime", datetime.datetime(2024, 1, 2, 3), datetime.datetime(2024, 1, 2, 3), True),
    ("datetime-differs", datetime.datetime(2024, 1, 2, 3), datetime.datetime(2024, 1, 2, 4), False),
    (
        "datetime-naive-vs-aware",
        datetime.datetime(2024, 1, 2, 3),
        datetime.datetime(2024, 1, 2, 3, tzinfo=UTC),
        False,
    ),
    (
        "datetime-timezones",
        datetime.datetime(2024, 1, 2, 3, tzinfo=UTC),
        datetime.datetime(2024, 1, 2, 3, tzinfo=PLUS_ONE),
        False,
    ),
    ("date", datetime.date(2024, 1, 2), datetime.date(2024, 1, 2), True),
    ("date-vs-datetime", datetime.date(2024, 1, 2), datetime.datetime(2024, 1, 2), False),
    ("time", datetime.time(1, 2), datetime.time(1, 2), True),
    ("time-naive-vs-aware", datetime.time(1, 2), datetime.time(1, 2, tzinfo=UTC), False),
    ("timedelta", datetime.timedelta(hours=1), datetime.timedelta(minutes=60), True),
    ("timedelta-differs", datetime.timedelta(hours=1), datetime.timedelta(hours=2), False),
    ("decimal", decimal.Decimal("1.5"), decimal.Decimal("1.5"), True),
    ("decimal-differs", decimal.Decimal("1.5"), decimal.Decimal("1.6"), False),
    ("fraction", fractions.Fraction(1, 3), fractions.Fraction(2, 6), True),
    ("fraction-differs", fractions.Fraction(1, 3), fractions.Fraction(1, 4), False),
    ("path", pathlib.Path("/data/a.csv"), pathlib.Path("/data/a.csv"), True),
    ("path-differs", pathlib.Path("/data/a.csv"), pathlib.Path("/data/b.csv"), False),
    ("path-vs-str", pathlib.Path("/data/a.csv"), "/data/a.csv", False),
    ("pure-vs-concrete-path", pathlib.PurePosixPath("/a"), pathlib.PosixPath("/a"), False),
    ("pattern", re.compile(".*"), re.compile(".*"), True),
    ("pattern-flags", re.compile(".*"), re.compile(".*", re.IGNORECASE), False),
    ("pattern-str-vs-bytes", re.compile("a"), re.compile(b"a"), False),
    ("partial", functools.partial(int, base=2), functools.partial(int, base=2), True),
    ("partial-keywords", functools.partial(int, base=2), functools.partial(int, base=3), False),
    ("partial-func", functools.partial(int, "1"), functools.partial(float, "1"), False),
    ("stringio", io.StringIO("123"), io.StringIO("123"), True),
    ("stringio-content", io.StringIO("123"), io.StringIO("456"), False),
    ("stringio-position", _seek(io.StringIO("123"), 1), io.StringIO("123"), False),
    ("bytesio", io.BytesIO(b"123"), io.BytesIO(b"123"), True),
    ("bytesio-content", io.BytesIO(b"123"), io.BytesIO(b"456"), False),
    ("bytesio-vs-stringio", io.BytesIO(b"123"), io.StringIO("123"), False),
    ("array", array.array("i", [1, 2]), array.array("i", [1, 2]), True),
    ("array-differs", array.array("i", [1, 2]), array.array("i", [1, 3]), False),
    ("array-typecode", array.array("i", [1, 2]), array.array("l", [1, 2]), False),
    ("memoryview", memoryview(b"abc"), memoryview(b"abc"), True),
    ("memoryview-differs", memoryview(b"abc"), memoryview(b"abd"), False),
    ("memoryview-vs-bytes", memoryview(b"abc"), b"abc", False),
    ("memoryview-strided", memoryview(b"abcdef")[::2], memoryview(b"ace"), True),
    ("memoryview-shape", memoryview(b"abcd").cast("B", (2, 2)), memoryview(b"abcd"), False),
    # enums
    ("enum", Color.RED, Color.RED, True),
    ("enum-members", Color.RED, Color.BLUE, False),
    ("enum-classes-one-member-name", Color.RED, Shade.RED, False),
    ("enum-value-changed", _enum_with_value(1), _enum_with_value(2), False),
    ("enum-same-value", _enum_with_value(1), _enum_with_value(1), True),
    ("intenum-vs-int", Level.LOW, 1, False),
    # classes, modules, functions
    ("class", int, int, True),
    ("classes-one-name", THING_A, THING_B, False),
    ("class-vs-name", int, "int", False),
    ("module", math, math, True),
    ("modules", math, re, False),
    ("builtin", len, len, True),
    ("builtins", len, abs, False),
    ("builtin-bound-methods", [1].append, [2].append, False),
    ("builtin-bound-methods-equal-owner", [1].append, [1].append, True),
    ("method-descriptor", str.upper, str.upper, True),
    ("method-descriptors", str.upper, str.lower, False),
    ("function", plain_function, plain_function, True),
    ("functions-one-body", plain_function, other_function, False),
    ("lambdas-on-one-line", ONE_LINE_LAMBDAS[0], ONE_LINE_LAMBDAS[1], False),
    ("closures-equal", _make_adder(1), _make_adder(1), True),
    ("closures-differ", _make_adder(1), _make_adder(2), False),
    # objects with value semantics
    ("dataclass", Config("a", [1]), Config("a", [1]), True),
    ("dataclass-fields", Config("a", [1]), Config("a", [2]), False),
    ("dataclass-classes", Config("a", [1]), OtherConfig("a", [1]), False),
    ("frozen-dataclass", Frozen("a"), Frozen("a"), True),
    ("frozen-dataclass-differs", Frozen("a"), Frozen("b"), False),
    (
        "frozen-dataclass-with-lock",
        Guarded("a", _SHARED_LOCK),
        Guarded("a", threading.Lock()),
        True,
    ),
    (
        "frozen-dataclass-with-lock-differs",
        Guarded("a", _SHARED_LOCK),
        Guarded("b", _SHARED_LOCK),
        False,
    ),
    ("hash-eq-class", Version(1, 2), Version(1, 2), True),
    ("hash-eq-class-differs", Version(1, 2), Version(1, 3), False),
    ("reduce", Reducible(3), Reducible(3), True),
    ("reduce-differs", Reducible(3), Reducible(4), False),
]


@pytest.mark.parametrize(("a", "b", "same"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_pair_shares_an_entry_exactly_when_expected(a, b, same):
    assert_pair(a, b, same)


def test_six_kinds_of_one_are_six_entries():
    keyed = keyed_cache()
    values = [keyed(v) for v in (1, 1.0, True, "1", b"1", complex(1, 0))]
    assert len({id(v) for v in values}) == len(values)


def test_open_files_key_by_name_mtime_and_position(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("line one\nline two\n")
    keyed = keyed_cache()
    with open(path) as f, open(path) as g:
        assert keyed(f) is keyed(g)
        f.readline()
        assert keyed(f) is not keyed(g)
        f.seek(0)
        assert keyed(f) is keyed(g)
    with tempfile.NamedTemporaryFile() as t1, tempfile.NamedTemporaryFile() as t2:
        assert keyed(t1) is keyed(t1)
        assert keyed(t1) is not keyed(t2)


def test_bytesio_with_a_name_keys_by_name_position_and_content():
    # Streamlit's UploadedFile is a BytesIO with a name: it is not an on-disk file.
    class Upload(io.BytesIO):
        def __init__(self, name, data):
            super().__init__(data)
            self.name = name

    assert_pair(Upload("a.csv", b"1"), Upload("a.csv", b"1"), True)
    assert_pair(Upload("a.csv", b"1"), Upload("b.csv", b"1"), False)
    assert_pair(Upload("a.csv", b"1"), Upload("a.csv", b"2"), False)


def test_hash_eq_objects_are_compared_by_equality_not_by_hash_alone():
    class Colliding:
        """Every instance has the same hash; only equality tells them apart."""

        def __init__(self, v):
            self.v = v

        def __hash__(self):
            return 42

        def __eq__(self, other):
            return isinstance(other, Colliding) and self.v == other.v

    assert_pair(Colliding(1), Colliding(1), True)
    assert_pair(Colliding(1), Colliding(2), False)


def test_hash_eq_object_with_unhashable_state_is_rejected():
    @dataclasses.dataclass(frozen=True)
    class Holder:
        items: list
        lock: object = None

    import fastcache

    keyed = keyed_cache()
    # Fields hold a lock (no encoding) and the frozen dataclass's own hash fails on the
    # list: neither rule applies.
    with pytest.raises(fastcache.UnhashableParamError):
        keyed(Holder([1], threading.Lock()))


def test_function_keys_follow_the_defaults():
    def with_default(x, scale=1):
        return x * scale

    def make(scale):
        def scaled(x, scale=scale):
            return x * scale

        return scaled

    assert_pair(make(1), make(1), True)
    assert_pair(make(1), make(2), False)
    assert_pair(with_default, with_default, True)


def test_recursive_closure_is_hashable():
    def make():
        def countdown(n):
            return n if n == 0 else countdown(n - 1)

        return countdown

    assert_pair(make(), make(), True)


def test_bound_methods_key_by_function_and_instance():
    assert_pair(Version(1, 2).__eq__, Version(1, 2).__eq__, True)
    assert_pair(Version(1, 2).__eq__, Version(1, 3).__eq__, False)


def test_mutating_a_list_between_calls_changes_its_key():
    keyed = keyed_cache()
    items = [1, 2]
    first = keyed(items)
    items.append(3)
    assert keyed(items) is not first
    items.pop()
    assert keyed(items) is first
