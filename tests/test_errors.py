"""SPEC §7: error classes and the `UnhashableParamError` text; the user's own exceptions
pass through untouched and are never cached."""

from __future__ import annotations

import threading

import fastcache
import pytest
from fastcache import cache_resource


class Opaque:
    """Only object identity: not hashable by fastcache."""


def _expected_message(arg, type_name, func, replacement):
    return (
        f"Cannot hash argument '{arg}' (of type `{type_name}`) in '{func}'.\n"
        "\n"
        "To address this, you can tell fastcache not to hash this argument by adding a\n"
        "leading underscore to the argument's name in the function signature:\n"
        "\n"
        "```\n"
        "@fastcache.cache_resource\n"
        f"def {func}({replacement}, ...):\n"
        "    ...\n"
        "```\n"
    )


OPAQUE_FQN = f"{Opaque.__module__}.{Opaque.__qualname__}"


def test_unhashable_param_error_text_names_argument_type_and_function():
    @cache_resource
    def open_session(url, client):
        return object()

    with pytest.raises(fastcache.UnhashableParamError) as info:
        open_session("db", Opaque())
    message = str(info.value)
    assert message.startswith(_expected_message("client", OPAQUE_FQN, "open_session", "_client"))
    tail = message[len(_expected_message("client", OPAQUE_FQN, "open_session", "_client")) :]
    assert "hash_funcs" in tail


def test_unhashable_param_error_names_the_parameter_for_a_keyword_argument():
    @cache_resource
    def by_keyword(url, *, client=None):
        return object()

    with pytest.raises(fastcache.UnhashableParamError) as info:
        by_keyword("db", client=Opaque())
    assert str(info.value).startswith(
        _expected_message("client", OPAQUE_FQN, "by_keyword", "_client")
    )


def test_unhashable_param_error_names_the_parameter_of_a_value_nested_in_a_container():
    @cache_resource
    def nested_arg(url, settings):
        return object()

    with pytest.raises(fastcache.UnhashableParamError) as info:
        nested_arg("db", {"pool": [Opaque()]})
    assert str(info.value).startswith(
        _expected_message("settings", OPAQUE_FQN, "nested_arg", "_settings")
    )


def test_unhashable_param_error_says_unnamed_for_var_args():
    @cache_resource
    def variadic_fn(*parts):
        return object()

    with pytest.raises(fastcache.UnhashableParamError) as info:
        variadic_fn(1, Opaque())
    assert str(info.value).startswith(
        _expected_message("(unnamed)", OPAQUE_FQN, "variadic_fn", "_arg")
    )


def test_unhashable_param_error_names_an_extra_keyword():
    @cache_resource
    def extra_kw(**options):
        return object()

    with pytest.raises(fastcache.UnhashableParamError) as info:
        extra_kw(client=Opaque())
    assert str(info.value).startswith(
        _expected_message("client", OPAQUE_FQN, "extra_kw", "_client")
    )


@pytest.mark.parametrize(
    "value, type_name",
    [
        (object(), "builtins.object"),
        (threading.Lock(), f"_thread.{type(threading.Lock()).__qualname__}"),
        ((x for x in ()), "builtins.generator"),
    ],
    ids=["object", "lock", "generator"],
)
def test_unhashable_param_error_uses_module_qualified_type_names(value, type_name):
    @cache_resource
    def takes_anything(thing):
        return object()

    with pytest.raises(fastcache.UnhashableParamError) as info:
        takes_anything(value)
    assert f"(of type `{type_name}`)" in str(info.value)
    assert isinstance(info.value, TypeError)


def test_unhashable_argument_computes_nothing_and_stores_nothing():
    calls = []

    @cache_resource
    def guarded(thing):
        calls.append(thing)
        return object()

    with pytest.raises(fastcache.UnhashableParamError):
        guarded(Opaque())
    assert calls == []
    assert guarded.cache_info().currsize == 0


def test_users_exception_propagates_unchanged():
    error = LookupError("database is down")

    @cache_resource
    def failing(x):
        raise error

    with pytest.raises(LookupError) as info:
        failing(1)
    assert info.value is error


def test_exceptions_are_never_cached():
    attempts = []

    @cache_resource
    def flaky(x):
        attempts.append(x)
        if len(attempts) == 1:
            raise ConnectionError("first attempt fails")
        return object()

    with pytest.raises(ConnectionError):
        flaky(1)
    assert flaky.cache_info().currsize == 0
    value = flaky(1)
    assert flaky(1) is value
    assert attempts == [1, 1]


def test_base_exception_from_the_function_leaves_no_stuck_key():
    attempts = []

    @cache_resource
    def interrupted(x):
        attempts.append(x)
        if len(attempts) == 1:
            raise KeyboardInterrupt
        return object()

    with pytest.raises(KeyboardInterrupt):
        interrupted(1)
    value = interrupted(1)
    assert interrupted(1) is value
    assert attempts == [1, 1]
