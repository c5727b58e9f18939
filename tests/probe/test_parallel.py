"""Parallel conversion: slices metered apart and merged give exactly the records of one pass.

Every test compares with ``meter_files`` (the single pass) record for record,
end reasons and export clocks included, through the real slice tasks and merge.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import dpkt
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cache.config import CacheConfig
from cache.hashing import hash_keys
from cache.keys import KEY_FIELDS, _number_keys, key_ids
from core.records import EndedRecords, RecordTable
from probe.meter.offline import meter_files
from probe.meter.parallel import ParallelPlan, meter_in_parallel
from probe.meter.slice_merge import MergeReport
from tests.captures import (
    PCAP_HEADER_BYTES,
    T0_NS,
    Frame,
    ethernet,
    ipv4_tcp,
    ipv4_udp,
    pcap_file,
    pcap_record,
)
from tests.reference_engine import table_rows

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
Row = tuple[int, ...]


def rows(parts: list[EndedRecords]) -> list[Row]:
    table = EndedRecords.concat(parts)
    return sorted(table_rows(table, list(EndedRecords.DTYPES)))


def one_pass(paths: list[Path], config: CacheConfig) -> list[Row]:
    out: list[EndedRecords] = []
    meter_files(paths, config, out.append)
    return rows(out)


def in_slices(
    paths: list[Path], config: CacheConfig, slice_bytes: int
) -> tuple[list[Row], MergeReport]:
    out: list[EndedRecords] = []
    plan = ParallelPlan(jobs=1, slice_bytes=slice_bytes)
    counters, report = meter_in_parallel([str(p) for p in paths], config, out.append, plan)
    assert counters.records == len(rows(out))
    return rows(out), report


# ---- hypothesis: random streams cut at random byte boundaries ----

HOSTS = ["198.18.0.1", "198.18.0.2", "198.18.0.3"]
FLAGS = [0x02, 0x10, 0x18, 0x10, 0x10, 0x11, 0x04]  # some FIN, some RST


@st.composite
def streams(draw: st.DrawFn) -> tuple[CacheConfig, list[Frame]]:
    """A few flows whose packets come at gaps bunched around both timeouts, some late."""
    inactive = draw(st.sampled_from([2_000, 5_000, 15 * 10**9]))
    active = draw(st.sampled_from([7_000, 20_000, 1800 * 10**9]))
    max_flows = draw(st.sampled_from([2, 3, 65536, 65536]))
    config = CacheConfig(inactive / 1e9, active / 1e9, max_flows)
    edges = [0, 1, inactive - 1, inactive, inactive + 1, active - 1, active + 1]
    steps = st.one_of(st.sampled_from(edges * 4 + [-1, -inactive - 1]), st.integers(0, 2 * active))
    keys = st.tuples(st.sampled_from(HOSTS), st.integers(1, 3), st.booleans())
    t, frames = T0_NS, []
    for _ in range(draw(st.integers(1, 90))):
        t += draw(steps)
        src, port, is_tcp = draw(keys)
        if is_tcp:
            l3 = ipv4_tcp(src, "198.18.1.1", 1000 + port, 80, draw(st.sampled_from(FLAGS)), b"x")
        else:
            l3 = ipv4_udp(src, "198.18.1.1", 2000 + port, 53, b"q" * draw(st.integers(1, 40)))
        frames.append(Frame(ethernet(l3, dpkt.ethernet.ETH_TYPE_IP), t))
    return config, frames


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=streams(), slice_bytes=st.integers(60, 1500))
def test_any_cut_of_any_stream_merges_into_the_records_of_one_pass(
    case: tuple[CacheConfig, list[Frame]], slice_bytes: int
) -> None:
    config, frames = case
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.pcap"
        path.write_bytes(pcap_file(frames, nanos=True))
        merged, report = in_slices([path], config, slice_bytes)
        assert merged == one_pass([path], config)
    assert report.slices >= 1


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=streams(), slice_bytes=st.integers(60, 1500))
def test_records_keep_their_first_packets_attributes_across_any_cut(
    case: tuple[CacheConfig, list[Frame]], slice_bytes: int
) -> None:
    """--fields: every packet has its own source MAC, so only the first packet's may stay."""
    config, frames = case
    config = dataclasses.replace(config, attributes=True)
    frames = [
        dataclasses.replace(frame, data=frame.data[:6] + i.to_bytes(6, "big") + frame.data[12:])
        for i, frame in enumerate(frames, start=1)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.pcap"
        path.write_bytes(pcap_file(frames, nanos=True))
        merged, _ = in_slices([path], config, slice_bytes)
        assert merged == one_pass([path], config)
    assert all(row[-2] for row in merged)  # every record carries its words


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=streams(), slice_bytes=st.integers(60, 1500), macs=st.lists(st.integers(1, 2)))
def test_key_mac_records_merge_across_any_cut(
    case: tuple[CacheConfig, list[Frame]], slice_bytes: int, macs: list[int]
) -> None:
    """--key-mac: packets of one 5-tuple from two source MACs are two keys in every slice."""
    config, frames = case
    config = dataclasses.replace(config, key_mac=True)
    frames = [
        dataclasses.replace(frame, data=frame.data[:6] + bytes(5) + bytes([mac]) + frame.data[12:])
        for frame, mac in zip(frames, macs + [1] * len(frames), strict=False)
    ]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "stream.pcap"
        path.write_bytes(pcap_file(frames, nanos=True))
        merged, _ = in_slices([path], config, slice_bytes)
        assert merged == one_pass([path], config)


