"""No unused crate: every dependency in Cargo.toml is used by the code it is declared for
(`[dependencies]` by src/, `[dev-dependencies]` by the benches and tests, and an optional
dependency that only a bench's feature turns on — never part of the module — by the
benches)."""

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


def _optional(crate: str) -> bool:
    spec = MANIFEST["dependencies"][crate]
    return isinstance(spec, dict) and spec.get("optional", False)


@pytest.mark.parametrize("crate", sorted(c for c in MANIFEST["dependencies"] if not _optional(c)))
def test_every_dependency_is_used_in_src(crate):
    assert _uses(_rust_sources("src"), crate), f"{crate} is declared in Cargo.toml but unused"


@pytest.mark.parametrize("crate", sorted(c for c in MANIFEST["dependencies"] if _optional(c)))
def test_every_optional_dependency_is_only_for_benches(crate):
    assert _uses(_rust_sources("benches"), crate), f"{crate} is declared but unused"
    assert not _uses(_rust_sources("src"), crate), f"{crate} is optional but the module uses it"
    features = [f for f, deps in MANIFEST.get("features", {}).items() if f"dep:{crate}" in deps]
    benches = MANIFEST.get("bench", [])
    assert features and all(
        any(f in bench.get("required-features", []) for bench in benches) for f in features
    ), f"{crate}'s feature should be what a bench requires"


@pytest.mark.parametrize("crate", sorted(MANIFEST.get("dev-dependencies", {})))
def test_every_dev_dependency_is_used_by_benches_or_tests(crate):
    assert _uses(_rust_sources("benches", "src"), crate), f"{crate} is declared but unused"
