"""@classmethod and @staticmethod stacked over @cache_resource: checked by pyright
(strict) and run in tests/test_typing.py. mypy picks a descriptor's overload without
checking the function's own parameters, so it cannot tell these from plain methods; this
file is not given to mypy (the README says so)."""

from __future__ import annotations

from typing import assert_type

from fastcache import cache_resource


class Registry:
    @classmethod
    @cache_resource
    def load(cls, name: str) -> str:
        return f"{cls.__name__}:{name}"

    @staticmethod
    @cache_resource
    def helper(x: int) -> str:
        return str(x)


assert_type(Registry.load("a"), str)
assert_type(Registry().load("a"), str)
assert_type(Registry.helper(1), str)
assert_type(Registry().helper(1), str)

assert Registry.load("a") == "Registry:a"
assert Registry().load("a") is Registry.load("a")
assert Registry().helper(1) == "1"
cache_resource.clear()
