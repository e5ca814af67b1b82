"""Cases 5 and 6: threads. Hits shared by 4 threads, and a thundering herd of 16 threads on
one missing key. Both are timed in wall time, whatever `--clock` says."""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable
from itertools import repeat
from typing import Any

from harness.functions import LOAD_SOURCE, fresh_function
from harness.peers import Peer
from harness.results import CaseResult, Cell
from harness.timing import prepare, quiet_gc, rotated

perf_counter_ns = time.perf_counter_ns

THREADS = 4


def threaded_hits(f: Callable) -> Callable[[int], None]:
    """`n` hits shared by 4 threads; the sample is the wall time from their common start."""
    f(42, "model-a")

    def body(n: int) -> None:
        per_thread = max(1, n // THREADS)
        start = threading.Barrier(THREADS + 1)

        def worker() -> None:
            start.wait()
            for _ in repeat(None, per_thread):
                f(42, "model-a")

        threads = [threading.Thread(target=worker) for _ in range(THREADS)]
        for t in threads:
            t.start()
        start.wait()
        # The clock starts once every thread is at the start line: creating the threads
        # is not counted. timed_threads reads it.
        body.started = perf_counter_ns()  # type: ignore[attr-defined]
        for t in threads:
            t.join()

    return body


def timed_threads(body: Callable[[int], Any], n: int) -> int:
    gc.collect()
    gc.disable()
    try:
        body(n)
        end = perf_counter_ns()
        return end - body.started  # type: ignore[attr-defined]
    finally:
        gc.enable()


def case_threaded_hits(peers, settings):
    runners, cells = prepare(
        peers, lambda peer: threaded_hits(peer.decorate(fresh_function(LOAD_SOURCE, "shared")))
    )
    quiet_gc()
    sizes = {}
    for name, body in runners.items():
        n = THREADS
        while True:
            elapsed = timed_threads(body, n)
            if elapsed >= settings.sample_ns // 10 or n >= 10**8:
                break
            n *= 10
        sizes[name] = max(THREADS, round(n * settings.sample_ns / max(elapsed, 1)))
    names = list(runners)
    for r in range(settings.repeats):
        for name in rotated(names, r):
            n = sizes[name] // THREADS * THREADS
            cells[name].samples.append(timed_threads(runners[name], n) / n)
    return CaseResult(
        "5",
        f"{THREADS} threads hitting one key (wall time per call)",
        "ns/call",
        cells,
        note=f'Total wall time of {THREADS} threads calling `f(42, "model-a")` divided by '
        "the total number of calls (the GIL serialises them; this shows what contention adds).",
    )


HERD_THREADS = 16


def case_thundering_herd(peers, settings):
    cells: dict[str, Cell] = {}
    live = []
    for peer in peers:
        if peer.missing:
            cells[peer.name] = Cell("missing", peer.missing)
        else:
            cells[peer.name] = Cell("ok", extra={"body_runs": [], "distinct_values": []})
            live.append(peer)
    for r in range(settings.herd_repeats):
        for peer in rotated(live, r):
            cell = cells[peer.name]
            if cell.status != "ok":
                continue
            try:
                wall, runs, distinct = herd_once(peer, settings.herd_sleep)
            except Exception as exc:  # noqa: BLE001 - reported in the cell, run goes on
                cells[peer.name] = Cell("error", f"{type(exc).__name__}: {exc}")
                continue
            cell.samples.append(wall)
            cell.extra["body_runs"].append(runs)
            cell.extra["distinct_values"].append(distinct)
    for cell in cells.values():
        if cell.status == "ok":
            cell.extra["body_runs_max"] = max(cell.extra["body_runs"])
    return CaseResult(
        "6",
        f"thundering herd: {HERD_THREADS} threads, one missing key, body sleeps "
        f"{settings.herd_sleep:g} s",
        "wall ns",
        cells,
        note="Wall time until all 16 callers have their value, and how many times the body "
        "ran (1 = single flight). lru_cache has no single flight: every caller runs the body.",
    )


def herd_once(peer: Peer, sleep: float) -> tuple[int, int, int]:
    """One herd: wall time until every caller has returned, body runs, distinct values."""
    runs: list[int] = []

    def body_env_sleep(x):
        runs.append(1)
        time.sleep(sleep)
        return object()

    source = "def {name}(x):\n    return _body(x)\n"
    f = peer.decorate(fresh_function(source, "herd", _body=body_env_sleep))
    start = threading.Barrier(HERD_THREADS + 1)
    results: list[Any] = []

    def caller() -> None:
        start.wait()
        results.append(f(1))

    threads = [threading.Thread(target=caller) for _ in range(HERD_THREADS)]
    for t in threads:
        t.start()
    start.wait()
    t0 = perf_counter_ns()
    for t in threads:
        t.join()
    wall = perf_counter_ns() - t0
    if len(results) != HERD_THREADS:
        raise RuntimeError(f"only {len(results)} of {HERD_THREADS} callers returned")
    return wall, len(runs), len({id(v) for v in results})
