"""fastcache inside a running Streamlit app.

Every use of Streamlit's internals is in this module, and only here. fastcache never
imports Streamlit (``import fastcache`` and importing this module leave it alone); the
native side calls in here only once the app has imported it:

- on a miss, ``_begin_miss`` shows Streamlit's spinner and records the elements the
  function writes, inside a script run only;
- on a hit whose entry recorded elements, ``_replay`` replays them;
- on every call of a ``scope="session"`` function, ``_session_id`` names the browser
  session (or raises Streamlit's error outside a script thread);
- ``_engage`` (at the first of these, or at a decoration once Streamlit is imported) makes
  Streamlit's own clears (``st.cache_resource.clear()``, the menu's "Clear cache", a
  browser session ending) clear fastcache's caches too, and makes fastcache's argument
  errors render in the page as Streamlit's own do.

These internals were tested with the Streamlit versions in ``TESTED_VERSIONS``. With any
other version fastcache warns once and caches as in a plain Python program (no spinner,
replay, in-page error formatting or Streamlit-driven clears).

``install()`` / ``uninstall()`` swap ``st.cache_resource`` for fastcache's decorator.
"""

from __future__ import annotations

import re
import sys
import threading
import warnings
from collections.abc import Callable
from typing import Any

from fastcache import _fastcache
from fastcache._decorator import CacheResourceAPI

__all__ = ["TESTED_VERSIONS", "install", "uninstall"]

TESTED_VERSIONS = ((1, 67), (1, 68))
"""Streamlit versions these hooks were tested on: from the first (inclusive) to the second
(exclusive), as (major, minor)."""

SESSION_SCOPE_MESSAGE = (
    "A session-scoped cache was accessed outside of the app execution thread. Make sure "
    "all session-scoped caches are read during rendering and not read in background "
    "threads."
)

_lock = threading.Lock()
# None: not decided yet (Streamlit not imported); True: hooks on; False: version outside
# the tested range (warned once), plain caching.
_engaged: bool | None = None
# The in-app form of the session error, once engaged.
_session_error: type[BaseException] = _fastcache.SessionScopeError


def streamlit_version() -> tuple[int, int] | None:
    """``(major, minor)`` of the imported Streamlit, or None."""
    st = sys.modules.get("streamlit")
    match = re.match(r"(\d+)\.(\d+)", str(getattr(st, "__version__", "")))
    return (int(match.group(1)), int(match.group(2))) if match else None


def _engage() -> bool:
    """Once Streamlit is imported: turns the hooks on (tested version) or warns once (not).
    Returns whether they are on."""
    global _engaged
    if _engaged is not None:
        return _engaged
    with _lock:
        if _engaged is not None:
            return _engaged
        if "streamlit" not in sys.modules:
            return False
        version = streamlit_version()
        low, high = TESTED_VERSIONS
        if version is None or not low <= version < high:
            _engaged = False
            found = ".".join(map(str, version)) if version else "unknown"
            warnings.warn(
                f"fastcache's Streamlit integration was tested with Streamlit "
                f"{low[0]}.{low[1]}.x and this app runs {found}: fastcache caches as "
                "usual but shows no spinner, replays no elements written inside cached "
                "functions, formats no errors for the page and is not cleared by "
                "Streamlit's own clears (call fastcache.cache_resource.clear()); "
                "session-scoped values are released only by clears.",
                RuntimeWarning,
                stacklevel=2,
            )
            return False
        _use_app_errors()
        _hook_streamlit_clears()
        _engaged = True
        return True


def _in_app_error(base: type[BaseException], error_id: str | None = None) -> type[Any]:
    """A subclass of ``base`` that Streamlit also takes for its own API error, so an
    uncaught one is shown in the page with its title and a Markdown body."""
    from streamlit.errors import StreamlitAPIException

    return type(
        base.__name__,
        (base, StreamlitAPIException),
        {
            "__module__": base.__module__,  # the page's title: fastcache.<name>
            "__qualname__": base.__qualname__,
            "__doc__": base.__doc__,
            # base.__init__ comes first in the MRO, so Streamlit's never sets this; its
            # metrics read it from every StreamlitAPIException.
            "error_id": error_id,
            "__repr__": BaseException.__repr__,
        },
    )


