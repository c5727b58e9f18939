"""Flow record files: CSV and JSON lines, one row per record, formatted in a kernel."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import numpy as np
import numpy.typing as npt

from core import attributes
from core.attributes import FieldGroup
from core.choices import FlowFileFormat
from core.columns import widened
from core.errors import ExportError
from core.records import EndReason, RecordTable
from exporter import text_kernel as tk

FIELDS = (
    "first_ns", "last_ns", "src", "dst", "sport", "dport", "proto", "tos",
    "tcp_flags", "packets", "octets", "end_reason", "ifindex", "vlan",
)  # fmt: skip
TEXT_FIELDS = {"src": tk.SRC_ADDR, "dst": tk.DST_ADDR, "end_reason": tk.REASON}
INT_FIELDS = tuple(name for name in FIELDS if name not in TEXT_FIELDS)
REASON_NAMES = [""] + [reason.name.lower() for reason in sorted(EndReason)]


def packed(parts: list[bytes]) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]:
    starts = np.cumsum([0] + [len(p) for p in parts]).astype(np.int64)
    return np.frombuffer(b"".join(parts) or b"\0", np.uint8)[: starts[-1]].copy(), starts


Text = tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64]]  # bytes, and where row i starts


def address_texts(version: npt.NDArray[np.uint8], hi: npt.NDArray[np.uint64],
                  lo: npt.NDArray[np.uint64]) -> Text:  # fmt: skip
    """Each address as text (dotted quad, RFC 5952), one after another, and the offsets."""
    out = np.empty(len(version) * 39 + 1, np.uint8)
    offsets = np.empty(len(version) + 1, np.int64)
    size = tk.format_addresses(version, hi, lo, out, offsets)
    return out[:size], offsets


@dataclass(frozen=True)
class AttributeColumn:
    """A flow file column that ``--fields`` adds: its name, text kernel kind and word.

    Given the records' attribute words, it says which rows have a value
    (``present``) and gives the values: numbers for VLAN ids and MPLS labels
    (``numeric``), else text, formatted by the same kernel as the CSV.
    """

    name: str
    kind: int
    word: int = 0

    @property
    def numeric(self) -> bool:
        return self.kind in (tk.VLAN_ID, tk.MPLS_LABEL)

    def present(self, words: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
        present: npt.NDArray[np.bool_]
        if self.kind in (tk.OUTER_SRC, tk.OUTER_DST):
            present = words[:, attributes.OUTER_VERSION] != 0
        else:
            bits = {tk.MAC: attributes.MAC_BITS, tk.VLAN_ID: attributes.VLAN_BITS,
                    tk.MPLS_LABEL: attributes.MPLS_BITS}[self.kind]  # fmt: skip
            present = (words[:, self.word] >> np.uint64(bits)) != 0
        return present

    def numbers(self, words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint16 | np.uint32]:
        """VLAN ids (uint16) or MPLS labels (uint32) of every row (0 where absent)."""
        value = words[:, self.word]
        if self.kind == tk.VLAN_ID:
            return (value & np.uint64(0x0FFF)).astype(np.uint16)
        return ((value >> np.uint64(4)) & np.uint64(0xFFFFF)).astype(np.uint32)

    def texts(self, words: npt.NDArray[np.uint64]) -> Text:
        """Every row's value as text (empty where absent), and the offsets."""
        out = np.empty(len(words) * 39 + 1, np.uint8)
        offsets = np.empty(len(words) + 1, np.int64)
        size = tk.format_attributes(self.kind, np.ascontiguousarray(words), self.word, out, offsets)
        return out[:size], offsets


ATTRIBUTE_COLUMNS: dict[FieldGroup, tuple[AttributeColumn, ...]] = {
    FieldGroup.VLAN: (AttributeColumn("inner_vlan", tk.VLAN_ID, attributes.INNER_VLAN),),
    FieldGroup.MAC: (
        AttributeColumn("src_mac", tk.MAC, attributes.SRC_MAC),
        AttributeColumn("dst_mac", tk.MAC, attributes.DST_MAC),
    ),
    FieldGroup.MPLS: tuple(
        AttributeColumn(f"mpls{k + 1}", tk.MPLS_LABEL, word)
        for k, word in enumerate(attributes.MPLS_WORDS)
    ),
    FieldGroup.TUNNEL: (
        AttributeColumn("outer_src", tk.OUTER_SRC),
        AttributeColumn("outer_dst", tk.OUTER_DST),
    ),
}


def attribute_columns(groups: frozenset[FieldGroup]) -> tuple[AttributeColumn, ...]:
    """The columns ``groups`` add after ``FIELDS``, in ``FieldGroup`` order."""
    return tuple(c for group in FieldGroup if group in groups for c in ATTRIBUTE_COLUMNS[group])


def flow_columns(groups: frozenset[FieldGroup] = frozenset()) -> tuple[str, ...]:
    """Every column of a flow file written with ``--fields`` ``groups``, in order."""
    return FIELDS + tuple(column.name for column in attribute_columns(groups))


