"""SPEC §5 ttl: the accepted values (strings in pandas Timedelta syntax, timedelta, numbers,
None), the rejected ones, and expiry measured from the write."""

from __future__ import annotations

import gc
import itertools
import math
import time
import warnings
import weakref
from datetime import timedelta
from decimal import Decimal
from fractions import Fraction

import fastcache
import numpy as np
import pytest
from fastcache import cache_resource
from fastcache._fastcache import ttl_seconds
from hypothesis import given, settings
from hypothesis import strategies as st

# Every accepted example of SPEC §5 with its value in seconds.
ACCEPTED = {
    "1d": 86_400,
    "1D": 86_400,
    "1.5 days": 129_600,
    "1h23s": 3_623,
    "1h 23s": 3_623,
    "1d2h34m": 95_640,
    "1m": 60,
    "1min": 60,
    "1 hour": 3_600,
    "1hr": 3_600,
    "1w": 604_800,
    "1ms": 1e-3,
    "1us": 1e-6,
    "1ns": 1e-9,
    "02:03:04": 7_384,
    "1 days 02:03:04": 93_784,
    "P1DT2H": 93_600,
    "PT1H30M": 5_400,
    "1,000s": 1_000,
    " 5s ": 5,
    "-1h": -3_600,
    "10": 1e-8,
}

# Every rejected example of SPEC §5.
REJECTED = ["1M", "1Y", "3 weeks", "5 mins", "1hrs", "1.5", "1e3s", "1T", "", "abc", "nan", "NaT"]


def _bad_ttl_message(value):
    return (
        "Time string doesn't look right. It should be formatted as '1d2h34m' or 2 days, "
        f"for example. Got: {value}"
    )


@pytest.mark.parametrize("text, seconds", ACCEPTED.items(), ids=repr)
def test_accepted_ttl_string_converts_to_seconds(text, seconds):
    assert ttl_seconds(text) == pytest.approx(seconds, rel=1e-12, abs=1e-18)


@pytest.mark.parametrize("text", ACCEPTED, ids=repr)
def test_accepted_ttl_string_is_accepted_at_decoration(text):
    @cache_resource(ttl=text)
    def with_string_ttl(x):
        return object()

    with_string_ttl(1)


@pytest.mark.parametrize("text, seconds", ACCEPTED.items(), ids=repr)
def test_accepted_ttl_string_matches_streamlit(text, seconds):
    streamlit_time_util = pytest.importorskip("streamlit.time_util")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = streamlit_time_util.time_to_seconds(text)
    assert reference == pytest.approx(seconds, rel=1e-12, abs=1e-18)
    assert ttl_seconds(text) == pytest.approx(reference, rel=1e-12, abs=1e-18)


@pytest.mark.parametrize("text", REJECTED, ids=repr)
def test_rejected_ttl_string_raises_bad_ttl_string_error(text):
    with pytest.raises(fastcache.BadTTLStringError) as info:
        ttl_seconds(text)
    assert str(info.value) == _bad_ttl_message(text)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("text", REJECTED, ids=repr)
def test_rejected_ttl_string_fails_at_decoration_time(text):
    with pytest.raises(fastcache.BadTTLStringError) as info:
        cache_resource(ttl=text)
    assert str(info.value) == _bad_ttl_message(text)


@pytest.mark.parametrize(
    "value, seconds",
    [
        (timedelta(hours=1), 3600.0),
        (timedelta(days=1, seconds=1, microseconds=500_000), 86_401.5),
        (timedelta(0), 0.0),
        (timedelta(seconds=-5), -5.0),
        (10, 10.0),
        (0, 0.0),
        (-3, -3.0),
        (0.25, 0.25),
        (2**40, float(2**40)),
        (math.inf, math.inf),
    ],
    ids=repr,
)
def test_numbers_and_timedeltas_convert_to_seconds(value, seconds):
    assert ttl_seconds(value) == seconds


