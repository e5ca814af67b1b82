"""SPEC §4 `hash_funcs`: keys by type or fully-qualified name, exact type only, applied
inside containers, output hashed in turn, errors chained."""

from __future__ import annotations

import fastcache
import pytest
from fastcache import cache_resource


class Connection:
    """Unhashable by default (only object identity)."""

    def __init__(self, url):
        self.url = url


class PooledConnection(Connection):
    pass


def _fqn(cls):
    return f"{cls.__module__}.{cls.__qualname__}"


def test_hash_func_by_type_keys_instances_by_its_output():
    calls = []

    @cache_resource(hash_funcs={Connection: lambda c: c.url})
    def by_type(conn):
        calls.append(conn.url)
        return object()

    value = by_type(Connection("db-a"))
    assert by_type(Connection("db-a")) is value
    assert by_type(Connection("db-b")) is not value
    assert calls == ["db-a", "db-b"]


def test_hash_func_by_fully_qualified_name_keys_instances_by_its_output():
    @cache_resource(hash_funcs={_fqn(Connection): lambda c: c.url})
    def by_name(conn):
        return object()

    assert by_name(Connection("db-a")) is by_name(Connection("db-a"))
    assert by_name(Connection("db-a")) is not by_name(Connection("db-b"))


def test_hash_func_matches_the_exact_type_not_a_subclass():
    @cache_resource(hash_funcs={Connection: lambda c: c.url})
    def exact_only(conn):
        return object()

    with pytest.raises(fastcache.UnhashableParamError, match="PooledConnection"):
        exact_only(PooledConnection("db"))


def test_hash_func_by_name_matches_the_exact_type_not_a_subclass():
    @cache_resource(hash_funcs={_fqn(Connection): lambda c: c.url})
    def exact_name_only(conn):
        return object()

    with pytest.raises(fastcache.UnhashableParamError):
        exact_name_only(PooledConnection("db"))


def test_hash_func_applies_inside_containers():
    @cache_resource(hash_funcs={Connection: lambda c: c.url})
    def nested(config):
        return object()

    value = nested({"primary": [Connection("a"), (Connection("b"),)]})
    assert nested({"primary": [Connection("a"), (Connection("b"),)]}) is value
    assert nested({"primary": [Connection("a"), (Connection("c"),)]}) is not value


def test_hash_func_output_is_hashed_in_turn():
    class Credentials:
        def __init__(self, user):
            self.user = user

    @cache_resource(
        hash_funcs={
            Connection: lambda c: {"url": c.url, "creds": c.creds},
            Credentials: lambda cr: cr.user,
        }
    )
    def chained(conn):
        return object()

    def connection(url, user):
        conn = Connection(url)
        conn.creds = Credentials(user)
        return conn

    value = chained(connection("db", "alice"))
    assert chained(connection("db", "alice")) is value
    assert chained(connection("db", "bob")) is not value


def test_hash_func_output_that_is_unhashable_is_an_unhashable_param_error():
    @cache_resource(hash_funcs={Connection: lambda c: object()})
    def bad_output(conn):
        return object()

    with pytest.raises(fastcache.UnhashableParamError):
        bad_output(Connection("db"))


def test_hash_func_overrides_the_builtin_rule():
    @cache_resource(hash_funcs={str: str.lower})
    def case_insensitive(name):
        return object()

    assert case_insensitive("Alice") is case_insensitive("ALICE")
    assert case_insensitive("Alice") is not case_insensitive("Bob")


def test_hash_func_output_type_does_not_collide_with_a_plain_argument():
    @cache_resource(hash_funcs={Connection: lambda c: c.url})
    def mixed(value):
        return object()

    assert mixed(Connection("db")) is not mixed("db")


def test_raising_hash_func_is_a_user_hash_error_chained_from_the_original():
    original = KeyError("no url")

    def broken_hash(conn):
        raise original

    @cache_resource(hash_funcs={Connection: broken_hash})
    def uses_broken(conn):
        return object()

    with pytest.raises(fastcache.UserHashError) as info:
        uses_broken(Connection("db"))
    assert info.value.__cause__ is original
    message = str(info.value)
    assert "broken_hash" in message
    assert "uses_broken" in message
    assert uses_broken.cache_info().currsize == 0


def test_hash_func_may_call_a_cached_function():
    @cache_resource
    def lookup_id(url):
        return len(url)

    @cache_resource(hash_funcs={Connection: lambda c: lookup_id(c.url)})
    def uses_lookup(conn):
        return object()

    assert uses_lookup(Connection("abc")) is uses_lookup(Connection("xyz"))


@pytest.mark.parametrize("bad_key", [42, None, 1.5, ("a", "b")], ids=repr)
def test_hash_funcs_key_that_is_neither_type_nor_string_is_a_type_error_at_decoration(bad_key):
    with pytest.raises(TypeError, match="hash_funcs"):
        cache_resource(hash_funcs={bad_key: id})


def test_hash_funcs_that_is_not_a_mapping_is_a_type_error_at_decoration():
    with pytest.raises(TypeError, match="hash_funcs"):
        cache_resource(hash_funcs=[(Connection, id)])


def test_hash_funcs_value_that_is_not_callable_is_a_type_error_at_decoration():
    with pytest.raises(TypeError, match="hash_funcs"):
        cache_resource(hash_funcs={Connection: "url"})
