"""Type stubs for fastcache's native module (checked against it by tests/test_stubs.py)."""

from collections.abc import Callable, Iterable, Mapping
from typing import Any, final

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
    "set_debug_logging",
    "shutdown",
    "ttl_seconds",
]

class UnhashableParamError(TypeError): ...
class UserHashError(Exception): ...
class BadTTLStringError(ValueError): ...
class ReentrantCallError(RecursionError): ...
class SessionScopeError(RuntimeError): ...

@final
class CachedFunction:
    """What ``@fastcache.cache_resource`` returns."""

    __wrapped__: Callable[..., Any]
    def __new__(
        cls,
        func: Callable[..., Any],
        params: Iterable[tuple[str, int, bool, Any]],
        identity: str,
        name: str,
        qualname: str,
        ttl_secs: float,
        max_entries: int | None,
        background_refresh: bool,
        validate: Callable[[Any], Any] | None,
        on_release: Callable[[Any], Any] | None,
        hash_funcs: Mapping[type | str, Callable[[Any], Any]] | None,
        session_scoped: bool,
        is_async: bool,
        parameters: dict[str, Any],
    ) -> CachedFunction: ...
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def __get__(self, instance: object, owner: type | None = None, /) -> Any: ...
    def clear(self, *args: Any, **kwargs: Any) -> None:
        """No arguments: every entry of this function. Arguments: the entry they select."""
    def cache_clear(self, *args: Any, **kwargs: Any) -> None: ...
    def cache_info(self) -> CacheInfo: ...
    def cache_parameters(self) -> dict[str, Any]: ...

@final
class BoundCachedMethod:
    """A cached function looked up on an instance."""

    __self__: object
    __func__: CachedFunction
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def clear(self, *args: Any, **kwargs: Any) -> None: ...
    def cache_clear(self, *args: Any, **kwargs: Any) -> None: ...
    def cache_info(self) -> CacheInfo: ...
    def cache_parameters(self) -> dict[str, Any]: ...
    def __getattr__(self, name: str) -> Any: ...

@final
class AsyncCall:
    def claim(self, task: object | None) -> tuple[int, Any]: ...
    def invoke(self) -> Any: ...

@final
class AsyncRefresh:
    def begin(self, task: object | None) -> bool: ...
    def complete(self, value: Any) -> None: ...
    def fail(self, error: BaseException) -> None: ...
    def abandon(self) -> None: ...

@final
class FlightWaiter:
    def add_done_callback(self, callback: Callable[[], object]) -> None: ...

@final
class PendingEntry:
    def complete(self, value: Any) -> Any: ...
    def abandon(self) -> None: ...

def ttl_seconds(value: object) -> float:
    """A ``ttl`` argument in seconds (``inf`` for None)."""

def clear_all() -> None: ...
def set_debug_logging(enabled: bool) -> None:
    """Whether debug records are built (set by ``fastcache._logging``)."""

def after_fork_in_child() -> None: ...
def shutdown() -> None: ...
