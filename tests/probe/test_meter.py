"""The Meter: one pipeline for every driver; records' own export clocks; uptime zero."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cache.config import CacheConfig
from core.packets import FrameBatch, PacketTable
from core.records import EndReason, RecordTable
from exporter.formats import OFFLINE_BOOT_LEAD_NS, ExportConfig, offline_boot_ns
from exporter.session import ExportSession
from exporter.sinks import MemorySink
from exporter.v9 import V9Decoder, V9Exporter
from probe.live.source import CaptureStats, LiveSource
from probe.meter.live import meter_live
from probe.meter.meter import Meter
from probe.meter.offline import gathered, meter_captures, meter_files
from probe.meter.sampling import SamplingConfig, SamplingMode
from probe.sources.capture import Capture, first_time_ns, frame_batches, open_captures
from tests.captures import NS_PER_S, T0_NS, pcap_file, udp_frames
from tests.reference_engine import table_rows

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
CONFIG = CacheConfig(15.0, 1800.0, 4096)


def rows(tables: list[RecordTable]) -> list[tuple[int, ...]]:
    table = RecordTable.concat(tables) if tables else RecordTable.empty(0)
    return sorted(table_rows(table, list(RecordTable.DTYPES)))


def feed_file(meter: Meter, path: Path, batch_frames: int = 4096) -> None:
    capture = Capture(str(path), batch_frames)
    try:
        for frames in frame_batches(capture, meter.counters.damage.append):
            meter.feed(frames)
    finally:
        capture.close()


def fed(
    path: Path, batch_frames: int, sampling: SamplingConfig | None = None
) -> tuple[Meter, list[RecordTable]]:
    got: list[RecordTable] = []
    meter = Meter(CONFIG, got.append, sampling)
    feed_file(meter, path, batch_frames)
    meter.finish()
    return meter, got


def three_frames(tmp_path: Path) -> Path:
    path = tmp_path / "three.pcap"
    path.write_bytes(pcap_file(udp_frames(3)))
    return path


@pytest.mark.parametrize("sample", sorted(p.name for p in SAMPLES.glob("*.pcap*")))
def test_feeding_a_meter_in_small_batches_gives_what_the_offline_driver_gives(sample: str) -> None:
    path = SAMPLES / sample
    offline: list[RecordTable] = []
    counters = meter_files([path], CONFIG, offline.append)
    meter, records = fed(path, batch_frames=7)
    assert rows(records) == rows(offline)
    assert meter.counters.frames == counters.frames
    assert meter.counters.records == counters.records == sum(len(t) for t in offline)
    assert np.array_equal(meter.counters.by_reason, counters.by_reason)
    assert meter.counters.peak_open_flows == counters.peak_open_flows


def test_sampling_happens_in_the_meter_as_in_the_offline_driver() -> None:
    path = SAMPLES / "synflood.pcap"
    sampling = SamplingConfig(SamplingMode.DETERMINISTIC, 7)
    offline: list[RecordTable] = []
    counters = meter_files([path], CONFIG, offline.append, sampling=sampling)
    meter, records = fed(path, batch_frames=5, sampling=sampling)
    assert meter.counters.selected == counters.selected < counters.frames
    assert rows(records) == rows(offline)


def test_a_tick_ends_idle_records_and_never_moves_the_clock_back(tmp_path: Path) -> None:
    got: list[RecordTable] = []
    meter = Meter(CONFIG, got.append)
    feed_file(meter, three_frames(tmp_path))
    clock = meter.cache.clock_ns
    meter.tick(clock - 10 * NS_PER_S)
    assert meter.cache.clock_ns == clock
    assert not got
    open_flows = meter.cache.open_flows
    meter.tick(clock + 16 * NS_PER_S)
    assert [len(t) for t in got] == [open_flows]
    assert set(got[0].end_reason.tolist()) == {EndReason.IDLE}
    assert meter.cache.open_flows == 0
    assert meter.finish().records == open_flows


def test_records_leave_with_their_own_clock_so_a_gap_of_weeks_in_one_batch_is_exact(
    tmp_path: Path,
) -> None:
    """Two flows 60 days apart in one batch: the first goes out when it went idle, not
    60 days later (more than the 2^32 ms a v9 uptime can reach back)."""
    gap_ns = 60 * 86_400 * NS_PER_S
    path = tmp_path / "gap.pcap"
    path.write_bytes(pcap_file(udp_frames(2, step_ns=gap_ns)))
    memory = MemorySink()
    session = ExportSession(V9Exporter(ExportConfig(boot_ns=offline_boot_ns(T0_NS))), [memory])
    meter = Meter(CONFIG, session)
    feed_file(meter, path)
    meter.finish()
    decoder = V9Decoder()
    decoded = [decoder.decode(datagram, "probe") for datagram in memory.datagrams]
    export_s = [int(d.header["unix_secs"]) for d in decoded]
    idle_at_ns = T0_NS + 15 * NS_PER_S + 1  # v9 headers: whole seconds, rounded up
    assert export_s == [-(-idle_at_ns // NS_PER_S), -(-(T0_NS + gap_ns) // NS_PER_S)]
    first_ms = [int(d.records.first_ns[0]) // 1_000_000 for d in decoded]
    assert first_ms == [T0_NS // 1_000_000, (T0_NS + gap_ns) // 1_000_000]


def test_uptime_zero_is_the_configured_boot_and_an_idle_tick_first_does_not_move_it(
    tmp_path: Path,
) -> None:
    started_ns = T0_NS - 60 * NS_PER_S  # the probe started a minute before the first frame
    memory = MemorySink()
    session = ExportSession(V9Exporter(ExportConfig(boot_ns=started_ns)), [memory])
    meter = Meter(CONFIG, session)
    meter.tick(started_ns + NS_PER_S)  # an idle link: the live tick before any frame
    feed_file(meter, three_frames(tmp_path))
    meter.finish(T0_NS + 5 * NS_PER_S)
    decoded = V9Decoder().decode(memory.datagrams[-1], "probe")
    header = decoded.header
    boot_ms = int(header["unix_secs"]) * 1000 - int(header["sys_uptime"])
    assert boot_ms == started_ns // 1_000_000
    assert int(decoded.records.first_ns[0]) // 1_000_000 == T0_NS // 1_000_000


def test_offline_uptime_zero_comes_from_the_first_batch_which_is_still_metered(
    tmp_path: Path,
) -> None:
    path = tmp_path / "late.pcap"
    frames = udp_frames(5, ts0_ns=T0_NS + 7 * NS_PER_S)
    path.write_bytes(pcap_file(frames))
    with open_captures([path], batch_frames=2) as captures:
        assert (
            offline_boot_ns(first_time_ns(captures)) == T0_NS + 7 * NS_PER_S - OFFLINE_BOOT_LEAD_NS
        )
        peeked: list[RecordTable] = []
        counters = meter_captures(captures, CONFIG, peeked.append)
    assert counters.frames == 5
    whole: list[RecordTable] = []
    meter_files([path], CONFIG, whole.append, batch_frames=2)
    assert rows(peeked) == rows(whole)
    assert offline_boot_ns(None) == 0  # no frames: nothing is dated


def test_an_owned_batch_keeps_its_frames_when_the_read_buffer_is_reused() -> None:
    capture = Capture(str(SAMPLES / "web.pcap"), 4)
    try:
        batches = list(frame_batches(capture, pytest.fail))[:3]
        # Every batch of a mapped file views the same map: reused-buffer behaviour is forced below.
        originals = [
            [bytes(b.buf[o : o + c]) for o, c in zip(b.offset, b.caplen, strict=True)]
            for b in batches
        ]
        kept = [b.owned() for b in batches]
    finally:
        capture.close()
    for batch in batches:
        batch.buf[:] = 0  # the old buffer overwritten
    for copy, frames in zip(kept, originals, strict=True):
        assert [
            bytes(copy.buf[o : o + c]) for o, c in zip(copy.offset, copy.caplen, strict=True)
        ] == frames
        assert len(copy.buf) < sum(len(f) + 16 for f in frames) + 1  # the span, not the file
    assert (
        len(
            FrameBatch(
                np.zeros(0, np.uint8),
                *[
                    np.zeros(0, t)
                    for t in (np.int64, np.uint32, np.uint32, np.int64, np.uint16, np.uint32)
                ],
            ).owned()
        )
        == 0
    )


class ScriptedSource:
    """A live back end that delivers the batches it was given, then says its interface went away."""

    drain_wait_s = 0.01

    def __init__(self, batches: list[FrameBatch]) -> None:
        self.batches = batches
        self.error_reported = False

    def wait(self, timeout_s: float) -> bool:
        """Readable while frames remain, then once more (the POLLERR of a vanishing device)."""
        if self.batches:
            return True
        reported, self.error_reported = self.error_reported, True
        return not reported

    def read(self) -> FrameBatch | None:
        return self.batches.pop(0) if self.batches else None

    def vanished(self) -> str | None:
        return None if self.batches else "eth9: interface went away"

    def stats(self) -> CaptureStats:
        return CaptureStats(0, 0, 0)

    def close(self) -> None:
        pass


def test_the_live_driver_meters_any_live_source_and_flushes_when_it_vanishes() -> None:
    path = SAMPLES / "web.pcap"
    capture = Capture(str(path), 16)
    try:
        # Copies: a reader's batches are views of buffers it reuses.
        batches = [b.owned() for b in frame_batches(capture, pytest.fail)]
    finally:
        capture.close()
    frames = sum(len(b) for b in batches)
    source: LiveSource = ScriptedSource(batches)
    live: list[RecordTable] = []
    # No idle tick within the run: the wall clock would end every record of a past capture.
    counters = meter_live(source, CONFIG, live.append, threading.Event(), tick_s=600)
    offline: list[RecordTable] = []
    meter_files([path], CONFIG, offline.append)
    assert counters.damage == ["eth9: interface went away"]
    assert counters.frames == frames > 0
    assert rows(live) == rows(offline)


@settings(max_examples=300, deadline=None)
@given(
    steps=st.lists(st.tuples(st.integers(0, 9), st.integers(0, 3)), max_size=30),
    rows=st.integers(1, 12),
)
def test_gathered_joins_whole_steps_in_order_into_full_batches(
    steps: list[tuple[int, int]], rows: int
) -> None:
    """Steps of (frames observed, table) are joined in order without splitting one; a batch
    holds more than ``rows`` rows only as a single step, and each batch but the last is full:
    at ``rows`` already, or the next step would take it past."""
    tables = []
    for number, (length, unselected) in enumerate(steps):
        table = PacketTable.empty(length)
        table.ts_ns[:] = number  # each row names its step
        tables.append((length + unselected, table))
    out = list(gathered(iter(tables), rows))
    assert np.concatenate([t.ts_ns for _, t in out] or [np.empty(0, np.int64)]).tolist() == [
        number for number, (length, _) in enumerate(steps) for _ in range(length)
    ]
    assert sum(seen for seen, _ in out) == sum(seen for seen, _ in tables)
    in_batch = [set(t.ts_ns.tolist()) for _, t in out]
    for i, numbers in enumerate(in_batch):
        assert not any(numbers & later for later in in_batch[i + 1 :])  # no step split
        if len(out[i][1]) > rows:
            assert len(numbers) == 1
        if i + 1 < len(out) and len(out[i][1]) < rows:
            first_next = min(in_batch[i + 1])
            assert len(out[i][1]) + steps[first_next][0] > rows
