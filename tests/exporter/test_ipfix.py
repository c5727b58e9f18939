"""IPFIX: the hand-worked message, round trips, structure, sequence, sampling IEs, decoding."""

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
from exporter.ipfix import IpfixDecoder, IpfixExporter
from tests.exporter import vectors
from tests.exporter.vectors import V4_MAPPED, record_tables, rows, to_ms, walk_sets

HYPOTHESIS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HEADER_SIZE = 16
# Record sizes summed from the field lengths in vectors.IPFIX_MESSAGE (258: the selector report).
RECORD_SIZE = {256: 4 + 4 + 2 + 2 + 2 + 1 + 1 + 2 + 4 + 8 + 8 + 8 + 8 + 1 + 2 + 1, 257: 82, 258: 17}
MIN_MTU = HEADER_SIZE + 140 + 28 + 24 + 4 + 84  # header, template block, one padded IPv6 record


def records_of(n: int, version: int = 4, at_ns: int = vectors.BOOT_NS) -> RecordTable:
    table = RecordTable.empty(n)
    table.version[:] = version
    table.src_lo[:] = np.arange(n, dtype=np.uint64) | np.uint64(V4_MAPPED)
    table.packets[:] = 1
    table.first_ns[:] = at_ns
    table.last_ns[:] = at_ns
    return table


def header_fields(message: bytes) -> tuple[int, ...]:
    """(version, length, export time, sequence number, observation domain)."""
    return struct.unpack_from(">HHIII", message, 0)


class TestIpfixVector:
    def config(self) -> ExportConfig:
        return ExportConfig(
            source_id=vectors.SOURCE_ID, sampling_interval=100, boot_ns=vectors.BOOT_NS
        )

    def test_encoder_writes_the_hand_worked_message(self) -> None:
        """The worked RFC 7011 message (templates, selector report, one record) is exact."""
        messages = IpfixExporter(self.config()).encode(vectors.record_table(), vectors.EXPORT_NS)
        assert messages == [vectors.IPFIX_MESSAGE]

    def test_decoder_reads_the_hand_worked_message(self) -> None:
        """Decoding gives the header, templates, sampling and the record with absolute ms."""
        decoded = IpfixDecoder().decode(vectors.IPFIX_MESSAGE)
        assert header_fields(vectors.IPFIX_MESSAGE) == (10, 272, 1_700_000_010, 0, 0x42)
        assert int(decoded.header["observation_domain_id"]) == 0x42
        assert decoded.template_ids == (256, 257, 258)
        assert decoded.sampling == SamplingInfo(algorithm=1, interval=100)
        expected = vectors.record_table()
        expected.last_ns[:] = 1_700_000_004_250_000_000
        assert np.array_equal(rows(decoded.records), rows(expected))


