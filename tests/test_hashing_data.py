"""SPEC §4 data arguments: numpy, pandas, polars and PIL, keyed by every byte (no sampling),
with shape, dtype, names, index and order in the key; mocks by identity; hash_funcs first."""

from __future__ import annotations

import gc
import subprocess
import sys
import textwrap
from unittest import mock

import fastcache
import pytest
from fastcache import cache_resource

np = pytest.importorskip("numpy")
pd = pytest.importorskip("pandas")


def keyed_cache(**options):
    @cache_resource(**options)
    def keyed(value):
        return object()

    return keyed


def assert_pair(a, b, same):
    keyed = keyed_cache()
    first = keyed(a)
    assert keyed(a) is first
    assert (keyed(b) is first) == same


# --- numpy -----------------------------------------------------------------------------------

# Beyond Streamlit's sampling threshold (500k elements), with the differing element far from
# the start, in the middle of everything a sample would skip.
LARGE = 1_000_000


def _large(change_at=None, dtype="float64"):
    arr = np.zeros(LARGE, dtype=dtype)
    if change_at is not None:
        arr[change_at] = 1
    return arr


NUMPY_CASES = [
    ("equal", np.arange(10), np.arange(10), True),
    ("values", np.arange(10), np.arange(1, 11), False),
    ("length", np.zeros(10), np.zeros(11), False),
    ("shape", np.zeros((2, 3)), np.zeros((3, 2)), False),
    ("dtype-width", np.ones(10, dtype="i8"), np.ones(10, dtype="i4"), False),
    ("dtype-sign", np.ones(10, dtype="u8"), np.ones(10, dtype="i8"), False),
    ("byte-order", np.ones(3, dtype="<f8"), np.ones(3, dtype=">f8"), False),
    (
        "structured-fields",
        np.ones(10, dtype=[("a", "u8"), ("b", "i8")]),
        np.ones(10, dtype=[("a", "i8"), ("b", "u8")]),
        False,
    ),
    (
        "structured-names",
        np.ones(3, dtype=[("a", "i8")]),
        np.ones(3, dtype=[("b", "i8")]),
        False,
    ),
    ("same-bytes-other-dtype", np.zeros(4, dtype="f8"), np.zeros(4, dtype="i8"), False),
    ("datetime64", np.array(["2024-01-01"], "M8[D]"), np.array(["2024-01-01"], "M8[D]"), True),
    ("datetime64-unit", np.array([1], "M8[s]"), np.array([1], "M8[ms]"), False),
    ("strings", np.array(["ab", "c"]), np.array(["ab", "c"]), True),
    ("strings-differ", np.array(["ab", "c"]), np.array(["ab", "d"]), False),
    ("objects", np.array([{"a": 1}, None]), np.array([{"a": 1}, None]), True),
    ("objects-differ", np.array([{"a": 1}, None]), np.array([{"a": 2}, None]), False),
    ("zero-d", np.array(5), np.array(5), True),
    ("zero-d-vs-1d", np.array(5), np.array([5]), False),
    ("empty-shapes", np.zeros((0, 3)), np.zeros((3, 0)), False),
    ("non-contiguous-equals-copy", np.arange(20.0)[::2], np.arange(20.0)[::2].copy(), True),
    (
        "transposed-equals-copy",
        np.arange(12).reshape(3, 4).T,
        np.arange(12).reshape(3, 4).T.copy(),
        True,
    ),
    ("transposed-vs-original", np.arange(12).reshape(3, 4).T, np.arange(12).reshape(4, 3), False),
    (
        "fortran-order",
        np.asfortranarray(np.arange(6).reshape(2, 3)),
        np.arange(6).reshape(2, 3),
        True,
    ),
    ("large-equal", _large(), _large(), True),
    ("large-one-element-deep-inside", _large(), _large(change_at=765_432), False),
    ("large-last-element", _large(), _large(change_at=LARGE - 1), False),
    ("large-non-contiguous", _large()[::3], _large(change_at=3 * 222_222)[::3], False),
    ("large-non-contiguous-equal", _large()[::3], _large()[::3].copy(), True),
    ("scalar", np.int64(1), np.int64(1), True),
    ("scalar-vs-int", np.int64(1), 1, False),
    ("scalar-width", np.int64(1), np.int32(1), False),
    ("float-scalar-vs-float", np.float64(1.5), 1.5, False),
    ("str-scalar-vs-str", np.str_("a"), "a", False),
    ("scalar-vs-0d-array", np.int64(1), np.array(1), False),
    ("datetime64-scalar", np.datetime64("2024-01-01"), np.datetime64("2024-01-02"), False),
    (
        "masked-arrays-masks",
        np.ma.array([1, 2, 3], mask=[0, 1, 0]),
        np.ma.array([1, 2, 3], mask=[0, 0, 0]),
        False,
    ),
    ("masked-vs-plain", np.ma.array([1, 2, 3]), np.array([1, 2, 3]), False),
]


