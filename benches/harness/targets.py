"""The targets of the benchmark issue (issue 3, and issue 4 for case 9) and of the hit-path
issue (issue 13), each judged met, missed, or not judged when this run did not measure
what it needs."""

from __future__ import annotations

from dataclasses import dataclass

from harness.peers import BASELINE
from harness.results import CaseResult


@dataclass
class Target:
    name: str
    met: bool | None  # None: cannot be judged in this run
    detail: str


def _value(cases: dict[str, CaseResult], case_id: str, peer: str) -> float | None:
    case = cases.get(case_id)
    if case is None or peer not in case.cells:
        return None
    return case.cells[peer].value


def _ratio_target(
    name: str, top: float | None, bottom: float | None, limit: float, text: str
) -> Target:
    """Met when top / bottom <= limit; `text` formats the ratio."""
    if not top or not bottom:
        return Target(name, None, "not measured in this run")
    ratio = top / bottom
    return Target(name, ratio <= limit, text.format(ratio=ratio, inverse=1 / ratio))


def evaluate_targets(cases: dict[str, CaseResult]) -> list[Target]:
    fc = "fastcache"
    targets: list[Target] = []
    for case_id in ("1", "2", "3", "7"):
        if case_id not in cases:
            continue
        mine = _value(cases, case_id, fc)
        lru = _value(cases, case_id, BASELINE) or _value(cases, "1", BASELINE)
        box = _value(cases, case_id, "cachebox")
        st = _value(cases, case_id, "streamlit")
        targets += [
            _ratio_target(
                f"case {case_id}: ≤ 1.5× lru_cache", mine, lru, 1.5, "{ratio:.2f}× lru_cache"
            ),
            _ratio_target(
                f"case {case_id}: ≥ 3× faster than cachebox",
                mine,
                box,
                1 / 3,
                "{inverse:.2f}× faster",
            ),
            _ratio_target(
                f"case {case_id}: ≥ 500× faster than st.cache_resource",
                mine,
                st,
                1 / 500,
                "{inverse:.0f}× faster",
            ),
        ]
    if "4" in cases:
        mine = _value(cases, "4", fc)
        others = {
            n: c.value
            for n, c in cases["4"].cells.items()
            if n not in (fc, BASELINE) and c.value is not None
        }
        name = "case 4: faster than every peer except lru_cache"
        if mine and others:
            detail = ", ".join(f"{v / mine:.2f}× faster than {n}" for n, v in others.items())
            targets.append(Target(name, all(mine < v for v in others.values()), detail))
        else:
            targets.append(Target(name, None, "not measured in this run"))
    if "5" in cases and "1" in cases:
        targets.append(
            _ratio_target(
                "case 5: per call within 1.2× of the single-thread hit",
                _value(cases, "5", fc),
                _value(cases, "1", fc),
                1.2,
                "{ratio:.2f}× case 1",
            )
        )
    if "6" in cases:
        cell = cases["6"].cells.get(fc)
        runs = cell.extra.get("body_runs") if cell and cell.status == "ok" else None
        targets.append(
            Target(
                "case 6: exactly 1 body run",
                None if not runs else all(r == 1 for r in runs),
                f"body runs per repeat: {runs}" if runs else "not measured in this run",
            )
        )
    if "8" in cases:
        targets.append(
            _ratio_target(
                "case 8: ≤ 1/10 of Streamlit's decoration cost",
                _value(cases, "8", fc),
                _value(cases, "8", "streamlit"),
                0.1,
                "1/{inverse:.1f} of Streamlit's",
            )
        )
    targets += _hit_path_targets(cases)
    # Issue 4's hashing targets, judged once fastcache accepts the arguments.
    for case_id, name, limit in (
        ("9a", "case 9a: within 1.5× of copying the array", None),
        ("9b", "case 9b: within 1.5× of copying the bytes", None),
        ("9b", "case 9b: ≥ 5× faster than Streamlit", 1 / 5),
        ("9c", "case 9c: ≤ 1/2 of Streamlit's sampled hash", 1 / 2),
        ("9d", "case 9d: ≤ 1/20 of Streamlit's", 1 / 20),
    ):
        if case_id not in cases:
            continue
        cell = cases[case_id].cells.get(fc)
        if cell is None or cell.status != "ok":
            targets.append(Target(name, None, f"fastcache: {cell.status if cell else 'not run'}"))
        elif limit is None:
            copy = (cases[case_id].reference or {}).get("ns")
            targets.append(_ratio_target(name, cell.value, copy, 1.5, "{ratio:.2f}× the copy"))
        else:
            st = _value(cases, case_id, "streamlit")
            targets.append(
                _ratio_target(name, cell.value, st, limit, "1/{inverse:.1f} of Streamlit's")
            )
    # Issue 11: hits inside a Streamlit script run, with the integration engaged.
    for case_id, name, limit, text in (
        (
            "10a",
            "case 10a: ≥ 100× faster than st.cache_resource in a script run",
            1 / 100,
            "{inverse:.0f}× faster",
        ),
        (
            "10b",
            "case 10b: a replaying hit costs no more than st.cache_resource's",
            1.0,
            "{ratio:.2f}× Streamlit's",
        ),
    ):
        if case_id in cases:
            targets.append(
                _ratio_target(
                    name,
                    _value(cases, case_id, fc),
                    _value(cases, case_id, "streamlit"),
                    limit,
                    text,
                )
            )
    return targets


# Issue 13's ratio targets: (name, case, its peer, base case, base peer, limit, figure).
_HIT_PATH_RATIOS = (
    ("case 1: ≤ 1.15× lru_cache", "1", "fastcache", "1", BASELINE, 1.15, "{ratio:.2f}× lru_cache"),
    ("case 1: ≥ 3.3× faster than cachebox", "1", "fastcache", "1", "cachebox", 1 / 3.3,
     "{inverse:.2f}× faster"),
    ("case 2: ≤ 1.05× lru_cache", "2", "fastcache", "2", BASELINE, 1.05, "{ratio:.2f}× lru_cache"),
    ("case 3: ≤ 1.1× fastcache's hit without ttl (case 1)", "3", "fastcache", "1", "fastcache",
     1.1, "{ratio:.2f}× case 1"),
    ("case 4: ≤ 2× lru_cache", "4", "fastcache", "4", BASELINE, 2.0, "{ratio:.2f}× lru_cache"),
)  # fmt: skip


def _hit_path_targets(cases: dict[str, CaseResult]) -> list[Target]:
    """Issue 13: the hit path at the interpreter's limit (only what this run measured)."""
    targets = [
        _ratio_target(name, _value(cases, case, peer), _value(cases, base, base_peer), limit, text)
        for name, case, peer, base, base_peer, limit, text in _HIT_PATH_RATIOS
        if case in cases
    ]
    rerun = _value(cases, "8", "fastcache")
    if rerun is not None:
        targets.append(Target("case 8: ≤ 3 µs", rerun <= 3000, f"{rerun / 1000:.1f} µs"))
    return targets
