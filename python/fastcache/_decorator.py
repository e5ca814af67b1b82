"""``fastcache.cache_resource``: checks the options, then builds the native wrapper.

Like ``functools.lru_cache``, this Python layer only runs at decoration; every call of
the cached function goes straight to the native ``CachedFunction.__call__``.
"""

from __future__ import annotations

import datetime
import functools
import inspect
import types
import weakref
from collections.abc import Callable, Mapping
from typing import (
    Any,
    Literal,
    NamedTuple,
    ParamSpec,
    Protocol,
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


class RealNumber(Protocol):
    """A number of seconds as ``ttl`` takes it: any real number (``int``, ``float``,
    ``Fraction``, numpy numbers), which converts to a float and adds to one. At run time
    ``ttl`` takes ``numbers.Real``; type checkers cannot check against that class (``int``
    and ``float`` are only registered with it), so this is its shape. ``Decimal`` does not
    have it (it does not add to a float) and is refused, as at run time."""

    def __float__(self) -> float: ...
    def __add__(self, other: float, /) -> Any: ...


#: What ``ttl`` accepts: seconds (any real number), a ``timedelta``, a duration string
#: such as ``"1h"`` or ``"2 days"``, or None for no expiry. (A ``bool`` passes as an int
#: here, which no type can exclude; at run time it is refused.)
TTL: TypeAlias = float | RealNumber | datetime.timedelta | str | None
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
    if type(func) is types.FunctionType:
        reuse = _reused.get(id(func.__code__))
        if reuse is not None:
            reused: _fastcache.CachedFunction[P, R] | None = reuse.decorate(func, options)
            if reused is not None:
                return reused
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
    params, identity = parameters(func), function_identity(func)
    wrapper = _fastcache.CachedFunction(
        func, *_constructor_arguments(params, identity, name, qualname, is_async, options)
    )
    functools.update_wrapper(wrapper, func)
    _Reuse.remember(func, wrapper, params, identity, is_async)
    if is_async:
        _mark_coroutine_function(wrapper, func)
    return wrapper


# Default values a rerun's `def` is known to give back unchanged when it gives back the
# same objects: immutable atoms, whose content cannot have changed in between.
_ATOMS = frozenset({int, float, complex, str, bytes, bool, type(None)})


class _Reuse:
    """What decorating one plain function found, kept for the next decoration of the same
    code object. A Streamlit rerun executes the same compiled script again: each `def`
    makes a new function object with the same code, module, qualname and (for constant
    defaults) the same defaults, so its signature, its identity and what
    `functools.update_wrapper` copies need not be worked out again. Kept only for a
    function with no closure, nothing in its `__dict__` and defaults that are immutable
    atoms; anything else goes the whole way every time."""

    __slots__ = (
        "attributes",
        "code",
        "defaults",
        "identity",
        "is_async",
        "keyword_defaults",
        "last_arguments",
        "last_options",
        "module",
        "name",
        "parameters",
        "qualname",
    )

    def __init__(
        self, func: types.FunctionType, wrapper: Any, params: Any, identity: str, is_async: bool
    ) -> None:
        code = func.__code__
        key = id(code)

        def forget(_ref: weakref.ref[types.CodeType], key: int = key) -> None:
            _reused.pop(key, None)

        self.code = weakref.ref(code, forget)
        self.module = func.__module__
        self.qualname = func.__qualname__
        self.name = func.__name__
        self.defaults = func.__defaults__
        self.keyword_defaults = tuple((func.__kwdefaults__ or {}).items())
        self.parameters = params
        self.identity = identity
        self.is_async = is_async
        attributes = dict(wrapper.__dict__)
        del attributes["__wrapped__"]
        self.attributes = attributes
        # The native constructor's arguments after the function, for the options last used
        # (a rerun decorates with the same `Options` object when they are plain values).
        self.last_options: Options | None = None
        self.last_arguments: tuple[Any, ...] = ()

    @staticmethod
    def remember(func: Any, wrapper: Any, params: Any, identity: str, is_async: bool) -> None:
        if (
            type(func) is not types.FunctionType
            or func.__closure__ is not None
            or func.__dict__
            or not all(type(v) in _ATOMS for v in func.__defaults__ or ())
            or not all(type(v) in _ATOMS for v in (func.__kwdefaults__ or {}).values())
        ):
            return
        if len(_reused) >= _REUSE_LIMIT:
            _reused.clear()
        _reused[id(func.__code__)] = _Reuse(func, wrapper, params, identity, is_async)

    def decorate(self, func: types.FunctionType, options: Options) -> Any:
        """The decoration of ``func`` from what was remembered, when ``func`` is made by
        the same `def` with nothing in it that could differ; else None."""
        if (
            self.code() is not func.__code__
            or func.__closure__ is not None
            or func.__dict__
            or func.__defaults__ is not self.defaults
            or func.__module__ != self.module
            or func.__qualname__ != self.qualname
            or func.__name__ != self.name
        ):
            return None
        keyword_defaults = func.__kwdefaults__
        if keyword_defaults is None:
            if self.keyword_defaults:
                return None
        else:
            if len(keyword_defaults) != len(self.keyword_defaults):
                return None
            for name, value in self.keyword_defaults:
                if keyword_defaults.get(name, _MISSING) is not value:
                    return None
        if options is not self.last_options:
            self.last_arguments = _constructor_arguments(
                self.parameters, self.identity, self.name, self.qualname, self.is_async, options
            )
            self.last_options = options
        wrapper = _fastcache.CachedFunction(func, *self.last_arguments)
        attributes = wrapper.__dict__
        attributes.update(self.attributes)
        attributes["__wrapped__"] = func
        if self.is_async:
            _mark_coroutine_function(wrapper, func)
        return wrapper


_MISSING = object()
_FunctionType = types.FunctionType
# Code objects remembered at most (a script has a few dozen cached functions; scripts that
# make code objects without end start the table afresh).
_REUSE_LIMIT = 1024
_reused: dict[int, _Reuse] = {}


def _constructor_arguments(
    params: Any, identity: str, name: str, qualname: str, is_async: bool, options: Options
) -> tuple[Any, ...]:
    """The native `CachedFunction`'s arguments after the function itself."""
    return (
        params,
        identity,
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
        options.given,  # never changed; cache_parameters() hands out copies
        _spinner_texts(options.show_spinner, qualname),
        options.show_time,
    )


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
        decorate = _decorator(
            ttl,
            max_entries,
            show_spinner,
            show_time,
            validate,
            hash_funcs,
            on_release,
            scope,
            refresh_mode,
        )
        if func is None:
            return decorate
        return _wrap(func, decorate.options)

    @staticmethod
    def clear() -> None:
        """Clear every entry of every cached function, each released through its
        ``on_release``, and start every function's statistics afresh."""
        _fastcache.clear_all()


# Decorators made of plain option values (no callbacks, no hash_funcs), by value and type:
# a rerun decorates with the same ones again, and they need not be checked again. `Options`
# is never changed once made, so one object serves every decoration that gave the same
# values.
_PLAIN_OPTION_TYPES = frozenset({type(None), bool, int, float, str, datetime.timedelta})
_DECORATORS_LIMIT = 256
_decorators_by_value: dict[tuple[Any, ...], _Decorate] = {}


def _decorator(
    ttl: Any,
    max_entries: Any,
    show_spinner: Any,
    show_time: Any,
    validate: Any,
    hash_funcs: Any,
    on_release: Any,
    scope: Any,
    refresh_mode: Any,
) -> _Decorate:
    """The decorator for these options, checked (a bad value raises here)."""
    plain = (
        validate is None
        and hash_funcs is None
        and on_release is None
        and type(ttl) in _PLAIN_OPTION_TYPES
        and type(max_entries) in _PLAIN_OPTION_TYPES
        and type(show_spinner) in _PLAIN_OPTION_TYPES
        and type(show_time) in _PLAIN_OPTION_TYPES
        and type(scope) is str
        and type(refresh_mode) is str
    )
    if plain:
        # The types are part of the key: `ttl=1` and `ttl=True` are equal, and one is an
        # error.
        key = (
            type(ttl), ttl, type(max_entries), max_entries, type(show_spinner), show_spinner,
            type(show_time), show_time, scope, refresh_mode,
        )  # fmt: skip
        known = _decorators_by_value.get(key)
        if known is not None:
            return known
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
    decorate = _Decorate(options)
    if plain:
        if len(_decorators_by_value) >= _DECORATORS_LIMIT:
            _decorators_by_value.clear()
        _decorators_by_value[key] = decorate
    return decorate


class _Decorate:
    """``cache_resource(...)`` without a function: applies the options it was given."""

    __slots__ = ("options",)

    def __init__(self, options: Options) -> None:
        self.options = options

    def __call__(self, func: Callable[P, R], /) -> _fastcache.CachedFunction[P, R]:
        # A rerun's decoration, in this frame (see `_wrap`: the same lookup).
        if type(func) is _FunctionType:
            reuse = _reused.get(id(func.__code__))
            if reuse is not None:
                reused: _fastcache.CachedFunction[P, R] | None = reuse.decorate(func, self.options)
                if reused is not None:
                    return reused
        return _wrap(func, self.options)


cache_resource = CacheResourceAPI()
