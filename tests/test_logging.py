"""Logging: debug records on logger `fastcache` for hits, misses with their reason and
releases with their cause, following the logging configuration as it changes; each record
carries the function, the event and the reason as attributes; nothing printed, warned or
logged above debug on a normal call; on_release errors logged at ERROR with the exception;
a handler that raises is handled by logging's rules and never breaks a call."""

from __future__ import annotations

import logging
import subprocess
import sys
import threading
import time
import warnings

import fastcache
import pytest
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
    with caplog.at_level(logging.DEBUG):  # the root handler would take debug records
        quiet_again(1)
        quiet_again(1)
        quiet_again.clear()
    assert [r for r in caplog.records if r.name == "fastcache"] == []


def test_normal_calls_print_warn_and_log_nothing(capsys, caplog):
    @cache_resource(max_entries=2, ttl=60, validate=lambda v: True, on_release=lambda v: None)
    def silent(x):
        return Resource(x)

    # Everything above debug is captured: a normal call has nothing to say at those levels.
    with warnings.catch_warnings(record=True) as caught, caplog.at_level(logging.INFO):
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


# --- following the logging configuration as it changes ---------------------------------


def _fastcache_records(caplog):
    return [r for r in caplog.records if r.name == "fastcache"]


def test_caplog_set_level_after_import_captures_records_at_once(caplog):
    @cache_resource
    def seen_by_caplog(x):
        return Resource(x)

    seen_by_caplog(1)  # before: the fastcache logger is at the default level
    assert _fastcache_records(caplog) == []
    caplog.set_level(logging.DEBUG, logger="fastcache")
    seen_by_caplog(1)
    seen_by_caplog(2)
    messages = [r.getMessage() for r in _fastcache_records(caplog)]
    assert len(_matching(messages, "hit", "seen_by_caplog")) == 1
    assert len(_matching(messages, "miss", "seen_by_caplog")) == 1


