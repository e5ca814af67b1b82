"""Ctrl-C and SystemExit are never swallowed: raised from a user callback (``on_release``,
``hash_funcs``, ``validate``, an argument's ``__eq__``) they reach the caller as themselves,
after the other pending releases have run. An ``Exception`` keeps its usual treatment:
logged for ``on_release``, ``UserHashError`` for ``hash_funcs``.
"""

from __future__ import annotations

import logging

import fastcache
import pytest
from fastcache import cache_resource

INTERRUPTS = [KeyboardInterrupt, SystemExit]


class Resource:
    def __init__(self, label):
        self.label = label

    def __repr__(self):
        return f"Resource({self.label!r})"


def interrupting_release(interrupt, on):
    """An on_release that raises ``interrupt`` for the value labelled ``on`` and records
    every value it is given."""
    seen = []

    def on_release(value):
        seen.append(value.label)
        if value.label == on:
            raise interrupt(f"interrupted while releasing {on}")

    return on_release, seen


@pytest.mark.parametrize("interrupt", INTERRUPTS)
@pytest.mark.parametrize("how", ["clear()", "cache_resource.clear()"])
def test_interrupt_in_on_release_during_clear_propagates_after_the_other_releases(interrupt, how):
    on_release, seen = interrupting_release(interrupt, on=1)

    @cache_resource(on_release=on_release)
    def load(x):
        return Resource(x)

    for x in range(4):
        load(x)
    clear = load.clear if how == "clear()" else cache_resource.clear
    with pytest.raises(interrupt, match="releasing 1"):
        clear()
    assert sorted(seen) == [0, 1, 2, 3], "every other value is still released"
    assert load.cache_info().currsize == 0


@pytest.mark.parametrize("interrupt", INTERRUPTS)
def test_interrupt_in_on_release_of_one_entry_propagates(interrupt):
    on_release, seen = interrupting_release(interrupt, on=1)

    @cache_resource(on_release=on_release)
    def load(x):
        return Resource(x)

    load(1)
    with pytest.raises(interrupt):
        load.clear(1)
    assert seen == [1]
    assert load.cache_info().currsize == 0


def test_interrupt_in_on_release_of_an_evicted_value_reaches_the_caller_and_keeps_the_new():
    on_release, seen = interrupting_release(KeyboardInterrupt, on=1)

    @cache_resource(max_entries=1, on_release=on_release)
    def load(x):
        return Resource(x)

    load(1)
    with pytest.raises(KeyboardInterrupt):
        load(2)  # evicts 1
    assert seen == [1]
    assert load(2).label == 2
    assert load.cache_info().hits == 1, "the new value was stored before the interrupt"


def test_exception_in_on_release_during_clear_is_still_only_logged(caplog):
    on_release, seen = interrupting_release(RuntimeError, on=1)

    @cache_resource(on_release=on_release)
    def load(x):
        return Resource(x)

    load(1)
    load(2)
    with caplog.at_level(logging.ERROR, logger="fastcache"):
        load.clear()  # must not raise
    assert sorted(seen) == [1, 2]
    assert any(r.exc_info and isinstance(r.exc_info[1], RuntimeError) for r in caplog.records)


@pytest.mark.parametrize("interrupt", INTERRUPTS)
def test_interrupt_in_hash_funcs_propagates_as_itself(interrupt):
    class Config:
        pass

    def hash_config(config):
        raise interrupt("stop")

    @cache_resource(hash_funcs={Config: hash_config})
    def load(config):
        return Resource("loaded")

    with pytest.raises(interrupt) as caught:
        load(Config())
    assert type(caught.value) is interrupt, "not wrapped in UserHashError"


def test_exception_in_hash_funcs_is_still_a_user_hash_error():
    class Config:
        pass

    @cache_resource(hash_funcs={Config: lambda config: 1 / 0})
    def load(config):
        return Resource("loaded")

    with pytest.raises(fastcache.UserHashError):
        load(Config())


@pytest.mark.parametrize("interrupt", INTERRUPTS)
def test_interrupt_in_validate_propagates_and_keeps_the_entry(interrupt):
    calls = []

    def validate(value):
        calls.append(value)
        raise interrupt("stop")

    @cache_resource(validate=validate)
    def load(x):
        return Resource(x)

    first = load(1)
    with pytest.raises(interrupt):
        load(1)
    assert calls == [first]
    assert load.cache_info().currsize == 1


@pytest.mark.parametrize("interrupt", INTERRUPTS)
def test_interrupt_in_an_arguments_eq_propagates_as_itself(interrupt):
    class Point:
        """Value semantics through its own __hash__/__eq__; equal hashes force __eq__."""

        armed = False

        def __init__(self, x):
            self.x = x

        def __hash__(self):
            return 0

        def __eq__(self, other):
            if Point.armed:
                raise interrupt("stop")
            return isinstance(other, Point) and self.x == other.x

    @cache_resource
    def load(point):
        return Resource(point.x)

    load(Point(1))
    Point.armed = True
    try:
        with pytest.raises(interrupt) as caught:
            load(Point(2))
    finally:
        Point.armed = False  # fastcache remembers keyed objects: later tests compare them
    assert type(caught.value) is interrupt
