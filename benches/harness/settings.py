"""Where the run writes, and how long it samples: the full run or the quick smoke test."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent.parent
DOCS = REPO / "docs"


@dataclass
class Settings:
    quick: bool
    sample_ns: int  # aim of one timed sample
    repeats: int  # samples per (case, peer) for per-call cases
    herd_repeats: int
    herd_sleep: float  # seconds the herd's function body sleeps
    big_bytes: int  # size of the array and the bytes of case 9
    frame_rows: int  # rows of the DataFrame of case 9
    big_repeats: int  # samples per peer for the large-argument cases

    @classmethod
    def full(cls) -> Settings:
        return cls(
            quick=False,
            sample_ns=20_000_000,
            repeats=25,
            herd_repeats=3,
            herd_sleep=0.2,
            big_bytes=100 * 1024 * 1024,
            frame_rows=1_000_000,
            big_repeats=3,
        )

    @classmethod
    def quick_run(cls) -> Settings:
        return cls(
            quick=True,
            sample_ns=1_000_000,
            repeats=2,
            herd_repeats=1,
            herd_sleep=0.2,
            big_bytes=1024 * 1024,
            frame_rows=10_000,
            big_repeats=1,
        )
