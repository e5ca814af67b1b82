"""Type stubs for fastcache's native module (checked against it by tests/test_stubs.py).

``CachedFunction[P, R]`` is what ``@fastcache.cache_resource`` returns for a function
``Callable[P, R]``: calling it takes ``P`` and returns ``R`` (for an ``async def``, ``R``
is the coroutine, so awaiting it gives the function's awaited type). Looked up through an
instance it is a ``BoundCachedMethod`` without the first parameter, as a method binds.
"""

from collections.abc import Callable, Iterable, Mapping
from typing import Any, Concatenate, Generic, ParamSpec, TypeVar, final, overload

from fastcache._decorator import CacheInfo

__all__ = [
    "AsyncCall",
    "AsyncRefresh",
    "BadTTLStringError",
    "BoundCachedMethod",
    "CachedFunction",
    "FlightWaiter",
    "PendingEntry",
    "ReentrantCallError",
    "SessionScopeError",
    "UnhashableParamError",
    "UserHashError",
    "after_fork_in_child",
    "clear_all",
    "clear_session",
    "content_bytes",
    "identity_bytes",
    "interned_count",
    "set_debug_logging",
    "shutdown",
    "ttl_seconds",
    "use_app_error_types",
]

_P = ParamSpec("_P")
_R_co = TypeVar("_R_co", covariant=True)
# For `__get__`: the parameters after the first, the first one's type, the result.
_Rest = ParamSpec("_Rest")
_First = TypeVar("_First")
_Result = TypeVar("_Result")

class UnhashableParamError(TypeError):
    """An argument fastcache cannot key by (an instance of a plain class, a generator, a
    lock...). The message names the argument, its type, the function and the ways out."""

class UserHashError(Exception):
    """A function of ``hash_funcs`` raised; the original exception is the ``__cause__``."""

class BadTTLStringError(ValueError):
    """A ``ttl`` string that is not a duration such as ``"1h"`` or ``"2 days"``."""

class ReentrantCallError(RecursionError):
    """A call would wait for its own computation, directly (the function, its ``validate``
    or a task it started asks for the key being computed) or through a cycle of threads or
    tasks each waiting for the next; raised instead of hanging."""

class SessionScopeError(RuntimeError):
    """A ``scope="session"`` cache used outside a Streamlit script run."""

@final
class CachedFunction(Generic[_P, _R_co]):
    """What ``@fastcache.cache_resource`` returns: the function, cached."""

    __wrapped__: Callable[_P, _R_co]
    __name__: str
    __qualname__: str
    def __new__(
        cls,
        func: Callable[_P, _R_co],
        params: tuple[
            Iterable[tuple[str, int, bool, Any]], Iterable[tuple[str, int, bool, Any]] | None
        ],
        identity: str,
        name: str,
        qualname: str,
        ttl_secs: float,
        max_entries: int | None,
        background_refresh: bool,
        validate: Callable[[Any], object] | None,
        on_release: Callable[[Any], object] | None,
        hash_funcs: Mapping[Any, Callable[[Any], object]] | None,
        session_scoped: bool,
        is_async: bool,
        parameters: dict[str, Any],
        spinner: tuple[str, str] | None = None,
        show_time: bool = False,
    ) -> CachedFunction[_P, _R_co]: ...
    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R_co: ...
    # Through the class: the function itself (a plain method) or bound to the class (under
    # `@classmethod`); through an instance: bound to it (a method, or under `@classmethod`)
    # or itself (under `@staticmethod`, whose first parameter does not take the instance).
    @overload
    def __get__(
        self: CachedFunction[Concatenate[_First, _Rest], _Result],
        instance: None,
        owner: type[_First],
        /,
    ) -> CachedFunction[Concatenate[_First, _Rest], _Result]: ...
    @overload
    def __get__(
        self: CachedFunction[Concatenate[type[_First], _Rest], _Result],
        instance: None,
        owner: type[_First],
        /,
    ) -> BoundCachedMethod[_Rest, _Result]: ...
    @overload
    def __get__(
        self, instance: None, owner: type[Any] | None = None, /
    ) -> CachedFunction[_P, _R_co]: ...
    @overload
    def __get__(
        self: CachedFunction[Concatenate[type[_First], _Rest], _Result],
        instance: _First,
        owner: type[Any] | None = None,
        /,
    ) -> BoundCachedMethod[_Rest, _Result]: ...
    @overload
    def __get__(
        self: CachedFunction[Concatenate[_First, _Rest], _Result],
        instance: _First,
        owner: type[Any] | None = None,
        /,
    ) -> BoundCachedMethod[_Rest, _Result]: ...
    @overload
    def __get__(
        self, instance: object, owner: type[Any] | None = None, /
    ) -> CachedFunction[_P, _R_co]: ...
    @overload
    def clear(self) -> None: ...
    @overload
    def clear(self, *args: _P.args, **kwargs: _P.kwargs) -> None: ...
    @overload
    def cache_clear(self) -> None: ...
    @overload
    def cache_clear(self, *args: _P.args, **kwargs: _P.kwargs) -> None: ...
    def cache_info(self) -> CacheInfo: ...
    def cache_parameters(self) -> dict[str, Any]: ...

