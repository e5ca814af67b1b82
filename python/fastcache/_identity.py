"""A cached callable's identity: what finds its cache again when its ``def`` is executed
anew (every Streamlit rerun does), and tells two different callables apart.

A plain function is its module, qualname and source (decorator lines included), plus its
code object (two lambdas on one line share their source line, not their code), plus what
varies between functions made from one ``def``: the values its closure captured and its
defaults. Those are compared by content wherever they have content; a captured value with
none (an open connection) counts by its class, so a rerun that captures a fresh one still
finds the cache. A ``functools.partial`` is its function's identity plus its arguments; a
bound method, a built-in bound method or a callable instance is its function (or class)
plus the instance's content — and a decoration-time ``TypeError`` when the instance has no
content to compare. A wrapper object (``__wrapped__``: ``functools.lru_cache``, a decorator
class) is the function it wraps plus its own state, counted like a closure's.

What a rerun cannot change (source, code) is remembered per code object; what it can (the
captured values, the defaults) is encoded natively on every decoration.
"""

from __future__ import annotations

import functools
import inspect
import types
import weakref
from typing import Any

from fastcache import _fastcache

# Per code object: a Streamlit rerun re-executes the same compiled script, so the same code
# object comes back and its source need not be read again.
# A code object can be executed under another module name or given another qualname (and
# `getsource` follows a `__wrapped__` attribute), so those are checked before reuse.
_identity_by_code: dict[int, tuple[weakref.ref[types.CodeType], str, str, str]] = {}

_BUILTIN_CALLABLES = (types.BuiltinFunctionType, types.BuiltinMethodType)


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


def _code_identity(func: types.FunctionType) -> str:
    """Module, qualname, source and code of a plain function, remembered per code object
    (reused only under the same module and qualname)."""
    code = func.__code__
    module, qualname = str(func.__module__), func.__qualname__
    reusable = not hasattr(func, "__wrapped__")
    remembered = _identity_by_code.get(id(code)) if reusable else None
    if (
        remembered is not None
        and remembered[0]() is code
        and remembered[1] == module
        and remembered[2] == qualname
    ):
        return remembered[3]
    # The source alone is not enough: lambdas on one line share it, and so does a
    # `functools.wraps` wrapper with the function it wraps (`getsource` follows
    # `__wrapped__`). The code object tells them apart.
    identity = "\x00".join(
        (
            module,
            qualname,
            _source_or_fingerprint(func),
            _fastcache.identity_bytes(code).hex(),
        )
    )
    if not reusable:
        return identity
    key = id(code)

    def forget(_ref: weakref.ref[types.CodeType], key: int = key) -> None:
        _identity_by_code.pop(key, None)

    _identity_by_code[key] = (weakref.ref(code, forget), module, qualname, identity)
    return identity


def _function_identity(func: types.FunctionType) -> str:
    identity = _code_identity(func)
    closure, defaults, kwdefaults = func.__closure__, func.__defaults__, func.__kwdefaults__
    if closure is None and defaults is None and not kwdefaults:
        return identity
    varying = _fastcache.identity_bytes((closure, defaults, kwdefaults))
    return f"{identity}\x00{varying.hex()}"


def _content(value: Any, func: Any, what: str) -> str:
    """``value`` by content, for the identity of ``func``; ``what`` names ``value`` in the
    error raised when it has no content to compare."""
    try:
        return _fastcache.content_bytes(value).hex()
    except TypeError as exc:
        part = exc.args[0] if exc.args else type(value).__qualname__
        raise TypeError(
            f"fastcache.cache_resource cannot tell {func!r} apart from other callables of its "
            f"kind: {what} holds a `{part}`, which has no content to compare, so two such "
            "callables would share one cache. Decorate a plain function that takes what "
            f"differs as arguments, or give `{part}` value semantics (make it a @dataclass, "
            "or define __hash__ and __eq__)."
        ) from None


# Wrappers of wrappers followed at most this deep (a `__wrapped__` chain could loop).
_MAX_WRAPPER_DEPTH = 100


def function_identity(func: Any, _depth: int = 0) -> str:
    """The identity of any callable ``cache_resource`` accepts (see the module comment)."""
    if type(func) is types.FunctionType:
        return _function_identity(func)
    if isinstance(func, functools.partial):
        arguments = _content((func.args, func.keywords), func, "its arguments")
        return f"partial\x00{function_identity(func.func)}\x00{arguments}"
    if isinstance(func, types.MethodType):
        instance = _content(func.__self__, func, "the instance it is bound to")
        return f"method\x00{function_identity(func.__func__)}\x00{instance}"
    if isinstance(func, _BUILTIN_CALLABLES):
        owner = func.__self__
        if owner is None or isinstance(owner, types.ModuleType):
            owner_identity = getattr(owner, "__name__", "")
        else:
            owner_identity = _content(owner, func, "the object it is bound to")
        qualname = getattr(func, "__qualname__", func.__name__)
        return f"builtin\x00{func.__module__}\x00{qualname}\x00{owner_identity}"
    if isinstance(func, type):
        return f"class\x00{_fastcache.identity_bytes(func).hex()}"
    if isinstance(func, (staticmethod, classmethod)):
        return f"{type(func).__name__}\x00{function_identity(func.__func__)}"
    cls = type(func)
    wrapped = getattr(func, "__wrapped__", None)
    if wrapped is not None and wrapped is not func and _depth < _MAX_WRAPPER_DEPTH:
        # A wrapper object (functools.lru_cache, a decorator class): the function it wraps,
        # and its own state — by content where it has content, by class where not, as a
        # closure's captured values are.
        try:
            state = _fastcache.content_bytes(func).hex()
        except TypeError:
            state = _fastcache.identity_bytes(getattr(func, "__dict__", None)).hex()
        inner = function_identity(wrapped, _depth + 1)
        return f"wrapper\x00{_fastcache.identity_bytes(cls).hex()}\x00{inner}\x00{state}"
    # A callable instance: its class (whose fingerprint covers `__call__`) and its content.
    content = _content(func, func, "the instance")
    return f"instance\x00{_fastcache.identity_bytes(cls).hex()}\x00{content}"
