"""Instructions per call, counted by callgrind: the hot-path figures that machine noise does
not move.

    python benches/callgrind.py                      # every case, fastcache and lru_cache
    python benches/callgrind.py --cases hit,kw --peers fastcache
    python benches/callgrind.py --keep DIR           # keep callgrind.out files to annotate

Each (case, peer) runs in its own process under `valgrind --tool=callgrind`, twice: with
`--calls` calls and with twice as many. The difference of the two totals divided by the
difference in calls is the cost of one call, with interpreter start-up, imports and warm-up
cancelled out. `PYTHONHASHSEED` is fixed, so a rerun counts the same instructions.

A kept file (`--keep`) of the longer run is what `callgrind_annotate --inclusive=yes` reads;
build with `CARGO_PROFILE_RELEASE_DEBUG=line-tables-only` so Rust frames have names.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable
from itertools import repeat
from pathlib import Path
from typing import Any

LOAD = "def {name}(x, name):\n    return (x, name)\n"
ONE_ARG = "def {name}(x):\n    return x\n"
METHOD = "def {name}(_self, x):\n    return x\n"
RERUN = '''\
import math

{decorator}
def load_model(name, version=1, *, device="cpu"):
    """Load a model: a stand-in for an expensive resource."""
    return (name, version, device, math.pi)
'''

MISS_KEYS = 128
MISS_MAX_ENTRIES = 64

CASES = {
    "hit": 'hit `f(42, "model-a")`',
    "kw": 'hit with keywords `f(x=42, name="model-a")`',
    "ttl": "hit with `ttl=3600, max_entries=1000`",
    "miss": f"miss + insert, {MISS_KEYS} int keys through `max_entries={MISS_MAX_ENTRIES}`",
    "method": "method hit `obj.predict(1)`",
    "rerun": "re-executing a decorated `def` (a rerun), net of the undecorated script",
}
PEERS = ["fastcache", "lru_cache"]


def decorate(peer: str, func: Callable, ttl: float | None = None, max_entries: int | None = None):
    if peer == "lru_cache":
        return functools.lru_cache(maxsize=max_entries)(func)
    import fastcache

    return fastcache.cache_resource(func, ttl=ttl, max_entries=max_entries, show_spinner=False)


def function(source: str) -> Callable:
    namespace: dict[str, Any] = {"__name__": "callgrind_cases"}
    exec(compile(source.format(name="f"), "<callgrind case>", "exec"), namespace)  # noqa: S102
    return namespace["f"]


def workload(case: str, peer: str, workdir: Path) -> Callable[[int], None]:
    """The loop of `case` for `peer`, warmed up."""
    if case in ("hit", "kw", "ttl"):
        ttl, max_entries = (3600, 1000) if case == "ttl" and peer == "fastcache" else (None, None)
        f = decorate(peer, function(LOAD), ttl, max_entries)
        if case == "kw":

            def body(n: int) -> None:
                for _ in repeat(None, n):
                    f(x=42, name="model-a")

        else:

            def body(n: int) -> None:
                for _ in repeat(None, n):
                    f(42, "model-a")

    elif case == "miss":
        f = decorate(peer, function(ONE_ARG), max_entries=MISS_MAX_ENTRIES)
        keys = itertools.cycle(range(MISS_KEYS))

        def body(n: int) -> None:
            for k in itertools.islice(keys, n):
                f(k)

    elif case == "method":
        cls = type("Model", (), {"predict": decorate(peer, function(METHOD))})
        obj = cls()

        def body(n: int) -> None:
            for _ in repeat(None, n):
                obj.predict(1)

    elif case == "rerun":
        line = {
            "lru_cache": "@functools.lru_cache(maxsize=None)",
            "fastcache": "@fastcache.cache_resource(show_spinner=False)",
            "none": "",
        }[peer]
        path = workdir / f"rerun_{peer}.py"
        path.write_text(RERUN.format(decorator=line))
        code = compile(path.read_text(), str(path), "exec")
        import fastcache

        base = {"__name__": "__main__", "functools": functools, "fastcache": fastcache}

        def body(n: int) -> None:
            for _ in repeat(None, n):
                exec(code, dict(base))  # noqa: S102 - a rerun of our own script

    else:
        raise SystemExit(f"unknown case {case!r}; known: {', '.join(CASES)}")
    body(1000)
    return body


def child(case: str, peer: str, calls: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        body = workload(case, peer, Path(tmp))
        body(calls)


def instructions(case: str, peer: str, calls: int, keep: Path | None) -> int:
    """Total instructions of one child process under callgrind."""
    with tempfile.TemporaryDirectory() as tmp:
        out = (keep or Path(tmp)) / f"callgrind.{case}.{peer}.{calls}"
        cmd = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            sys.executable,
            __file__,
            "--child",
            case,
            peer,
            str(calls),
        ]
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed:\n{done.stderr[-2000:]}")
        totals = re.search(r"Collected : (\d+)", done.stderr)
        if totals is None:
            raise SystemExit(f"no total in callgrind's output:\n{done.stderr[-2000:]}")
        return int(totals.group(1))


def self_costs(path: Path) -> dict[str, int]:
    """Self cost of every function in a callgrind file, as callgrind_annotate reports it."""
    done = subprocess.run(
        ["callgrind_annotate", "--auto=no", "--threshold=100", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    costs: dict[str, int] = {}
    for line in done.stdout.splitlines():
        found = re.match(r"\s*([\d,]+) \([^)]*\)\s+(.*)", line)
        if found and "PROGRAM TOTALS" not in line:
            name = re.sub(r"^.*?:", "", found.group(2).split(" [")[0], count=1)
            costs[name] = costs.get(name, 0) + int(found.group(1).replace(",", ""))
    return costs


def per_call_profile(keep: Path, case: str, peer: str, calls: int) -> list[tuple[float, str]]:
    """Per-call self cost by function: the longer run minus the shorter, over the calls."""
    short = self_costs(keep / f"callgrind.{case}.{peer}.{calls}")
    long = self_costs(keep / f"callgrind.{case}.{peer}.{2 * calls}")
    diffs = [((long.get(n, 0) - short.get(n, 0)) / calls, n) for n in set(long) | set(short)]
    return sorted((d for d in diffs if abs(d[0]) >= 0.5), reverse=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", default=",".join(CASES))
    parser.add_argument("--peers", default=",".join(PEERS))
    parser.add_argument("--calls", type=int, default=20_000, help="calls in the shorter run")
    parser.add_argument("--keep", type=Path, default=None, help="keep callgrind.out files here")
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="with --keep: print the N functions costing most per call (self cost)",
    )
    parser.add_argument(
        "--child", nargs=3, metavar=("CASE", "PEER", "CALLS"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        case, peer, calls = args.child
        child(case, peer, int(calls))
        return
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    profiles: dict[tuple[str, str], list[tuple[float, str]]] = {}
    cases = args.cases.split(",")
    peers = args.peers.split(",")
    print(f"| case | {' | '.join(peers)} |")
    print(f"|---|{'---:|' * len(peers)}")
    for case in cases:
        calls = args.calls // 20 if case == "rerun" else args.calls
        row = []
        # A rerun's figure is net of executing the same script without the decorator.
        plain = 0.0
        if case == "rerun":
            short = instructions(case, "none", calls, args.keep)
            plain = (instructions(case, "none", 2 * calls, args.keep) - short) / calls
        for peer in peers:
            short = instructions(case, peer, calls, args.keep)
            long = instructions(case, peer, 2 * calls, args.keep)
            row.append(f"{(long - short) / calls - plain:,.0f}")
            if args.profile:
                assert args.keep is not None, "--profile needs --keep"
                profiles[(case, peer)] = per_call_profile(args.keep, case, peer, calls)
        print(f"| {CASES[case]} | {' | '.join(row)} |", flush=True)
    for (case, peer), lines in profiles.items():
        print(f"\n{case}, {peer}: instructions per call by function (self cost)")
        for cost, name in lines[: args.profile]:
            print(f"{cost:10,.1f}  {name}")


if __name__ == "__main__":
    main()
