"""NetFlow v5: the hand-worked vector, round trips, counter splitting, sequence and limits."""

from __future__ import annotations

import logging
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ConfigError
from core.records import RecordTable
from exporter.errors import DecodeError
from exporter.formats import ExportConfig, SamplingAlgorithm, SamplingInfo
from exporter.v5 import V5Exporter, decode_v5, split_counters
from tests.exporter import vectors
from tests.exporter.vectors import COUNTER_32, V4_MAPPED, record_tables, rows, to_ms

HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def ipv4_records(n: int, first_ns: int = vectors.BOOT_NS, **values: int) -> RecordTable:
    table = RecordTable.empty(n)
    table.version[:] = 4
    table.src_lo[:] = np.arange(n, dtype=np.uint64) | np.uint64(V4_MAPPED)
    table.dst_lo[:] = np.uint64(V4_MAPPED | 0x0A000001)
    table.packets[:] = 1
    table.octets[:] = 40
    table.first_ns[:] = first_ns
    table.last_ns[:] = first_ns
    for name, value in values.items():
        getattr(table, name)[:] = value
    return table


def decode_all(datagrams: list[bytes]) -> RecordTable:
    return RecordTable.concat([decode_v5(d).records for d in datagrams])


class TestV5Vector:
    def config(self) -> ExportConfig:
        return ExportConfig(
            engine_type=1, engine_id=2, sampling_interval=100, boot_ns=vectors.BOOT_NS
        )

    def test_encoder_writes_the_hand_worked_datagram(self) -> None:
        """The worked Cisco v5 example record encodes to exactly the bytes in vectors.py."""
        datagrams = V5Exporter(self.config()).encode(vectors.record_table(), vectors.EXPORT_NS)
        assert datagrams == [vectors.V5_DATAGRAM]

    def test_decoder_reads_the_hand_worked_datagram(self) -> None:
        """Decoding the worked datagram gives its header fields and the record, times to the ms."""
        decoded = decode_v5(vectors.V5_DATAGRAM)
        header = decoded.header
        assert (int(header["SysUptime"]), int(header["unix_secs"])) == (10123, 1_700_000_010)
        assert (int(header["unix_nsecs"]), int(header["flow_sequence"])) == (123_456_789, 0)
        assert (int(header["engine_type"]), int(header["engine_id"])) == (1, 2)
        assert decoded.sampling == SamplingInfo(algorithm=1, interval=100)
        expected = vectors.record_table()
        expected.vlan[:] = 0  # v5 has no VLAN field
        expected.end_reason[:] = 0  # nor an end reason
        expected.last_ns[:] = vectors.BOOT_NS + 4_250_000_000
        assert np.array_equal(rows(decoded.records), rows(expected))