@pytest.mark.parametrize(
    ("a", "b", "same"), [c[1:] for c in NUMPY_CASES], ids=[c[0] for c in NUMPY_CASES]
)
def test_numpy_pair(a, b, same):
    assert_pair(a, b, same)


def test_numpy_array_mutated_in_place_gets_a_new_key():
    keyed = keyed_cache()
    arr = np.zeros(1_000_000)
    first = keyed(arr)
    arr[654_321] = 7
    assert keyed(arr) is not first
    arr[654_321] = 0
    assert keyed(arr) is first


def test_large_array_key_is_small():
    # The key carries a digest, not 24 MB: many distinct large arrays stay cheap to store.
    keyed = keyed_cache(max_entries=3)
    arrays = [np.full(3_000_000, i, dtype="f8") for i in range(5)]
    values = [keyed(a) for a in arrays]
    assert keyed(arrays[-1]) is values[-1]


def test_other_threads_run_while_a_large_array_is_hashed():
    # Hashing detaches from the interpreter: a Python thread makes progress meanwhile.
    import threading

    arr = np.random.default_rng(0).random(12_500_000)  # 100 MB
    keyed = keyed_cache()
    progress = []
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            progress.append(1)

    spinner = threading.Thread(target=spin)
    spinner.start()
    try:
        before = len(progress)
        keyed(arr)
        during = len(progress) - before
    finally:
        stop.set()
        spinner.join()
    assert during > 0


# --- pandas --------------------------------------------------------------------------------


def _frame(**columns):
    return pd.DataFrame(columns)


AB = {"A": [1, 2, 3], "B": [2, 3, 4]}

