"""Check that ``spanflow convert`` writes byte-identical CSV records here and at another git revision.

``python tests/bench/same_records.py [--against REV] [--bench]``. REV (any git
revision; default origin/main when it exists, else HEAD~1) is checked out in a
temporary ``git worktree add --detach``, removed again whatever happens. Both
trees convert the same inputs with the same venv python, each importing its own
code (cwd and PYTHONPATH set to the tree; the CLI is ``probe.cli.main:main``
in the stage layout, ``probe.cli:main`` before it): every capture in samples/,
web+vlan+ipv6 merged in one run, synflood sampled (random 1 in 10, seed 3), and
bench-out/bench-2000000p-seed1.pcap when present (``--bench`` makes it when it is
missing). One line per case; the exit status is 1 when any case differs or fails.
The current tree is the working tree as it is, uncommitted changes included.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "samples"
BENCH_CAPTURE = REPO / "bench-out" / "bench-2000000p-seed1.pcap"
RUN_TIMEOUT_S = 1800.0
GIT_TIMEOUT_S = 120.0
# Run one tree's CLI: its own code first on sys.path, whichever layout it has.
CLI = """
import os, sys
sys.argv[0] = "spanflow"
try:
    from probe.cli.main import main
except ModuleNotFoundError:
    from probe.cli import main
import probe
tree = os.path.realpath(os.environ["SAME_RECORDS_TREE"])
assert os.path.realpath(probe.__file__).startswith(tree + os.sep), (probe.__file__, tree)
main()
"""


@dataclass(frozen=True, slots=True)
class Case:
    """One conversion: a name for the report, the captures, extra convert options."""

    name: str
    captures: tuple[Path, ...]
    options: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Output:
    """What one tree wrote for one case: the CSV bytes, or why there are none."""

    data: bytes | None
    error: str = ""


def git(*args: str) -> str:
    """git's stdout in the repository; raises on a non-zero exit."""
    done = subprocess.run(
        ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=True
    )
    return done.stdout.strip()


def default_revision() -> str:
    """origin/main when this clone has it, else HEAD~1."""
    found = subprocess.run(
        ["git", "rev-parse", "--verify", "-q", "origin/main^{commit}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=GIT_TIMEOUT_S,
        check=False,
    )
    return "origin/main" if found.returncode == 0 else "HEAD~1"


def cases(bench: bool) -> list[Case]:
    """Every sample alone, three merged, one sampled run, and the benchmark capture if there."""
    samples = sorted(p for p in SAMPLES.iterdir() if p.suffix in (".pcap", ".pcapng"))
    found = [Case(path.name, (path,)) for path in samples]
    found.append(
        Case("web+vlan+ipv6 merged", tuple(SAMPLES / f"{n}.pcap" for n in ("web", "vlan", "ipv6")))
    )
    found.append(
        Case(
            "synflood.pcap sampled random 1:10 seed 3",
            (SAMPLES / "synflood.pcap",),
            ("--sampling", "random", "--sampling-rate", "10", "--seed", "3"),
        )
    )
    if bench and not BENCH_CAPTURE.exists():
        print(f"making {BENCH_CAPTURE.relative_to(REPO)} ...", flush=True)
        BENCH_CAPTURE.parent.mkdir(exist_ok=True)
        subprocess.run(
            [
                sys.executable,
                str(REPO / "tests" / "bench" / "make_capture.py"),
                str(BENCH_CAPTURE),
                "--packets",
                "2000000",
                "--seed",
                "1",
            ],
            cwd=REPO,
            stdout=subprocess.DEVNULL,
            timeout=RUN_TIMEOUT_S,
            check=True,
        )
    if BENCH_CAPTURE.exists():
        found.append(Case(BENCH_CAPTURE.name, (BENCH_CAPTURE,)))
    return found


def convert(tree: Path, case: Case, out: Path) -> Output:
    """Run ``tree``'s ``spanflow convert`` for ``case`` into ``out``; its bytes or the error."""
    env = {**os.environ, "PYTHONPATH": str(tree), "SAME_RECORDS_TREE": str(tree)}
    argv = [
        sys.executable,
        "-c",
        CLI,
        "convert",
        *map(str, case.captures),
        *case.options,
        "-o",
        str(out),
        "-q",
    ]
    try:
        done = subprocess.run(
            argv,
            cwd=tree,
            env=env,
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT_S,
            check=False,
        )
    except subprocess.TimeoutExpired:
        return Output(None, f"no result within {RUN_TIMEOUT_S:.0f} s")
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        return Output(None, f"exit status {done.returncode}: {last}")
    return Output(out.read_bytes())


def first_difference(ours: bytes, theirs: bytes) -> str:
    """Line number and both versions of the first line that differs."""
    mine, other = ours.splitlines(), theirs.splitlines()
    for number, (a, b) in enumerate(zip(mine, other, strict=False), start=1):
        if a != b:
            return f"line {number}: here {a.decode(errors='replace')!r}, there {b.decode(errors='replace')!r}"
    return f"here {len(mine)} lines, there {len(other)} lines"


def compare(revision: str, bench: bool) -> int:
    """Convert every case in both trees, print one line per case; 1 when any is not the same."""
    commit = git("rev-parse", "--verify", f"{revision}^{{commit}}")
    todo = cases(bench)
    with tempfile.TemporaryDirectory(prefix="same-records-") as scratch:
        work = Path(scratch)
        tree = work / "tree"
        git("worktree", "add", "--detach", str(tree), commit)
        try:
            print(f"here: {REPO} (working tree)  there: {revision} = {commit[:12]} in {tree}")
            print(
                "note: numba caches kernels per source path, so the first run in the "
                "temporary tree compiles them (tens of seconds)",
                flush=True,
            )
            bad = 0
            for index, case in enumerate(todo):
                here = convert(REPO, case, work / f"here-{index}.csv")
                there = convert(tree, case, work / f"there-{index}.csv")
                if here.data is None or there.data is None:
                    bad += 1
                    why = here.error if here.data is None else there.error
                    side = "here" if here.data is None else "there"
                    print(f"FAILED  {case.name}  {side}: {why}", flush=True)
                elif here.data == there.data:
                    digest = hashlib.sha256(here.data).hexdigest()[:16]
                    rows = max(here.data.count(b"\n") - 1, 0)  # less the header line
                    print(f"same  {case.name}  {digest}  {rows} rows", flush=True)
                else:
                    bad += 1
                    print(
                        f"DIFFERENT  {case.name}  {first_difference(here.data, there.data)}",
                        flush=True,
                    )
        finally:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(tree)],
                cwd=REPO,
                capture_output=True,
                timeout=GIT_TIMEOUT_S,
                check=False,
            )
            subprocess.run(
                ["git", "worktree", "prune"],
                cwd=REPO,
                capture_output=True,
                timeout=GIT_TIMEOUT_S,
                check=False,
            )
    print(f"{len(todo) - bad} of {len(todo)} cases byte-identical")
    return 1 if bad else 0


def main() -> int:
    """Parse the options and compare."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--against",
        default=None,
        help="git revision to compare with (default: origin/main, else HEAD~1)",
    )
    parser.add_argument(
        "--bench",
        action="store_true",
        help=f"make {BENCH_CAPTURE.relative_to(REPO)} when it is missing",
    )
    args = parser.parse_args()
    return compare(args.against or default_revision(), args.bench)


if __name__ == "__main__":
    sys.exit(main())
