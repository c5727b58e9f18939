"""CSV and JSON-lines record files: exact text, addresses as Python's ipaddress writes them."""

from __future__ import annotations

import csv
import ipaddress
import json
import os
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.records import EndReason, RecordTable
from exporter.flowfile import FIELDS, FlowFileFormat, FlowFileWriter, RowFormat, file_format

V4_MAPPED = 0xFFFF00000000


def one_record(**values: int) -> RecordTable:
    table = RecordTable.empty(1)
    for name, value in values.items():
        getattr(table, name)[0] = value
    return table


def ipv6_record(address: int) -> RecordTable:
    return one_record(
        version=6,
        src_hi=address >> 64,
        src_lo=address & (2**64 - 1),
        dst_hi=0,
        dst_lo=1,
        packets=1,
        end_reason=EndReason.IDLE,
    )


class TestCsv:
    def test_ipv4_row_is_written_exactly(self) -> None:
        """An IPv4 record becomes one CSV row with every column in header order."""
        record = one_record(
            version=4, src_lo=V4_MAPPED | 0xC6120001, dst_lo=V4_MAPPED | 0xC613FFFE,
            sport=51000, dport=443, proto=6, tos=0x28, tcp_flags=0x1B, packets=12,
            octets=9000, first_ns=1_767_603_600_000_000_001, last_ns=1_767_603_601_500_000_000,
            end_reason=EndReason.END_OF_FLOW, ifindex=2, vlan=100,
        )  # fmt: skip
        text = RowFormat.csv().render(record).decode()
        assert text == (
            "1767603600000000001,1767603601500000000,198.18.0.1,198.19.255.254,51000,443,6,40,27,"
            "12,9000,end_of_flow,2,100\n"
        )

    def test_header_names_every_field(self) -> None:
        """The CSV header is the documented column list."""
        assert RowFormat.csv().header.decode() == ",".join(FIELDS) + "\n"
        assert FIELDS[0] == "first_ns"
        assert FIELDS[-1] == "vlan"

    def test_every_end_reason_has_its_name(self) -> None:
        """End reasons are written as the lower-case names of the IPFIX flowEndReason values."""
        table = RecordTable.empty(5)
        table.version[:] = 4
        table.end_reason[:] = [1, 2, 3, 4, 5]
        rows = list(
            csv.DictReader(
                RowFormat.csv().header.decode().splitlines()
                + RowFormat.csv().render(table).decode().splitlines()
            )
        )
        assert [r["end_reason"] for r in rows] == [
            "idle", "active", "end_of_flow", "forced", "cache_full",
        ]  # fmt: skip

    def test_large_counters_and_negative_time(self) -> None:
        """64-bit counters and times before the epoch keep every digit and the sign."""
        record = one_record(version=4, packets=2**62 + 3, octets=2**63 - 1, first_ns=-5, last_ns=0)
        fields = RowFormat.csv().render(record).decode().strip().split(",")
        assert fields[0] == "-5"
        assert fields[1] == "0"
        assert fields[9] == str(2**62 + 3)
        assert fields[10] == str(2**63 - 1)

    @settings(max_examples=400, deadline=None)
    @given(
        st.one_of(
            st.integers(0, 2**128 - 1),
            st.lists(st.sampled_from([0, 0, 0, 1, 0xFFFF, 0x0DB8]), min_size=8, max_size=8).map(
                lambda groups: int("".join(f"{g:04x}" for g in groups), 16)
            ),
        )
    )
    def test_ipv6_text_matches_rfc5952(self, address: int) -> None:
        """IPv6 addresses are written as RFC 5952 text, as ipaddress.IPv6Address prints them."""
        if (address >> 32) == 0xFFFF:  # IPv4-mapped: Python prints the dotted tail form
            address ^= 1 << 100
        text = RowFormat.csv().render(ipv6_record(address)).decode().split(",")[2]
        assert text == str(ipaddress.IPv6Address(address))


