"""The source tree shows the architecture: the engine is plain Rust, and no two source
files import each other (each can be read and changed on its own)."""

from __future__ import annotations

import ast
import re
from itertools import combinations
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"
PACKAGE = REPO / "python" / "fastcache"


def _rust_module_path(path: Path) -> tuple[str, ...]:
    parts = path.relative_to(SRC).with_suffix("").parts
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def _rust_files() -> dict[tuple[str, ...], Path]:
    return {_rust_module_path(p): p for p in SRC.rglob("*.rs")}


def _rust_imports(path: Path, modules: dict[tuple[str, ...], Path]) -> set[Path]:
    """The other source files `path` names in `crate::…` or `super::…` paths."""
    here = _rust_module_path(path)
    parent = here if path.name == "mod.rs" else here[:-1]
    found = set()
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("//"):
            continue
        for match in re.finditer(r"\b(crate|super)((?:::\w+)+)", line):
            base = (
                ()
                if match.group(1) == "crate"
                else parent[:-1]
                if path.name == "mod.rs"
                else parent
            )
            names = tuple(match.group(2).strip(":").split("::"))
            # The longest prefix that is a file is the module imported from.
            for n in range(len(names), 0, -1):
                target = modules.get(base + names[:n])
                if target is not None and target != path:
                    found.add(target)
                    break
    return found


def _python_imports(path: Path) -> set[Path]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        for name in names:
            if name.startswith("fastcache."):
                target = PACKAGE / (name.split(".", 1)[1].replace(".", "/") + ".py")
                if target.exists() and target != path:
                    found.add(target)
    return found


def test_engine_mentions_no_pyo3_and_no_bindings():
    engine = list((SRC / "engine").glob("*.rs"))
    assert len(engine) >= 7
    for path in engine:
        code = path.read_text()
        assert "pyo3" not in code.lower(), path
        assert "crate::bindings" not in code, path


def test_no_two_rust_files_import_each_other():
    modules = _rust_files()
    imports = {path: _rust_imports(path, modules) for path in modules.values()}
    assert imports[SRC / "bindings" / "wrapper.rs"], "the import scan found nothing"
    mutual = [
        (a.relative_to(REPO), b.relative_to(REPO))
        for a, b in combinations(imports, 2)
        if b in imports[a] and a in imports[b]
    ]
    assert mutual == []


def test_no_two_python_modules_import_each_other():
    files = list(PACKAGE.glob("*.py"))
    imports = {path: _python_imports(path) for path in files}
    assert imports[PACKAGE / "_decorator.py"], "the import scan found nothing"
    mutual = [
        (a.name, b.name) for a, b in combinations(imports, 2) if b in imports[a] and a in imports[b]
    ]
    assert mutual == []
