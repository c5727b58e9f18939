"""Merging several captures in time order: exact, stable, and independent of how each was cut."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import dpkt
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cache.config import CacheConfig
from core.packets import PacketTable
from core.records import EndReason, RecordTable
from probe.meter.merge import merge_in_time
from probe.meter.offline import meter_files
from tests.captures import (
    T0_NS,
    Frame,
    ethernet,
    ipv4_tcp,
    pcap_file,
    pcap_record_starts,
    traffic,
)

Row = tuple[int, int, int, int]  # (ts_ns, source, row, ip_len)


def table(source: int, ts: list[int], first_row: int) -> PacketTable:
    """Rows of one source marked with their source (sport), row number (dport) and a check column."""
    rows = np.arange(first_row, first_row + len(ts))
    packets = PacketTable.empty(len(ts))
    packets.ts_ns[:] = ts
    packets.sport[:] = source
    packets.dport[:] = rows
    packets.ip_len[:] = rows * 10 + source
    return packets


def cut(source: int, ts: list[int], cuts: list[int]) -> Iterator[PacketTable]:
    """The source's rows as tables split before each index in ``cuts`` (repeats make empty tables).

    A source with no rows and no cuts yields no table at all.
    """
    if not ts and not cuts:
        return
    bounds = [0, *cuts, len(ts)]
    for lo, hi in itertools.pairwise(bounds):
        yield table(source, ts[lo:hi], lo)


def merged(sources: list[list[int]], cuts: list[list[int]]) -> list[Row]:
    streams = [cut(s, ts, c) for s, (ts, c) in enumerate(zip(sources, cuts, strict=True))]
    rows: list[Row] = []
    for packets in merge_in_time(streams):
        rows.extend(
            zip(
                packets.ts_ns.tolist(), packets.sport.tolist(), packets.dport.tolist(),
                packets.ip_len.tolist(), strict=True,
            )
        )  # fmt: skip
    return rows


def expected(sources: list[list[int]]) -> list[Row]:
    """Stable sort by (running maximum of the source's times, source index, row), in plain Python."""
    keyed = []
    for s, ts in enumerate(sources):
        running = None
        for r, t in enumerate(ts):
            running = t if running is None else max(running, t)
            keyed.append(((running, s, r), (t, s, r, r * 10 + s)))
    return [row for _, row in sorted(keyed)]


times = st.lists(st.integers(T0_NS, T0_NS + 12), max_size=25)


@st.composite
def cut_sources(draw: st.DrawFn, allow_empty: bool) -> tuple[list[list[int]], list[list[int]]]:
    sources = draw(st.lists(times, min_size=1, max_size=4))
    cuts = []
    for ts in sources:
        if allow_empty:
            points = draw(st.lists(st.integers(0, len(ts)), max_size=6))
        else:
            points = draw(st.lists(st.integers(1, max(len(ts) - 1, 1)), max_size=6, unique=True))
            points = [p for p in points if 0 < p < len(ts)]
        cuts.append(sorted(points))
    return sources, cuts


class TestMergeInTime:
    def test_interleaves_sorted_sources(self) -> None:
        """Two sorted sources come out in time order, ties to the source named first."""
        sources = [[T0_NS + 1, T0_NS + 3, T0_NS + 5], [T0_NS + 2, T0_NS + 3, T0_NS + 4]]
        assert [(s, r) for _, s, r, _ in merged(sources, [[1], [2]])] == [
            (0, 0), (1, 0), (0, 1), (1, 1), (1, 2), (0, 2),
        ]  # fmt: skip

    def test_out_of_order_rows_keep_their_source_order(self) -> None:
        """A row earlier than its predecessor stays behind it: its key is the running maximum."""
        sources = [[T0_NS + 10, T0_NS + 2, T0_NS + 11], [T0_NS + 5, T0_NS + 10, T0_NS + 10]]
        assert [(s, r) for _, s, r, _ in merged(sources, [[], [1]])] == [
            (1, 0), (0, 0), (0, 1), (1, 1), (1, 2), (0, 2),
        ]  # fmt: skip

    def test_source_ending_early(self) -> None:
        """A source that runs out first no longer holds the others back."""
        sources = [[T0_NS + 1], [T0_NS + 2, T0_NS + 3, T0_NS + 4, T0_NS + 5]]
        assert merged(sources, [[], [1, 2, 3]]) == expected(sources)

    def test_source_with_no_tables(self) -> None:
        """A source that yields no table at all is simply absent from the merge."""
        sources = [[T0_NS + 3, T0_NS + 1], [], [T0_NS + 2]]
        assert merged(sources, [[1], [], []]) == expected(sources)

    def test_sources_with_empty_tables(self) -> None:
        """Empty tables anywhere in a source change nothing."""
        sources = [[T0_NS + 3, T0_NS + 1, T0_NS + 7], [], [T0_NS + 2, T0_NS + 5]]
        cuts = [[0, 0, 2, 3], [0], [1, 1]]
        assert merged(sources, cuts) == expected(sources)

    def test_single_source_passes_through(self) -> None:
        """One source comes out in its own order, out-of-order rows included."""
        sources = [[T0_NS + 5, T0_NS + 1, T0_NS + 5, T0_NS]]
        assert merged(sources, [[2]]) == expected(sources)
        assert [r for _, _, r, _ in merged(sources, [[2]])] == [0, 1, 2, 3]

    @settings(max_examples=300, deadline=None)
    @given(cut_sources(allow_empty=False), cut_sources(allow_empty=False))
    def test_any_cut_gives_the_stable_sort(
        self,
        first: tuple[list[list[int]], list[list[int]]],
        second: tuple[list[list[int]], list[list[int]]],
    ) -> None:
        """Whatever the times (ties, out of order) and cuts, the merge is the oracle's stable sort."""
        sources, cuts = first
        assert merged(sources, cuts) == expected(sources)
        other_cuts = [
            [p for p in c if p < len(ts)] for c, ts in zip(second[1], sources, strict=False)
        ]
        other_cuts += [[] for _ in range(len(sources) - len(other_cuts))]
        assert merged(sources, other_cuts) == merged(sources, cuts)

    @settings(max_examples=200, deadline=None)
    @given(cut_sources(allow_empty=True))
    def test_any_cut_with_empty_tables_gives_the_stable_sort(
        self, case: tuple[list[list[int]], list[list[int]]]
    ) -> None:
        """Cuts that leave empty tables (or empty sources) still give the oracle's stable sort."""
        sources, cuts = case
        assert merged(sources, cuts) == expected(sources)


def tcp_frame(flags: int, ts_ns: int, payload: bytes = b"") -> Frame:
    ip = ipv4_tcp("10.1.0.1", "10.1.0.2", 33000, 443, flags, payload)
    return Frame(ethernet(ip, dpkt.ethernet.ETH_TYPE_IP), ts_ns)


class TestMeterSeveralCaptures:
    def test_packets_of_one_flow_split_over_files_meet_in_time_order(self, tmp_path: Path) -> None:
        """SYN and FIN in one file, the data between them in another: one record of 3 packets."""
        syn, ack, fin = dpkt.tcp.TH_SYN, dpkt.tcp.TH_ACK, dpkt.tcp.TH_FIN
        first = tmp_path / "a.pcap"
        first.write_bytes(
            pcap_file([tcp_frame(syn, T0_NS), tcp_frame(fin | ack, T0_NS + 10_000_000)])
        )
        second = tmp_path / "b.pcap"
        second.write_bytes(pcap_file([tcp_frame(ack, T0_NS + 5_000_000, b"hello")], nanos=True))
        parts: list[RecordTable] = []
        counters = meter_files([first, second], CacheConfig(), parts.append)
        records = RecordTable.concat(parts)
        assert counters.damage == []
        assert records.packets.tolist() == [3]
        assert records.octets.tolist() == [40 + 45 + 40]
        assert records.end_reason.tolist() == [EndReason.END_OF_FLOW]
        assert records.first_ns.tolist() == [T0_NS]
        assert records.last_ns.tolist() == [T0_NS + 10_000_000]

    def test_damaged_capture_stops_alone(self, tmp_path: Path) -> None:
        """A truncated capture among several reports its damage once; the others are read to the end."""
        packets = traffic()
        frames = [p.frame for p in packets]
        starts = pcap_record_starts(frames)
        damaged = tmp_path / "damaged.pcap"
        damaged.write_bytes(pcap_file(frames)[: starts[5] + 20])
        whole = tmp_path / "whole.pcap"
        whole.write_bytes(pcap_file(frames, nanos=True, big_endian=True))
        parts: list[RecordTable] = []
        counters = meter_files([damaged, whole], CacheConfig(), parts.append)
        records = RecordTable.concat(parts)
        length = 16 + len(frames[5].data)
        assert counters.damage == [
            f"{damaged}: truncated last record (20 of {length} bytes) at byte offset {starts[5]}"
        ]
        assert counters.frames == 5 + len(frames)
        ip = [p for p in packets[:5] if p.key is not None] + [
            p for p in packets if p.key is not None
        ]
        assert int(records.packets.sum()) == len(ip)
        assert int(records.octets.sum()) == sum(p.octets for p in ip)
