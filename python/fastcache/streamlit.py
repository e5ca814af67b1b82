"""fastcache inside a running Streamlit app. Every use of Streamlit's internals is kept in
this module; Streamlit is never imported by fastcache itself, only looked up once the app
has imported it."""

from __future__ import annotations

import sys


def in_streamlit_script_run() -> bool:
    """True inside a Streamlit script run (never imports Streamlit itself)."""
    if "streamlit" not in sys.modules:
        return False
    try:
        from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx
    except ImportError:
        return False
    return get_script_run_ctx(suppress_warning=True) is not None
