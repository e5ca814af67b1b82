"""The decorator's options, checked when a function is decorated: bad input fails there,
naming the value and the fix."""

from __future__ import annotations

import inspect
import math
import numbers
import operator
import sys
from collections.abc import Callable, Mapping
from typing import Any

from fastcache import _fastcache

_SCOPES = ("global", "session")
_REFRESH_MODES = ("foreground", "background")


class Options:
    """The decorator's arguments, checked once and shared by every function they decorate."""

    __slots__ = (
        "background_refresh",
        "given",
        "hash_funcs",
        "max_entries",
        "on_release",
        "session_scoped",
        "show_spinner",
        "show_time",
        "ttl_secs",
        "validate",
    )

    def __init__(
        self,
        *,
        ttl: Any,
        max_entries: Any,
        show_spinner: Any,
        show_time: Any,
        validate: Any,
        hash_funcs: Any,
        on_release: Any,
        scope: Any,
        refresh_mode: Any,
    ) -> None:
        if scope not in _SCOPES:
            raise ValueError(
                f"Invalid `scope` value. Supported values: 'global', 'session'. Got: {scope!r}"
            )
        if refresh_mode not in _REFRESH_MODES:
            raise ValueError(
                "Invalid `refresh_mode` value. Supported values: foreground, background. "
                f"Got: {refresh_mode!r}"
            )
        self.ttl_secs = _fastcache.ttl_seconds(ttl)
        self.max_entries = _check_max_entries(max_entries)
        self.validate = _check_callback("validate", validate)
        self.on_release = _check_callback("on_release", on_release)
        self.hash_funcs = _check_hash_funcs(hash_funcs)
        self.show_spinner = show_spinner
        self.show_time = bool(show_time)
        self.session_scoped = scope == "session"
        self.background_refresh = refresh_mode == "background"
        if self.background_refresh:
            _check_background_refresh(ttl, self.ttl_secs)
        self.given = {
            "ttl": ttl,
            "max_entries": max_entries,
            "show_spinner": show_spinner,
            "show_time": show_time,
            "validate": validate,
            "hash_funcs": hash_funcs,
            "on_release": on_release,
            "scope": scope,
            "refresh_mode": refresh_mode,
        }


# The largest count the native cache holds (a machine-sized unsigned integer).
_MAX_ENTRIES_LIMIT = sys.maxsize * 2 + 1


def _check_max_entries(value: Any) -> int | None:
    """A positive whole number of entries, or None. Like Streamlit, any real number is
    accepted (``2.0``, numpy integers, ``Fraction``): a fractional limit holds its whole
    part, as Streamlit's LRU counts; infinity means no limit."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"max_entries must be a positive int or None; got {value!r}")
    try:
        count = operator.index(value)
    except TypeError:
        if not isinstance(value, numbers.Real):
            raise TypeError(
                f"max_entries must be a positive int or None; got {value!r} of type "
                f"{type(value).__name__}"
            ) from None
        number: Any = value
        if math.isnan(number):
            raise ValueError(
                "max_entries is NaN; pass a positive number of entries, or None for no limit"
            ) from None
        if math.isinf(number):
            if number > 0:
                return None
            count = -1
        else:
            count = math.floor(number)
    if count <= 0:
        raise ValueError(
            f"max_entries must be a positive int; got {value!r}. "
            "Use None (the default) for a cache without a size limit."
        )
    if count > _MAX_ENTRIES_LIMIT:
        raise ValueError(
            f"max_entries={count} is more entries than fastcache can count (at most "
            f"{_MAX_ENTRIES_LIMIT}); use None for a cache without a size limit."
        )
    return count


def _is_async_callable(func: Any) -> bool:
    if inspect.iscoroutinefunction(func) or inspect.isasyncgenfunction(func):
        return True
    call = type(func).__call__  # callable instances: their class's __call__ decides
    return inspect.iscoroutinefunction(call) or inspect.isasyncgenfunction(call)


def _check_callback(name: str, callback: Any) -> Callable[[Any], Any] | None:
    if callback is None:
        return None
    if not callable(callback):
        raise TypeError(
            f"{name} must be a function taking the cached value, or None; got {callback!r}"
        )
    if _is_async_callable(callback):
        raise TypeError(
            f"The `{name}` callback of `fastcache.cache_resource` must be a synchronous "
            "function. Async callbacks are never awaited; call the coroutine from a "
            "synchronous wrapper instead."
        )
    return callback


def _check_hash_funcs(hash_funcs: Any) -> dict[Any, Callable[[Any], Any]] | None:
    if hash_funcs is None:
        return None
    if not isinstance(hash_funcs, Mapping):
        raise TypeError(
            "hash_funcs must be a dict mapping a type (or its fully-qualified name, such as "
            f'"numpy.ndarray") to a function; got {hash_funcs!r}'
        )
    checked = {}
    for key, func in hash_funcs.items():
        if not isinstance(key, (type, str)):
            raise TypeError(
                "hash_funcs keys must be types or fully-qualified type names such as "
                f'"__main__.Person"; got {key!r} of type {type(key).__name__}'
            )
        if not callable(func):
            raise TypeError(f"hash_funcs[{key!r}] must be a function; got {func!r}")
        checked[key] = func
    return checked or None


def _check_background_refresh(ttl: Any, ttl_secs: float) -> None:
    if ttl is None:
        raise ValueError(
            'The `ttl` parameter is required. Set a positive `ttl` (for example `ttl="1h"`) '
            'or use `refresh_mode="foreground"`.'
        )
    if ttl_secs <= 0:
        raise ValueError(
            "Invalid `ttl` value. Supported values: a positive duration. Background refresh "
            'requires a positive `ttl` (for example `ttl="1h"`) or `refresh_mode="foreground"`.'
        )
