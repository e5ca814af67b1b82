"""The pytest plugin installed with fastcache: the `fastcache_isolated` fixture, and the
`--fastcache-isolate` flag and `fastcache_isolate` ini option that apply it to every test.
Each case runs a small project (no conftest) in a fresh pytest process, as a user's would."""

from __future__ import annotations

from importlib.metadata import entry_points

import pytest

pytest_plugins = ["pytester"]

# Test 2 sees test 1's value unless caches are emptied between tests.
LEAKING_PROJECT = """
import fastcache

built = []


@fastcache.cache_resource
def connect(url):
    built.append(url)
    return object()


def test_one():
    connect("db")
    assert built == ["db"]


def test_two():
    connect("db")
    assert built == ["db", "db"], "test_one's connection was handed to test_two"
"""

# The same `def` executed by two tests (a helper, a fixture, a parametrized body) finds the
# same cache: identity is module, qualified name and source.
REDEFINING_PROJECT = """
import fastcache

seen = []


def make_loader():
    @fastcache.cache_resource
    def load():
        return object()

    return load


def test_one():
    seen.append(make_loader()())


def test_two():
    assert make_loader()() is not seen[0], "test_one's value was handed to test_two"
"""


def test_plugin_is_registered_as_a_pytest11_entry_point():
    plugins = {ep.name: ep.value for ep in entry_points(group="pytest11")}
    assert plugins.get("fastcache") == "fastcache.pytest_plugin"


def test_without_isolation_a_cached_value_leaks_into_the_next_test(pytester):
    pytester.makepyfile(test_leak=LEAKING_PROJECT)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["*test_one's connection was handed to test_two*"])


def test_the_command_line_flag_isolates_every_test(pytester):
    pytester.makepyfile(test_leak=LEAKING_PROJECT)
    result = pytester.runpytest_subprocess("--fastcache-isolate")
    result.assert_outcomes(passed=2)


def test_the_ini_option_isolates_every_test(pytester):
    pytester.makeini("[pytest]\nfastcache_isolate = true\n")
    pytester.makepyfile(test_leak=LEAKING_PROJECT)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


def test_the_ini_option_in_pyproject_isolates_every_test(pytester):
    pytester.makepyprojecttoml("[tool.pytest.ini_options]\nfastcache_isolate = true\n")
    pytester.makepyfile(test_leak=LEAKING_PROJECT)
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


def test_the_fixture_isolates_the_test_that_asks_for_it(pytester):
    pytester.makepyfile(
        test_leak=LEAKING_PROJECT.replace("def test_two():", "def test_two(fastcache_isolated):")
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


def test_functions_redefined_inside_tests_are_isolated(pytester):
    pytester.makepyfile(test_redefined=REDEFINING_PROJECT)
    assert pytester.runpytest_subprocess().ret == pytest.ExitCode.TESTS_FAILED
    result = pytester.runpytest_subprocess("--fastcache-isolate")
    result.assert_outcomes(passed=2)


def test_isolation_releases_values_before_and_after_each_test(pytester):
    pytester.makepyfile(
        test_released="""
import fastcache

released = []


@fastcache.cache_resource(on_release=released.append)
def connect(url):
    return f"connection to {url}"


# Made before any test runs (at import): cleared, and released, before test_one starts.
connect("made at import")


def test_one(fastcache_isolated):
    assert released == ["connection to made at import"]
    connect("db")


def test_two():
    # test_one's value was released when test_one ended.
    assert released == ["connection to made at import", "connection to db"]
"""
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


def test_without_the_option_the_plugin_leaves_caches_alone(pytester):
    pytester.makepyfile(
        test_kept="""
import fastcache

released = []


@fastcache.cache_resource(on_release=released.append)
def connect(url):
    return url


def test_one():
    connect("db")


def test_two():
    assert released == []
    assert connect.cache_info().currsize == 1
"""
    )
    result = pytester.runpytest_subprocess()
    result.assert_outcomes(passed=2)


def test_the_plugin_can_be_turned_off(pytester):
    pytester.makepyfile(test_leak=LEAKING_PROJECT)
    result = pytester.runpytest_subprocess("-p", "no:fastcache", "--fastcache-isolate")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*unrecognized arguments: --fastcache-isolate*"])