@pytest.mark.parametrize(
    "value, seconds",
    [
        (np.int64(5), 5.0),
        (np.int32(-2), -2.0),
        (np.float32(0.5), 0.5),
        (np.float64(2.5), 2.5),
        (Fraction(3, 2), 1.5),
    ],
    ids=repr,
)
def test_real_numbers_of_any_type_convert_to_seconds(value, seconds):
    assert ttl_seconds(value) == seconds


@pytest.mark.parametrize("value", [np.int64(60), Fraction(60), np.float64(60.0)], ids=repr)
def test_ttl_given_as_numpy_number_or_fraction_is_accepted_as_streamlit_accepts_it(value):
    @cache_resource(ttl=value)
    def load(x):
        return object()

    assert load(1) is load(1)
    streamlit = pytest.importorskip("streamlit")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reference = streamlit.cache_resource(ttl=value)(lambda x: object())
        assert reference(1) is reference(1)  # the reference accepts it too


@pytest.mark.parametrize(
    "value", [10**400, -(10**400), Fraction(10**400, 3)], ids=["10**400", "-10**400", "10**400/3"]
)
def test_ttl_too_large_to_represent_fails_at_decoration_naming_the_parameter(value):
    with pytest.raises(ValueError, match="ttl=") as info:
        cache_resource(ttl=value)
    assert "None" in str(info.value)
    assert len(str(info.value)) < 200  # the number is shortened, not printed in full


def test_none_means_no_expiry():
    assert ttl_seconds(None) == math.inf


@pytest.mark.parametrize(
    "value", [True, False, b"1h", ["1h"], object(), Decimal("1.5"), 1j], ids=repr
)
def test_ttl_of_the_wrong_type_is_a_type_error_at_decoration(value):
    with pytest.raises(TypeError):
        ttl_seconds(value)
    with pytest.raises(TypeError):
        cache_resource(ttl=value)


def test_nan_ttl_is_a_value_error_at_decoration():
    with pytest.raises(ValueError):
        ttl_seconds(math.nan)
    with pytest.raises(ValueError):
        cache_resource(ttl=math.nan)


def test_equal_ttl_spellings_keep_the_cache():
    def define(ttl):
        @cache_resource(ttl=ttl)
        def same_ttl(x):
            return object()

        return same_ttl

    value = define(3600)(1)
    assert define("1h")(1) is value
    assert define("60m")(1) is value
    assert define(timedelta(hours=1))(1) is value
    assert define("2h")(1) is not value


# --- property: the grammar against pandas ----------------------------------------------

_UNIT_SPELLINGS = [
    ["D", "d", "day", "days"],
    ["h", "hr", "hour", "hours"],
    ["m", "min", "minute", "minutes"],
    ["s", "sec", "second", "seconds"],
    ["ms"],
    ["us"],
    ["ns"],
]


@st.composite
def _duration_strings(draw):
    """Strings such as "-1d 2h30m", "3 hours", "1.5h": descending distinct units."""
    levels = sorted(
        draw(
            st.lists(st.integers(0, len(_UNIT_SPELLINGS) - 1), min_size=1, max_size=3, unique=True)
        )
    )
    parts = []
    for index, level in enumerate(levels):
        number = str(draw(st.integers(0, 999)))
        if index == 0 and draw(st.booleans()):
            number += "." + str(draw(st.integers(0, 99)))
        unit = draw(st.sampled_from(_UNIT_SPELLINGS[level]))
        parts.append(number + draw(st.sampled_from(["", " "])) + unit)
    text = draw(st.sampled_from(["", " "])).join(parts)
    if draw(st.booleans()):
        text = "-" + text
    return text


@settings(max_examples=200, deadline=None)
@given(_duration_strings())
def test_ttl_strings_convert_like_pandas_timedelta(text):
    pandas = pytest.importorskip("pandas")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = pandas.Timedelta(text).total_seconds()
    assert ttl_seconds(text) == pytest.approx(expected, rel=1e-12, abs=1e-12)


# --- expiry ----------------------------------------------------------------------------


class Resource:
    pass


def test_entry_expires_after_ttl_from_the_write():
    calls = []

    @cache_resource(ttl=0.15)
    def short_lived(x):
        calls.append(x)
        return Resource()

    value = short_lived(1)
    assert short_lived(1) is value
    time.sleep(0.2)
    assert short_lived(1) is not value
    assert calls == [1, 1]


