"""The table of export formats: every --format choice has a row, the collector reads by it."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from core.choices import ExportFormat
from core.records import RecordTable
from exporter import EXPORTERS, FORMATS, format_named
from exporter.collector import Collector
from exporter.formats import ExportConfig
from exporter.registry import FORMATS_BY_NAME
from tests.exporter import vectors
from tests.exporter.vectors import V4_MAPPED


def records_of(n: int) -> RecordTable:
    table = RecordTable.empty(n)
    table.version[:] = 4
    table.src_lo[:] = np.arange(n, dtype=np.uint64) | np.uint64(V4_MAPPED)
    table.packets[:] = 1
    table.octets[:] = 64
    table.first_ns[:] = vectors.BOOT_NS
    table.last_ns[:] = vectors.BOOT_NS
    return table


def datagrams_of(version: int, n: int = 40) -> list[bytes]:
    config = ExportConfig(mtu=300, sampling_interval=10, boot_ns=vectors.BOOT_NS)
    return EXPORTERS[version](config).encode(records_of(n), vectors.EXPORT_NS)


class TestTable:
    def test_every_cli_choice_has_a_row(self) -> None:
        """Each --format value names one row, keyed by that row's version."""
        assert set(FORMATS_BY_NAME) == {choice.value for choice in ExportFormat}
        for choice in ExportFormat:
            wire = format_named(choice.value)
            assert FORMATS[wire.version] is wire

    def test_rows_are_keyed_by_their_version(self) -> None:
        assert sorted(FORMATS) == [5, 9, 10]
        for version, wire in FORMATS.items():
            assert wire.version == version
            assert wire.exporter(ExportConfig(sampling_interval=1)).version == version

    def test_exporters_derive_from_the_table(self) -> None:
        assert {version: wire.exporter for version, wire in FORMATS.items()} == EXPORTERS

    def test_decoders_are_fresh_per_call(self) -> None:
        """Templates live on the decoder, so two collectors must not share one."""
        for wire in FORMATS.values():
            assert wire.decoder() is not wire.decoder()

    def test_unknown_name(self) -> None:
        with pytest.raises(KeyError):
            format_named("10")


class TestCollectorByTable:
    def test_unknown_version_is_garbage(self) -> None:
        """Version 7 is no row: counted as malformed, never raised; the next datagram decodes."""
        collector = Collector()
        unknown = struct.pack(">HH", 7, 1) + bytes(40)
        assert len(collector.feed(unknown, "a")) == 0
        v5 = datagrams_of(5)[0]
        assert len(collector.feed(v5, "a")) == struct.unpack_from(">H", v5, 2)[0]
        stats = collector.stats
        assert (stats.datagrams, stats.bad_datagrams, stats.sequence_gaps) == (2, 1, 0)
        assert stats.first_error == "unknown export version 7"

    @pytest.mark.parametrize("version", [5, 9, 10])
    def test_sequence_rule(self, version: int) -> None:
        """A whole stream has no gap; dropping one datagram is one gap of its advance:
        v5 its flows, v9 one datagram, IPFIX its data records (options data too)."""
        datagrams = datagrams_of(version)
        assert len(datagrams) >= 3
        whole = Collector()
        for datagram in datagrams:
            whole.feed(datagram, "a")
        assert (whole.stats.bad_datagrams, whole.stats.sequence_gaps) == (0, 0)

        dropped = Collector()
        for i, datagram in enumerate(datagrams):
            if i != 1:
                dropped.feed(datagram, "a")
        assert dropped.stats.sequence_gaps == 1
        if version == 5:
            expected = struct.unpack_from(">H", datagrams[1], 2)[0]
        elif version == 9:
            expected = 1
        else:
            decoder = FORMATS[10].decoder()
            decoder.decode(datagrams[0], "a")  # the templates
            expected = decoder.decode(datagrams[1], "a").data_records
            assert expected > 0
        assert dropped.stats.lost_estimate == expected