@dataclass(frozen=True)
class RowFormat:
    """A text row layout resolved once: what to write before each field and after the row.

    Attribute columns quote their own text (``quote``) and write ``absent``
    when a record has no such value.
    """

    header: bytes
    prefixes: list[bytes]
    row_end: bytes
    extra: tuple[AttributeColumn, ...] = ()
    quote: bool = False
    absent: bytes = b""

    @classmethod
    def csv(cls, groups: frozenset[FieldGroup] = frozenset()) -> RowFormat:
        names = flow_columns(groups)
        prefixes = [b""] + [b","] * (len(names) - 1)
        return cls((",".join(names) + "\n").encode(), prefixes, b"\n", attribute_columns(groups))

    @classmethod
    def jsonl(cls, groups: frozenset[FieldGroup] = frozenset()) -> RowFormat:
        prefixes, previous_text = [], False
        for index, name in enumerate(flow_columns(groups)):
            text = name in TEXT_FIELDS
            opener = b"{" if index == 0 else b","
            prefixes.append(
                (b'"' if previous_text else b"")
                + opener
                + f'"{name}":'.encode()
                + (b'"' if text else b"")
            )
            previous_text = text
        row_end = (b'"' if previous_text else b"") + b"}\n"
        return cls(b"", prefixes, row_end, attribute_columns(groups), True, b"null")

    def render(self, records: RecordTable) -> bytes:
        n = len(records)
        if n == 0:
            return b""
        ints = np.column_stack([getattr(records, name).astype(np.int64) for name in INT_FIELDS])
        addrs = np.column_stack([records.src_hi, records.src_lo, records.dst_hi, records.dst_lo])
        kinds = np.array(
            [TEXT_FIELDS.get(name, tk.INT) for name in FIELDS] + [c.kind for c in self.extra],
            np.int64,
        )
        columns = np.array(
            [INT_FIELDS.index(name) if name in INT_FIELDS else 0 for name in FIELDS]
            + [c.word for c in self.extra],
            np.int64,
        )
        words = widened(records.attrs, attributes.ATTRIBUTE_WORDS if self.extra else 0)
        prefix_bytes, prefix_starts = packed(self.prefixes)
        names, name_starts = packed([name.encode() for name in REASON_NAMES])
        row_bytes = sum(len(p) for p in self.prefixes) + len(self.row_end)
        out = np.empty(n * (row_bytes + len(kinds) * tk.MAX_FIELD_BYTES), np.uint8)
        size = tk.format_rows(
            ints, records.version, addrs, records.end_reason, kinds, columns,
            prefix_bytes, prefix_starts, np.frombuffer(self.row_end, np.uint8),
            names, name_starts, np.ascontiguousarray(words), self.quote,
            np.frombuffer(self.absent, np.uint8), out,
        )  # fmt: skip
        return out[:size].tobytes()


ROW_FORMATS = {FlowFileFormat.CSV: RowFormat.csv, FlowFileFormat.JSONL: RowFormat.jsonl}
SUFFIXES = {
    ".csv": FlowFileFormat.CSV,
    ".jsonl": FlowFileFormat.JSONL,
    ".json": FlowFileFormat.JSONL,
    ".parquet": FlowFileFormat.PARQUET,
    ".arrow": FlowFileFormat.ARROW,
    ".arrows": FlowFileFormat.ARROW,
}


def file_format(path: str, given: FlowFileFormat | None = None) -> FlowFileFormat:
    """The format asked for, else the one the suffix names (.csv, .jsonl, .json), else CSV."""
    if given is not None:
        return given
    if path == "-":
        return FlowFileFormat.CSV
    return SUFFIXES.get(Path(path).suffix.lower(), FlowFileFormat.CSV)


class FlowFileWriter:
    """Writes records to any path (devices and FIFOs too; ``-`` is stdout) as CSV or JSON lines.

    The format is ``row_format`` when given, else it follows the path (see
    ``file_format``); ``open_flow_file`` also gives Parquet writers.
    """

    def __init__(
        self,
        path: str,
        stdout: IO[bytes] | None = None,
        row_format: FlowFileFormat | None = None,
        groups: frozenset[FieldGroup] = frozenset(),
    ) -> None:
        self.path = path
        self.format = ROW_FORMATS[file_format(path, row_format)](groups)
        self.stream: IO[bytes]
        if path == "-" and stdout is not None:
            self.stream = stdout
        else:
            try:
                self.stream = open(path, "wb")  # noqa: SIM115 -- closed by close()
            except OSError as exc:
                raise ExportError(f"{path}: {exc.strerror or exc}") from exc
        self._write(self.format.header)

    def _write(self, data: bytes) -> None:
        try:
            self.stream.write(data)
        except OSError as exc:
            raise ExportError(f"{self.path}: {exc.strerror or exc}") from exc

    def write(self, records: RecordTable) -> None:
        """One batch of rows, flushed: a live probe's records are readable as they end."""
        self._write(self.format.render(records))
        try:
            self.stream.flush()
        except OSError as exc:
            raise ExportError(f"{self.path}: {exc.strerror or exc}") from exc

    def describe(self, metadata: dict[str, str]) -> None:
        """Text rows carry no metadata."""

    def close(self) -> None:
        try:
            self.stream.flush()
            if self.path != "-":
                self.stream.close()
        except OSError as exc:
            raise ExportError(f"{self.path}: {exc.strerror or exc}") from exc


class FlowSink(Protocol):
    def write(self, records: RecordTable) -> None: ...

    def describe(self, metadata: dict[str, str]) -> None: ...

    def close(self) -> None: ...


def open_flow_file(
    path: str,
    stdout: IO[bytes] | None = None,
    given: FlowFileFormat | None = None,
    groups: frozenset[FieldGroup] = frozenset(),
) -> FlowSink:
    """The writer for ``path``: Parquet or an Arrow IPC stream (pyarrow), else text.

    ``groups``: the ``--fields`` columns to add after the standard ones.
    """
    chosen = file_format(path, given)
    if chosen is FlowFileFormat.PARQUET:
        from exporter.parquet import ParquetFlowWriter

        return ParquetFlowWriter(path, groups)
    if chosen is FlowFileFormat.ARROW:
        from exporter.arrow_ipc import ArrowStreamWriter

        return ArrowStreamWriter(path, stdout, groups)
    return FlowFileWriter(path, stdout, given, groups)
