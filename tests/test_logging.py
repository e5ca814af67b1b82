"""Logging (issue 2, point 10): debug records on logger `fastcache` for hits, misses with
their reason and releases with their cause; nothing printed, warned or logged on a normal
call; on_release errors logged at ERROR with the exception."""

from __future__ import annotations

import logging
import time
import warnings

import fastcache
from fastcache import cache_resource


class Resource:
    def __init__(self, label=None):
        self.label = label


def _events(caplog, func):
    """The debug records of `fastcache` about ``func``, with its name taken out so that
    only the description of the event (hit, miss and why, release and why) is left."""
    name = func.__qualname__
    return [
        r.getMessage().replace(name, "")
        for r in caplog.records
        if r.name == "fastcache" and r.levelno == logging.DEBUG and name in r.getMessage()
    ]


def _matching(events, *words):
    return [e for e in events if all(w in e for w in words)]


def test_miss_and_hit_are_logged_at_debug(debug_log, caplog):
    @cache_resource
    def logged_calls(x):
        return Resource(x)

    with caplog.at_level(logging.DEBUG, logger="fastcache"):
        logged_calls(1)
        logged_calls(1)
    events = _events(caplog, logged_calls)
    assert len(events) == 2
    assert len(_matching(events, "miss")) == 1
    assert len(_matching(events, "hit")) == 1


def test_expiry_is_logged_as_a_release_with_its_cause(debug_log, caplog):
    @cache_resource(ttl=0.05)
    def logged_expiry(x):
        return Resource(x)

    with caplog.at_level(logging.DEBUG, logger="fastcache"):
        logged_expiry(1)
        time.sleep(0.1)
        # Released here on the next call, or earlier by an eager reaper: logged either way.
        logged_expiry(1)
    events = _events(caplog, logged_expiry)
    assert _matching(events, "release", "expired")
    assert len(_matching(events, "miss")) == 2


def test_miss_reason_names_a_failed_validate(debug_log, caplog):
    @cache_resource(validate=lambda v: v.label != "stale")
    def logged_validate(x):
        return Resource(x)

    logged_validate(1).label = "stale"
    with caplog.at_level(logging.DEBUG, logger="fastcache"):
        logged_validate(1)
    events = _events(caplog, logged_validate)
    assert _matching(events, "miss", "validate")
    assert _matching(events, "release", "validate")


def test_release_cause_names_eviction(debug_log, caplog):
    @cache_resource(max_entries=1)
    def logged_eviction(x):
        return Resource(x)

    logged_eviction(1)
    with caplog.at_level(logging.DEBUG, logger="fastcache"):
        logged_eviction(2)
    assert _matching(_events(caplog, logged_eviction), "release", "evicted")


def test_release_cause_names_clear(debug_log, caplog):
    @cache_resource
    def logged_clear(x):
        return Resource(x)

    logged_clear(1)
    logged_clear(2)
    with caplog.at_level(logging.DEBUG, logger="fastcache"):
        logged_clear.clear()
    assert len(_matching(_events(caplog, logged_clear), "release", "clear")) == 2


def test_no_debug_records_once_the_level_is_raised_again(debug_log, caplog):
    @cache_resource
    def quiet_again(x):
        return Resource(x)

    debug_log.setLevel(logging.INFO)
    fastcache.refresh_logging()
    with caplog.at_level(logging.DEBUG):  # the root handler would take debug records
        quiet_again(1)
        quiet_again(1)
        quiet_again.clear()
    assert [r for r in caplog.records if r.name == "fastcache"] == []


def test_normal_calls_print_warn_and_log_nothing(capsys, caplog):
    @cache_resource(max_entries=2, ttl=60, validate=lambda v: True, on_release=lambda v: None)
    def silent(x):
        return Resource(x)

    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.DEBUG):
        warnings.simplefilter("always")
        for n in range(4):
            silent(n)
            silent(n)
        silent.clear()
        fastcache.cache_resource.clear()
    assert caught == []
    assert [r for r in caplog.records if r.name.startswith("fastcache")] == []
    out, err = capsys.readouterr()
    assert out == "" and err == ""


def test_on_release_error_is_logged_at_error_with_the_exception(caplog):
    failure = OSError("socket already closed")

    def failing_release(value):
        raise failure

    @cache_resource(on_release=failing_release)
    def logged_release_error(x):
        return Resource(x)

    logged_release_error(1)
    with caplog.at_level(logging.ERROR, logger="fastcache"):
        logged_release_error.clear()
    records = [r for r in caplog.records if r.name == "fastcache"]
    assert len(records) == 1
    assert records[0].levelno == logging.ERROR
    assert records[0].exc_info is not None and records[0].exc_info[1] is failure
    assert "logged_release_error" in records[0].getMessage()
