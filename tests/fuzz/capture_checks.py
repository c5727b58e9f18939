"""What reading any capture file must do: no traceback, one located message, the intact frames.

Expected frames come from ``tests.ground_truth.captured_frames`` (dpkt's pcap
reader; a struct reader for pcapng), never from spanflow's readers.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from cache.config import CacheConfig
from core.errors import InputError
from core.records import RecordTable
from probe.meter.offline import meter_files
from probe.sources.capture import Capture, frame_batches
from tests.cli_runs import convert, stderr_lines
from tests.fuzz.capture_cases import PACKET_KINDS, PCAP_HEADER, CaptureCase, layout
from tests.fuzz.interpreted import interpreted_walkers
from tests.ground_truth import captured_frames

OFFSET = re.compile(r"at byte offset (\d+)")
GZIP_MAGIC = b"\x1f\x8b"
FrameRow = tuple[int, int, int, bytes]  # ts_ns, linktype, ifindex, captured bytes


@dataclass(slots=True)
class ReadOutcome:
    frames: list[FrameRow] = field(default_factory=list)
    at_open: str | None = None  # the InputError raised while opening
    damage: list[str] = field(default_factory=list)  # reported while reading

    @property
    def messages(self) -> list[str]:
        return [self.at_open] if self.at_open is not None else self.damage


def read_capture(path: Path, batch_frames: int) -> ReadOutcome:
    """Every frame the readers yield, with what they reported (tests may go per frame)."""
    outcome = ReadOutcome()
    try:
        capture = Capture(str(path), batch_frames)
    except InputError as exc:
        outcome.at_open = str(exc)
        return outcome
    try:
        for batch in frame_batches(capture, outcome.damage.append):
            for i in range(len(batch)):
                start, size = int(batch.offset[i]), int(batch.caplen[i])
                outcome.frames.append((
                    int(batch.ts_ns[i]), int(batch.linktype[i]), int(batch.ifindex[i]),
                    batch.buf[start : start + size].tobytes(),
                ))  # fmt: skip
    finally:
        capture.close()
    return outcome


def first_difference(a: bytes, b: bytes) -> int:
    """Index of the first byte where ``a`` and ``b`` differ (the shorter length if none)."""
    n = min(len(a), len(b))
    differ = np.flatnonzero(np.frombuffer(a, np.uint8, n) != np.frombuffer(b, np.uint8, n))
    return int(differ[0]) if len(differ) else n


def check_capture(
    case: CaptureCase, path: Path, batch_frames: int, cli: bool = False
) -> ReadOutcome:
    """Read ``case.data`` from ``path`` every way and check all that is known of it."""
    path.write_bytes(case.data)
    got = read_capture(path, batch_frames)
    with interpreted_walkers():
        assert read_capture(path, batch_frames) == got, "compiled and interpreted walkers differ"
    for message in got.messages:
        assert message.startswith(f"{path}: "), message
    assert len(got.damage) <= 1, got.damage

    lay, intact = layout(case.reference), first_difference(case.reference, case.data)
    if got.at_open is not None:
        assert intact < (4 if lay.pcapng else PCAP_HEADER), got.at_open
    intact_blocks = [b for b in lay.blocks if b.end <= intact]
    for message in got.damage:
        where = OFFSET.search(message)
        assert where is not None, message
        offset = int(where[1])
        header = PCAP_HEADER if not lay.pcapng and intact >= PCAP_HEADER else 0
        assert offset >= (intact_blocks[-1].end if intact_blocks else header), message
        if case.data[:2] != GZIP_MAGIC:
            assert offset <= len(case.data), message
    reference_path = path.with_name(path.name + ".reference")
    reference_path.write_bytes(case.reference)
    expected = [
        (ts, lt & 0xFFFF, ifx, data) for ts, lt, ifx, data in captured_frames(reference_path)
    ]
    known = sum(b.kind in PACKET_KINDS for b in intact_blocks)
    assert got.frames[:known] == expected[:known], "a frame before the damage was lost or changed"
    if case.data == case.reference:
        assert got.messages == []
        assert got.frames == expected
    if case.damage_at is not None:
        [message] = got.damage
        assert message.endswith(f"at byte offset {case.damage_at}"), message
        before = sum(b.kind in PACKET_KINDS and b.end <= case.damage_at for b in lay.blocks)
        assert got.frames == expected[:before]
    metered = check_meter(path, got)
    if cli:
        check_cli(path, got, metered)
    return got


def check_meter(path: Path, got: ReadOutcome) -> int:
    """The metering loop sees the frames the readers gave and meters every decodable one;
    returns how many it metered."""
    parts: list[RecordTable] = []
    if got.at_open is not None:
        with pytest.raises(InputError, match=re.escape(got.at_open)):
            meter_files([path], CacheConfig(), parts.append)
        return 0
    counters = meter_files([path], CacheConfig(), parts.append, batch_frames=64)
    assert counters.damage == got.damage
    assert counters.frames == counters.selected == len(got.frames)
    assert int(counters.by_reason.sum()) == counters.frames
    assert int(RecordTable.concat(parts).packets.sum()) == counters.decoded
    return counters.decoded


def check_cli(path: Path, got: ReadOutcome, metered: int) -> None:
    """``spanflow convert`` exits 0 on clean input, 1 with one located line on damage."""
    out = path.with_suffix(".csv")
    result = convert(path, "-o", out)
    assert result.exit_code == (1 if got.messages else 0), result.stderr
    lines = stderr_lines(result)
    for message in got.messages:
        assert f"spanflow: error: {message}" in lines
    if got.at_open is None:
        with out.open(newline="") as rows:
            packets = sum(int(row["packets"]) for row in csv.DictReader(rows))
        assert packets == metered
