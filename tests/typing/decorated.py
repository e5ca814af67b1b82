"""What a type checker sees of cached functions: checked by mypy --strict and pyright
(strict) in tests/test_typing.py, and run as a plain module there too, so the runtime
agrees with every type asserted here."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Callable, Coroutine
from fractions import Fraction
from typing import Any, assert_type

import fastcache
import numpy
from fastcache import BoundCachedMethod, CachedFunction, CacheInfo, cache_resource


class Connection:
    def __init__(self, url: str) -> None:
        self.url = url

    def ping(self) -> bool:
        return True

    def close(self) -> None:
        pass


# --- every decorator form keeps the parameters and the return type ----------------------


@cache_resource
def bare(url: str, timeout: float = 5.0) -> Connection:
    return Connection(url)


@cache_resource()
def called(url: str) -> Connection:
    return Connection(url)


@cache_resource(
    ttl="1h",
    max_entries=8,
    show_spinner="Connecting...",
    show_time=True,
    validate=lambda conn: conn.ping(),
    hash_funcs={Connection: lambda c: c.url, "decimal.Decimal": str},
    on_release=lambda conn: conn.close(),
    scope="global",
    refresh_mode="foreground",
)
def configured(url: str, *, _pool: object = None) -> Connection:
    return Connection(url)


def plain(url: str) -> Connection:
    return Connection(url)


applied = cache_resource(plain)
applied_with_options = cache_resource(plain, ttl=datetime.timedelta(minutes=5))

assert_type(bare("db"), Connection)
assert_type(bare("db", 1.0), Connection)
assert_type(bare(url="db", timeout=2), Connection)
assert_type(called("db"), Connection)
assert_type(configured("db", _pool=None), Connection)
assert_type(applied("db"), Connection)
assert_type(applied_with_options("db"), Connection)

# The wrapper is a CachedFunction of the function's parameters and result.
as_callable: Callable[[str], Connection] = applied
as_cached: CachedFunction[[str], Connection] = applied
assert_type(applied.__wrapped__("db"), Connection)

# Every accepted ttl spelling.
for ttl in (None, 60, 1.5, "1h", datetime.timedelta(hours=1)):
    cache_resource(plain, ttl=ttl)
# Any real number, numpy's included.
cache_resource(plain, ttl=Fraction(3, 2))
cache_resource(plain, ttl=numpy.float32(1.5))
cache_resource(plain, ttl=numpy.int64(60))
cache_resource(plain, refresh_mode="background", ttl=30)


# --- clear, cache_clear, cache_info, cache_parameters ----------------------------------

bare.clear()
bare.clear("db")
bare.clear("db", timeout=1.0)
bare.cache_clear()
bare.cache_clear(url="db")
info = bare.cache_info()
assert_type(info, CacheInfo)
assert_type(info.hits, int)
assert_type(info.misses, int)
assert_type(info.maxsize, int | None)
assert_type(info.currsize, int)
assert_type(bare.cache_parameters(), dict[str, Any])
assert_type(cache_resource.clear(), None)
assert_type(fastcache.cache_resource.clear(), None)


# --- async def: calling gives a coroutine of the function's result ----------------------


@cache_resource(ttl=60)
async def fetch(key: str) -> bytes:
    return key.encode()


async def use_fetch() -> bytes:
    pending: Coroutine[Any, Any, bytes] = fetch("a")
    assert_type(await pending, bytes)
    assert_type(await fetch(key="b"), bytes)
    return await fetch("c")


assert asyncio.run(use_fetch()) == b"c"


# --- methods: through an instance the first parameter is bound --------------------------


class Model:
    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Model) and other.name == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    @cache_resource(max_entries=4)
    def predict(self, x: int) -> float:
        return float(x)


model = Model("m")
assert_type(model.predict(1), float)
assert_type(model.predict(x=2), float)
assert_type(Model.predict(model, 3), float)
bound: BoundCachedMethod[[int], float] = model.predict
bound.clear(1)
bound.clear()
bound.cache_clear()
assert_type(bound.cache_info(), CacheInfo)
assert_type(Model.predict.cache_info(), CacheInfo)

# The runtime agrees with what was asserted above.
assert isinstance(bare("db"), Connection)
assert bare("db") is bare(url="db")
assert model.predict(1) == 1.0
assert isinstance(model.predict, BoundCachedMethod)
assert isinstance(Model.predict, CachedFunction)
cache_resource.clear()