class TestJsonl:
    def test_rows_parse_as_json_with_typed_values(self) -> None:
        """Each JSON line is an object whose numbers are numbers and addresses strings."""
        table = RecordTable.concat(
            [
                one_record(version=4, src_lo=V4_MAPPED | 0xC6120001, dst_lo=V4_MAPPED | 0xC6120002,
                           packets=3, octets=180, end_reason=EndReason.IDLE),
                ipv6_record(0x20010DB8 << 96 | 5),
            ]
        )  # fmt: skip
        lines = RowFormat.jsonl().render(table).decode().splitlines()
        rows = [json.loads(line) for line in lines]
        assert list(rows[0]) == list(FIELDS)
        assert rows[0]["src"] == "198.18.0.1"
        assert rows[0]["packets"] == 3
        assert rows[0]["end_reason"] == "idle"
        assert rows[1]["src"] == "2001:db8::5"
        assert rows[1]["dst"] == "::1"


class TestWriter:
    def test_file_suffix_selects_format(self, tmp_path: Path) -> None:
        """A .jsonl path gets JSON lines, a .csv path CSV with a header."""
        record = one_record(version=4, packets=1, end_reason=EndReason.FORCED)
        for name in ("flows.csv", "flows.jsonl"):
            writer = FlowFileWriter(str(tmp_path / name))
            writer.write(record)
            writer.close()
        assert (tmp_path / "flows.csv").read_text().splitlines()[0] == ",".join(FIELDS)
        assert json.loads((tmp_path / "flows.jsonl").read_text())["end_reason"] == "forced"

    @pytest.mark.parametrize(
        ("path", "given", "expected"),
        [
            ("flows.csv", None, FlowFileFormat.CSV),
            ("flows.JSONL", None, FlowFileFormat.JSONL),
            ("flows.json", None, FlowFileFormat.JSONL),
            ("flows.txt", None, FlowFileFormat.CSV),
            ("/dev/null", None, FlowFileFormat.CSV),
            ("-", None, FlowFileFormat.CSV),
            ("flows.csv", FlowFileFormat.JSONL, FlowFileFormat.JSONL),
            ("-", FlowFileFormat.JSONL, FlowFileFormat.JSONL),
            ("flows.jsonl", FlowFileFormat.CSV, FlowFileFormat.CSV),
        ],
    )
    def test_format_is_the_given_one_else_the_suffix_else_csv(
        self, path: str, given: FlowFileFormat | None, expected: FlowFileFormat
    ) -> None:
        """An explicit format wins; otherwise .csv/.jsonl/.json decide, and anything else is CSV."""
        assert file_format(path, given) is expected

    def test_any_suffix_is_written_as_csv(self, tmp_path: Path) -> None:
        """A path with no known suffix gets CSV with its header, not a refusal."""
        path = tmp_path / "flows.txt"
        writer = FlowFileWriter(str(path))
        writer.write(one_record(version=4, packets=1, end_reason=EndReason.IDLE))
        writer.close()
        lines = path.read_text().splitlines()
        assert lines[0] == ",".join(FIELDS)
        assert len(lines) == 2

    def test_given_format_overrides_the_suffix(self, tmp_path: Path) -> None:
        """JSONL asked for on a .csv path writes JSON lines and no CSV header."""
        path = tmp_path / "flows.csv"
        writer = FlowFileWriter(str(path), row_format=FlowFileFormat.JSONL)
        writer.write(one_record(version=4, packets=2, end_reason=EndReason.ACTIVE))
        writer.close()
        assert json.loads(path.read_text())["packets"] == 2

    def test_devices_and_fifos_are_written(self, tmp_path: Path) -> None:
        """/dev/null and a FIFO with a reader take records like a file does."""
        record = one_record(version=4, packets=1, end_reason=EndReason.FORCED)
        writer = FlowFileWriter(os.devnull)
        writer.write(record)
        writer.close()
        fifo = tmp_path / "flows.fifo"
        os.mkfifo(fifo)
        received: list[bytes] = []
        reader = threading.Thread(target=lambda: received.append(fifo.read_bytes()))
        reader.start()
        writer = FlowFileWriter(str(fifo), row_format=FlowFileFormat.JSONL)
        writer.write(record)
        writer.close()
        reader.join(timeout=10)
        assert json.loads(received[0])["end_reason"] == "forced"

    def test_empty_table_writes_nothing(self) -> None:
        """Rendering no records gives no bytes."""
        assert RowFormat.csv().render(RecordTable.empty(0)) == b""
        assert np.all(RecordTable.empty(0).packets == 0)
