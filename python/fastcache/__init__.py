"""fastcache: a native, drop-in replacement for Streamlit's ``st.cache_resource``.

``@fastcache.cache_resource`` keeps one shared instance of a resource (a database
connection, a model, a client) per set of arguments, across threads and reruns, with
Streamlit's parameters and behaviour — in a Streamlit app, a plain Python program or a
test suite.
"""

import atexit as _atexit
import os as _os

from fastcache import _fastcache, _logging
from fastcache._decorator import CacheInfo, cache_resource
from fastcache._fastcache import (
    BadTTLStringError,
    BoundCachedMethod,
    CachedFunction,
    ReentrantCallError,
    SessionScopeError,
    UnhashableParamError,
    UserHashError,
)
from fastcache._logging import refresh_logging

# Debug records follow the logging configuration as it changes (see fastcache._logging).
_logging.install()

# Stop the expiry reaper and refresh workers before the interpreter finalizes.
_atexit.register(_fastcache.shutdown)
# Keep every cache usable in a forked child (even one forked mid-computation).
if hasattr(_os, "register_at_fork"):
    _os.register_at_fork(after_in_child=_fastcache.after_fork_in_child)

__all__ = [
    "BadTTLStringError",
    "BoundCachedMethod",
    "CacheInfo",
    "CachedFunction",
    "ReentrantCallError",
    "SessionScopeError",
    "UnhashableParamError",
    "UserHashError",
    "cache_resource",
    "refresh_logging",
]
