"""No unused crate: every dependency in Cargo.toml is used by the code it is declared for
(`[dependencies]` by src/, `[dev-dependencies]` by the benches and tests)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = tomllib.loads((ROOT / "Cargo.toml").read_text())


def _rust_sources(*folders: str) -> str:
    return "\n".join(
        path.read_text() for folder in folders for path in sorted((ROOT / folder).rglob("*.rs"))
    )


def _uses(source: str, crate: str) -> bool:
    name = crate.replace("-", "_")
    return re.search(rf"\b{name}::|\buse {name}\b|\bextern crate {name}\b", source) is not None


@pytest.mark.parametrize("crate", sorted(MANIFEST["dependencies"]))
def test_every_dependency_is_used_in_src(crate):
    assert _uses(_rust_sources("src"), crate), f"{crate} is declared in Cargo.toml but unused"


@pytest.mark.parametrize("crate", sorted(MANIFEST.get("dev-dependencies", {})))
def test_every_dev_dependency_is_used_by_benches_or_tests(crate):
    assert _uses(_rust_sources("benches", "src"), crate), f"{crate} is declared but unused"
