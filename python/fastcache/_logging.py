"""fastcache's records on the ``fastcache`` logger, and the flag that spares a cache hit
from asking ``logging`` whether anyone wants them.

The native side checks one flag before it builds a debug record. The flag follows the
user's logging configuration at once: ``Logger.setLevel``, ``logging.disable``,
``basicConfig(level=...)``, ``dictConfig`` and pytest's ``caplog.set_level`` all end in
``logging.Manager._clear_cache`` (the call with which ``logging`` empties its own
per-logger caches of enabled levels, on CPython 3.7 and later), and fastcache recomputes
its flag right after it. The flag only pre-filters: a record that passes it still goes
through the logger's own checks (``disabled``, filters, handler levels), so a flag that is
on too eagerly costs time, never a wrong record.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from typing import Any

from fastcache import _fastcache

LOGGER_NAME = "fastcache"

_logger = logging.getLogger(LOGGER_NAME)

# Computing and storing the flag is one step, so that two level changes racing on two
# threads cannot store their answers in the wrong order.
_refresh_lock = threading.Lock()

# Reports an exception that escaped a handler of the fastcache logger, by logging's own
# rules (`Handler.handleError`: a traceback on stderr when `logging.raiseExceptions` is
# true, nothing otherwise). It is attached to no logger.
_handler_errors = logging.Handler()

# Marks the installed hook, so importing fastcache again never stacks a second one.
_HOOK_ATTRIBUTE = "__fastcache_refreshes_logging__"


def _debug_wanted() -> bool:
    if _logger.manager.disable >= logging.DEBUG:
        return False
    # `disabled` is left to the logger's own check: setting it is not a level change, so
    # nothing would tell fastcache when it is unset again.
    return _logger.getEffectiveLevel() <= logging.DEBUG


def refresh_logging() -> None:
    """Re-read whether the ``fastcache`` logger wants debug records.

    Not needed any more: fastcache follows every change of logging levels as it happens
    (``setLevel``, ``logging.disable``, ``basicConfig``, ``dictConfig``, pytest's
    ``caplog``). Kept so that code written for earlier versions keeps working.
    """
    with _refresh_lock:
        _fastcache.set_debug_logging(_debug_wanted())


def install() -> None:
    """Hook ``logging``'s level-change point (once per process) and set the flag."""
    original: Callable[..., Any] | None = logging.Manager.__dict__.get("_clear_cache")
    if original is None:
        # A `logging` without the hook (not CPython 3.7+): ask the logger on every call.
        _fastcache.set_debug_logging(True)
        return
    if not getattr(original, _HOOK_ATTRIBUTE, False):

        @functools.wraps(original)
        def _clear_cache(self: logging.Manager) -> None:
            original(self)
            refresh_logging()

        setattr(_clear_cache, _HOOK_ATTRIBUTE, True)
        logging.Manager._clear_cache = _clear_cache  # type: ignore[attr-defined]
    refresh_logging()


def emit(
    level: int,
    message: str,
    event: str,
    function: str,
    reason: str | None,
    exception: BaseException | None,
) -> None:
    """One record on the ``fastcache`` logger (called by the native side).

    The record's location is the Python code that called the cached function. A handler
    that raises is reported as ``logging`` reports handler errors, never raised into the
    cached call: a log record must not turn a cache hit into a failure.
    """
    if not _logger.isEnabledFor(level):
        return
    exc_info = None
    if exception is not None:
        exc_info = (type(exception), exception, exception.__traceback__)
    # stacklevel 2: past this function to the caller's frame (the native call between
    # them has no frame of its own).
    filename, lineno, func, _ = _logger.findCaller(False, 2)
    record = _logger.makeRecord(
        LOGGER_NAME,
        level,
        filename,
        lineno,
        message,
        (),
        exc_info,
        func,
        {
            "fastcache_event": event,
            "fastcache_function": function,
            "fastcache_reason": reason,
        },
    )
    try:
        _logger.handle(record)
    except Exception:  # noqa: BLE001 - any handler error goes to logging's own report
        _handler_errors.handleError(record)
