"""Case 10: hits inside a Streamlit script run, where fastcache's Streamlit hooks are
engaged. The loops run inside an AppTest script run (in this process): 10a, a function
that wrote no elements; 10b, a function that wrote one element when it computed, so every
hit replays it. Only fastcache and st.cache_resource are Streamlit caches; the other peers
have no script run to work in."""

from __future__ import annotations

from typing import Any

from harness.cases_per_call import hit_positional
from harness.functions import LOAD_SOURCE, fresh_function
from harness.results import CaseResult, Cell
from harness.timing import per_call_case

IN_APP = ("fastcache", "streamlit")
REPLAYING_SOURCE = (
    "def {name}(x, name):\n    st.text('replayed on every hit')\n    return (x, name)\n"
)

# The script AppTest runs: it measures, in its own script run, what `_handoff` asks for.
SCRIPT = "from harness import cases_in_app\ncases_in_app.measure_in_script_run()\n"

_handoff: dict[str, Any] = {}


def measure_in_script_run() -> None:
    """The body of the script run: both sub-cases, every in-app peer, interleaved."""
    import streamlit as st

    peers, settings = _handoff["peers"], _handoff["settings"]
    for case_id, source in (("10a", LOAD_SOURCE), ("10b", REPLAYING_SOURCE)):

        def make(peer, source=source):
            return hit_positional(peer.decorate(fresh_function(source, "in_app", st=st)))

        _handoff[case_id] = per_call_case(peers, settings, make)


def case_in_app(peers, settings) -> list[CaseResult]:
    outside = {
        p.name: Cell("n/a", "not a Streamlit cache: no script run to work in")
        for p in peers
        if p.name not in IN_APP
    }
    in_app = [p for p in peers if p.name in IN_APP]
    measured: dict[str, dict[str, Cell]] = {}
    try:
        from streamlit.testing.v1 import AppTest
    except ImportError as exc:
        missing = {p.name: Cell("missing", f"AppTest needs streamlit ({exc})") for p in in_app}
        measured = {"10a": missing, "10b": missing}
    else:
        _handoff.clear()
        _handoff.update(peers=in_app, settings=settings)
        app = AppTest.from_string(SCRIPT)
        app.run(timeout=3600)
        if app.exception:
            raise RuntimeError(f"the script run failed: {app.exception[0].value}")
        measured = {key: _handoff[key] for key in ("10a", "10b")}
        _handoff.clear()
    return [
        CaseResult(
            "10a",
            'hit inside a Streamlit script run `f(42, "model-a")`',
            "ns/call",
            {**outside, **measured["10a"]},
            note="Inside an AppTest script run, with fastcache's Streamlit hooks engaged; "
            "the function wrote no elements, so there is nothing to replay.",
        ),
        CaseResult(
            "10b",
            "hit replaying one element inside a script run",
            "ns/call",
            {**outside, **measured["10b"]},
            note="The function wrote one `st.text` when it computed; every hit replays it "
            "into the page (Streamlit's own replay, for both caches).",
        ),
    ]
