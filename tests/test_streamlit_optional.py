"""Streamlit stays optional: fastcache never imports it, its hooks engage only once an
app has imported it, and a Streamlit version outside the tested range gets one warning
and plain caching. Each case runs in a fresh interpreter, since engaging is once per
process."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _python(code: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # the output is asserted on below
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_fastcache_never_imports_streamlit():
    result = _python(
        """
        import sys
        import fastcache, fastcache.streamlit

        @fastcache.cache_resource(scope="global", show_spinner="Loading...")
        def load(n):
            return [n]

        assert load(1) is load(1)
        try:
            fastcache.cache_resource(scope="session")(lambda: 1)()
        except fastcache.SessionScopeError as exc:
            assert type(exc) is fastcache.SessionScopeError
        fastcache.cache_resource.clear()
        print("streamlit" in sys.modules)
        """
    )
    assert result.stdout.strip() == "False"
    assert result.stderr == ""


def test_hooks_engage_once_the_app_has_imported_streamlit():
    result = _python(
        """
        import threading
        import fastcache

        @fastcache.cache_resource
        def load(conn):
            return 1

        def error():
            try:
                load(threading.Lock())
            except fastcache.UnhashableParamError as exc:
                return exc

        before = error()
        import streamlit
        from streamlit.errors import StreamlitAPIException
        from streamlit.runtime.caching import cache_resource_api

        hooked = lambda: "clear_all" in vars(cache_resource_api._resource_caches)
        print(hooked(), isinstance(before, StreamlitAPIException))
        fastcache.cache_resource(lambda: 1)  # a decoration once Streamlit is imported
        print(hooked(), isinstance(error(), StreamlitAPIException))
        """
    )
    assert result.stdout.split() == ["False", "False", "True", "True"]


def test_an_untested_streamlit_version_warns_once_and_caches_plainly():
    result = _python(
        """
        import threading
        import warnings
        import streamlit
        streamlit.__version__ = "1.99.0"
        from streamlit.runtime.caching import cache_resource_api
        import fastcache

        warnings.simplefilter("always")
        with warnings.catch_warnings(record=True) as caught:
            @fastcache.cache_resource
            def load(n):
                return [n]

            @fastcache.cache_resource(scope="session")
            def per_session():
                return 1

            assert load(1) is load(1)
            try:
                load(threading.Lock())
            except fastcache.UnhashableParamError as exc:
                assert type(exc) is fastcache.UnhashableParamError
            try:
                per_session()
            except fastcache.SessionScopeError as exc:
                assert type(exc) is fastcache.SessionScopeError
        print(len(caught), caught[0].category.__name__)
        print("1.99" in str(caught[0].message), "1.67" in str(caught[0].message))
        print("clear_all" in vars(cache_resource_api._resource_caches))
        """
    )
    assert result.stdout.split() == ["1", "RuntimeWarning", "True", "True", "False"]
