"""spanflow's packet and octet totals against tshark's on every capture in a directory (``make corpus``).

``python tests/bench/run_corpus.py DIR [--jobs N] [--timeout S] [--json OUT]``
(``make corpus CORPUS=DIR``). Every ``*.pcap``, ``*.pcapng`` and ``*.cap``
under DIR (recursively) goes through ``spanflow.convert`` (defaults: outer
headers) in a child process, and through tshark, with reassembly off so each
fragment and segment stands alone as in a probe. tshark's count is the
outermost IP header of each frame: the first ``ip`` / ``ipv6`` layer in
``frame.protocols`` (as in tests/test_encapsulation_samples.py), its octets
the IPv4 total length or 40 + the IPv6 payload length; frames without an IP
layer count nothing, and frames whose fields do not parse are skipped (and
counted). Each file is one of:

    exact              same packets and octets (also when both see no IP at all)
    differ             the totals disagree: both printed
    refused            spanflow raised its InputError / ConfigError: the reason
    crashed            the spanflow child died, or ran past --timeout: last line of stderr
    tshark unreadable  tshark failed or timed out without dissecting a single frame

One line is printed per non-exact file, then the count per class; ``--json``
writes every file's figures. The exit status is 0 whatever the results, 2
when DIR holds no captures or tshark is not installed.

Corpora of real (and deliberately malformed) captures:
``git clone https://github.com/the-tcpdump-group/tcpdump`` and pass its
``tests/`` directory (about 830 captures), or Wireshark's sample captures
(https://wiki.wireshark.org/SampleCaptures).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXTENSIONS = (".pcap", ".pcapng", ".cap")
DEFAULT_TIMEOUT_S = 60.0
DEFAULT_JOBS = 2
CLASSES = ("exact", "differ", "refused", "crashed", "tshark unreadable")
# Per-frame dissection, no reassembly: each fragment and segment stands alone as in a probe.
TSHARK_PREFS = [
    "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
    "-o", "tcp.desegment_tcp_streams:FALSE",
]  # fmt: skip
TSHARK_FIELDS = ["frame.protocols", "ip.len", "ipv6.plen"]
IPV6_HEADER = 40
WARM_UP_SAMPLE = REPO / "samples" / "web.pcap"
WARM_UP_TIMEOUT_S = 900.0  # compiling every kernel from cold, on a loaded machine

# Runs in the child: one JSON line on stdout, a SpanflowError reported as a refusal.
CHILD = """\
import json, sys
import spanflow
from core.errors import SpanflowError
try:
    flows = spanflow.convert(sys.argv[1])
except SpanflowError as exc:
    print(json.dumps({"refused": str(exc)}))
else:
    records = flows.records
    print(json.dumps({
        "packets": int(records.packets.sum()), "octets": int(records.octets.sum()),
        "frames": flows.stats.get("frames", 0), "decoded": flows.stats.get("decoded", 0),
        "damage": flows.damage,
    }))
"""


@dataclass(slots=True)
class Result:
    """One capture's figures and class; ``detail`` is the reason or the note printed."""

    path: str
    kind: str = "exact"
    detail: str = ""
    spanflow_packets: int | None = None
    spanflow_octets: int | None = None
    spanflow_frames: int | None = None
    spanflow_decoded: int | None = None
    damage: list[str] = field(default_factory=list)
    tshark_packets: int | None = None
    tshark_octets: int | None = None
    tshark_frames: int | None = None
    tshark_skipped: int = 0  # frames with an IP layer whose length did not parse
    tshark_note: str = ""  # tshark's complaint when it stopped early (e.g. a cut-short file)
    seconds: float = 0.0


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _first_int(column: str) -> int | None:
    value = column.split(",", 1)[0].strip()
    try:
        return int(value) if value else None
    except ValueError:
        return None


def run_tshark(path: Path, timeout: float, result: Result) -> None:
    """Fill in tshark's totals over the outermost IP headers, or classify the file unreadable."""
    command = ["tshark", "-n", "-r", str(path), *TSHARK_PREFS, "-T", "fields"]
    command += ["-E", "occurrence=f", "-E", "header=n", "-E", "separator=/t"]
    for name in TSHARK_FIELDS:
        command += ["-e", name]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, errors="replace", timeout=timeout, check=False
        )
    except subprocess.TimeoutExpired:
        result.kind, result.detail = "tshark unreadable", f"tshark timed out after {timeout:g} s"
        return
    lines = done.stdout.splitlines()
    if done.returncode != 0:
        note = _last_line(done.stderr) or f"exit status {done.returncode}"
        if not lines:
            result.kind, result.detail = "tshark unreadable", note
            return
        result.tshark_note = note
    packets = octets = skipped = 0
    for line in lines:
        columns = line.split("\t") + [""] * len(TSHARK_FIELDS)
        protocols = columns[0].split(":")
        outer = next((p for p in protocols if p in ("ip", "ipv6")), None)
        if outer is None:
            continue
        length = _first_int(columns[1] if outer == "ip" else columns[2])
        if length is None:
            skipped += 1
            continue
        packets += 1
        octets += length if outer == "ip" else IPV6_HEADER + length
    result.tshark_packets, result.tshark_octets = packets, octets
    result.tshark_frames, result.tshark_skipped = len(lines), skipped


