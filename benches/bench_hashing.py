"""Argument hashing, side by side with Streamlit's hasher on the same objects (issue 4).

For each argument it prints the cost of a fastcache cache *hit* (the whole call: bind, hash
every byte, look up) next to Streamlit 1.67's `update_hash` of the same object into its md5
hasher (sampled for large arrays and frames, as Streamlit does), Streamlit's hash of the raw
bytes, and a `memcpy` of the same data into a preallocated buffer. Cases are interleaved and
each figure is the minimum of several repeats. Run:

    python benches/bench_hashing.py [--repeats N]

Needs numpy, pandas and streamlit (`pip install -e ".[bench]"`).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import time
import warnings

import fastcache
import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

from streamlit.runtime.caching.cache_type import CacheType
from streamlit.runtime.caching.hashing import update_hash

MB = 1024 * 1024


def streamlit_hash(value):
    hasher = hashlib.new("md5", usedforsecurity=False)
    update_hash(value, hasher, CacheType.RESOURCE)
    return hasher.digest()


def best_of(func, repeats, number):
    """Minimum seconds per call over `repeats` runs of `number` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(number):
            func()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def fmt(seconds):
    if seconds >= 1e-3:
        return f"{seconds * 1e3:8.2f} ms"
    return f"{seconds * 1e6:8.2f} µs"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    repeats = args.repeats

    @fastcache.cache_resource
    def hit(value):
        return object()

    array = np.random.default_rng(1).random(100 * MB // 8)  # 100 MB of float64
    raw = array.tobytes()  # 100 MB of bytes
    copy_target = np.empty_like(array)
    frame = pd.DataFrame(
        {"x": np.arange(1_000_000, dtype="i8"), "y": np.random.default_rng(2).random(1_000_000)}
    )
    frame_targets = {c: np.empty_like(frame[c].to_numpy()) for c in frame.columns}
    small = ({"a": [1, 2.0, "x"]}, (3, None))

    cases = {
        "numpy 100 MB": {
            "fastcache hit": (lambda: hit(array), 3),
            "streamlit (sampled)": (lambda: streamlit_hash(array), 3),
            "streamlit full bytes": (lambda: streamlit_hash(raw), 1),
            "memcpy": (lambda: np.copyto(copy_target, array), 3),
        },
        "bytes 100 MB": {
            "fastcache hit": (lambda: hit(raw), 3),
            "streamlit full bytes": (lambda: streamlit_hash(raw), 1),
            "memcpy": (lambda: np.copyto(copy_target, np.frombuffer(raw, "f8")), 3),
        },
        "DataFrame 1M x 2": {
            "fastcache hit": (lambda: hit(frame), 5),
            "streamlit (sampled)": (lambda: streamlit_hash(frame), 5),
            "memcpy": (
                lambda: [np.copyto(t, frame[c].to_numpy()) for c, t in frame_targets.items()],
                5,
            ),
        },
        "small ({'a': [1, 2.0, 'x']}, (3, None))": {
            "fastcache hit": (lambda: hit(small), 20_000),
            "streamlit": (lambda: streamlit_hash(small), 2_000),
        },
    }
    for case in cases.values():  # warm up: first misses, imports, page faults
        for func, _ in case.values():
            func()

    results = {name: {label: float("inf") for label in case} for name, case in cases.items()}
    for _ in range(repeats):  # interleaved: every case once per round
        for name, case in cases.items():
            for label, (func, number) in case.items():
                t = best_of(func, 1, number)
                results[name][label] = min(results[name][label], t)

    print(
        f"fastcache argument hashing vs Streamlit {_streamlit_version()} "
        f"(min of {repeats} interleaved rounds)\n"
    )
    for name, timing in results.items():
        print(name)
        for label, t in timing.items():
            print(f"  {label:<22} {fmt(t)}")
        print()

    n, b, d, s = (results[k] for k in cases)
    checks = [
        ("numpy 100 MB: fastcache / memcpy <= 1.5", n["fastcache hit"] / n["memcpy"], 1.5, "<="),
        (
            "numpy 100 MB: Streamlit full bytes / fastcache >= 5",
            n["streamlit full bytes"] / n["fastcache hit"],
            5,
            ">=",
        ),
        ("bytes 100 MB: fastcache / memcpy <= 1.5", b["fastcache hit"] / b["memcpy"], 1.5, "<="),
        (
            "bytes 100 MB: Streamlit full bytes / fastcache >= 5",
            b["streamlit full bytes"] / b["fastcache hit"],
            5,
            ">=",
        ),
        (
            "DataFrame: fastcache / Streamlit sampled <= 0.5",
            d["fastcache hit"] / d["streamlit (sampled)"],
            0.5,
            "<=",
        ),
        ("small: fastcache / Streamlit <= 1/20", s["fastcache hit"] / s["streamlit"], 0.05, "<="),
    ]
    print("targets (issue 4)")
    for label, ratio, target, op in checks:
        ok = ratio <= target if op == "<=" else ratio >= target
        print(f"  {label:<55} {ratio:8.3f}  {'PASS' if ok else 'FAIL'}")


def _streamlit_version():
    import streamlit

    return streamlit.__version__


if __name__ == "__main__":
    main()
