"""Decorating the same `def` again (every Streamlit rerun does) reuses what the first
decoration worked out — signature, identity, the attributes `functools.update_wrapper`
copies — and the checked options of a decorator made of plain values. Each test here
checks that the reuse never changes an outcome: whatever differs between two functions
made from one code object (module, defaults, keyword defaults, attributes, closures) still
makes them distinct, and bad options still fail on every decoration."""

from __future__ import annotations

import inspect
import textwrap

import fastcache
import pytest
from fastcache import _decorator

SCRIPT = textwrap.dedent(
    '''
    import fastcache

    @fastcache.cache_resource(show_spinner=False)
    def load(name, version=1, *, device="cpu"):
        """Load a model."""
        return [name, version, device]
    '''
)


def _rerun(code, module="fc_rerun_app"):
    namespace = {"__name__": module}
    exec(code, namespace)  # noqa: S102 - a rerun of the test's own script
    return namespace["load"]


@pytest.fixture
def script_code(tmp_path):
    path = tmp_path / "rerun_app.py"
    path.write_text(SCRIPT)
    return compile(SCRIPT, str(path), "exec")


def test_a_rerun_reuses_the_first_decoration_and_finds_its_entries(script_code):
    first = _rerun(script_code)
    value = first("bert")
    second = _rerun(script_code)
    assert second is not first
    assert id(first.__wrapped__.__code__) in _decorator._reused
    assert second("bert") is value
    assert second.cache_info().hits == 1


def test_a_reused_decoration_copies_the_new_functions_attributes(script_code):
    _rerun(script_code)
    second = _rerun(script_code)
    func = second.__wrapped__
    assert second.__wrapped__ is func
    assert (second.__name__, second.__qualname__, second.__module__, second.__doc__) == (
        "load",
        "load",
        "fc_rerun_app",
        "Load a model.",
    )
    assert inspect.signature(second) == inspect.signature(func)


def test_the_same_code_in_another_module_is_another_cache(script_code):
    first = _rerun(script_code, "fc_rerun_app_a")
    other = _rerun(script_code, "fc_rerun_app_b")
    assert other("bert") is not first("bert")


def _factory_with_keyword_default(device):
    def load(name, *, device=device):
        return [name, device]

    return fastcache.cache_resource(load)


def test_keyword_defaults_that_differ_make_distinct_caches():
    # One code object, one empty closure, defaults that differ: never one cache.
    on_cpu = _factory_with_keyword_default("cpu")
    on_gpu = _factory_with_keyword_default("gpu")
    assert on_cpu.__wrapped__.__code__ is on_gpu.__wrapped__.__code__
    assert on_cpu("bert") == ["bert", "cpu"]
    assert on_gpu("bert") == ["bert", "gpu"]


def _factory_with_default(version):
    def load(name, version=version):
        return [name, version]

    return fastcache.cache_resource(load)


def test_positional_defaults_that_differ_make_distinct_caches():
    assert _factory_with_default(1)("bert") == ["bert", 1]
    assert _factory_with_default(2)("bert") == ["bert", 2]


def test_a_mutable_default_is_compared_by_content_on_every_decoration():
    settings = {"device": "cpu"}

    def make():
        def load(name, settings=settings):
            return [name, dict(settings)]

        return fastcache.cache_resource(load)

    assert make()("bert") == ["bert", {"device": "cpu"}]
    settings["device"] = "gpu"  # same object, new content: another cache
    assert make()("bert") == ["bert", {"device": "gpu"}]


def test_a_function_with_attributes_is_decorated_the_whole_way(script_code):
    func = _rerun(script_code).__wrapped__
    # The same code, module, qualname and defaults as the remembered function, plus an
    # attribute: `functools.update_wrapper` copies it, so the remembered copy won't do.
    clone = type(func)(func.__code__, func.__globals__, func.__name__, func.__defaults__)
    clone.__kwdefaults__ = func.__kwdefaults__
    clone.label = "mine"
    wrapper = fastcache.cache_resource(show_spinner=False)(clone)
    assert wrapper.label == "mine"
    assert wrapper.__wrapped__ is clone


@pytest.mark.parametrize(
    ("good", "bad"),
    [({"ttl": 1}, {"ttl": True}), ({"max_entries": 1}, {"max_entries": True})],
)
def test_a_bad_option_fails_even_after_an_equal_good_one(good, bad):
    # `True == 1`: a table of checked options keyed by value alone would let it through.
    fastcache.cache_resource(**good)
    with pytest.raises(TypeError):
        fastcache.cache_resource(**bad)


def test_the_tables_of_reused_decorations_stay_bounded():
    for i in range(_decorator._REUSE_LIMIT + 10):
        namespace = {"__name__": "fc_many_defs"}
        exec(compile(f"def f{i}(x):\n    return x\n", "<many>", "exec"), namespace)  # noqa: S102
        fastcache.cache_resource(namespace[f"f{i}"])
    assert len(_decorator._reused) <= _decorator._REUSE_LIMIT
    for i in range(_decorator._DECORATORS_LIMIT + 10):
        fastcache.cache_resource(ttl=i + 1)
    assert len(_decorator._decorators_by_value) <= _decorator._DECORATORS_LIMIT
