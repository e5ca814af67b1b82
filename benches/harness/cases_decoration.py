"""Case 8: decoration cost, as every Streamlit rerun pays it. The figure is net: minus the
time to exec the same script without the decorator line, measured in the same run."""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat
from pathlib import Path
from typing import Any

from harness.results import CaseResult
from harness.timing import prepare, run_interleaved

RERUN_TEMPLATE = '''\
import math

{decorator}
def load_model(name, version=1, *, device="cpu"):
    """Load a model: a stand-in for an expensive resource."""
    return (name, version, device, math.pi)
'''


def case_decoration(peers, settings, workdir: Path):
    """Re-executing a script whose `def` carries the decorator, as a Streamlit rerun does:
    the script is compiled once (Streamlit caches the bytecode) and its code object is
    exec'd in a fresh namespace every time. The script lives in a real file so that
    `inspect.getsource` works, as it does for an app."""

    def compiled(tag: str, decorator: str):
        path = workdir / f"rerun_{tag.replace('-', '_')}.py"
        path.write_text(RERUN_TEMPLATE.format(decorator=decorator))
        return compile(path.read_text(), str(path), "exec")

    def rerun(code, env: dict[str, Any]) -> Callable[[int], None]:
        base = {"__name__": "__main__", **env}
        exec(code, dict(base))  # noqa: S102 - the first run decorates for the first time

        def body(n: int) -> None:
            for _ in repeat(None, n):
                exec(code, dict(base))  # noqa: S102 - a rerun of our own script

        return body

    def make(peer):
        return rerun(compiled(peer.name, peer.decorator_line), peer.rerun_namespace())

    runners, cells = prepare(peers, make)
    runners["(no decorator)"] = rerun(compiled("plain", ""), {})
    samples = run_interleaved(runners, settings, settings.repeats)
    plain = min(samples.pop("(no decorator)"))
    for name, values in samples.items():
        cells[name].samples = [v - plain for v in values]
        cells[name].extra["raw_ns"] = min(values)
    return CaseResult(
        "8",
        "decoration cost: re-executing a decorated `def` (a Streamlit rerun)",
        "ns/rerun",
        cells,
        note=f"Net cost: the time to exec the compiled script minus the time to exec the same "
        f"script without the decorator line ({plain:.0f} ns, measured in the same run).",
        reference={"label": "exec of the undecorated def", "ns": plain},
    )
