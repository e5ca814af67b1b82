"""What ran where: the machine's CPU, and which fastcache build was measured."""

from __future__ import annotations

import platform
from pathlib import Path
from typing import Any

from harness.peers import Peer
from harness.settings import REPO


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def fastcache_build(peers: list[Peer]) -> dict[str, Any]:
    """Where the measured fastcache came from: its files, and the repository's commit."""
    info: dict[str, Any] = {}
    for peer in peers:
        if peer.name == "fastcache" and peer.mod is not None:
            info["module"] = str(Path(peer.mod.__file__).parent)
    try:
        import subprocess

        def git(*cmd: str) -> str:
            return subprocess.run(
                ["git", *cmd], cwd=REPO, capture_output=True, text=True, check=True
            ).stdout.strip()

        info["repo_commit"] = git("rev-parse", "--short", "HEAD")
        info["repo_dirty"] = bool(git("status", "--porcelain", "--untracked-files=no"))
    except (OSError, subprocess.CalledProcessError):
        pass
    return info