class TestV5Encoder:
    def test_ipv6_records_are_skipped_counted_and_warned_once(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        """IPv6 records never reach the wire; they are counted and one warning is logged."""
        records = ipv4_records(3)
        records.version[1] = 6
        exporter = V5Exporter(ExportConfig(boot_ns=vectors.BOOT_NS))
        with caplog.at_level(logging.WARNING, logger="exporter.v5"):
            first = exporter.encode(records, vectors.EXPORT_NS)
            second = exporter.encode(records, vectors.EXPORT_NS)
        assert [decode_v5(d).header["count"] for d in first + second] == [2, 2]
        assert exporter.skipped_ipv6 == 2
        assert [r.message for r in caplog.records] == [
            "NetFlow v5 carries IPv4 only: IPv6 records are skipped"
        ]

    def test_only_ipv6_gives_no_datagram(self) -> None:
        """A table of IPv6 records only produces no datagram at all (never an empty one)."""
        records = ipv4_records(2, version=6)
        exporter = V5Exporter(ExportConfig(boot_ns=vectors.BOOT_NS))
        assert exporter.encode(records, vectors.EXPORT_NS) == []
        assert exporter.flows_exported == 0

    def test_large_counters_are_split_into_exact_parts(self) -> None:
        """2^32+5 packets and 3*2^32 octets need 4 records (ceil(3*2^32 / (2^32-1)) = 4)."""
        records = ipv4_records(1, packets=2**32 + 5, octets=3 * 2**32)
        parts = split_counters(records)
        assert parts.packets.tolist() == [
            1_073_741_826,
            1_073_741_825,
            1_073_741_825,
            1_073_741_825,
        ]
        assert parts.octets.tolist() == [3_221_225_472] * 4
        datagram = V5Exporter(ExportConfig(boot_ns=vectors.BOOT_NS)).encode(
            records, vectors.EXPORT_NS
        )
        decoded = decode_v5(datagram[0]).records
        assert int(decoded.packets.sum()) == 2**32 + 5
        assert int(decoded.octets.sum()) == 3 * 2**32
        assert set(decoded.src_lo.tolist()) == {V4_MAPPED}

    @HYPOTHESIS
    @given(st.lists(st.integers(1, 2**40), min_size=2, max_size=40))
    def test_split_parts_fit_32_bits_and_sum_exactly(self, counters: list[int]) -> None:
        """Every part fits 32 bits, part counts are minimal, and each key's sums are exact."""
        half = len(counters) // 2
        records = ipv4_records(half)
        records.packets[:] = counters[:half]
        records.octets[:] = counters[half : 2 * half]
        parts = split_counters(records)
        assert int(parts.packets.max()) <= COUNTER_32
        assert int(parts.octets.max()) <= COUNTER_32
        for i in range(half):
            mine = parts.src_lo == records.src_lo[i]
            need = max(-(-counters[i] // COUNTER_32), -(-counters[half + i] // COUNTER_32))
            assert int(mine.sum()) == need
            assert int(parts.packets[mine].sum()) == counters[i]
            assert int(parts.octets[mine].sum()) == counters[half + i]

    def test_thirty_records_per_datagram_at_most(self) -> None:
        """71 records go out as 30 + 30 + 11, each datagram 24 + 48 * count bytes."""
        datagrams = V5Exporter(ExportConfig(boot_ns=vectors.BOOT_NS)).encode(
            ipv4_records(71), vectors.EXPORT_NS
        )
        assert [len(d) for d in datagrams] == [24 + 48 * 30, 24 + 48 * 30, 24 + 48 * 11]
        assert [struct.unpack_from(">H", d, 2)[0] for d in datagrams] == [30, 30, 11]

    def test_mtu_limits_records_per_datagram(self) -> None:
        """An MTU of 500 bytes allows (500 - 24) // 48 = 9 records per datagram."""
        datagrams = V5Exporter(ExportConfig(mtu=500, boot_ns=vectors.BOOT_NS)).encode(
            ipv4_records(20), vectors.EXPORT_NS
        )
        assert [len(d) for d in datagrams] == [456, 456, 120]

    def test_mtu_below_one_record_is_refused(self) -> None:
        """An MTU that cannot hold a header and one record is a configuration error."""
        with pytest.raises(ConfigError, match="MTU 71 is too small"):
            V5Exporter(ExportConfig(mtu=71))

    def test_flow_sequence_counts_records_sent_before(self) -> None:
        """flow_sequence is the number of records in earlier datagrams, across encode calls."""
        exporter = V5Exporter(ExportConfig(boot_ns=vectors.BOOT_NS))
        datagrams = exporter.encode(ipv4_records(45), vectors.EXPORT_NS)
        datagrams += exporter.encode(ipv4_records(10), vectors.EXPORT_NS)
        assert [struct.unpack_from(">I", d, 16)[0] for d in datagrams] == [0, 30, 45]

    def test_two_exporters_keep_their_own_sequence(self) -> None:
        """A second exporter instance starts its own flow_sequence at 0."""
        first = V5Exporter(ExportConfig(boot_ns=vectors.BOOT_NS))
        first.encode(ipv4_records(40), vectors.EXPORT_NS)
        second = V5Exporter(ExportConfig(boot_ns=vectors.BOOT_NS))
        datagram = second.encode(ipv4_records(1), vectors.EXPORT_NS)[0]
        assert struct.unpack_from(">I", datagram, 16)[0] == 0
        assert first.flows_exported == 40

    @pytest.mark.parametrize(
        ("interval", "algorithm", "field"),
        [
            (1, SamplingAlgorithm.DETERMINISTIC, 0x0000),  # not sampling: mode 0
            (100, SamplingAlgorithm.DETERMINISTIC, 0x4064),
            (100, SamplingAlgorithm.RANDOM, 0x8064),
            (16383, SamplingAlgorithm.PROBABILISTIC, 0xBFFF),  # sent as random
        ],
    )
    def test_header_sampling_field(
        self, interval: int, algorithm: SamplingAlgorithm, field: int
    ) -> None:
        """The sampling field is 2 mode bits and a 14-bit interval, 0 when not sampling."""
        config = ExportConfig(
            sampling_interval=interval, sampling_algorithm=algorithm, boot_ns=vectors.BOOT_NS
        )
        datagram = V5Exporter(config).encode(ipv4_records(1), vectors.EXPORT_NS)[0]
        assert struct.unpack_from(">H", datagram, 22)[0] == field

    def test_interval_beyond_14_bits_is_refused(self) -> None:
        """v5 cannot carry a sampling interval above 16383."""
        with pytest.raises(ConfigError, match="up to 16383, got 16384"):
            V5Exporter(ExportConfig(sampling_interval=16384))

    def test_ifindex_above_16_bits_is_sent_as_65535(self) -> None:
        """The 16-bit input field saturates instead of wrapping."""
        datagram = V5Exporter(ExportConfig(boot_ns=vectors.BOOT_NS)).encode(
            ipv4_records(2, ifindex=70_000), vectors.EXPORT_NS
        )[0]
        assert decode_v5(datagram).records.ifindex.tolist() == [65535, 65535]

    def test_header_uptime_is_never_behind_last_switched(self) -> None:
        """A record ending after the export clock moves the datagram's clock to its end."""
        records = ipv4_records(1, first_ns=vectors.BOOT_NS + 5_000_000_000)
        records.last_ns[:] = vectors.BOOT_NS + 9_000_000_000
        config = ExportConfig(boot_ns=vectors.BOOT_NS)
        datagram = V5Exporter(config).encode(records, vectors.BOOT_NS + 7_000_000_000)[0]
        uptime, secs, nsecs = struct.unpack_from(">III", datagram, 4)
        last = struct.unpack_from(">I", datagram, 24 + 28)[0]
        assert (uptime, last) == (9000, 9000)
        assert (secs, nsecs) == (1_700_000_009, 0)

    def test_uptime_wraps_modulo_2_32(self) -> None:
        """60 days after boot, First/Last and sysUptime are milliseconds modulo 2^32."""
        sixty_days_ms = 60 * 86_400_000
        first_ns = vectors.BOOT_NS + sixty_days_ms * 1_000_000
        records = ipv4_records(1, first_ns=first_ns)
        config = ExportConfig(boot_ns=vectors.BOOT_NS)
        datagram = V5Exporter(config).encode(records, first_ns + 2_000_000)[0]
        assert struct.unpack_from(">I", datagram, 4)[0] == (sixty_days_ms + 2) % 2**32
        assert struct.unpack_from(">I", datagram, 24 + 24)[0] == sixty_days_ms % 2**32
        assert decode_v5(datagram).records.first_ns.tolist() == [first_ns]

    def test_uptime_zero_is_fixed_when_the_exporter_is_built(self) -> None:
        """The configured boot is used for every datagram, whatever the records' times."""
        exporter = V5Exporter(ExportConfig(boot_ns=vectors.BOOT_NS))
        for offset_s in (3, 1):
            records = ipv4_records(1, first_ns=vectors.BOOT_NS + offset_s * 1_000_000_000)
            datagram = exporter.encode(records, vectors.BOOT_NS + 4_000_000_000)[0]
            assert struct.unpack_from(">I", datagram, 4)[0] == 4000
            assert struct.unpack_from(">I", datagram, 24 + 24)[0] == offset_s * 1000
        assert exporter.boot_ns == vectors.BOOT_NS

    @HYPOTHESIS
    @given(record_tables(ipv6=False, max_ifindex=0xFFFF))
    def test_round_trip_gives_the_records_back(self, case: tuple[RecordTable, int, int]) -> None:
        """IPv4 records encode and decode to themselves (times to the ms, no VLAN/end reason)."""
        records, boot_ns, export_ns = case
        datagrams = V5Exporter(ExportConfig(boot_ns=boot_ns)).encode(records, export_ns)
        assert all(len(d) <= 1472 for d in datagrams)
        decoded = decode_all(datagrams)
        drop = ("vlan", "end_reason")
        assert np.array_equal(rows(decoded, drop), rows(to_ms(records), drop))


class TestV5Decoder:
    @pytest.mark.parametrize(
        ("datagram", "message"),
        [
            (b"\x00\x05", "shorter than the 24-byte header"),
            (b"\x00\x09" + bytes(22), "version field is 9"),
            (b"\x00\x05\x00\x00" + bytes(20), "record count 0"),
            (b"\x00\x05\x00\x1f" + bytes(20), "record count 31"),
            (b"\x00\x05\x00\x02" + bytes(20 + 48), "do not hold a header and 2 records"),
        ],
    )
    def test_malformed_datagrams_raise_decode_error(self, datagram: bytes, message: str) -> None:
        """Each kind of malformed datagram is refused with a DecodeError saying why."""
        with pytest.raises(DecodeError, match=message):
            decode_v5(datagram)

    @HYPOTHESIS
    @given(st.binary(max_size=200), st.integers(0, 31))
    def test_garbage_raises_only_decode_error(self, garbage: bytes, count: int) -> None:
        """Random bytes (with a v5 version and any count) decode or raise DecodeError only."""
        datagram = struct.pack(">HH", 5, count) + garbage
        try:
            decoded = decode_v5(datagram)
        except DecodeError:
            return
        assert len(decoded.records) == count
