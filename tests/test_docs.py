"""The reference documentation: every public object has a docstring, `help()` names every
parameter of `cache_resource`, and the README and the pages it links to point only at
files that exist in the repository."""

from __future__ import annotations

import functools
import inspect
import os
import pydoc
import re
from pathlib import Path

import fastcache
import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", ROOT / "ARCHITECTURE.md", *sorted((ROOT / "docs").glob("*.md"))]

DECORATOR_PARAMETERS = [
    "func",
    "ttl",
    "max_entries",
    "show_spinner",
    "show_time",
    "validate",
    "hash_funcs",
    "on_release",
    "scope",
    "refresh_mode",
]


def _help(obj: object) -> str:
    return pydoc.render_doc(obj, renderer=pydoc.plaintext)


def test_help_on_cache_resource_documents_every_parameter():
    text = _help(fastcache.cache_resource)
    for name in DECORATOR_PARAMETERS:
        # Each parameter has its own entry in the Parameters section: its name alone on a
        # line, followed by what it does.
        assert re.search(rf"^\s*\|?\s*{name}:\s*$", text, re.MULTILINE), (
            f"help() does not describe {name}"
        )
    assert "Clear every entry of every cached function" in text


def test_the_documented_parameters_are_the_signature():
    documented = list(inspect.signature(fastcache.cache_resource).parameters)
    assert documented == DECORATOR_PARAMETERS


@pytest.mark.parametrize("name", fastcache.__all__)
def test_every_public_object_has_a_docstring(name):
    obj = getattr(fastcache, name)
    if name == "BoundCachedMethod":
        # Its `__doc__` is a property that returns the bound function's docstring; the
        # class is described by its methods.
        doc = fastcache.BoundCachedMethod.clear.__doc__
    else:
        doc = obj.__doc__
    assert isinstance(doc, str) and doc.strip(), f"fastcache.{name} has no docstring"


@pytest.mark.parametrize("method", ["clear", "cache_clear", "cache_info", "cache_parameters"])
def test_cached_function_methods_have_docstrings(method):
    for cls in (fastcache.CachedFunction, fastcache.BoundCachedMethod):
        doc = getattr(cls, method).__doc__
        assert doc and doc.strip(), f"{cls.__name__}.{method} has no docstring"


def test_help_on_a_cached_function_shows_the_functions_own_doc():
    @fastcache.cache_resource
    def documented(url):
        """Opens the connection to url."""

    assert "Opens the connection to url." in _help(documented)


# --- links and paths in the documentation ------------------------------------------------

_LINK = re.compile(r"\]\(([^)\s]+)\)")
_CODE = re.compile(r"`([^`\n]+)`")
_PATH_WORD = re.compile(r"^\.?[A-Za-z_][\w.-]*(/[\w.-]+)*/?$")
_TOP_LEVEL = {p.name for p in ROOT.iterdir() if not p.name.startswith(".git")}


def _looks_like_a_repo_path(word: str) -> bool:
    """`docs/api.md`, `tests/typing/`, `ARCHITECTURE.md`: a path whose first part is
    something at the top of the repository, or a file name with a file's extension."""
    if not _PATH_WORD.match(word) or "://" in word:
        return False
    first = word.split("/", 1)[0]
    if "/" in word:
        return first in _TOP_LEVEL or first in {"src", "python", "tests", "docs", "benches"}
    return bool(re.fullmatch(r"[A-Za-z_][\w-]*\.(md|toml|lock|rs|pyi)", word))


@functools.cache
def _tracked_file_names() -> set[str]:
    # Pruned while walking: target/ and the venvs hold hundreds of thousands of files.
    skip = {".git", ".venv", ".venvs", "target", "node_modules"}
    names = set()
    for folder, subfolders, files in os.walk(ROOT):
        subfolders[:] = [d for d in subfolders if d not in skip]
        names.update(files)
    return names


def _references(page: Path) -> list[str]:
    text = page.read_text()
    found = [m.group(1) for m in _LINK.finditer(text)]
    for code in _CODE.finditer(text):
        found.extend(word for word in code.group(1).split() if _looks_like_a_repo_path(word))
    return found


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_link_and_path_in_the_documentation_exists(page):
    missing = []
    for ref in _references(page):
        if ref.startswith(("http://", "https://", "mailto:", "#")):
            continue
        target = ref.split("#", 1)[0]
        # Links are relative to the page; paths in code are relative to the repository; a
        # bare file name (`mod.rs` in a sentence about a folder) must exist somewhere in it.
        if (page.parent / target).exists() or (ROOT / target).exists():
            continue
        if "/" not in target and target in _tracked_file_names():
            continue
        missing.append(ref)
    assert missing == [], f"{page.name} names what is not in the repository: {missing}"


def test_the_readme_links_the_reference_pages():
    links = set(_LINK.findall((ROOT / "README.md").read_text()))
    assert {"docs/behaviour.md", "docs/api.md", "ARCHITECTURE.md"} <= links


def test_the_readme_names_no_document_outside_the_repository():
    text = (ROOT / "README.md").read_text()
    assert "SPEC" not in text
    assert not re.search(r"\bthe \w+ issue\b", text), "names an issue tracker entry"
