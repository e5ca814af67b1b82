"""``fastcache.cache_resource``: checks the options, then builds the native wrapper.

Like ``functools.lru_cache``, this Python layer only runs at decoration; every call of
the cached function goes straight to the native ``CachedFunction.__call__``.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import types
from collections.abc import Callable, Mapping
from typing import (
    Any,
    Literal,
    NamedTuple,
    ParamSpec,
    Protocol,
    SupportsFloat,
    TypeAlias,
    TypeVar,
    overload,
)

from fastcache import _fastcache
from fastcache._identity import function_identity
from fastcache._options import Options
from fastcache._signature import parameters

P = ParamSpec("P")
R = TypeVar("R")

#: What ``ttl`` accepts: seconds (any real number), a ``timedelta``, a duration string
#: such as ``"1h"`` or ``"2 days"``, or None for no expiry.
TTL: TypeAlias = float | SupportsFloat | datetime.timedelta | str | None
#: What ``scope`` accepts.
Scope: TypeAlias = Literal["global", "session"]
#: What ``refresh_mode`` accepts.
RefreshMode: TypeAlias = Literal["foreground", "background"]


class CacheInfo(NamedTuple):
    """Statistics of one cached function, as ``functools.lru_cache`` reports them."""

    hits: int
    misses: int
    maxsize: int | None
    currsize: int


class CacheResourceDecorator(Protocol):
    """What ``cache_resource(...)`` with options only returns: apply it to a function."""

    def __call__(self, func: Callable[P, R], /) -> _fastcache.CachedFunction[P, R]: ...


def _wrap(func: Callable[P, R], options: Options) -> _fastcache.CachedFunction[P, R]:
    # Over `@staticmethod` or `@classmethod`: cache the function inside and keep the method
    # kind outside, so `A().s(1)`, `A.s(1)` and `A.build(1)` bind as the class wrote them.
    if isinstance(func, (staticmethod, classmethod)):
        return type(func)(_wrap(func.__func__, options))  # type: ignore[return-value]
    if not callable(func):
        raise TypeError(
            f"fastcache.cache_resource decorates a function; got {func!r}. Use it as "
            "@fastcache.cache_resource or @fastcache.cache_resource(ttl=...)."
        )
    # Decorating a cached function again, or stacking the decorator, caches once: the new
    # wrapper caches the original function under the same identity (one cache when the
    # options agree, the newer options' cache when they do not).
    if isinstance(func, _fastcache.CachedFunction):
        func = func.__wrapped__
    elif isinstance(func, _fastcache.BoundCachedMethod):
        func = types.MethodType(func.__func__.__wrapped__, func.__self__)
    if inspect.isasyncgenfunction(func):
        raise TypeError(
            f"{func.__qualname__} is an async generator function; a generator cannot be "
            "cached as a shared resource. Cache a function that returns the resource instead."
        )
    if inspect.isgeneratorfunction(func):
        raise TypeError(
            f"{func.__qualname__} is a generator function; its generator can be iterated "
            "once, so every later caller would get it exhausted. Cache a function that "
            "returns the resource (or a list of the items) instead."
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
        _spinner_texts(options.show_spinner, qualname),
        options.show_time,
    )
    functools.update_wrapper(wrapper, func)
    if is_async:
        _mark_coroutine_function(wrapper, func)
    return wrapper


def _spinner_texts(show_spinner: Any, qualname: str) -> tuple[str, str] | None:
    """Inside a Streamlit app, the spinner's text for a call without and with arguments,
    as Streamlit words it; None for no spinner (only True or a string turn it on)."""
    if isinstance(show_spinner, str):
        return show_spinner, show_spinner
    if show_spinner is True:
        return f"Running `{qualname}()`.", f"Running `{qualname}(...)`."
    return None


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
    """``fastcache.cache_resource``: the decorator, and ``cache_resource.clear()``.

    ``@cache_resource`` keeps one shared value per set of arguments — a database
    connection, a model, a client — across threads, sessions and reruns, with the
    parameters and behaviour of Streamlit's ``st.cache_resource``. See ``__call__`` for
    every parameter.
    """

    @overload
    def __call__(
        self,
        func: Callable[P, R],
        *,
        ttl: TTL = None,
        max_entries: int | None = None,
        show_spinner: bool | str = True,
        show_time: bool = False,
        validate: Callable[[Any], object] | None = None,
        hash_funcs: Mapping[Any, Callable[[Any], object]] | None = None,
        on_release: Callable[[Any], object] | None = None,
        scope: Scope = "global",
        refresh_mode: RefreshMode = "foreground",
    ) -> _fastcache.CachedFunction[P, R]: ...

    @overload
    def __call__(
        self,
        func: None = None,
        *,
        ttl: TTL = None,
        max_entries: int | None = None,
        show_spinner: bool | str = True,
        show_time: bool = False,
        validate: Callable[[Any], object] | None = None,
        hash_funcs: Mapping[Any, Callable[[Any], object]] | None = None,
        on_release: Callable[[Any], object] | None = None,
        scope: Scope = "global",
        refresh_mode: RefreshMode = "foreground",
    ) -> CacheResourceDecorator: ...

    def __call__(
        self,
        func: Callable[P, R] | None = None,
        *,
        ttl: TTL = None,
        max_entries: int | None = None,
        show_spinner: bool | str = True,
        show_time: bool = False,
        validate: Callable[[Any], object] | None = None,
        hash_funcs: Mapping[Any, Callable[[Any], object]] | None = None,
        on_release: Callable[[Any], object] | None = None,
        scope: Scope = "global",
        refresh_mode: RefreshMode = "foreground",
    ) -> _fastcache.CachedFunction[P, R] | CacheResourceDecorator:
        """Cache a function that returns a shared resource, once per set of arguments.

        Use it as ``@cache_resource``, ``@cache_resource()``, ``@cache_resource(ttl=...)``,
        ``cache_resource(func)`` or ``cache_resource(func, ttl=...)``. The cached function
        takes the same arguments and returns the same value as ``func``; concurrent calls
        for one key run ``func`` once and share its value; exceptions are never cached.
        Every option is checked here: a bad value raises at decoration, naming it.

        Parameters
        ----------
        func:
            The function to cache (sync or ``async def``; for an ``async def`` the awaited
            value is cached). Only this parameter is positional. Arguments are bound to its
            signature, so ``f(1)``, ``f(a=1)`` and ``f(1, 2)`` (when ``b=2`` is the
            default) are one entry. Parameters whose name starts with ``_`` are left out of
            the key and never hashed.
        ttl:
            How long an entry lives, measured from its write: None (forever, the default),
            a number of seconds (int, float or any real number), a ``datetime.timedelta``, or
            a string such as ``"1h"``, ``"2 days"``, ``"1d2h34m"`` or ``"PT1H30M"``.
            ``ttl <= 0`` recomputes on every call. Expired entries are released within
            about a second, even if the function is never called again. A bad string raises
            ``BadTTLStringError``, another type ``TypeError``, NaN ``ValueError``.
        max_entries:
            The most entries kept (a positive int), least recently used evicted first after
            the expired ones; None (the default) for no limit.
        show_spinner:
            Inside a Streamlit app, show Streamlit's spinner on a miss: True (the default)
            for ``Running `name(...)`.``, a string for that text, False for none. Ignored
            outside Streamlit.
        show_time:
            Inside a Streamlit app, show the elapsed time in the spinner. Ignored outside.
        validate:
            Called with the cached value on every hit; a falsy result discards the entry
            (through ``on_release``) and computes it again. An exception propagates.
        hash_funcs:
            A mapping from a type (or its fully-qualified name, such as
            ``"numpy.ndarray"``) to a function whose result is hashed instead of arguments
            of exactly that type, also inside containers.
        on_release:
            Called exactly once with each value that leaves the cache — cleared, evicted,
            expired, failing ``validate``, replaced — outside every lock. An exception in it
            is logged on the ``fastcache`` logger.
        scope:
            ``"global"`` (the default): one cache for the process. ``"session"``: one per
            Streamlit session, only inside a Streamlit app.
        refresh_mode:
            ``"foreground"`` (the default): an expired entry is computed by the call that
            finds it. ``"background"`` (needs a positive ``ttl``): between ``ttl`` and
            ``2 * ttl`` the stale value is returned at once while one refresh per key runs
            in the background.

        Returns
        -------
        A ``CachedFunction`` (with ``clear()``, ``cache_clear()``, ``cache_info()`` and
        ``cache_parameters()``), or, without ``func``, a decorator that makes one.
        """
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
            return _Decorate(options)
        return _wrap(func, options)

    @staticmethod
    def clear() -> None:
        """Clear every entry of every cached function, each released through its
        ``on_release``, and start every function's statistics afresh."""
        _fastcache.clear_all()


class _Decorate:
    """``cache_resource(...)`` without a function: applies the options it was given."""

    __slots__ = ("_options",)

    def __init__(self, options: Options) -> None:
        self._options = options

    def __call__(self, func: Callable[P, R], /) -> _fastcache.CachedFunction[P, R]:
        return _wrap(func, self._options)


cache_resource = CacheResourceAPI()
