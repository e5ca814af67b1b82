"""The release wheel, built by scripts/wheels from the current sources for the running
Python: a manylinux2014 wheel (glibc 2.17 symbols at most), stripped, carrying the LICENSE
and the project URLs, that installs into a fresh venv and runs the demo on a machine path
without any Rust toolchain.

Building the wheel is a release build of the extension (about half a minute on two idle
cores, a few seconds when scripts/wheels built it before from the same sources)."""

import os
import re
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BUILD_TIMEOUT = 30 * 60  # a bound for a stuck build, far above a build on a busy machine


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheelhouse")
    built = subprocess.run(
        [sys.executable, REPO / "scripts" / "wheels", "--python", sys.executable, "--out", out],
        capture_output=True,
        text=True,
        timeout=BUILD_TIMEOUT,
        check=False,
    )
    assert built.returncode == 0, f"scripts/wheels failed:\n{built.stdout}\n{built.stderr}"
    (path,) = out.glob("*.whl")
    return path


@pytest.fixture(scope="module")
def library(wheel: Path) -> bytes:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".so")]
        return archive.read(name)


def elf_sections(image: bytes) -> list[tuple[str, int, int, int, int]]:
    """(name, type, offset, link, info) of each section of a little-endian ELF64 file, in
    section-index order (`link` is an index into this list)."""
    assert image[:6] == b"\x7fELF\x02\x01", "not a little-endian 64-bit ELF file"
    header = struct.unpack_from("<16sHHIQQQIHHHHHH", image)
    shoff, shentsize, shnum, shstrndx = header[6], header[11], header[12], header[13]
    raw = [struct.unpack_from("<IIQQQQIIQQ", image, shoff + i * shentsize) for i in range(shnum)]
    names_at = raw[shstrndx][4]
    return [(c_string(image, names_at + s[0]), s[1], s[4], s[6], s[7]) for s in raw]


def c_string(image: bytes, start: int) -> str:
    return image[start : image.index(b"\0", start)].decode()


def needed_symbol_versions(image: bytes) -> set[str]:
    """The versions (GLIBC_2.17, ...) that the library asks of the shared libraries it
    links to: the names in its .gnu.version_r section."""
    sections = elf_sections(image)
    (offset, link, count) = next(s[2:] for s in sections if s[0] == ".gnu.version_r")
    strings_at = sections[link][2]
    versions = set()
    for _ in range(count):
        _, aux_count, _, aux, next_need = struct.unpack_from("<HHIII", image, offset)
        at = offset + aux
        for _ in range(aux_count):
            _, _, _, name, next_aux = struct.unpack_from("<IHHII", image, at)
            versions.add(c_string(image, strings_at + name))
            at += next_aux
        offset += next_need
    return versions


def test_wheel_is_tagged_manylinux2014_for_the_running_python(wheel: Path) -> None:
    python = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert wheel.name.endswith(
        f"-{python}-{python}-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"
    ), wheel.name
    with zipfile.ZipFile(wheel) as archive:
        (wheel_file,) = [n for n in archive.namelist() if n.endswith(".dist-info/WHEEL")]
        tags = re.findall(r"^Tag: (\S+)$", archive.read(wheel_file).decode(), re.MULTILINE)
    assert f"{python}-{python}-manylinux_2_17_x86_64" in tags


def test_wheel_library_needs_glibc_2_17_at_most(library: bytes) -> None:
    glibc = {
        tuple(int(part) for part in v.removeprefix("GLIBC_").split("."))
        for v in needed_symbol_versions(library)
        if v.startswith("GLIBC_")
    }
    assert glibc, "the extension asks no GLIBC symbol version at all: the parse is wrong"
    assert max(glibc) <= (2, 17), sorted(glibc)


def test_wheel_library_is_stripped(library: bytes) -> None:
    names = {section[0] for section in elf_sections(library)}
    assert ".text" in names and ".dynsym" in names, sorted(names)
    assert not {n for n in names if n.startswith(".debug")}, sorted(names)
    assert ".symtab" not in names, sorted(names)


def test_wheel_carries_license_and_project_urls(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        (license_file,) = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
        assert archive.read(license_file) == (REPO / "LICENSE").read_bytes()
        (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
        fields = archive.read(metadata).decode().split("\n\n", 1)[0]
    assert "License-Expression: MIT" in fields.splitlines()
    urls = dict(re.findall(r"^Project-URL: ([^,]+), (\S+)$", fields, re.MULTILINE))
    assert sorted(urls) == ["Documentation", "Homepage", "Issues", "Repository"]
    assert all(url.startswith("https://") for url in urls.values()), urls


def env_without_rust() -> dict[str, str]:
    """This process's environment with every PATH folder holding cargo or rustc removed,
    and nothing pointing Python or a build at the repository."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("CARGO", "RUSTUP", "PYO3", "MATURIN", "PYTHON", "VIRTUAL_ENV"))
    }
    folders = os.environ.get("PATH", "").split(os.pathsep)
    env["PATH"] = os.pathsep.join(
        folder
        for folder in folders
        if folder and not any(os.path.exists(os.path.join(folder, t)) for t in ("cargo", "rustc"))
    )
    return env


def test_wheel_installs_and_runs_the_demo_without_a_rust_toolchain(
    wheel: Path, tmp_path: Path
) -> None:
    env = env_without_rust()
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True, env=env, timeout=300)
    python = venv / "bin" / "python"
    elsewhere = tmp_path / "elsewhere"  # outside the repository: no python/ folder to import
    elsewhere.mkdir()

    def run(*args: object) -> str:
        done = subprocess.run(
            [python, *args],
            cwd=elsewhere,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, f"{args} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout

    run("-m", "pip", "install", "--quiet", "--no-index", "--no-deps", wheel)
    seen = run(
        "-c",
        "import shutil, fastcache, fastcache._fastcache as native; "
        "print(shutil.which('cargo'), shutil.which('rustc')); print(native.__file__)",
    ).splitlines()
    assert seen[0] == "None None", "a Rust toolchain is still on the PATH of the venv"
    assert Path(seen[1]).is_relative_to(venv), seen[1]  # the wheel's build, not the repo's
    assert shutil.which("cargo", path=env["PATH"]) is None

    demo = run("-m", "fastcache")
    miss = re.search(r"^miss: first call connects +-> <Connection #1 ", demo, re.MULTILINE)
    hit = re.search(r"^hit: same arguments, same object +-> <Connection #1 ", demo, re.MULTILINE)
    assert miss and hit and miss.start() < hit.start(), demo
