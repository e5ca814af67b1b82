"""fastcache against its peers, side by side, in one process run.

    python benches/bench_cache.py            # full run (~40 s on 2 cores): docs/benchmarks.*
    python benches/bench_cache.py --quick    # a few seconds: prints the table, writes nothing

Every case runs every peer in this one process. A case first sizes each peer's loop so one
sample takes about 20 ms, then takes its samples interleaved: each repeat visits every peer
once, in a rotated order, so drift in the machine (frequency, a neighbour's build) lands on
all peers alike. The figure reported is the minimum over the repeats, the least disturbed
sample. See benches/README.md for the cases, the peers' configurations and how to profile.

This file is the command line; the harness lives in benches/harness/ (settings, peers,
timing, the cases, targets, report, chart).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Run as a script, Python puts benches/ first on sys.path already; this keeps the harness
# importable under `python -P` (safe path) and when this file is loaded from elsewhere.
sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import timing
from harness.cases_decoration import case_decoration
from harness.cases_in_app import case_in_app
from harness.cases_large_arguments import case_large_arguments
from harness.cases_per_call import (
    case_hit_keywords,
    case_hit_positional,
    case_hit_ttl_max_entries,
    case_method_hit,
    case_miss_insert,
)
from harness.cases_threads import case_threaded_hits, case_thundering_herd
from harness.chart import chart
from harness.machine import cpu_name, fastcache_build
from harness.peers import PEER_TYPES
from harness.report import markdown, to_json
from harness.results import CaseResult
from harness.settings import DOCS, Settings
from harness.targets import evaluate_targets

ALL_CASES = ["1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help="a few seconds, for a smoke test; writes nothing unless --out",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=None,
        help="directory for benchmarks.{md,json,png} (default: docs/ for a complete run, "
        "nothing for --quick or a subset of cases or peers)",
    )
    parser.add_argument(
        "--cases", default=",".join(ALL_CASES), help="comma-separated case numbers (default: all)"
    )
    parser.add_argument(
        "--peers",
        default=None,
        help="comma-separated peers (default: all): " + ", ".join(t.name for t in PEER_TYPES),
    )
    parser.add_argument("--repeats", type=int, default=None, help="samples per cell")
    parser.add_argument(
        "--clock",
        choices=("wall", "cpu"),
        default="wall",
        help="single-thread samples in wall time (perf_counter_ns, the "
        "default) or this thread's CPU time (thread_time_ns), for a busy "
        "machine; threaded cases always use wall time",
    )
    args = parser.parse_args(argv)

    timing.use_cpu_clock(args.clock == "cpu")
    settings = Settings.quick_run() if args.quick else Settings.full()
    if args.repeats:
        settings.repeats = args.repeats
    # Only a complete, default run replaces the published figures in docs/; a partial or
    # quick run writes only where --out says.
    complete = (
        not args.quick
        and args.cases == parser.get_default("cases")
        and not args.peers
        and not args.repeats
    )
    out = args.out if args.out is not None else (DOCS if complete else None)
    wanted = [c.strip() for c in args.cases.split(",") if c.strip()]
    unknown = set(wanted) - set(ALL_CASES)
    if unknown:
        parser.error(f"unknown case(s) {sorted(unknown)}; the cases are {ALL_CASES}")

    peer_types = PEER_TYPES
    if args.peers:
        names = [n.strip() for n in args.peers.split(",")]
        known = {t.name: t for t in PEER_TYPES}
        if set(names) - set(known):
            parser.error(f"unknown peer(s) {sorted(set(names) - set(known))}")
        peer_types = [known[n] for n in names]
    peers = [t() for t in peer_types]
    for peer in peers:
        peer.load()
        if peer.name == "fastcache" and peer.missing:
            # The peers are optional; the subject is not.
            parser.exit(2, f"cannot benchmark fastcache: {peer.missing}\n")
    logging.getLogger("fastcache").setLevel(logging.WARNING)
    timing.quiet_gc()

    started = time.perf_counter()
    results: list[CaseResult] = []
    with tempfile.TemporaryDirectory(prefix="fastcache-bench-") as tmp:
        steps: list[tuple[str, Callable[[], Any]]] = [
            ("1", lambda: case_hit_positional(peers, settings)),
            ("2", lambda: case_hit_keywords(peers, settings)),
            ("3", lambda: case_hit_ttl_max_entries(peers, settings)),
            ("4", lambda: case_miss_insert(peers, settings)),
            ("5", lambda: case_threaded_hits(peers, settings)),
            ("6", lambda: case_thundering_herd(peers, settings)),
            ("7", lambda: case_method_hit(peers, settings)),
            ("8", lambda: case_decoration(peers, settings, Path(tmp))),
            ("9", lambda: case_large_arguments(peers, settings)),
            ("10", lambda: case_in_app(peers, settings)),
        ]
        for case_id, step in steps:
            if case_id not in wanted:
                continue
            t0 = time.perf_counter()
            produced = step()
            produced = produced if isinstance(produced, list) else [produced]
            results.extend(produced)
            print(f"  case {case_id}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    elapsed = time.perf_counter() - started

    command = "python benches/bench_cache.py" + (" --quick" if args.quick else "")
    if args.clock != "wall":
        command += f" --clock {args.clock}"
    meta = {
        "command": command,
        "date": time.strftime("%Y-%m-%d"),
        "quick": settings.quick,
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "cpu": cpu_name(),
        "cpus": os.cpu_count(),
        "repeats": settings.repeats,
        "herd_repeats": settings.herd_repeats,
        "big_repeats": settings.big_repeats,
        "sample_ms": settings.sample_ns / 1e6,
        "elapsed_s": round(elapsed, 1),
        "clock": "thread_time_ns" if args.clock == "cpu" else "perf_counter_ns",
        "versions": {p.name: (p.version() if not p.missing else None) for p in peers},
        "fastcache_build": fastcache_build(peers),
    }
    by_id = {c.id: c for c in results}
    targets = evaluate_targets(by_id)
    table = markdown(results, peers, targets, meta)
    print(table)
    print(f"(run took {elapsed:.0f} s)", file=sys.stderr)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "benchmarks.md").write_text(table)
        (out / "benchmarks.json").write_text(
            json.dumps(to_json(results, peers, targets, meta), indent=2, ensure_ascii=False) + "\n"
        )
        try:
            chart(results, peers, out / "benchmarks.png", meta)
        except ImportError as exc:
            print(f"no chart: matplotlib is needed ({exc})", file=sys.stderr)
        print(f"wrote {out}/benchmarks.{{md,json,png}}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