DATAFRAME_CASES = [
    # Streamlit's own twelve DataFrame pairs (same ideas, our code)
    ("one-cell-equal", _frame(foo=[12]), _frame(foo=[12]), True),
    ("one-cell-differs", _frame(foo=[12]), _frame(foo=[42]), False),
    ("two-columns-equal", pd.DataFrame(AB), pd.DataFrame(AB), True),
    ("extra-column", pd.DataFrame(AB), pd.DataFrame({**AB, "C": [1, 2, 3]}), False),
    ("different-values", pd.DataFrame(AB), pd.DataFrame({"A": [1, 2, 3], "B": [2, 3, 5]}), False),
    ("different-order", pd.DataFrame(AB), pd.DataFrame({"B": [1, 2, 3], "A": [2, 3, 4]}), False),
    (
        "different-index",
        pd.DataFrame(AB, index=[1, 2, 3]),
        pd.DataFrame(AB, index=[1, 2, 4]),
        False,
    ),
    ("missing-column", pd.DataFrame(AB), pd.DataFrame({"A": [1, 2, 3]}), False),
    (
        "different-sort",
        pd.DataFrame(AB).sort_values(by=["A"]),
        pd.DataFrame(AB).sort_values(by=["B"], ascending=False),
        False,
    ),
    (
        "different-headers",
        pd.DataFrame({"A": [1, 2, 3], "C": [2, 3, 4]}),
        pd.DataFrame({"A": [1, 2, 3], "B": [2, 3, 4]}),
        False,
    ),
    (
        "reordered-columns",
        pd.DataFrame({"A": [1, 2, 3], "C": [2, 3, 4]}),
        pd.DataFrame({"C": [2, 3, 4], "A": [1, 2, 3]}),
        False,
    ),
    (
        "similar-dtypes",
        pd.DataFrame({"A": [1, 2, 3], "C": pd.array([1, 2, 3], dtype="UInt64")}),
        pd.DataFrame({"A": [1, 2, 3], "C": pd.array([1, 2, 3], dtype="Int64")}),
        False,
    ),
    # and more
    ("int-vs-float-column", _frame(a=[1, 2]), _frame(a=[1.0, 2.0]), False),
    ("column-name-types", pd.DataFrame({1: [1]}), pd.DataFrame({"1": [1]}), False),
    ("strings-equal", _frame(s=["x", "y"]), _frame(s=["x", "y"]), True),
    ("strings-differ", _frame(s=["x", "y"]), _frame(s=["x", "z"]), False),
    ("object-column", _frame(o=[{"k": 1}, [1]]), _frame(o=[{"k": 1}, [1]]), True),
    ("object-column-differs", _frame(o=[{"k": 1}, [1]]), _frame(o=[{"k": 2}, [1]]), False),
    (
        "nullable-missing",
        _frame(n=pd.array([1, None], "Int64")),
        _frame(n=pd.array([1, 2], "Int64")),
        False,
    ),
    (
        "categorical",
        _frame(c=pd.Categorical(["a", "b"])),
        _frame(c=pd.Categorical(["a", "b"])),
        True,
    ),
    (
        "categorical-categories",
        _frame(c=pd.Categorical(["a", "b"], categories=["a", "b"])),
        _frame(c=pd.Categorical(["a", "b"], categories=["b", "a"])),
        False,
    ),
    ("categorical-vs-strings", _frame(c=pd.Categorical(["a", "b"])), _frame(c=["a", "b"]), False),
    (
        "timezones",
        _frame(t=pd.date_range("2024-01-01", periods=2, tz="UTC")),
        _frame(t=pd.date_range("2024-01-01", periods=2, tz="Europe/Paris")),
        False,
    ),
    (
        "naive-vs-aware",
        _frame(t=pd.date_range("2024-01-01", periods=2)),
        _frame(t=pd.date_range("2024-01-01", periods=2, tz="UTC")),
        False,
    ),
    (
        "index-names",
        pd.DataFrame(AB).rename_axis("row"),
        pd.DataFrame(AB).rename_axis("line"),
        False,
    ),
    (
        "multiindex",
        pd.DataFrame({"v": [1, 2]}, index=pd.MultiIndex.from_tuples([(1, "a"), (1, "b")])),
        pd.DataFrame({"v": [1, 2]}, index=pd.MultiIndex.from_tuples([(1, "a"), (2, "b")])),
        False,
    ),
    (
        "duplicate-column-names",
        pd.DataFrame([[1, 2]], columns=["a", "a"]),
        pd.DataFrame([[2, 1]], columns=["a", "a"]),
        False,
    ),
]


@pytest.mark.parametrize(
    ("a", "b", "same"), [c[1:] for c in DATAFRAME_CASES], ids=[c[0] for c in DATAFRAME_CASES]
)
def test_dataframe_pair(a, b, same):
    assert_pair(a, b, same)


def test_large_dataframe_differing_in_one_row_outside_any_sample():
    rows = 200_000  # Streamlit samples 10k of frames with 50k rows or more
    base = pd.DataFrame({"x": np.arange(rows, dtype="f8"), "y": np.zeros(rows)})
    changed = base.copy()
    changed.loc[123_457, "y"] = 1.0
    assert_pair(base, base.copy(), True)
    assert_pair(base, changed, False)


def test_large_string_column_differing_in_one_row():
    rows = 100_000
    base = pd.DataFrame({"s": [f"row{i}" for i in range(rows)]})
    changed = base.copy()
    changed.loc[77_777, "s"] = "other"
    assert_pair(base, changed, False)
    assert_pair(base, base.copy(), True)


