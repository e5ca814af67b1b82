"""A cached function's identity: what finds its cache again when its ``def`` is executed
anew (every Streamlit rerun does), and tells two different functions apart."""

from __future__ import annotations

import inspect
import types
import weakref
from typing import Any

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


def function_identity(func: Any) -> str:
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