class TestIpfixEncoder:
    @HYPOTHESIS
    @given(record_tables())
    def test_round_trip_gives_the_records_back(self, case: tuple[RecordTable, int, int]) -> None:
        """Every field, end reason included, comes back; times to the millisecond."""
        records, boot_ns, export_ns = case
        messages = IpfixExporter(ExportConfig(boot_ns=boot_ns)).encode(records, export_ns)
        decoder = IpfixDecoder()
        decoded = RecordTable.concat([decoder.decode(m).records for m in messages])
        assert np.array_equal(rows(decoded), rows(to_ms(records)))

    @HYPOTHESIS
    @given(record_tables(max_size=120), st.integers(MIN_MTU, 9000), st.integers(1, 5))
    def test_every_message_is_well_formed(
        self, case: tuple[RecordTable, int, int], mtu: int, refresh: int
    ) -> None:
        """Messages fit the MTU, Length is exact, sets are padded and non-empty, sequence counts."""
        records, boot_ns, export_ns = case
        config = ExportConfig(mtu=mtu, template_refresh_packets=refresh, boot_ns=boot_ns)
        messages = IpfixExporter(config).encode(records, export_ns)
        data_records = flow_records = 0
        for index, message in enumerate(messages):
            version, length, _, sequence, _ = header_fields(message)
            assert (version, length) == (10, len(message))
            assert length <= mtu
            assert sequence == data_records
            set_ids = []
            for set_id, set_length, body in walk_sets(message, HEADER_SIZE):
                set_ids.append(set_id)
                assert set_length % 4 == 0
                if set_id >= 256:
                    size = RECORD_SIZE[set_id]
                    assert len(body) // size > 0
                    assert len(body) % size < 4
                    assert not any(body[len(body) // size * size :])
                    data_records += len(body) // size
                    flow_records += len(body) // size * (set_id != 258)
            flow_set = set_ids.pop()
            assert flow_set in (256, 257)
            assert set_ids == ([2, 3, 258] if index % refresh == 0 else [])
        assert flow_records == len(records)

    def test_sequence_counts_flow_and_options_data_records(self) -> None:
        """Sequence Number counts every Data Record sent before, options data included."""
        exporter = IpfixExporter(ExportConfig(template_refresh_packets=2, boot_ns=vectors.BOOT_NS))
        messages = [exporter.encode(records_of(n), vectors.EXPORT_NS)[0] for n in (3, 5, 2, 4)]
        # 3 flows + 1 options record, 5 flows, 2 flows + 1 options record, 4 flows.
        assert [header_fields(m)[3] for m in messages] == [0, 4, 9, 12]
        decoder = IpfixDecoder()
        assert [decoder.decode(m).data_records for m in messages] == [4, 5, 3, 4]
        assert exporter.records_sent == 14
        other = IpfixExporter(ExportConfig(source_id=9, boot_ns=vectors.BOOT_NS))
        assert header_fields(other.encode(records_of(1), vectors.EXPORT_NS)[0])[3:] == (0, 9)

    @pytest.mark.parametrize(
        ("algorithm", "interval", "options_set"),
        [
            # selectorId 0, selectorAlgorithm 3 (random n-out-of-N), samplingSize 1,
            # samplingPopulation 10 (RFC 5476 section 6.5.2.3), 3 bytes of padding.
            (
                SamplingAlgorithm.RANDOM,
                10,
                "0102 0018 0000000000000000 03 00000001 0000000a 000000",
            ),
            # selectorAlgorithm 4 (uniform probabilistic), samplingProbability 0.25 as an IEEE
            # 754 double, 0x3fd0000000000000 (RFC 5476 section 6.5.2.4), 3 bytes of padding.
            (
                SamplingAlgorithm.PROBABILISTIC,
                4,
                "0102 0018 0000000000000000 04 3fd0000000000000 000000",
            ),
        ],
    )
    def test_sampling_selector_reports(
        self, algorithm: SamplingAlgorithm, interval: int, options_set: str
    ) -> None:
        """Random and probabilistic sampling go out with their RFC 5476 parameters."""
        config = ExportConfig(
            sampling_interval=interval, sampling_algorithm=algorithm, boot_ns=vectors.BOOT_NS
        )
        message = IpfixExporter(config).encode(records_of(1), vectors.EXPORT_NS)[0]
        sets = walk_sets(message, HEADER_SIZE)
        assert struct.pack(">HH", *sets[2][:2]) + sets[2][2] == vectors.unhex(options_set)
        selector = {SamplingAlgorithm.RANDOM: 3, SamplingAlgorithm.PROBABILISTIC: 4}[algorithm]
        assert IpfixDecoder().decode(message).sampling == SamplingInfo(selector, interval)

    def test_mtu_just_fits_templates_and_one_ipv6_record(self) -> None:
        """The smallest MTU holds the header, template block and one IPv6 record."""
        exporter = IpfixExporter(ExportConfig(mtu=MIN_MTU, boot_ns=vectors.BOOT_NS))
        messages = exporter.encode(records_of(2, version=6), vectors.EXPORT_NS)
        assert [len(m) for m in messages] == [MIN_MTU, HEADER_SIZE + 4 + 84]
        with pytest.raises(ConfigError, match=f"MTU {MIN_MTU - 1} is too small"):
            IpfixExporter(ExportConfig(mtu=MIN_MTU - 1))


def message(*sets: bytes, domain: int = 1) -> bytes:
    body = b"".join(sets)
    return struct.pack(">HHIII", 10, 16 + len(body), 1_700_000_000, 0, domain) + body


def ipfix_set(set_id: int, body: bytes) -> bytes:
    return struct.pack(">HH", set_id, 4 + len(body)) + body


class TestIpfixDecoder:
    def test_enterprise_fields_are_skipped_and_the_rest_decoded(self) -> None:
        """An enterprise-specific field takes its declared bytes; known IEs still decode."""
        template = struct.pack(">HH HH HHI HH", 400, 3, 8, 4, 0x8000 | 1, 2, 6871, 2, 4)
        record = bytes.fromhex("c0000201 abcd 00000007")
        decoded = IpfixDecoder().decode(message(ipfix_set(2, template), ipfix_set(400, record)))
        assert decoded.records.src_lo.tolist() == [V4_MAPPED | 0xC0000201]
        assert decoded.records.packets.tolist() == [7]

    def test_variable_length_templates_are_skipped(self) -> None:
        """Data sets of a template with a variable-length field are counted as skipped."""
        template = struct.pack(">HH HH HH", 401, 2, 8, 4, 82, 0xFFFF)
        data = ipfix_set(401, bytes.fromhex("c0000201 03 616263"))
        decoded = IpfixDecoder().decode(message(ipfix_set(2, template), data))
        assert (decoded.template_ids, decoded.skipped_sets, len(decoded.records)) == ((401,), 1, 0)

    def test_template_withdrawal_forgets_the_template(self) -> None:
        """A template record with field count 0 withdraws it (RFC 7011 section 8.1)."""
        decoder = IpfixDecoder()
        template = ipfix_set(2, struct.pack(">HH HH", 402, 1, 2, 8))
        data = ipfix_set(402, (5).to_bytes(8, "big"))
        assert decoder.decode(message(template, data)).records.packets.tolist() == [5]
        decoder.decode(message(ipfix_set(2, struct.pack(">HH", 402, 0))))
        assert decoder.decode(message(data)).skipped_sets == 1

    def test_templates_are_kept_per_observation_domain(self) -> None:
        """A template defined in domain 1 does not decode data sent in domain 2."""
        decoder = IpfixDecoder()
        data = ipfix_set(402, (5).to_bytes(8, "big"))
        decoder.decode(message(ipfix_set(2, struct.pack(">HH HH", 402, 1, 2, 8)), domain=1))
        assert decoder.decode(message(data, domain=2)).skipped_sets == 1
        assert decoder.decode(message(data, domain=1)).skipped_sets == 0

    @pytest.mark.parametrize(
        ("datagram", "error"),
        [
            (message()[:10], "shorter than the header"),
            (message() + b"\0\0\0\0", "length field 16 != 20 bytes"),
            (message(b"\x01\x00\x00"), "3 bytes after the last set"),
            (message(ipfix_set(3, struct.pack(">HHH", 300, 2, 3))), "scope count 3"),
            (message(ipfix_set(2, struct.pack(">HH HH", 300, 1, 0x8001, 4))), "enterprise number"),
        ],
    )
    def test_malformed_messages_raise_decode_error(self, datagram: bytes, error: str) -> None:
        """Each kind of malformed message is refused with a DecodeError saying why."""
        with pytest.raises(DecodeError, match=error):
            IpfixDecoder().decode(datagram)

    @HYPOTHESIS
    @given(st.lists(st.tuples(st.integers(0, 271), st.integers(0, 255)), max_size=8))
    def test_corrupted_messages_raise_only_decode_error(
        self, changes: list[tuple[int, int]]
    ) -> None:
        """The worked message with bytes overwritten decodes or raises DecodeError only."""
        datagram = bytearray(vectors.IPFIX_MESSAGE)
        for position, value in changes:
            datagram[position] = value
        with contextlib.suppress(DecodeError):
            IpfixDecoder().decode(bytes(datagram))
