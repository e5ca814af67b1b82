"""The peers: one adapter per library, each configured for what cache_resource promises
(thread safe, the cached object returned as is, one computation per missing key).
benches/README.md lists every peer's configuration and why."""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import logging
import platform
import sys
import threading
from collections.abc import Callable
from typing import Any


class NotExpressible(Exception):
    """The peer has no way to express the case: reported as n/a, never approximated."""


class Peer:
    name = ""
    label = ""
    distribution = ""  # for the version in the report
    module = ""
    # Case 8: the decorator line a user writes, evaluated in a namespace holding the modules.
    decorator_line = ""

    def __init__(self) -> None:
        self.mod: Any = None
        self.missing: str | None = None

    def load(self) -> None:
        try:
            self.mod = importlib.import_module(self.module)
        except ImportError as exc:
            self.missing = f"not installed ({exc})"

    def version(self) -> str:
        try:
            return importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            return "?"

    def decorate(self, func: Callable, *, ttl: float | None = None, max_entries: int | None = None):
        raise NotImplementedError

    def rerun_namespace(self) -> dict[str, Any]:
        return {}


class FastcachePeer(Peer):
    name = "fastcache"
    label = "fastcache"
    distribution = "fastcache-rs"
    module = "fastcache"
    decorator_line = "@fastcache.cache_resource(show_spinner=False)"

    def decorate(self, func, *, ttl=None, max_entries=None):
        return self.mod.cache_resource(func, ttl=ttl, max_entries=max_entries, show_spinner=False)

    def rerun_namespace(self):
        return {"fastcache": self.mod}


class LruCachePeer(Peer):
    name = "lru_cache"
    label = "functools.lru_cache"
    distribution = ""
    module = "functools"
    decorator_line = "@functools.lru_cache(maxsize=None)"

    def version(self):
        return platform.python_version()

    def decorate(self, func, *, ttl=None, max_entries=None):
        if ttl is not None:
            raise NotExpressible("lru_cache has no ttl")
        return functools.lru_cache(maxsize=max_entries)(func)

    def rerun_namespace(self):
        return {"functools": functools}


class CacheboxPeer(Peer):
    name = "cachebox"
    label = "cachebox"
    distribution = "cachebox"
    module = "cachebox"
    decorator_line = "@cachebox.cached(cachebox.LRUCache(0), postprocess=None)"

    def load(self):
        super().load()
        if self.mod is not None:
            import inspect

            # postprocess=None returns the cached object itself (its fastest setting; the
            # default copies dicts, lists and sets on every hit). Older versions lack it.
            params = inspect.signature(self.mod.cached).parameters
            self.extra = {"postprocess": None} if "postprocess" in params else {}
            if not self.extra:
                self.decorator_line = "@cachebox.cached(cachebox.LRUCache(0))"

    def decorate(self, func, *, ttl=None, max_entries=None):
        size = max_entries or 0  # 0: unbounded
        if ttl is None:
            cache = self.mod.LRUCache(size)
        else:
            cache = self.mod.TTLCache(size, ttl)
        return self.mod.cached(cache, **self.extra)(func)

    def rerun_namespace(self):
        return {"cachebox": self.mod}


class MokaPeer(Peer):
    name = "moka-py"
    label = "moka-py"
    distribution = "moka-py"
    module = "moka_py"
    decorator_line = "@moka_py.cached(maxsize=1024, wait_concurrent=True, policy='lru')"

    def decorate(self, func, *, ttl=None, max_entries=None):
        # wait_concurrent: one computation per missing key; policy "lru": max_entries is an
        # LRU bound, as in cache_resource (moka's default TinyLFU may refuse new keys).
        return self.mod.cached(
            maxsize=max_entries or 1 << 30, ttl=ttl, wait_concurrent=True, policy="lru"
        )(func)

    def rerun_namespace(self):
        return {"moka_py": self.mod}


class CachetoolsPeer(Peer):
    name = "cachetools"
    label = "cachetools"
    distribution = "cachetools"
    module = "cachetools"
    decorator_line = (
        "@cachetools.cached(cachetools.LRUCache(1024), "
        "condition=threading.Condition(threading.Lock()))"
    )

    def decorate(self, func, *, ttl=None, max_entries=None):
        size = max_entries or sys.maxsize
        if ttl is None:
            cache = self.mod.LRUCache(size)
        else:
            cache = self.mod.TTLCache(size, ttl)
        # A Condition is cachetools' lock with stampede protection (one computation per key).
        condition = threading.Condition(threading.Lock())
        return self.mod.cached(cache, condition=condition)(func)

    def rerun_namespace(self):
        return {"cachetools": self.mod, "threading": threading}


class StreamlitPeer(Peer):
    name = "streamlit"
    label = "st.cache_resource"
    distribution = "streamlit"
    module = "streamlit"
    decorator_line = "@st.cache_resource(show_spinner=False)"

    def load(self):
        super().load()
        if self.mod is None:
            return
        # Bare mode (no `streamlit run`): silence its "missing ScriptRunContext" and
        # "No runtime found" warnings. Its loggers set their own levels, so both the
        # parent and Streamlit's own switch are needed.
        from streamlit import logger as st_logger

        st_logger.set_log_level("error")
        logging.getLogger("streamlit").setLevel(logging.ERROR)

    def decorate(self, func, *, ttl=None, max_entries=None):
        return self.mod.cache_resource(func, ttl=ttl, max_entries=max_entries, show_spinner=False)

    def rerun_namespace(self):
        return {"st": self.mod}


PEER_TYPES = [
    FastcachePeer,
    LruCachePeer,
    CacheboxPeer,
    MokaPeer,
    CachetoolsPeer,
    StreamlitPeer,
]
BASELINE = "lru_cache"
