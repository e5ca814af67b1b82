"""``fastcache.cache_resource``: checks the options, then builds the native wrapper.

Like ``functools.lru_cache``, this Python layer only runs at decoration; every call of
the cached function goes straight to the native ``CachedFunction.__call__``.
"""

from __future__ import annotations

import functools
import inspect
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any

from fastcache import _fastcache
from fastcache._identity import function_identity
from fastcache._options import Options
from fastcache._signature import parameters

CacheInfo = namedtuple("CacheInfo", ["hits", "misses", "maxsize", "currsize"])
CacheInfo.__doc__ = "Statistics of one cached function, as functools.lru_cache reports them."


def _wrap(func: Any, options: Options) -> _fastcache.CachedFunction:
    if not callable(func):
        raise TypeError(
            f"fastcache.cache_resource decorates a function; got {func!r}. Use it as "
            "@fastcache.cache_resource or @fastcache.cache_resource(ttl=...)."
        )
    if inspect.isasyncgenfunction(func):
        raise TypeError(
            f"{func.__qualname__} is an async generator function; a generator cannot be "
            "cached as a shared resource. Cache a function that returns the resource instead."
        )
    is_async = inspect.iscoroutinefunction(func)
    name = getattr(func, "__name__", type(func).__name__)
    qualname = getattr(func, "__qualname__", name)
    wrapper = _fastcache.CachedFunction(
        func,
        parameters(func),
        function_identity(func),
        name,
        qualname,
        options.ttl_secs,
        options.max_entries,
        options.background_refresh,
        options.validate,
        options.on_release,
        options.hash_funcs,
        options.session_scoped,
        is_async,
        dict(options.given),
    )
    functools.update_wrapper(wrapper, func)
    if is_async:
        _mark_coroutine_function(wrapper, func)
    return wrapper


def _mark_coroutine_function(wrapper: Any, func: Any) -> None:
    """Make ``inspect.iscoroutinefunction(wrapper)`` true, as tool registries (LangChain,
    MCP, Gradio) check it. Python 3.12+ has a marker for this; 3.11's inspect recognises
    function-like objects by their code attributes, so the wrapper carries the function's."""
    mark = getattr(inspect, "markcoroutinefunction", None)
    if mark is not None:
        mark(wrapper)
        return
    wrapper.__code__ = func.__code__
    wrapper.__defaults__ = getattr(func, "__defaults__", None)
    wrapper.__kwdefaults__ = getattr(func, "__kwdefaults__", None)


class CacheResourceAPI:
    """``fastcache.cache_resource``: the decorator, and ``cache_resource.clear()``."""

    def __call__(
        self,
        func: Callable[..., Any] | None = None,
        *,
        ttl: float | str | Any | None = None,
        max_entries: int | None = None,
        show_spinner: bool | str = True,
        show_time: bool = False,
        validate: Callable[[Any], Any] | None = None,
        hash_funcs: Mapping[type | str, Callable[[Any], Any]] | None = None,
        on_release: Callable[[Any], Any] | None = None,
        scope: str = "global",
        refresh_mode: str = "foreground",
    ) -> Any:
        options = Options(
            ttl=ttl,
            max_entries=max_entries,
            show_spinner=show_spinner,
            show_time=show_time,
            validate=validate,
            hash_funcs=hash_funcs,
            on_release=on_release,
            scope=scope,
            refresh_mode=refresh_mode,
        )
        if func is None:
            return lambda f: _wrap(f, options)
        return _wrap(func, options)

    @staticmethod
    def clear() -> None:
        """Clear every entry of every cached function (each released through its
        ``on_release``)."""
        _fastcache.clear_all()


cache_resource = CacheResourceAPI()
