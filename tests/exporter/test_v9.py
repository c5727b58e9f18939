"""NetFlow v9: the hand-worked vector, round trips, structure, sequence, template refresh."""

from __future__ import annotations

import contextlib
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core.errors import ConfigError
from core.records import RecordTable
from exporter.errors import DecodeError
from exporter.formats import ExportConfig, SamplingAlgorithm, SamplingInfo
from exporter.v9 import V9Decoder, V9Exporter
from tests.exporter import vectors
from tests.exporter.vectors import V4_MAPPED, record_tables, rows, to_ms, walk_sets

HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER_SIZE = 20
# Record sizes summed from the field lengths of RFC 3954 section 8, plus our 1-byte
# flowEndReason (see vectors.V9_DATAGRAM).
RECORD_SIZE = {
    256: 4 + 4 + 2 + 2 + 2 + 1 + 1 + 1 + 4 + 8 + 8 + 4 + 4 + 2 + 1 + 1,
    257: 16 + 16 + 2 + 2 + 2 + 1 + 1 + 1 + 4 + 8 + 8 + 4 + 4 + 2 + 1 + 1,
    258: 4 + 4 + 1,
}
MIN_MTU = HEADER_SIZE + 140 + 24 + 16 + 4 + 76  # header, template block, one padded IPv6 record


def records_of(n: int, version: int = 4, at_ns: int = vectors.BOOT_NS) -> RecordTable:
    table = RecordTable.empty(n)
    table.version[:] = version
    table.src_lo[:] = np.arange(n, dtype=np.uint64) | np.uint64(V4_MAPPED)
    table.packets[:] = 1
    table.first_ns[:] = at_ns
    table.last_ns[:] = at_ns
    return table


def carries_templates(datagram: bytes) -> bool:
    return any(set_id == 0 for set_id, _, _ in walk_sets(datagram, HEADER_SIZE))


def sequence(datagram: bytes) -> int:
    return int(struct.unpack_from(">I", datagram, 12)[0])


class TestV9Vector:
    def config(self) -> ExportConfig:
        return ExportConfig(
            source_id=vectors.SOURCE_ID, sampling_interval=100, boot_ns=vectors.BOOT_NS
        )

    def test_encoder_writes_the_hand_worked_datagram(self) -> None:
        """The worked RFC 3954 datagram (templates, options, one record) is produced exactly."""
        datagrams = V9Exporter(self.config()).encode(vectors.record_table(), vectors.EXPORT_NS)
        assert datagrams == [vectors.V9_DATAGRAM]

    def test_decoder_reads_the_hand_worked_datagram(self) -> None:
        """Decoding gives the header, the three templates, the sampling option and the record."""
        decoded = V9Decoder().decode(vectors.V9_DATAGRAM, exporter="192.0.2.254")
        header = decoded.header
        assert (int(header["count"]), int(header["sys_uptime"])) == (5, 11000)
        assert (int(header["unix_secs"]), int(header["source_id"])) == (1_700_000_011, 0x42)
        assert decoded.template_ids == (256, 257, 258)
        assert decoded.sampling == SamplingInfo(algorithm=1, interval=100)
        expected = vectors.record_table()
        # The collector formula: 11.000 s - (11000 - 1500) ms = 1.5 s after boot.
        expected.last_ns[:] = 1_700_000_004_250_000_000
        assert np.array_equal(rows(decoded.records), rows(expected))


