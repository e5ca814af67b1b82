"""The type stubs and the package's annotations agree with the code (mypy's stubtest and
type check): a native method added, renamed or re-signed without its stub fails here."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run_mypy_tool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        check=False,  # the tests assert on the return code with the tool's output
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_native_module_matches_its_stub():
    result = run_mypy_tool(
        "mypy.stubtest",
        "fastcache._fastcache",
        "--allowlist",
        str(ROOT / "tests" / "stubtest_allowlist.txt"),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_package_type_checks():
    result = run_mypy_tool("mypy", "python/fastcache")
    assert result.returncode == 0, result.stdout + result.stderr
