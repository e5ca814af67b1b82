"""How a sample is taken: the clock, the GC kept out of the way, loops sized to about
`sample_ns`, and every peer sampled interleaved, in an order rotated on each repeat."""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Any

from harness.peers import NotExpressible, Peer
from harness.results import Cell, Unsupported
from harness.settings import Settings

# The clock of single-thread samples: wall time by default; `--clock cpu` reads this
# thread's CPU time instead, which a busy machine (a build next door) disturbs far less.
# Threaded cases (5, 6) always use wall time.
sample_clock = time.perf_counter_ns


def use_cpu_clock(cpu: bool) -> None:
    """Single-thread samples read this thread's CPU time (True) or wall time (False)."""
    global sample_clock
    sample_clock = time.thread_time_ns if cpu else time.perf_counter_ns


def quiet_gc() -> None:
    """Collects, then freezes what survives: the next collections only look at new
    objects, so collecting before every sample stays cheap with big modules loaded."""
    gc.collect()
    gc.freeze()


def timed(body: Callable[[int], Any], n: int) -> int:
    """Nanoseconds for `body(n)`, with the cyclic GC out of the way (as timeit does)."""
    gc.collect()
    gc.disable()
    clock = sample_clock
    try:
        start = clock()
        body(n)
        return clock() - start
    finally:
        gc.enable()


def calibrate(body: Callable[[int], Any], target_ns: int) -> int:
    """Operations per sample so that one sample takes about `target_ns`."""
    n = 1
    while True:
        elapsed = timed(body, n)
        if elapsed >= target_ns // 10 or n >= 10**8:
            break
        n *= 10
    return max(1, round(n * target_ns / max(elapsed, 1)))


def rotated(items: list, shift: int) -> list:
    shift %= max(len(items), 1)
    return items[shift:] + items[:shift]


def run_interleaved(
    runners: dict[str, Callable[[int], Any]], settings: Settings, repeats: int
) -> dict[str, list[float]]:
    """Samples every runner `repeats` times, interleaved; ns per operation."""
    quiet_gc()
    sizes = {name: calibrate(body, settings.sample_ns) for name, body in runners.items()}
    samples: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for r in range(repeats):
        for name in rotated(names, r):
            n = sizes[name]
            samples[name].append(timed(runners[name], n) / n)
    return samples


def prepare(peers: list[Peer], make: Callable[[Peer], Callable[[int], Any]]):
    """Runs `make` for every peer; failures become n/a / unsupported / error cells."""
    runners: dict[str, Callable[[int], Any]] = {}
    cells: dict[str, Cell] = {}
    for peer in peers:
        if peer.missing:
            cells[peer.name] = Cell("missing", peer.missing)
            continue
        try:
            runners[peer.name] = make(peer)
            cells[peer.name] = Cell("ok")
        except NotExpressible as exc:
            cells[peer.name] = Cell("n/a", str(exc))
        except Unsupported as exc:
            cells[peer.name] = Cell("unsupported", str(exc))
        except Exception as exc:  # noqa: BLE001 - a peer that breaks must not stop the others
            cells[peer.name] = Cell("error", f"{type(exc).__name__}: {exc}")
    return runners, cells


def per_call_case(
    peers: list[Peer], settings: Settings, make: Callable[[Peer], Callable[[int], Any]]
) -> dict[str, Cell]:
    """The cells of a single-thread case: every peer's loop, sampled interleaved."""
    runners, cells = prepare(peers, make)
    samples = run_interleaved(runners, settings, settings.repeats)
    for name, values in samples.items():
        cells[name].samples = values
    return cells