def _use_app_errors() -> None:
    global _session_error
    _fastcache.use_app_error_types(
        _in_app_error(_fastcache.UnhashableParamError),
        _in_app_error(_fastcache.UserHashError),
    )
    _session_error = _in_app_error(
        _fastcache.SessionScopeError, "session-scoped-cache-outside-app-thread"
    )


def _hook_streamlit_clears() -> None:
    """Every Streamlit path that releases cached resources (``st.cache_resource.clear()``,
    the menu's "Clear cache", a session's end on disconnect or shutdown) ends in one of two
    methods of its one resource-cache registry; fastcache clears the same scope right after
    Streamlit has, with no Streamlit lock held."""
    from streamlit.runtime.caching import cache_resource_api

    caches = cache_resource_api._resource_caches
    streamlit_clear_all = type(caches).clear_all
    streamlit_clear_session = type(caches).clear_session

    def clear_all() -> None:
        try:
            streamlit_clear_all(caches)
        finally:
            _fastcache.clear_all()

    def clear_session(session_id: str) -> None:
        try:
            streamlit_clear_session(caches, session_id)
        finally:
            _fastcache.clear_session(session_id)

    # Instance attributes shadow the class's methods; Streamlit looks them up per call.
    caches.clear_all = clear_all  # type: ignore[method-assign]
    caches.clear_session = clear_session  # type: ignore[method-assign]


# Streamlit's `get_script_run_ctx`, once found: every miss (and every session-scoped call)
# asks for the context, and an import statement costs several times the lookup itself.
_get_script_run_ctx: Callable[..., Any] | None = None


def _script_run_ctx() -> Any:
    """The current script run's context, or None (outside a run, or no Streamlit)."""
    global _get_script_run_ctx
    get = _get_script_run_ctx
    if get is None:
        if "streamlit" not in sys.modules:
            return None
        try:
            from streamlit.runtime.scriptrunner_utils.script_run_context import (
                get_script_run_ctx,
            )
        except ImportError:
            return None
        _get_script_run_ctx = get = get_script_run_ctx
    return get(suppress_warning=True)


def _script_run_ctx_attribute() -> str | None:
    """The name of the thread attribute in which Streamlit keeps a script run's context,
    read once by the native miss path so that a miss on a thread without one does not call
    `_begin_miss`; None (always call it) when the hooks are off or the name is not found."""
    if not _engage():
        return None
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import (
            SCRIPT_RUN_CONTEXT_ATTR_NAME,
        )
    except ImportError:
        return None
    name: object = SCRIPT_RUN_CONTEXT_ATTR_NAME
    return name if isinstance(name, str) else None


def _session_id() -> str:
    """The browser session of this script run; Streamlit's error outside one."""
    _engage()
    ctx = _script_run_ctx()
    if ctx is None:
        raise _session_error(SESSION_SCOPE_MESSAGE)
    return str(ctx.session_id)