def test_a_slice_whose_first_frame_is_older_than_the_clock_is_metered_again(
    tmp_path: Path,
) -> None:
    """Found by hypothesis: no record left open, yet the slice's clock would lag one pass's."""
    l3 = ipv4_tcp("198.18.0.1", "198.18.1.1", 1001, 80, 0x11, b"x")  # FIN: nothing stays open
    frames = [Frame(ethernet(l3, 0x0800), T0_NS), Frame(ethernet(l3, 0x0800), T0_NS - 1)]
    path = tmp_path / "late.pcap"
    path.write_bytes(pcap_file(frames, nanos=True))
    config = CacheConfig()
    merged, report = in_slices([path], config, 60)
    assert [why.split(": ", 1)[1] for why in report.remetered] == [
        "a frame older than the previous slices' latest"
    ]
    assert merged == one_pass([path], config)


def test_records_left_open_out_of_time_order_are_metered_on_not_replayed(
    tmp_path: Path,
) -> None:
    """Found by hypothesis: A at t, B twice at t - 1, A at t + inactive. One pass's LRU has A
    before B, so A's last packet scans A only and B is still open at the end (forced); a
    replay of A's packet, whose final idle scan then met B, ended B idle."""
    config = CacheConfig(2e-06, 7e-06, 3)

    def frame(src: str, t: int) -> Frame:
        return Frame(ethernet(ipv4_udp(src, "198.18.1.1", 2001, 53, b"q"), 0x0800), t)

    frames = [frame("198.18.0.2", T0_NS), frame("198.18.0.1", T0_NS - 1),
              frame("198.18.0.1", T0_NS - 1), frame("198.18.0.2", T0_NS + 2000)]  # fmt: skip
    path = tmp_path / "back.pcap"
    path.write_bytes(pcap_file(frames, nanos=True))
    merged, report = in_slices([path], config, 60)
    assert merged == one_pass([path], config)
    assert any("out of time order" in why for why in report.remetered)


# ---- the samples, cut fine ----


@pytest.mark.parametrize(
    "name", ["web.pcap", "aliasing.pcap", "slowscan.pcap", "synflood.pcap", "dnstunnel.pcap"]
)
@pytest.mark.parametrize("active_s", [1800.0, 3.0])
def test_samples_cut_into_many_slices_give_the_records_of_one_pass(
    name: str, active_s: float
) -> None:
    config = CacheConfig(active_timeout_s=active_s)
    merged, report = in_slices([SAMPLES / name], config, 3000)
    assert report.slices > 3
    assert merged == one_pass([SAMPLES / name], config)


def test_a_key_left_open_across_slices_is_replayed_packet_by_packet_when_it_can_split() -> None:
    """With a short active timeout the summed shortcut cannot hold: packets are replayed."""
    config = CacheConfig(active_timeout_s=2.0)
    merged, report = in_slices([SAMPLES / "web.pcap"], config, 4000)
    assert report.replayed_packets > 0
    assert merged == one_pass([SAMPLES / "web.pcap"], config)


def test_a_cache_that_fills_makes_the_merge_meter_again_in_order() -> None:
    config = CacheConfig(max_flows=50)
    merged, report = in_slices([SAMPLES / "synflood.pcap"], config, 20_000)
    assert report.remetered
    assert all("cache" in why for why in report.remetered)
    assert merged == one_pass([SAMPLES / "synflood.pcap"], config)


