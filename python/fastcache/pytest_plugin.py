"""fastcache's pytest plugin (registered through the ``pytest11`` entry point, so it is
active wherever fastcache is installed): start tests with empty caches.

- The ``fastcache_isolated`` fixture clears every cache — each value released through its
  ``on_release`` — before and after the test that asks for it.
- ``--fastcache-isolate`` on the command line, or ``fastcache_isolate = true`` in the
  ini file (``[tool.pytest.ini_options]`` in ``pyproject.toml``, ``pytest.ini``...),
  applies it to every test.

Without either, the plugin does nothing: caches live for the whole session, as they do in
the program under test.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

_INI = "fastcache_isolate"
_FLAG = "--fastcache-isolate"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        _INI,
        type="bool",
        default=False,
        help="fastcache: start and end every test with empty caches (on_release runs).",
    )
    parser.getgroup("fastcache").addoption(
        _FLAG,
        action="store_true",
        default=False,
        help="start and end every test with empty fastcache caches (on_release runs); "
        f"the same as `{_INI} = true` in the ini file.",
    )


def _isolate_every_test(config: pytest.Config) -> bool:
    return bool(config.getoption(_FLAG) or config.getini(_INI))


@pytest.fixture
def fastcache_isolated() -> Iterator[None]:
    """Every fastcache cache is empty when the test starts, and emptied again when it ends
    (each value released through its ``on_release``)."""
    # Imported here, not at the top: pytest loads this plugin in every session of an
    # environment where fastcache is installed, and only a test that isolates needs it.
    import fastcache

    fastcache.cache_resource.clear()
    yield
    fastcache.cache_resource.clear()


@pytest.fixture(autouse=True)
def _fastcache_isolate_every_test(request: pytest.FixtureRequest) -> None:
    if _isolate_every_test(request.config):
        request.getfixturevalue("fastcache_isolated")
