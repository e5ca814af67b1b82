"""The benchmark harness runs end to end (quick mode) and reports every case.

Figures are not asserted here: speed is measured by the benchmark itself, never by the
test suite (the machines are shared and noisy)."""

import json
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent / "benches" / "bench_cache.py"


def test_quick_benchmark_writes_every_case_for_fastcache_and_lru_cache(tmp_path):
    subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--quick",
            "--peers",
            "fastcache,lru_cache",
            "--out",
            str(tmp_path),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    report = json.loads((tmp_path / "benchmarks.json").read_text())
    case_ids = {case["id"] for case in report["cases"]}
    assert {"1", "2", "3", "4", "5", "6", "7", "8", "10a", "10b"} <= case_ids
    hit = next(case for case in report["cases"] if case["id"] == "1")
    assert hit["results"]["fastcache"]["status"] == "ok"
    assert hit["results"]["fastcache"]["ns_per_op"] > 0
    for in_app in ("10a", "10b"):  # measured inside a Streamlit script run
        case = next(case for case in report["cases"] if case["id"] == in_app)
        assert case["results"]["fastcache"]["status"] == "ok"
        assert case["results"]["lru_cache"]["status"] == "n/a"
    herd = next(case for case in report["cases"] if case["id"] == "6")
    assert herd["results"]["fastcache"]["body_runs"] == [1]  # 16 threads, one computation
    assert (tmp_path / "benchmarks.md").read_text().startswith("# Benchmarks")