def test_files_in_time_order_are_one_stream_across_the_file_boundary(tmp_path: Path) -> None:
    """A flow that crosses a file rotation stays one record, as in one pass."""
    frames = [
        Frame(ethernet(ipv4_udp("198.18.0.1", "198.18.1.1", 4000, 53, b"q"), 0x0800), T0_NS + i)
        for i in range(0, 40 * 10**9, 10**9)
    ]
    first, second = tmp_path / "a.pcap", tmp_path / "b.pcap"
    first.write_bytes(pcap_file(frames[:20], nanos=True))
    second.write_bytes(pcap_file(frames[20:], nanos=True))
    config = CacheConfig()
    merged, report = in_slices([second, first], config, 10**9)  # named out of order
    assert report.slices == 2
    assert not report.overlapping
    assert merged == one_pass([first, second], config)
    assert len(merged) == 1


def test_overlapping_files_are_reported(tmp_path: Path) -> None:
    a = [Frame(ethernet(ipv4_udp("198.18.0.1", "198.18.1.1", 1, 2, b"q"), 0x0800), T0_NS + i)
         for i in range(0, 10 * 10**9, 10**9)]  # fmt: skip
    b = [Frame(ethernet(ipv4_udp("198.18.0.2", "198.18.1.1", 1, 2, b"q"), 0x0800), T0_NS + i)
         for i in range(5 * 10**8, 10 * 10**9, 10**9)]  # fmt: skip
    (tmp_path / "a.pcap").write_bytes(pcap_file(a, nanos=True))
    (tmp_path / "b.pcap").write_bytes(pcap_file(b, nanos=True))
    _, report = in_slices([tmp_path / "a.pcap", tmp_path / "b.pcap"], CacheConfig(), 10**9)
    assert report.overlapping == [str(tmp_path / "b.pcap")]


def test_a_slice_start_found_inside_a_payload_is_caught_and_metered_again(tmp_path: Path) -> None:
    """A captured download of a pcap file looks like records: the chain check catches it."""
    fake = b"".join(
        pcap_record(Frame(b"\xee" * 30, T0_NS + 5 * 10**9 + i)) for i in range(12)
    )  # a chain of plausible records, inside one packet's payload
    frames = []
    for i in range(30):
        payload = fake if i == 10 else b"q" * 40
        l3 = ipv4_udp("198.18.0.1", "198.18.1.1", 5000 + i % 3, 53, payload)
        frames.append(Frame(ethernet(l3, 0x0800), T0_NS + i * 10**8))
    path = tmp_path / "download.pcap"
    data = pcap_file(frames, nanos=False)
    path.write_bytes(data)
    cut = data.index(fake) - 10 - PCAP_HEADER_BYTES  # the first slice ends inside the payload
    config = CacheConfig()
    merged, report = in_slices([path], config, cut)
    assert any("not where the previous slice ended" in why for why in report.remetered)
    assert merged == one_pass([path], config)


def test_a_damaged_slice_is_reported_and_the_others_still_count(tmp_path: Path) -> None:
    frames = [
        Frame(ethernet(ipv4_udp("198.18.0.1", "198.18.1.1", 6000 + i, 53, b"q" * 40), 0x0800),
              T0_NS + i * 10**8)
        for i in range(60)
    ]  # fmt: skip
    data = bytearray(pcap_file(frames))
    bad_at = PCAP_HEADER_BYTES + 30 * (16 + len(frames[0].data))
    data[bad_at + 8 : bad_at + 12] = (10**7).to_bytes(4, "little")  # an impossible caplen
    path = tmp_path / "damaged.pcap"
    path.write_bytes(bytes(data))
    out: list[EndedRecords] = []
    counters, _ = meter_in_parallel(
        [str(path)], CacheConfig(), out.append, ParallelPlan(slice_bytes=1000)
    )
    assert any(f"byte offset {bad_at}" in line for line in counters.damage)
    metered = sum(int(r.packets.sum()) for r in out)
    assert 30 <= metered < 60  # everything before the damage, and the slices after it


# ---- key ids ----


def test_key_ids_tell_keys_apart_even_when_every_hash_collides() -> None:
    records = RecordTable.empty(6)
    records.sport[:] = [1, 2, 1, 3, 2, 1]
    records.vlan[:] = [0, 0, 5, 0, 0, 0]
    columns = [np.asarray(getattr(records, name), RecordTable.DTYPES[name]) for name in KEY_FIELDS]
    exact = key_ids([records], key_vlan=True)[0]
    collided = _number_keys(np.zeros(6, np.uint64), *columns, *[np.zeros(6, np.uint64)] * 2)
    assert exact.tolist() == collided.tolist() == [0, 1, 2, 3, 1, 0]
    without_vlan = key_ids([records], key_vlan=False)[0]
    assert without_vlan.tolist() == [0, 1, 0, 2, 1, 0]
    assert len(set(hash_keys(*columns, True).tolist())) == 4  # type: ignore[call-arg]