@pytest.mark.parametrize("ttl_ms", [5, 30, 60])
def test_an_entry_is_never_expired_before_its_ttl_is_over(ttl_ms):
    # Hits judge expiry with a coarse clock (exact near the deadline): called without pause
    # through many expiries, no value is ever recomputed before ttl has passed since the
    # previous computation (which ended before its value was written).
    computed_at = []

    @cache_resource(ttl=ttl_ms / 1000)
    def stamped(x):
        computed_at.append(time.monotonic_ns())
        return Resource()

    deadline = time.monotonic() + 0.6
    while time.monotonic() < deadline:
        stamped(1)
    assert len(computed_at) >= 3
    gaps = [later - earlier for earlier, later in itertools.pairwise(computed_at)]
    assert min(gaps) >= ttl_ms * 1_000_000 - 1, f"recomputed after {min(gaps)} ns"


def test_hits_do_not_extend_the_ttl():
    @cache_resource(ttl=0.4)
    def not_extended(x):
        return Resource()

    value = not_extended(1)
    time.sleep(0.2)
    assert not_extended(1) is value  # age ~0.2 s: a hit (would extend if hits did)
    time.sleep(0.25)
    # 0.45 s since the write but only 0.25 s since the hit: expiry counts from the write.
    assert not_extended(1) is not value


def test_each_key_expires_on_its_own_write_time():
    @cache_resource(ttl=0.4)
    def per_key(x):
        return Resource()

    first = per_key(1)
    time.sleep(0.25)
    second = per_key(2)
    time.sleep(0.2)
    assert per_key(1) is not first  # written 0.45 s ago
    assert per_key(2) is second  # written 0.2 s ago


@pytest.mark.parametrize("ttl", [0, 0.0, -1, timedelta(0), timedelta(seconds=-1)], ids=repr)
def test_non_positive_ttl_recomputes_every_call(ttl, released):
    calls = []

    @cache_resource(ttl=ttl, on_release=released)
    def always_fresh(x):
        calls.append(x)
        return Resource()

    first = always_fresh(1)
    second = always_fresh(1)
    third = always_fresh(1)
    assert len({id(first), id(second), id(third)}) == 3
    assert calls == [1, 1, 1]
    released.assert_each_released_once(first, second)
    fastcache.cache_resource.clear()
    released.assert_each_released_once(first, second, third)


def test_string_ttl_is_applied():
    @cache_resource(ttl="150ms")
    def string_ttl(x):
        return Resource()

    value = string_ttl(1)
    assert string_ttl(1) is value
    time.sleep(0.2)
    assert string_ttl(1) is not value


def test_timedelta_ttl_is_applied():
    @cache_resource(ttl=timedelta(milliseconds=150))
    def timedelta_ttl(x):
        return Resource()

    value = timedelta_ttl(1)
    assert timedelta_ttl(1) is value
    time.sleep(0.2)
    assert timedelta_ttl(1) is not value


def test_expired_entry_is_released_once_when_found_on_the_next_call(released):
    @cache_resource(ttl=0.3, on_release=released)
    def expiring(x):
        return Resource()

    old = expiring(1)
    time.sleep(0.35)
    new = expiring(1)
    assert new is not old
    released.assert_each_released_once(old)
    assert released.count(new) == 0
    expiring(1)  # a hit on the new value releases nothing more
    assert len(released) == 1


def test_expired_value_is_freed(released):
    @cache_resource(ttl=0.1)
    def expiring_freed(x):
        return Resource()

    ref = weakref.ref(expiring_freed(1))
    time.sleep(0.15)
    expiring_freed(1)
    gc.collect()
    assert ref() is None


def test_cache_info_counts_an_expired_entry_as_a_miss():
    @cache_resource(ttl=0.3)
    def expiring_counted(x):
        return Resource()

    expiring_counted(1)
    expiring_counted(1)
    time.sleep(0.35)
    expiring_counted(1)
    info = expiring_counted.cache_info()
    assert (info.hits, info.misses, info.currsize) == (1, 2, 1)