class TestV9Encoder:
    @HYPOTHESIS
    @given(record_tables())
    def test_round_trip_gives_the_records_back(self, case: tuple[RecordTable, int, int]) -> None:
        """IPv4 and IPv6 records encode and decode to themselves, times to the ms."""
        records, boot_ns, export_ns = case
        datagrams = V9Exporter(ExportConfig(boot_ns=boot_ns)).encode(records, export_ns)
        decoder = V9Decoder()
        decoded = RecordTable.concat([decoder.decode(d).records for d in datagrams])
        assert np.array_equal(rows(decoded), rows(to_ms(records)))

    @HYPOTHESIS
    @given(record_tables(max_size=120), st.integers(MIN_MTU, 9000), st.integers(1, 5))
    def test_every_datagram_is_well_formed(
        self, case: tuple[RecordTable, int, int], mtu: int, refresh: int
    ) -> None:
        """Datagrams fit the MTU; sets are padded, non-empty; Count and Sequence are right."""
        records, boot_ns, export_ns = case
        config = ExportConfig(mtu=mtu, template_refresh_packets=refresh, boot_ns=boot_ns)
        datagrams = V9Exporter(config).encode(records, export_ns)
        data_records = 0
        for index, datagram in enumerate(datagrams):
            assert len(datagram) <= mtu
            assert sequence(datagram) == index
            count = 0
            for set_id, length, body in walk_sets(datagram, HEADER_SIZE):
                assert length % 4 == 0
                if set_id == 0:
                    count += 2  # templates 256 and 257
                    assert struct.unpack_from(">HH", body, 0) == (256, 16)
                elif set_id == 1:
                    count += 1  # options template 258
                else:
                    size = RECORD_SIZE[set_id]
                    assert len(body) // size > 0
                    assert len(body) % size < 4
                    assert not any(body[len(body) // size * size :])  # zero padding
                    count += len(body) // size
                    data_records += len(body) // size * (set_id != 258)
            assert struct.unpack_from(">H", datagram, 2)[0] == count
            assert carries_templates(datagram) == (index % refresh == 0)
        assert data_records == len(records)

    @HYPOTHESIS
    @given(
        st.lists(st.tuples(st.integers(0, 90), st.integers(0, 90), st.integers(0, 7_000)),
                 min_size=1, max_size=6),
        st.integers(MIN_MTU, 1500), st.integers(1, 5), st.integers(1, 10),
    )  # fmt: skip
    def test_templates_go_where_one_datagram_at_a_time_would_put_them(
        self, calls: list[tuple[int, int, int]], mtu: int, refresh: int, seconds: int
    ) -> None:
        """Across calls and both families, templates are due after ``refresh`` datagrams or
        ``seconds`` of export clock, exactly as deciding datagram by datagram gives."""
        config = ExportConfig(mtu=mtu, template_refresh_packets=refresh,
                              template_refresh_seconds=seconds, boot_ns=vectors.BOOT_NS)  # fmt: skip
        exporter = V9Exporter(config)
        since, templates_ns, expected, got = None, 0, [], []
        export_ns = vectors.EXPORT_NS
        for n4, n6, step_ms in calls:
            export_ns += step_ms * 1_000_000
            records = RecordTable.concat([records_of(n4, 4), records_of(n6, 6)])
            got += [carries_templates(d) for d in exporter.encode(records, export_ns)]
            for layout, n in zip(exporter.flow_layouts, (n4, n6), strict=True):
                plain, with_templates = exporter._capacity[layout.template_id]
                start = 0
                while start < n:
                    due = (since is None or since >= refresh
                           or export_ns - templates_ns >= seconds * 1_000_000_000)  # fmt: skip
                    expected.append(due)
                    start += with_templates if due else plain
                    if due:
                        since, templates_ns = 0, export_ns
                    since += 1
        assert got == expected

    def test_templates_refresh_every_k_datagrams(self) -> None:
        """With K = 3, datagrams 0, 3 and 6 carry the templates and the others do not."""
        exporter = V9Exporter(ExportConfig(template_refresh_packets=3, boot_ns=vectors.BOOT_NS))
        datagrams = [exporter.encode(records_of(1), vectors.EXPORT_NS)[0] for _ in range(7)]
        assert [carries_templates(d) for d in datagrams] == [1, 0, 0, 1, 0, 0, 1]

    def test_templates_refresh_every_t_seconds_of_export_clock(self) -> None:
        """With T = 10 s, templates go again at 10 s of export clock, not at 9.999 s."""
        config = ExportConfig(template_refresh_seconds=10, boot_ns=vectors.BOOT_NS)
        exporter = V9Exporter(config)
        sent = [
            carries_templates(exporter.encode(records_of(1), vectors.EXPORT_NS + offset)[0])
            for offset in (0, 9_999_000_000, 10_000_000_000, 12_000_000_000, 20_000_000_000)
        ]
        assert sent == [True, False, True, False, True]

    def test_options_record_announces_no_sampling_as_interval_1(self) -> None:
        """Not sampling, the options data record still goes out: interval 1, deterministic."""
        datagram = V9Exporter(ExportConfig(boot_ns=vectors.BOOT_NS)).encode(
            records_of(1), vectors.EXPORT_NS
        )[0]
        options = [body for set_id, _, body in walk_sets(datagram, HEADER_SIZE) if set_id == 258]
        assert options == [bytes.fromhex("00000000 00000001 01 000000")]

    @pytest.mark.parametrize(
        ("algorithm", "wire"),
        [
            (SamplingAlgorithm.DETERMINISTIC, 1),
            (SamplingAlgorithm.RANDOM, 2),
            (SamplingAlgorithm.PROBABILISTIC, 2),
        ],
    )
    def test_sampling_algorithm_values(self, algorithm: SamplingAlgorithm, wire: int) -> None:
        """SAMPLING_ALGORITHM is 1 deterministic or 2 random; probabilistic goes as random."""
        config = ExportConfig(
            sampling_interval=64, sampling_algorithm=algorithm, boot_ns=vectors.BOOT_NS
        )
        datagram = V9Exporter(config).encode(records_of(1), vectors.EXPORT_NS)[0]
        assert V9Decoder().decode(datagram).sampling == SamplingInfo(wire, 64)

    def test_sequence_counts_datagrams_across_calls_and_instances(self) -> None:
        """Sequence Number counts this exporter's earlier datagrams; a new exporter starts at 0."""
        first = V9Exporter(ExportConfig(boot_ns=vectors.BOOT_NS))
        datagrams = first.encode(records_of(70), vectors.EXPORT_NS)
        datagrams += first.encode(records_of(1), vectors.EXPORT_NS)
        other = V9Exporter(ExportConfig(boot_ns=vectors.BOOT_NS)).encode(
            records_of(1), vectors.EXPORT_NS
        )
        assert [sequence(d) for d in datagrams] == list(range(len(datagrams)))
        assert len(datagrams) == 4  # 25 with templates, then 29 and 16, then the next call's 1
        assert [sequence(d) for d in other] == [0]

    def test_mtu_just_fits_templates_and_one_ipv6_record(self) -> None:
        """The smallest MTU holds the header, template block and one padded IPv6 record."""
        exporter = V9Exporter(ExportConfig(mtu=MIN_MTU, boot_ns=vectors.BOOT_NS))
        datagrams = exporter.encode(records_of(2, version=6), vectors.EXPORT_NS)
        assert [len(d) for d in datagrams] == [MIN_MTU, HEADER_SIZE + 4 + 76]
        with pytest.raises(ConfigError, match=f"MTU {MIN_MTU - 1} is too small"):
            V9Exporter(ExportConfig(mtu=MIN_MTU - 1))

    def test_header_uptime_is_never_behind_last_switched(self) -> None:
        """A record ending after the export clock sets the datagram's uptime and unix seconds."""
        records = records_of(1, at_ns=vectors.BOOT_NS + 8_000_000_000)
        records.last_ns[:] = vectors.BOOT_NS + 9_500_000_000
        datagram = V9Exporter(ExportConfig(boot_ns=vectors.BOOT_NS)).encode(
            records, vectors.BOOT_NS + 7_000_000_000
        )[0]
        # The clock is the record's end, 9.5 s, rounded up to a whole second.
        assert struct.unpack_from(">II", datagram, 4) == (10_000, 1_700_000_010)
        [data] = [body for set_id, _, body in walk_sets(datagram, HEADER_SIZE) if set_id == 256]
        # FIRST_SWITCHED and LAST_SWITCHED follow 37 bytes of fields (vectors.V9_DATAGRAM).
        assert struct.unpack_from(">II", data, 37) == (8000, 9500)

    def test_empty_table_gives_no_datagram(self) -> None:
        """No records, no datagram: templates wait for the first data."""
        exporter = V9Exporter(ExportConfig(boot_ns=vectors.BOOT_NS))
        assert exporter.encode(records_of(0), vectors.EXPORT_NS) == []
        assert carries_templates(exporter.encode(records_of(1), vectors.EXPORT_NS)[0])


def foreign_datagram(source_id: int = 7) -> bytes:
    """A v9 datagram from another exporter: reduced-size IN_BYTES (4 bytes), no padding."""
    template = struct.pack(">HHHH" + "HH" * 4, 0, 24, 300, 4, 8, 4, 12, 4, 1, 4, 2, 4)
    record = bytes.fromhex("0a000001 0a000002 00000bb8 00000003")
    data = struct.pack(">HH", 300, 4 + len(record)) + record
    header = struct.pack(">HHIIII", 9, 2, 5000, 1_700_000_000, 0, source_id)
    return header + template + data


class TestV9Decoder:
    def test_reads_reduced_size_fields_of_foreign_templates(self) -> None:
        """A 4-byte IN_BYTES and 4-byte IN_PKTS decode to their values (RFC 3954 section 8)."""
        decoded = V9Decoder().decode(foreign_datagram())
        assert decoded.template_ids == (300,)
        assert decoded.records.octets.tolist() == [3000]
        assert decoded.records.packets.tolist() == [3]
        assert decoded.records.src_lo.tolist() == [V4_MAPPED | 0x0A000001]
        assert decoded.records.version.tolist() == [4]

    def test_templates_are_kept_per_exporter_and_source_id(self) -> None:
        """Data from another exporter or source id cannot use a template it never sent."""
        datagram = foreign_datagram()
        data_only = datagram[:2] + b"\x00\x01" + datagram[4:20] + datagram[44:]
        decoder = V9Decoder()
        decoder.decode(datagram, exporter="a")
        other_exporter = decoder.decode(data_only, exporter="b")
        assert (len(other_exporter.records), other_exporter.skipped_sets) == (0, 1)
        other_source = decoder.decode(foreign_datagram(source_id=8)[:20] + datagram[44:], "a")
        assert (len(other_source.records), other_source.skipped_sets) == (0, 1)
        assert len(decoder.decode(data_only, exporter="a").records) == 1

    @pytest.mark.parametrize(
        ("tail", "message"),
        [
            (struct.pack(">HH", 256, 2), "set at byte 20 has length 2"),
            (struct.pack(">HH", 256, 40) + bytes(8), "set at byte 20 has length 40"),
            (struct.pack(">HHHH", 0, 8, 256, 5), "template of 5 fields overruns its set"),
            (struct.pack(">HH", 0, 8) + struct.pack(">HH", 12, 1), "template id 12 is below 256"),
            (struct.pack(">HHHHH", 1, 12, 258, 3, 4) + bytes(2), "lengths are not whole fields"),
        ],
    )
    def test_malformed_datagrams_raise_decode_error(self, tail: bytes, message: str) -> None:
        """Each kind of malformed flowset is refused with a DecodeError saying why."""
        header = struct.pack(">HHIIII", 9, 1, 0, 0, 0, 0)
        with pytest.raises(DecodeError, match=message):
            V9Decoder().decode(header + tail)

    @HYPOTHESIS
    @given(st.binary(max_size=300))
    def test_garbage_raises_only_decode_error(self, garbage: bytes) -> None:
        """Random bytes behind a v9 header decode or raise DecodeError, nothing else."""
        decoder = V9Decoder()
        decoder.decode(vectors.V9_DATAGRAM)  # so data sets 256..258 have templates
        with contextlib.suppress(DecodeError):
            decoder.decode(vectors.V9_DATAGRAM[:20] + garbage)

    @HYPOTHESIS
    @given(st.lists(st.tuples(st.integers(0, 255), st.integers(0, 255)), max_size=8))
    def test_corrupted_datagrams_raise_only_decode_error(
        self, changes: list[tuple[int, int]]
    ) -> None:
        """The worked datagram with bytes overwritten decodes or raises DecodeError only."""
        datagram = bytearray(vectors.V9_DATAGRAM)
        for position, value in changes:
            datagram[position] = value
        with contextlib.suppress(DecodeError):
            V9Decoder().decode(bytes(datagram))
