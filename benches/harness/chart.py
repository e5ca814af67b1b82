"""The chart: every case and peer as a bar, log scale (needs matplotlib)."""

from __future__ import annotations

from pathlib import Path

from harness.peers import Peer
from harness.report import fmt_ns
from harness.results import CaseResult

COLORS = {
    "fastcache": "#d62728",
    "lru_cache": "#7f7f7f",
    "cachebox": "#1f77b4",
    "moka-py": "#2ca02c",
    "cachetools": "#9467bd",
    "streamlit": "#ff7f0e",
}


def chart(cases: list[CaseResult], peers: list[Peer], path: Path, meta: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter, LogLocator

    fig, ax = plt.subplots(figsize=(15, 7), dpi=110)
    width = 0.8 / len(peers)
    floor = 10.0
    top = floor
    for i, case in enumerate(cases):
        for j, peer in enumerate(peers):
            x = i + (j - (len(peers) - 1) / 2) * width
            color = COLORS.get(peer.name, "k")
            cell = case.cells.get(peer.name)
            if cell is None or cell.value is None or cell.value <= 0:
                status = cell.status if cell is not None else "n/a"
                mark = {"unsupported": "unsup.", "missing": "—", "ok": "n/a"}.get(status, status)
                ax.text(
                    x,
                    floor * 1.15,
                    mark,
                    rotation=90,
                    ha="center",
                    va="bottom",
                    fontsize=6,
                    color=color,
                )
                continue
            top = max(top, cell.value)
            ax.bar(x, cell.value, width, color=color)
            if case.id == "6":
                runs = cell.extra.get("body_runs_max")
                ax.text(
                    x,
                    cell.value * 1.15,
                    f"{runs}",
                    ha="center",
                    va="bottom",
                    fontsize=7,
                    fontweight="bold" if runs == 1 else "normal",
                )
    ax.set_yscale("log")
    ax.set_ylim(floor, top * 8)
    ax.yaxis.set_major_locator(LogLocator(base=10))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: fmt_ns(v)))
    ax.set_xticks(range(len(cases)))
    ax.set_xticklabels([_short_label(c) for c in cases], fontsize=8)
    ax.set_ylabel("time per call (log scale; lower is faster)")
    title = "fastcache and its peers: same process, interleaved, minimum of repeats"
    if meta.get("quick"):
        title += "  [QUICK MODE: smoke test, not for publishing]"
    ax.set_title(title, pad=28)
    ax.grid(axis="y", which="major", alpha=0.3)
    handles = [Patch(color=COLORS.get(p.name, "k"), label=p.label) for p in peers]
    ax.legend(
        handles=handles,
        fontsize=8,
        ncol=len(peers),
        loc="lower center",
        bbox_to_anchor=(0.5, 1.0),
        frameon=False,
    )
    fig.text(
        0.01,
        0.01,
        f"Python {meta['python']}, {meta['cpu']} ({meta['cpus']} CPUs), {meta['date']}. "
        "Case 6: wall time of the 16-thread herd; the number above a bar is how many times "
        "the body ran. Case 8: net cost of re-executing the decorated def. n/a: the peer "
        "cannot express the case.",
        fontsize=7,
    )
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path)
    plt.close(fig)


def _short_label(case: CaseResult) -> str:
    short = {
        "1": "hit\npositional",
        "2": "hit\nkeywords",
        "3": "hit\nttl+max_entries",
        "4": "miss+insert\n(evicting)",
        "5": "hit, 4 threads\n(per call)",
        "6": "herd, 16 threads\n(wall)",
        "7": "hit\nmethod",
        "8": "decoration\n(rerun)",
        "9a": "hit\nbig array",
        "9b": "hit\nbig bytes",
        "9c": "hit\nDataFrame",
        "9d": "hit\nmixed arg",
        "10a": "hit in\nscript run",
        "10b": "replaying\nhit",
    }
    return f"{case.id}\n{short.get(case.id, case.title)}"