def run_spanflow(path: Path, timeout: float, result: Result) -> None:
    """Fill in spanflow's totals from a child process, or classify the file refused / crashed."""
    command = [sys.executable, "-c", CHILD, str(path)]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, errors="replace", timeout=timeout,
            cwd=REPO, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:
        result.kind, result.detail = "crashed", f"timed out after {timeout:g} s"
        return
    if done.returncode != 0:
        reason = _last_line(done.stderr)
        if done.returncode < 0:
            reason = f"killed by signal {-done.returncode}" + (f" ({reason})" if reason else "")
        result.kind, result.detail = "crashed", reason or f"exit status {done.returncode}"
        return
    try:
        report = json.loads(_last_line(done.stdout))
    except json.JSONDecodeError:
        result.kind, result.detail = "crashed", f"no report: {_last_line(done.stdout)!r}"
        return
    if "refused" in report:
        reason = str(report["refused"])
        result.kind = "refused"
        result.detail = reason.removeprefix(f"{path}: ").splitlines()[0] if reason else "?"
        return
    result.spanflow_packets, result.spanflow_octets = report["packets"], report["octets"]
    result.spanflow_frames, result.spanflow_decoded = report["frames"], report["decoded"]
    result.damage = list(report["damage"])


def check_file(path: Path, root: Path, timeout: float) -> Result:
    """One capture through both counters, classified."""
    started = time.perf_counter()
    result = Result(str(path.relative_to(root)))
    run_spanflow(path, timeout, result)
    if result.kind == "exact":
        run_tshark(path, timeout, result)
    if result.kind == "exact":
        same = (result.spanflow_packets, result.spanflow_octets) == (
            result.tshark_packets,
            result.tshark_octets,
        )
        if not same:
            result.kind = "differ"
            result.detail = (
                f"spanflow {result.spanflow_packets} pkts {result.spanflow_octets} B"
                f" / tshark {result.tshark_packets} pkts {result.tshark_octets} B"
            )
        elif result.tshark_packets == 0:
            result.detail = "no IP"
        notes = [f"tshark skipped {result.tshark_skipped} frames"] if result.tshark_skipped else []
        notes += [f"tshark: {result.tshark_note}"] if result.tshark_note else []
        notes += [f"damage: {'; '.join(result.damage)}"] if result.damage else []
        if notes and result.kind == "differ":
            result.detail += " (" + "; ".join(notes) + ")"
    result.seconds = round(time.perf_counter() - started, 3)
    return result


def find_captures(root: Path) -> list[Path]:
    return sorted(
        p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in EXTENSIONS
    )  # fmt: skip


def warm_up(capture: Path) -> None:
    """One convert before the campaign, so numba's kernel cache is filled once, not per child.

    Otherwise, after a change to a kernel, every child compiles on its own and the
    first files run past --timeout.
    """
    sample = WARM_UP_SAMPLE if WARM_UP_SAMPLE.is_file() else capture
    run_spanflow(sample, WARM_UP_TIMEOUT_S, Result(str(sample)))


def run_all(captures: list[Path], root: Path, jobs: int, timeout: float) -> list[Result]:
    warm_up(captures[0])
    results: list[Result] = []
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        futures = [pool.submit(check_file, path, root, timeout) for path in captures]
        for done, future in enumerate(futures, 1):
            results.append(future.result())
            if sys.stderr.isatty() and (done % 25 == 0 or done == len(futures)):
                print(f"\r{done}/{len(futures)} files", end="", file=sys.stderr, flush=True)
    if sys.stderr.isatty():
        print(file=sys.stderr)
    return results


def report(results: list[Result]) -> None:
    for result in results:
        if result.kind != "exact":
            print(f"{result.kind:<17}  {result.path}: {result.detail}")
    kinds = Counter(result.kind for result in results)
    no_ip = sum(1 for r in results if r.kind == "exact" and r.tshark_packets == 0)
    print()
    print(f"{'class':<18}{'files':>6}")
    for kind in CLASSES:
        extra = f"  ({no_ip} with no IP in either)" if kind == "exact" and no_ip else ""
        print(f"{kind:<18}{kinds[kind]:>6}{extra}")
    print(f"{'total':<18}{len(results):>6}")
    refusals = Counter(r.detail for r in results if r.kind == "refused")
    if refusals:
        print()
        print("refused, by reason:")
        for reason, count in refusals.most_common():
            print(f"  {count:>4}  {reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    parser.add_argument("directory", nargs="?", default="", help="directory of captures")
    parser.add_argument("--jobs", type=int, default=DEFAULT_JOBS, help="files checked at once")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT_S, help="seconds per tshark / convert"
    )
    parser.add_argument("--json", type=Path, default=None, help="write per-file results here")
    args = parser.parse_args(argv)
    if not args.directory:
        print("run_corpus: no corpus directory given (make corpus CORPUS=DIR)", file=sys.stderr)
        return 2
    if shutil.which("tshark") is None:
        print("run_corpus: tshark is not installed (apt-get install tshark)", file=sys.stderr)
        return 2
    root = Path(args.directory)
    captures = find_captures(root) if root.is_dir() else []
    if not captures:
        print(f"run_corpus: no *.pcap, *.pcapng or *.cap files under {root}", file=sys.stderr)
        return 2
    results = run_all(captures, root, max(1, args.jobs), args.timeout)
    report(results)
    if args.json is not None:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
