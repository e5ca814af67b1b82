"""Mistakes a type checker must flag, one per line marked `# mistake`: tests/test_typing.py
runs mypy --strict and pyright (strict) on this file and checks that the lines with errors
are exactly the marked ones. (Never run: it is wrong on purpose.)"""

from __future__ import annotations

from decimal import Decimal

from fastcache import cache_resource


@cache_resource
def load(name: str, version: int = 1) -> bytes:
    return name.encode()


@cache_resource
async def fetch(key: str) -> bytes:
    return key.encode()


class Model:
    @cache_resource
    def predict(self, x: int) -> float:
        return float(x)


def plain(url: str) -> str:
    return url


load(1)  # mistake: wrong argument type
load()  # mistake: missing argument
load("a", 1, 2)  # mistake: too many arguments
load(nam="a")  # mistake: unknown keyword argument
size: int = load("a")  # mistake: the result is bytes
text: bytes = fetch("k")  # mistake: not awaited, it is a coroutine
Model().predict("x")  # mistake: wrong argument type through an instance
load.clear(2)  # mistake: clear takes the function's arguments
hits: int = load.cache_info().hit  # mistake: no such field
cache_resource(plain, scope="sesion")  # mistake: scope typo
cache_resource(plain, refresh_mode="backgroud")  # mistake: refresh_mode typo
cache_resource(plain, ttl=[60])  # mistake: ttl of the wrong type
cache_resource(plain, ttl=Decimal(60))  # mistake: a Decimal ttl is refused at run time
cache_resource(plain, max_entries="8")  # mistake: max_entries of the wrong type
cache_resource(plain, show_spinner=1)  # mistake: show_spinner of the wrong type
cache_resource(plain, validate=True)  # mistake: validate is not callable
cache_resource(plain, 60)  # mistake: only func is positional
cache_resource(plain, experimental_allow_widgets=True)  # mistake: removed option
cache_resource.clear(load)  # mistake: the global clear takes no argument
cache_resource(ttl=60)(plain)("a", "b")  # mistake: too many arguments after decoration
