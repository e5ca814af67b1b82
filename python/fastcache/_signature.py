"""The cached function's signature in the form the native binder takes, read once at
decoration."""

from __future__ import annotations

import inspect
import types
from typing import Any

_POSITIONAL_ONLY, _POSITIONAL_OR_KEYWORD, _VAR_POSITIONAL, _KEYWORD_ONLY, _VAR_KEYWORD = range(5)

Parameters = tuple[tuple[str, int, bool, Any], ...]


def _parameters_from_code(func: types.FunctionType) -> Parameters:
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


def _from_signature(signature: inspect.Signature) -> Parameters:
    empty = inspect.Parameter.empty
    return tuple(
        (p.name, int(p.kind), p.default is not empty, None if p.default is empty else p.default)
        for p in signature.parameters.values()
    )


def parameters(func: Any) -> tuple[Parameters, Parameters | None]:
    """The signature as ``(name, kind, has_default, default)`` tuples, for native binding,
    and — for a wrapper (``__wrapped__``) whose own signature differs from the one it
    shows — its own signature too, so that a call using a parameter the wrapper adds (a
    ``functools.wraps`` decorator taking ``timeout=``) is still keyed, not run uncached."""
    plain = type(func) is types.FunctionType
    if plain and not hasattr(func, "__wrapped__") and not hasattr(func, "__signature__"):
        return _parameters_from_code(func), None
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"fastcache.cache_resource needs the signature of {func!r} to tell its arguments "
            f"apart, and inspect.signature cannot read it: {exc}"
        ) from exc
    shown = _from_signature(signature)
    if not hasattr(func, "__wrapped__"):
        return shown, None
    try:
        own = _from_signature(inspect.signature(func, follow_wrapped=False))
    except (TypeError, ValueError):
        return shown, None
    return shown, (None if own == shown else own)