def test_basic_config_after_import_prints_debug_records(tmp_path):
    script = tmp_path / "configured_late.py"
    script.write_text(
        "import logging\n"
        "import fastcache\n"
        "@fastcache.cache_resource\n"
        "def configured_late(x):\n"
        "    return [x]\n"
        "configured_late(1)\n"
        "logging.basicConfig(level=logging.DEBUG, format='%(levelname)s %(message)s')\n"
        "configured_late(1)\n"
        "configured_late(2)\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert lines == ["DEBUG hit: configured_late", "DEBUG miss: configured_late (new key)"]


def test_dict_config_after_import_turns_debug_records_on(tmp_path):
    script = tmp_path / "dict_configured.py"
    script.write_text(
        "import logging.config\n"
        "import fastcache\n"
        "@fastcache.cache_resource\n"
        "def dict_configured(x):\n"
        "    return [x]\n"
        "dict_configured(1)\n"
        "logging.config.dictConfig({\n"
        "    'version': 1,\n"
        "    'disable_existing_loggers': False,\n"
        "    'formatters': {'short': {'format': '%(fastcache_event)s %(fastcache_reason)s'}},\n"
        "    'handlers': {'err': {'class': 'logging.StreamHandler', 'formatter': 'short'}},\n"
        "    'loggers': {'fastcache': {'level': 'DEBUG', 'handlers': ['err']}},\n"
        "})\n"
        "dict_configured(1)\n"
        "dict_configured(2)\n"
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr.splitlines() == ["hit None", "miss new key"]


def test_raising_the_level_stops_records_at_once(caplog):
    @cache_resource
    def quieted(x):
        return Resource(x)

    logger = logging.getLogger("fastcache")
    caplog.set_level(logging.DEBUG, logger="fastcache")
    quieted(1)
    assert len(_fastcache_records(caplog)) == 1
    logger.setLevel(logging.INFO)
    with caplog.at_level(logging.DEBUG):  # the root handler would take debug records
        quieted(1)
        quieted(2)
        quieted.clear()
    assert len(_fastcache_records(caplog)) == 1


def test_logging_disable_silences_and_reenabling_brings_records_back(caplog):
    @cache_resource
    def toggled(x):
        return Resource(x)

    caplog.set_level(logging.DEBUG, logger="fastcache")
    logging.disable(logging.DEBUG)
    try:
        toggled(1)
        toggled(1)
        assert _fastcache_records(caplog) == []
    finally:
        logging.disable(logging.NOTSET)
    toggled(1)
    assert [r.getMessage() for r in _fastcache_records(caplog)] == [f"hit: {toggled.__qualname__}"]


def test_refresh_logging_is_still_callable_and_changes_nothing(caplog):
    @cache_resource
    def refreshed(x):
        return Resource(x)

    caplog.set_level(logging.DEBUG, logger="fastcache")
    fastcache.refresh_logging()
    refreshed(1)
    assert len(_fastcache_records(caplog)) == 1


# --- what a record carries ---------------------------------------------------------------


def _attributes(caplog, func):
    return [
        (r.fastcache_event, r.fastcache_reason)
        for r in _fastcache_records(caplog)
        if r.fastcache_function == func.__qualname__
    ]


def test_records_carry_the_function_the_event_and_the_reason(caplog):
    @cache_resource(max_entries=1, validate=lambda v: v.label != "stale")
    def described(x):
        return Resource(x)

    caplog.set_level(logging.DEBUG, logger="fastcache")
    described(1)
    described(1)
    described(1).label = "stale"
    described(1)  # validate fails: released, computed again
    described(2)  # evicts 1
    described.clear()
    assert _attributes(caplog, described) == [
        ("miss", "new key"),
        ("hit", None),
        ("hit", None),
        ("release", "validate failed"),
        ("miss", "validate failed"),
        ("miss", "new key"),
        ("release", "evicted"),
        ("release", "cleared"),
    ]
    record = _fastcache_records(caplog)[0]
    assert record.getMessage() == f"miss: {described.__qualname__} (new key)"
    # The record points at the code that called the cached function.
    assert record.pathname == __file__
    assert record.funcName == "test_records_carry_the_function_the_event_and_the_reason"


def test_expired_entry_records_name_the_expiry(caplog):
    @cache_resource(ttl=0.05)
    def expiring(x):
        return Resource(x)

    caplog.set_level(logging.DEBUG, logger="fastcache")
    expiring(1)
    time.sleep(0.1)
    expiring(1)
    events = _attributes(caplog, expiring)
    assert ("release", "expired") in events
    # The release happened at this call (a miss for that reason) or in the expiry thread
    # just before it (then the key was simply absent).
    assert events[-1] in {("miss", "expired"), ("miss", "new key")}


def test_a_background_refresh_releases_the_replaced_value_with_its_reason(caplog):
    refreshed = threading.Event()
    version = iter(range(100))

    def on_release(value):
        refreshed.set()

    @cache_resource(ttl=0.05, refresh_mode="background", on_release=on_release)
    def versioned(x):
        return Resource(next(version))

    caplog.set_level(logging.DEBUG, logger="fastcache")
    versioned(1)
    time.sleep(0.06)
    stale = versioned(1)  # served stale; the refresh replaces it in the background
    assert refreshed.wait(5)
    assert stale.label == 0
    events = _attributes(caplog, versioned)
    assert ("hit", "stale") in events
    assert ("release", "replaced") in events


def test_a_hit_with_a_ttl_says_when_the_entry_expires(caplog):
    @cache_resource(ttl="1h")
    def hourly(x):
        return Resource(x)

    hourly(1)
    caplog.set_level(logging.DEBUG, logger="fastcache")
    hourly(1)
    (message,) = [r.getMessage() for r in _fastcache_records(caplog)]
    # Rounded up to whole seconds: "1h" right after the write, "59m 59s" a second later.
    assert message in {
        f"hit: {hourly.__qualname__} (expires in 1h)",
        f"hit: {hourly.__qualname__} (expires in 59m 59s)",
    }


def test_a_replaced_cache_is_recorded_with_its_reason(caplog):
    def make(ttl):
        @cache_resource(ttl=ttl)
        def replaced_by_options(x):
            return Resource(x)

        return replaced_by_options

    make(60)(1)
    caplog.set_level(logging.DEBUG, logger="fastcache")
    newer = make(120)
    assert ("cache replaced", "options changed") in _attributes(caplog, newer)
    assert ("release", "cleared") in _attributes(caplog, newer)


# --- handlers that raise ----------------------------------------------------------------


class RaisingHandler(logging.Handler):
    def __init__(self, error):
        super().__init__()
        self.error = error
        self.calls = 0

    def emit(self, record):
        self.calls += 1
        raise self.error


@pytest.fixture
def raising_handler():
    logger = logging.getLogger("fastcache")
    handler = RaisingHandler(RuntimeError("the log server is down"))
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(previous)


@pytest.mark.parametrize("raise_exceptions", [True, False])
def test_a_raising_handler_follows_the_logging_rules(
    raising_handler, capsys, monkeypatch, raise_exceptions
):
    monkeypatch.setattr(logging, "raiseExceptions", raise_exceptions)

    @cache_resource
    def logged_to_a_broken_handler(x):
        return Resource(x)

    first = logged_to_a_broken_handler(1)
    assert logged_to_a_broken_handler(1) is first
    logged_to_a_broken_handler.clear()
    assert raising_handler.calls == 3  # miss, hit, release: each reached the handler
    assert sys.exc_info() == (None, None, None)
    err = capsys.readouterr().err
    if raise_exceptions:
        # As logging reports a handler's error: once per record, with the traceback.
        assert err.count("--- Logging error ---") == 3
        assert "RuntimeError: the log server is down" in err
    else:
        assert err == ""


def test_a_raising_handler_does_not_hide_an_on_release_error(raising_handler, capsys):
    def failing_release(value):
        raise OSError("socket already closed")

    @cache_resource(on_release=failing_release)
    def released_to_a_broken_handler(x):
        return Resource(x)

    released_to_a_broken_handler(1)
    released_to_a_broken_handler.clear()
    released_to_a_broken_handler(1)  # still works
    err = capsys.readouterr().err
    # logging's report of the handler's error names the record it could not handle.
    assert "RuntimeError: the log server is down" in err
    assert "Message: \"on_release of 'test_a_raising_handler" in err


def test_ctrl_c_in_a_handler_is_not_swallowed(raising_handler):
    raising_handler.error = KeyboardInterrupt()

    @cache_resource
    def interrupted_while_logging(x):
        return Resource(x)

    with pytest.raises(KeyboardInterrupt):
        interrupted_while_logging(1)
        for _ in range(1000):  # the interrupt is raised at the next check
            pass
    logging.getLogger("fastcache").removeHandler(raising_handler)
    # Nothing was left half-done: the key computes and caches as usual.
    assert isinstance(interrupted_while_logging(1), Resource)
    assert interrupted_while_logging.cache_info().currsize == 1