@final
class BoundCachedMethod(Generic[_P, _R_co]):
    """A cached function looked up on an instance: calls pass the instance first."""

    __self__: object
    __func__: CachedFunction[..., _R_co]
    __wrapped__: Callable[..., _R_co]
    __name__: str
    __qualname__: str
    def __call__(self, *args: _P.args, **kwargs: _P.kwargs) -> _R_co: ...
    @overload
    def clear(self) -> None: ...
    @overload
    def clear(self, *args: _P.args, **kwargs: _P.kwargs) -> None: ...
    @overload
    def cache_clear(self) -> None: ...
    @overload
    def cache_clear(self, *args: _P.args, **kwargs: _P.kwargs) -> None: ...
    def cache_info(self) -> CacheInfo: ...
    def cache_parameters(self) -> dict[str, Any]: ...

@final
class AsyncCall:
    def claim(self, task: object | None, inside: tuple[int, ...]) -> tuple[int, Any]: ...
    def begin_miss(self) -> Any: ...
    def invoke(self) -> Any: ...

@final
class AsyncRefresh:
    def begin(self, task: object | None) -> int | None: ...
    def complete(self, value: Any) -> None: ...
    def fail(self, error: BaseException) -> None: ...
    def abandon(self) -> None: ...

@final
class FlightWaiter:
    @property
    def may_stall(self) -> bool: ...
    def add_done_callback(self, callback: Callable[[], object]) -> None: ...
    def take_over_if_stalled(self) -> bool: ...
    def done(self) -> None: ...

@final
class PendingEntry:
    @property
    def flight_id(self) -> int | None: ...
    def complete(self, value: Any, replay: Any = None) -> Any: ...
    def abandon(self) -> None: ...

def ttl_seconds(value: object) -> float:
    """A ``ttl`` argument in seconds (``inf`` for None)."""

def clear_all() -> None: ...
def set_debug_logging(enabled: bool) -> None:
    """Whether debug records are built (set by ``fastcache._logging``)."""

def clear_session(session_id: str) -> None:
    """Releases one browser session's entries in every session-scoped cache."""

def use_app_error_types(
    unhashable: type[UnhashableParamError], user_hash: type[UserHashError]
) -> None:
    """Raise these subclasses from now on (fastcache.streamlit, once Streamlit is imported)."""

def identity_bytes(value: object) -> bytes:
    """``value`` encoded for a function identity (by class where it has no content)."""

def content_bytes(value: object) -> bytes:
    """``value`` encoded by content; ``TypeError`` naming the part that has none."""

def interned_count() -> int:
    """How many values keyed by their own hash and equality are remembered now."""

def after_fork_in_child() -> None: ...
def shutdown() -> None: ...
