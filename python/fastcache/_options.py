"""The decorator: options are checked when a function is decorated (bad input fails
there, naming the value and the fix), then the native wrapper is built.

Like ``functools.lru_cache``, this Python layer only runs at decoration; every call of
the cached function goes straight to the native ``CachedFunction.__call__``.
"""

from __future__ import annotations

import functools
import inspect
import operator
import sys
import types
import weakref
from collections import namedtuple
from collections.abc import Callable, Mapping
from typing import Any

from fastcache import _fastcache

CacheInfo = namedtuple("CacheInfo", ["hits", "misses", "maxsize", "currsize"])
CacheInfo.__doc__ = "Statistics of one cached function, as functools.lru_cache reports them."

_SCOPES = ("global", "session")
_REFRESH_MODES = ("foreground", "background")


class _Options:
    """The decorator's arguments, checked once and shared by every function they decorate."""

    __slots__ = (
        "background_refresh",
        "given",
        "hash_funcs",
        "max_entries",
        "on_release",
        "session_scoped",
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


def _check_max_entries(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        raise TypeError(f"max_entries must be a positive int or None; got {value!r}")
    try:
        count = operator.index(value)
    except TypeError:
        raise TypeError(
            f"max_entries must be a positive int or None; got {value!r} of type "
            f"{type(value).__name__}"
        ) from None
    if count <= 0:
        raise ValueError(
            f"max_entries must be a positive int; got {count}. "
            "Use None (the default) for a cache without a size limit."
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


# A function's identity per code object: a Streamlit rerun re-executes the same compiled
# script, so the same code object comes back and its source need not be read again.
_identity_by_code: dict[int, tuple[weakref.ref[types.CodeType], str]] = {}


def _code_fingerprint(code: types.CodeType) -> str:
    """The bytecode with its constants and names, nested code objects included: two
    functions that differ only in a string constant get different identities."""
    consts = [
        _code_fingerprint(c) if isinstance(c, types.CodeType) else f"{type(c).__qualname__}:{c!r}"
        for c in code.co_consts
    ]
    return f"code({code.co_code.hex()}|{code.co_names!r}|{code.co_varnames!r}|{consts!r})"


def _source_or_fingerprint(func: Any) -> str:
    try:
        return inspect.getsource(func)
    except (OSError, TypeError):
        code = getattr(func, "__code__", None)
        if isinstance(code, types.CodeType):
            return _code_fingerprint(code)
        return repr(type(func))


def _function_identity(func: Any) -> str:
    """``module``, ``qualname`` and source text of the ``def`` block (decorators included),
    or, without source, the code object with its constants and names."""
    module = getattr(func, "__module__", None)
    qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
    code = getattr(func, "__code__", None)
    if isinstance(code, types.CodeType):
        remembered = _identity_by_code.get(id(code))
        if remembered is not None and remembered[0]() is code:
            source = remembered[1]
        else:
            source = _source_or_fingerprint(func)
            key = id(code)

            def forget(_ref: weakref.ref[types.CodeType], key: int = key) -> None:
                _identity_by_code.pop(key, None)

            _identity_by_code[key] = (weakref.ref(code, forget), source)
    else:
        source = _source_or_fingerprint(func)
    return f"{module}\x00{qualname}\x00{source}"


_POSITIONAL_ONLY, _POSITIONAL_OR_KEYWORD, _VAR_POSITIONAL, _KEYWORD_ONLY, _VAR_KEYWORD = range(5)


def _parameters_from_code(func: types.FunctionType) -> tuple[tuple[str, int, bool, Any], ...]:
    """The signature of a plain function, read from its code object: what
    ``inspect.signature`` would say, at a fraction of its cost (decoration runs on every
    Streamlit rerun)."""
    code = func.__code__
    names = code.co_varnames
    n_positional = code.co_argcount
    n_keyword_only = code.co_kwonlyargcount
    defaults = func.__defaults__ or ()
    keyword_defaults = func.__kwdefaults__ or {}
    first_default = n_positional - len(defaults)
    params: list[tuple[str, int, bool, Any]] = []
    for i in range(n_positional):
        kind = _POSITIONAL_ONLY if i < code.co_posonlyargcount else _POSITIONAL_OR_KEYWORD
        if i >= first_default:
            params.append((names[i], kind, True, defaults[i - first_default]))
        else:
            params.append((names[i], kind, False, None))
    next_name = n_positional + n_keyword_only
    if code.co_flags & inspect.CO_VARARGS:
        params.append((names[next_name], _VAR_POSITIONAL, False, None))
        next_name += 1
    for name in names[n_positional : n_positional + n_keyword_only]:
        params.append((name, _KEYWORD_ONLY, name in keyword_defaults, keyword_defaults.get(name)))
    if code.co_flags & inspect.CO_VARKEYWORDS:
        params.append((names[next_name], _VAR_KEYWORD, False, None))
    return tuple(params)


def _parameters(func: Any) -> tuple[tuple[str, int, bool, Any], ...]:
    """The signature as ``(name, kind, has_default, default)``, for native binding."""
    plain = type(func) is types.FunctionType
    if plain and not hasattr(func, "__wrapped__") and not hasattr(func, "__signature__"):
        return _parameters_from_code(func)
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"fastcache.cache_resource needs the signature of {func!r} to tell its arguments "
            f"apart, and inspect.signature cannot read it: {exc}"
        ) from exc
    empty = inspect.Parameter.empty
    return tuple(
        (p.name, int(p.kind), p.default is not empty, None if p.default is empty else p.default)
        for p in signature.parameters.values()
    )


def _wrap(func: Any, options: _Options) -> _fastcache.CachedFunction:
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
        _parameters(func),
        _function_identity(func),
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
        options = _Options(
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


def in_streamlit_script_run() -> bool:
    """True inside a Streamlit script run (never imports Streamlit itself)."""
    if "streamlit" not in sys.modules:
        return False
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
    except ImportError:
        return False
    return get_script_run_ctx(suppress_warning=True) is not None