SERIES_CASES = [
    ("equal", pd.Series([1, 2]), pd.Series([1, 2]), True),
    ("values", pd.Series([1, 2]), pd.Series([1, 3]), False),
    ("similar-dtypes", pd.Series([1, 2], dtype="UInt64"), pd.Series([1, 2], dtype="Int64"), False),
    ("names", pd.Series([1], name="a"), pd.Series([1], name="b"), False),
    ("index", pd.Series([1, 2], index=["a", "b"]), pd.Series([1, 2], index=["a", "c"]), False),
    ("series-vs-frame", pd.Series([1, 2], name="a"), pd.DataFrame({"a": [1, 2]}), False),
    ("large", pd.Series(range(100_000)), pd.Series(range(100_000)), True),
    ("index-equal", pd.Index([1, 2]), pd.Index([1, 2]), True),
    ("index-values", pd.Index([1, 2]), pd.Index([1, 3]), False),
    ("index-name", pd.Index([1, 2], name="x"), pd.Index([1, 2], name="y"), False),
    ("index-dtype", pd.Index([1, 2]), pd.Index([1.0, 2.0]), False),
    ("range-index", pd.RangeIndex(10), pd.RangeIndex(10), True),
    ("range-index-step", pd.RangeIndex(0, 10, 1), pd.RangeIndex(0, 10, 2), False),
    ("datetime-index", pd.date_range("2024", periods=3), pd.date_range("2024", periods=3), True),
]


@pytest.mark.parametrize(
    ("a", "b", "same"), [c[1:] for c in SERIES_CASES], ids=[c[0] for c in SERIES_CASES]
)
def test_series_and_index_pair(a, b, same):
    assert_pair(a, b, same)


# --- polars --------------------------------------------------------------------------------


def test_polars_frames_and_series():
    pl = pytest.importorskip("polars")
    assert_pair(pl.DataFrame({"a": [1, 2]}), pl.DataFrame({"a": [1, 2]}), True)
    assert_pair(pl.DataFrame({"a": [1, 2]}), pl.DataFrame({"a": [1, 3]}), False)
    assert_pair(pl.DataFrame({"a": [1, 2]}), pl.DataFrame({"b": [1, 2]}), False)
    assert_pair(
        pl.DataFrame({"a": [1, 2]}, schema={"a": pl.Int32}),
        pl.DataFrame({"a": [1, 2]}, schema={"a": pl.Int64}),
        False,
    )
    assert_pair(pl.DataFrame({"a": [1], "b": [2]}), pl.DataFrame({"b": [2], "a": [1]}), False)
    assert_pair(pl.Series("s", [1, 2]), pl.Series("s", [1, 2]), True)
    assert_pair(pl.Series("s", [1, 2]), pl.Series("t", [1, 2]), False)
    assert_pair(pl.Series("s", [1, 2]), pl.DataFrame({"s": [1, 2]}), False)
    rows = 200_000
    big = pl.DataFrame({"x": np.zeros(rows)})
    changed = pl.DataFrame({"x": np.where(np.arange(rows) == 150_001, 1.0, 0.0)})
    assert_pair(big, changed, False)


# --- PIL -----------------------------------------------------------------------------------


def test_pil_images():
    image = pytest.importorskip("PIL.Image")
    red = (220, 20, 60)
    assert_pair(image.new("RGB", (50, 50), red), image.new("RGB", (50, 50), red), True)
    assert_pair(image.new("RGB", (50, 50), red), image.new("RGB", (50, 50), (30, 144, 255)), False)
    # Same pixel bytes, swapped width and height.
    assert_pair(image.new("L", (10, 20)), image.new("L", (20, 10)), False)
    # Same bytes, different mode.
    assert_pair(image.new("L", (4, 4)), image.new("P", (4, 4)), False)
    # Same indices, different palettes.
    a = image.new("P", (4, 4))
    b = image.new("P", (4, 4))
    b.putpalette([255, 0, 0] * 256)
    assert_pair(a, b, False)
    big1 = image.new("RGB", (1000, 1000), (100, 20, 60))
    big2 = big1.copy()
    big2.putpixel((987, 654), (100, 20, 61))
    assert_pair(big1, big1.copy(), True)
    assert_pair(big1, big2, False)


# --- mocks ---------------------------------------------------------------------------------


def test_mocks_are_keyed_by_identity():
    for kind in (mock.Mock, mock.MagicMock, mock.NonCallableMock):
        m = kind()
        assert_pair(m, m, True)
        assert_pair(kind(), kind(), False)


def test_mock_with_configured_equality_is_still_keyed_by_identity():
    a = mock.MagicMock()
    a.__eq__.return_value = True
    a.__hash__.return_value = 1
    b = mock.MagicMock()
    b.__eq__.return_value = True
    b.__hash__.return_value = 1
    assert_pair(a, b, False)