class _Miss:
    """One miss inside a script run: Streamlit's spinner (not for a cached function called
    by another, as Streamlit), the recording of the elements the function writes, and,
    while it waits for another caller's computation, the run's stop and rerun requests."""

    __slots__ = ("_background", "_func", "_spinner", "_yield_check")

    def __init__(
        self, func: Callable[..., Any], text: str | None, show_time: bool, background: bool
    ) -> None:
        from streamlit.delta_generator_singletons import get_dg_singleton_instance
        from streamlit.runtime.scriptrunner_utils.script_run_context import (
            get_run_yield_check,
            in_cached_function,
        )

        self._func = func
        self._background = background
        self._spinner: Any = None
        nested = in_cached_function.get()
        # Stopping inside a cached function would discard its outer computation: only an
        # outermost call lets a stop or rerun end its wait (as Streamlit's waits do).
        self._yield_check = None if nested else get_run_yield_check()
        if text is not None and not nested:
            spinner = get_dg_singleton_instance().main_dg.spinner(
                text, _cache=True, show_time=show_time
            )
            spinner.__enter__()
            self._spinner = spinner

    def compute(
        self, func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any] | None
    ) -> tuple[Any, Any]:
        """The function's value and the record of its elements (None if it wrote none)."""
        from streamlit.runtime.caching import CACHE_RESOURCE_MESSAGE_REPLAY_CTX as recorder

        with recorder.calling_cached_function(func):
            value = func(*args, **(kwargs or {}))
        return value, self._record(recorder._most_recent_messages)

    async def compute_async(self, invoke: Callable[[], Any]) -> tuple[Any, Any]:
        """`compute` for an `async def`: awaits the coroutine `invoke()` returns."""
        from streamlit.runtime.caching import CACHE_RESOURCE_MESSAGE_REPLAY_CTX as recorder

        with recorder.calling_cached_function(self._func):
            value = await invoke()
        return value, self._record(recorder._most_recent_messages)

    def _record(self, messages: list[Any]) -> Any:
        import streamlit as st
        from streamlit.runtime.caching.cached_message_replay import CachedResult

        if not messages:
            return None
        if self._background:
            _warn_background_elements(self._func)
            return None
        # The value stays out of the record: the cache entry holds it, once.
        return CachedResult(None, messages, st._main._id, st.sidebar._id)

    def waiting(self) -> None:
        """Between two slices of a wait for another caller's computation: raises the
        script run's stop or rerun request, if there is one."""
        if self._yield_check is not None:
            self._yield_check()

    def close(self) -> None:
        spinner, self._spinner = self._spinner, None
        if spinner is not None:
            spinner.__exit__(None, None, None)


def _warn_background_elements(func: Callable[..., Any]) -> None:
    """As Streamlit: with background refresh, elements are shown live but never replayed."""
    import logging

    import streamlit as st
    from streamlit.runtime.caching.cache_errors import CachedStFunctionInBackgroundModeWarning
    from streamlit.runtime.caching.cache_type import CacheType

    warning = CachedStFunctionInBackgroundModeWarning(CacheType.RESOURCE, func)
    logging.getLogger("fastcache").warning("%s", warning)
    st.exception(warning)


def _begin_miss(
    func: Callable[..., Any], spinner: str | None, show_time: bool, background: bool
) -> _Miss | None:
    if not _engage() or _script_run_ctx() is None:
        return None
    return _Miss(func, spinner, show_time, background)


def _replay(record: Any, func: Callable[..., Any]) -> None:
    """Replays a hit's recorded elements into the current script run (none outside one)."""
    if _script_run_ctx() is None:
        return
    from streamlit.runtime.caching.cache_type import CacheType
    from streamlit.runtime.caching.cached_message_replay import replay_cached_messages

    replay_cached_messages(record, CacheType.RESOURCE, func)


class _InstalledCacheResource(CacheResourceAPI):
    """``st.cache_resource`` after ``install()``: fastcache's decorator, whose ``clear()``
    clears Streamlit's own resource caches (``st.connection`` uses them) and every fastcache
    cache."""

    @staticmethod
    def clear() -> None:
        from streamlit.runtime.caching import cache_resource as streamlit_cache_resource

        streamlit_cache_resource.clear()
        _fastcache.clear_all()  # already done by the hook when engaged; then a no-op


_installed = _InstalledCacheResource()
_replaced: list[Any] = []


def install() -> None:
    """Makes ``st.cache_resource`` fastcache's decorator: every ``@st.cache_resource`` in
    the app (and in modules it imports afterwards) becomes a fastcache cache. Call it at
    the top of the app; calling it again (every rerun does) changes nothing."""
    import streamlit

    _engage()
    with _lock:
        if streamlit.cache_resource is not _installed:
            _replaced.append(streamlit.cache_resource)
            streamlit.cache_resource = _installed  # type: ignore[assignment]


def uninstall() -> None:
    """Gives ``st.cache_resource`` back to Streamlit. Functions already decorated keep
    the cache they were decorated with."""
    if "streamlit" not in sys.modules:
        return
    import streamlit

    with _lock:
        if streamlit.cache_resource is _installed and _replaced:
            streamlit.cache_resource = _replaced.pop()
        _replaced.clear()
