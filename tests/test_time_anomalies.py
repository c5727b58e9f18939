"""Captures whose clocks misbehave: backwards jumps, years ahead, zero, repeats, merged files.

The documented behaviour: every packet is counted in exactly one record; a
record's first_ns is its earliest and last_ns its latest packet (never a
negative duration); a packet more than the inactive timeout behind the clock
still counts, in a record of its own when its flow's record already ended.
"""

from __future__ import annotations

import csv
from pathlib import Path

from typer.testing import CliRunner

from probe.cli.main import app
from tests.captures import Frame, ethernet, ipv4_udp, pcap_file

S = 1_000_000_000
T0 = 1_767_225_600 * S  # 2026-01-01 00:00:00 UTC
YEAR = 365 * 86_400 * S
UDP = ethernet(ipv4_udp("198.18.0.1", "198.18.0.2", 5000, 53, b"q" * 20), 0x0800)
OCTETS = 20 + 8 + 20  # IPv4 header, UDP header, payload


def convert(
    tmp_path: Path, *captures: list[Frame], extra: tuple[str, ...] = ()
) -> list[dict[str, str]]:
    paths = []
    for index, frames in enumerate(captures):
        path = tmp_path / f"in{index}.pcap"
        path.write_bytes(pcap_file(frames))
        paths.append(str(path))
    out = tmp_path / "flows.csv"
    result = CliRunner().invoke(app, ["convert", *paths, "-o", str(out), "-q", *extra])
    assert result.exit_code == 0, result.output + result.stderr
    with out.open() as handle:
        return list(csv.DictReader(handle))


def timeline(*offsets_ns: int) -> list[Frame]:
    return [Frame(UDP, T0 + offset) for offset in offsets_ns]


def check_conserved(rows: list[dict[str, str]], frames: int) -> None:
    assert sum(int(r["packets"]) for r in rows) == frames
    assert sum(int(r["octets"]) for r in rows) == frames * OCTETS
    assert all(int(r["first_ns"]) <= int(r["last_ns"]) for r in rows)


def test_backwards_jump_within_timeout_joins(tmp_path: Path) -> None:
    """A packet 5 s older than the one before joins its flow; first is the earliest time."""
    rows = convert(tmp_path, timeline(10 * S, 5 * S, 11 * S))
    check_conserved(rows, 3)
    assert [(int(r["first_ns"]) - T0, int(r["last_ns"]) - T0, r["packets"]) for r in rows] == [
        (5 * S, 11 * S, "3")
    ]


def test_backwards_jump_of_an_hour_joins_the_open_record(tmp_path: Path) -> None:
    """A packet an hour older than its open record joins it (rules 2 and 3 compare with the
    record's own last and first times); first moves back an hour, so the next packet finds
    the record older than the active timeout and ends it."""
    rows = convert(tmp_path, timeline(3600 * S, 0, 3601 * S))
    check_conserved(rows, 3)
    assert [(int(r["first_ns"]) - T0, int(r["last_ns"]) - T0, r["packets"], r["end_reason"])
            for r in rows] == [(0, 3600 * S, "2", "active"), (3601 * S, 3601 * S, "1", "forced")]  # fmt: skip


def test_backwards_jump_after_the_record_ended(tmp_path: Path) -> None:
    """A late packet whose flow already ended idle opens a record of its own."""
    other = ethernet(ipv4_udp("198.18.0.9", "198.18.0.2", 6000, 53, b"q" * 20), 0x0800)
    frames = [Frame(UDP, T0), Frame(other, T0 + 100 * S), Frame(UDP, T0 + 50 * S)]
    rows = convert(tmp_path, frames)
    check_conserved(rows, 3)
    assert sorted((int(r["first_ns"]) - T0, r["src"], r["end_reason"]) for r in rows) == [
        (0, "198.18.0.1", "idle"), (50 * S, "198.18.0.1", "forced"), (100 * S, "198.18.0.9", "forced"),
    ]  # fmt: skip


def test_years_ahead_then_back(tmp_path: Path) -> None:
    """A timestamp ten years ahead ends the flow idle; later normal packets still count."""
    rows = convert(tmp_path, timeline(0, 1 * S, 10 * YEAR, 2 * S, 3 * S))
    check_conserved(rows, 5)
    assert max(int(r["last_ns"]) for r in rows) == T0 + 10 * YEAR


def test_zero_and_repeated_timestamps(tmp_path: Path) -> None:
    """Time zero (1970) and repeated identical times neither crash nor lose packets."""
    frames = [Frame(UDP, 0), Frame(UDP, 0), *timeline(0, 0, 0, 1)]
    rows = convert(tmp_path, frames)
    check_conserved(rows, 6)
    assert min(int(r["first_ns"]) for r in rows) == 0


def test_files_merged_out_of_order(tmp_path: Path) -> None:
    """Two files given newest first are merged in time order into one flow."""
    late, early = timeline(20 * S, 21 * S), timeline(10 * S, 11 * S)
    rows = convert(tmp_path, late, early, extra=("--inactive", "60"))
    check_conserved(rows, 4)
    assert [(int(r["first_ns"]) - T0, int(r["last_ns"]) - T0) for r in rows] == [(10 * S, 21 * S)]