def test_a_new_mock_never_inherits_a_dead_mocks_entry():
    keyed = keyed_cache()
    seen_ids = {}
    reused = 0
    for _ in range(60):
        m = mock.Mock()
        value = keyed(m)
        previous = seen_ids.get(id(m))
        if previous is not None:
            reused += 1  # the allocator gave a new mock a dead one's address
            assert previous is not value
        seen_ids[id(m)] = value
        del m
        gc.collect(1)
    assert reused > 0, "the test needs id reuse to mean anything"


def test_fastcache_keeps_no_mock_alive():
    import weakref

    keyed = keyed_cache()
    m = mock.Mock()
    keyed(m)
    ref = weakref.ref(m)
    del m
    gc.collect()
    assert ref() is None


# --- hash_funcs first ----------------------------------------------------------------------


def test_hash_funcs_override_numpy_and_pandas_rules():
    by_shape = keyed_cache(hash_funcs={np.ndarray: lambda a: a.shape})
    assert by_shape(np.zeros(3)) is by_shape(np.ones(3))
    assert by_shape(np.zeros(3)) is not by_shape(np.zeros(4))
    by_name = keyed_cache(hash_funcs={"pandas.DataFrame": lambda df: list(df.columns)})
    by_name_ = by_name  # the exact type name pandas reports
    frame_fqn = f"{pd.DataFrame.__module__}.{pd.DataFrame.__qualname__}"
    by_name_ = keyed_cache(hash_funcs={frame_fqn: lambda df: list(df.columns)})
    assert by_name_(pd.DataFrame({"a": [1]})) is by_name_(pd.DataFrame({"a": [2]}))
    assert by_name_(pd.DataFrame({"a": [1]})) is not by_name_(pd.DataFrame({"b": [1]}))
    del by_name


def test_hash_funcs_override_the_hash_eq_and_dataclass_rules():
    import dataclasses

    @dataclasses.dataclass(frozen=True)
    class Conn:
        url: str
        pool: int

    by_url = keyed_cache(hash_funcs={Conn: lambda c: c.url})
    assert by_url(Conn("db", 1)) is by_url(Conn("db", 2))


# --- optional libraries are never imported -------------------------------------------------


def test_hashing_imports_no_optional_library():
    code = textwrap.dedent(
        """
        import sys, datetime, decimal, fractions, uuid, pathlib, dataclasses
        import fastcache

        @fastcache.cache_resource
        def f(*values):
            return object()

        class Opaque:
            pass

        f(1, "a", 2.0, 1j, [1], {"a": 1}, {1}, datetime.date(2024, 1, 1),
          decimal.Decimal("1"), fractions.Fraction(1, 2), uuid.uuid4(), pathlib.Path("/"),
          memoryview(b"x"), bytearray(b"y"), len, print)
        try:
            f(Opaque())
        except fastcache.UnhashableParamError:
            pass
        loaded = [m for m in ("numpy", "pandas", "polars", "PIL", "pydantic", "attrs")
                  if m in sys.modules]
        print(",".join(loaded))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


def test_pydantic_models_and_attrs_classes():
    pydantic = pytest.importorskip("pydantic")
    attrs = pytest.importorskip("attrs")

    class Settings(pydantic.BaseModel):
        url: str
        retries: int = 3

    class Other(pydantic.BaseModel):
        url: str
        retries: int = 3

    assert_pair(Settings(url="a"), Settings(url="a"), True)
    assert_pair(Settings(url="a"), Settings(url="a", retries=4), False)
    assert_pair(Settings(url="a"), Other(url="a"), False)

    @attrs.define
    class Mutable:
        x: int
        tags: list

    @attrs.frozen
    class Frozen:
        x: int

    assert_pair(Mutable(1, [2]), Mutable(1, [2]), True)
    assert_pair(Mutable(1, [2]), Mutable(1, [3]), False)
    assert_pair(Frozen(1), Frozen(1), True)
    assert_pair(Frozen(1), Frozen(2), False)


def test_unhashable_element_in_an_object_column_is_rejected():
    import threading

    keyed = keyed_cache()
    with pytest.raises(fastcache.UnhashableParamError, match="lock"):
        keyed(pd.DataFrame({"o": [threading.Lock()]}))
