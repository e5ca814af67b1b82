"""Cases 9a-9d: the hit cases of the hashing issue, arguments hashed by content on every
call (a big numpy array, big bytes, a DataFrame, a small mixed argument). The yardstick of
9a and 9b is copying the same data."""

from __future__ import annotations

import gc
from itertools import repeat

from harness.functions import ONE_ARG_SOURCE, fresh_function
from harness.peers import NotExpressible
from harness.results import CaseResult, Cell, Unsupported
from harness.timing import prepare, run_interleaved


def case_large_arguments(peers, settings):
    """The hit cases of the hashing issue: arguments hashed by content on every call."""
    try:
        import numpy as np
        import pandas as pd
    except ImportError as exc:
        return [
            CaseResult(
                "9",
                "large arguments",
                "ns/call",
                {p.name: Cell("missing", f"needs numpy and pandas ({exc})") for p in peers},
            )
        ]
    rng = np.random.default_rng(0)
    size = settings.big_bytes
    array = rng.random(size // 8)
    blob = array.tobytes()
    frame = pd.DataFrame(
        {"id": np.arange(settings.frame_rows), "value": rng.random(settings.frame_rows)}
    )
    mixed = ({"a": [1, 2.0, "x"]}, (3, None))
    mb = size / (1024 * 1024)

    copy_target = np.empty_like(array)
    copy_target[:] = 0.0  # touch the pages: the yardstick is the copy, not page faults

    def copy_array(n: int) -> None:
        for _ in repeat(None, n):
            np.copyto(copy_target, array)

    blob_view = np.frombuffer(blob, dtype=np.float64)

    def copy_bytes(n: int) -> None:
        for _ in repeat(None, n):
            np.copyto(copy_target, blob_view)

    specs = [
        ("9a", f"hit, {mb:g} MB numpy array", array, copy_array),
        ("9b", f"hit, {mb:g} MB bytes", blob, copy_bytes),
        ("9c", f"hit, {settings.frame_rows:,}-row two-column DataFrame", frame, None),
        ("9d", 'hit, small mixed argument `({"a": [1, 2.0, "x"]}, (3, None))`', mixed, None),
    ]
    results = []
    for case_id, title, argument, copy in specs:

        def make(peer, argument=argument):
            f = peer.decorate(fresh_function(ONE_ARG_SOURCE, "big"))
            try:
                f(argument)
            except TypeError as exc:
                first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                if peer.name == "fastcache":
                    raise Unsupported(first_line) from None
                raise NotExpressible(f"needs a hashable argument: {first_line}") from None

            def body(n: int) -> None:
                for _ in repeat(None, n):
                    f(argument)

            return body

        runners, cells = prepare(peers, make)
        if copy is not None:
            runners["(memory copy)"] = copy
        repeats = settings.big_repeats if copy is not None else settings.repeats
        samples = run_interleaved(runners, settings, repeats)
        reference = None
        if copy is not None:
            reference = {
                "label": "np.copyto of the same data",
                "ns": min(samples.pop("(memory copy)")),
            }
        for name, values in samples.items():
            cells[name].samples = values
        note = ""
        if case_id == "9b":
            note = (
                "The peers keyed by Python's hash pay the hash of a bytes object once: CPython "
                "caches it in the object, so their hit on the same object is O(1)."
            )
        results.append(CaseResult(case_id, title, "ns/call", cells, note=note, reference=reference))
        del runners, cells
        gc.collect()
    return results
