"""SPEC §4 `hash_funcs`: keys by type or fully-qualified name, exact type only, applied
inside containers, output hashed in turn, errors chained."""

from __future__ import annotations

import hashlib
import struct

import fastcache
import pytest
from fastcache import cache_resource
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


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


# --- every form of a hash function's output is tagged ---------------------------------


class Conn:
    def __init__(self, port):
        self.port = port


def _spelled_collision():
    """Arguments that an encoding without a tag for each output form would merge: a bytes
    value hashed to itself (its encoding written after a length) and a ``Conn`` hashed to
    a complex whose bits spell out that length, followed by a string that spells out the
    rest. Worked out against the encoding's layout; it has to be exact to mean anything."""
    inner_length = 6 + 256  # first byte 6, the complex tag; the next seven, the real part
    payload = inner_length - 9
    text = "a" * (payload - 9) + "\x00"
    real_bits = (inner_length >> 8).to_bytes(7, "little") + bytes([8])  # then the bytes tag
    real = struct.unpack("<d", real_bits)[0]
    imaginary = struct.unpack("<d", struct.pack("<Q", payload))[0]
    encoded_text = bytes([7]) + len(text).to_bytes(8, "little") + text.encode()
    as_bytes = encoded_text[:-1]  # the string's encoding but its last byte (the None after)
    return as_bytes, complex(real, imaginary), text


def test_hash_func_output_forms_never_collide_even_when_spelled_out():
    as_bytes, as_complex, text = _spelled_collision()

    @cache_resource(hash_funcs={bytes: bytes, Conn: lambda c: as_complex})
    def connect(target, label=None):
        return [target, label]

    first = connect(as_bytes)
    second = connect(Conn(5432), text)
    assert second is not first
    assert second == [second[0], text]


def test_hash_funcs_on_str_do_not_rewrite_keyword_names():
    @cache_resource(hash_funcs={str: str.lower})
    def options(**kwargs):
        return dict(kwargs)

    assert options(Color="x") == {"Color": "x"}
    assert options(color="x") == {"color": "x"}
    assert options(color="X") is options(color="x")  # values are still the user's to fold


def test_hash_funcs_on_str_do_not_apply_to_code():
    @cache_resource(hash_funcs={str: str.lower})
    def run(query):
        return query()

    assert run(lambda: "SELECT") == "SELECT"
    assert run(lambda: "select") == "select"


class Tagged:
    """Hashed by ``hash_funcs`` to whatever it carries."""

    def __init__(self, output):
        self.output = output


def _canonical(value):
    """What the key of ``value`` must depend on, under ``_PROPERTY_HASH_FUNCS``."""
    if type(value) is bytes:
        return ("bytes-as-itself", value)
    if type(value) is Tagged:
        return ("hash-func-output", _canonical(value.output))
    if type(value) is tuple:
        return ("tuple", tuple(_canonical(v) for v in value))
    if type(value) is float:
        return ("float", struct.pack("<d", value))
    if type(value) is complex:
        return ("complex", struct.pack("<dd", value.real, value.imag))
    return (type(value).__name__, value)


_PROPERTY_HASH_FUNCS = {bytes: bytes, Tagged: lambda t: t.output}

_leaves = st.one_of(
    st.binary(max_size=12),
    st.text(max_size=6),
    st.integers(),
    st.floats(allow_nan=False),
    st.complex_numbers(allow_nan=False),
    st.none(),
)
_outputs = st.recursive(
    _leaves,
    # A Tagged whose output is a Tagged is hashed without hash_funcs (so it cannot recurse)
    # and is rejected: not generated (mapped, not filtered, so that no run can fail
    # Hypothesis's health check on too much filtering).
    lambda inner: st.one_of(
        st.tuples(inner, inner), inner.map(lambda v: v if type(v) is Tagged else Tagged(v))
    ),
    max_leaves=6,
)


@cache_resource(hash_funcs=_PROPERTY_HASH_FUNCS)
def _keyed_by_outputs(first, second=None):
    return object()


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(_outputs, _outputs, _outputs, _outputs)
def test_hash_func_output_forms_share_an_entry_exactly_when_their_outputs_are_equal(a, b, c, d):
    same = (_canonical(a), _canonical(b)) == (_canonical(c), _canonical(d))
    assert (_keyed_by_outputs(a, b) is _keyed_by_outputs(c, d)) == same


def test_large_values_keyed_through_a_cryptographic_hash_func():
    # The README's advice for untrusted large arguments: a short digest is kept verbatim.
    @cache_resource(hash_funcs={bytes: lambda b: hashlib.sha256(b).digest()})
    def parse(document):
        return object()

    upload = bytes(range(256)) * 4096
    assert parse(upload) is parse(bytes(upload))
    assert parse(upload) is not parse(upload[:-1] + b"\x00")
