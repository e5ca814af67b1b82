"""fastcache: a native, drop-in replacement for Streamlit's ``st.cache_resource``.

``@fastcache.cache_resource`` keeps one shared instance of a resource (a database
connection, a model, a client) per set of arguments, across threads and reruns, with
Streamlit's parameters and behaviour — in a Streamlit app, a plain Python program or a
test suite.
"""

from fastcache._fastcache import (
    BadTTLStringError,
    BoundCachedMethod,
    CachedFunction,
    ReentrantCallError,
    SessionScopeError,
    UnhashableParamError,
    UserHashError,
    refresh_logging,
)
from fastcache._options import CacheInfo, cache_resource

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
