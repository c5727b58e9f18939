"""Records to a Parquet file as they leave the cache: row groups of bounded size.

Written by spanflow itself (exporter/parquet_layout.py), not pyarrow: importing
pyarrow.parquet alone costs 0.18 s and 68 MB, more than the whole writing, so
a Parquet file costs about what a CSV file does. The columns are the flow
file's (exporter/flowfile.py), typed: times as timestamp[ns, UTC], counters
and ports as unsigned integers, addresses, MACs and the end reason as text
(what an analyst filters on without an inet extension), attributes nullable.
The file's key-value metadata holds what produced it: the options given when
it is opened and the run's summary counters when it is closed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import IO, Any

import numpy as np
import numpy.typing as npt

from core import attributes as a
from core.attributes import FieldGroup
from core.columns import widened
from core.errors import ExportError
from core.records import RecordTable
from exporter import parquet_layout as pl
from exporter import text_kernel as tk
from exporter.flowfile import REASON_NAMES, attribute_columns, flow_columns

ROW_GROUP_ROWS = 1 << 16  # rows held before a row group is written

# A column's values: (PLAIN bytes of the values present, which rows have one or None: all).
Encoded = tuple[bytes, npt.NDArray[np.bool_] | None]
UNSIGNED = {"sport": 16, "dport": 16, "proto": 8, "tos": 8, "tcp_flags": 8, "packets": 64,
            "octets": 64, "ifindex": 32, "vlan": 16}  # fmt: skip
ATTRIBUTE_BITS = {tk.MAC: a.MAC_BITS, tk.VLAN_ID: a.VLAN_BITS, tk.MPLS_LABEL: a.MPLS_BITS}


def _texts(text: npt.NDArray[np.uint8], offsets: npt.NDArray[Any], rows: Any = None) -> bytes:
    starts = offsets[:-1].astype(np.int64)
    lengths = np.diff(offsets).astype(np.int64)
    if rows is not None:
        starts, lengths = starts[rows], lengths[rows]
    return pl.plain_byte_arrays(text, starts, lengths)


def _addresses(version: Any, hi: Any, lo: Any) -> bytes:
    n = len(version)
    out = np.empty(n * 39 + 1, np.uint8)
    offsets = np.empty(n + 1, np.int32)
    tk.format_addresses(version, hi, lo, out, offsets)
    return _texts(out, offsets)


def _reasons(codes: npt.NDArray[np.uint8]) -> bytes:
    names = [name.encode() for name in REASON_NAMES]
    text = np.frombuffer(b"".join(names) or b"\0", np.uint8)
    starts = np.cumsum([0] + [len(name) for name in names])[:-1]
    lengths = np.array([len(name) for name in names], np.int64)
    return pl.plain_byte_arrays(text, starts[codes], lengths[codes])


def _attribute(kind: int, word: int, words: npt.NDArray[np.uint64]) -> Encoded:
    """An attribute's values for the rows that have one (``core.attributes``' present bits)."""
    value = words[:, word]
    if kind in (tk.OUTER_SRC, tk.OUTER_DST):
        present = words[:, a.OUTER_VERSION] != 0
    else:
        present = (value >> np.uint64(ATTRIBUTE_BITS[kind])) != 0
    if kind == tk.VLAN_ID:
        return pl.plain_numbers(value[present] & np.uint64(0x0FFF), pl.INT32), present
    if kind == tk.MPLS_LABEL:
        label = (value[present] >> np.uint64(4)) & np.uint64(0xFFFFF)
        return pl.plain_numbers(label, pl.INT32), present
    n = len(words)
    out = np.empty(n * 39 + 1, np.uint8)
    offsets = np.empty(n + 1, np.int64)
    tk.format_attributes(kind, np.ascontiguousarray(words), word, out, offsets)
    return _texts(out, offsets, present), present


def _columns(
    groups: frozenset[FieldGroup],
) -> list[tuple[str, pl.ColumnType, Callable[[RecordTable], Encoded]]]:
    """Every column of the file: name, declared type, and how a batch encodes it."""

    def number(name: str, physical: int) -> Callable[[RecordTable], Encoded]:
        return lambda r: (pl.plain_numbers(getattr(r, name), physical), None)

    def address(side: str) -> Callable[[RecordTable], Encoded]:
        return lambda r: (
            _addresses(r.version, getattr(r, side + "_hi"), getattr(r, side + "_lo")),
            None,
        )

    columns: list[tuple[str, pl.ColumnType, Callable[[RecordTable], Encoded]]] = []
    for name in flow_columns():
        if name in ("first_ns", "last_ns"):
            columns.append((name, pl.timestamp_ns_utc(), number(name, pl.INT64)))
        elif name in ("src", "dst"):
            columns.append((name, pl.string_type(), address(name)))
        elif name == "end_reason":
            columns.append((name, pl.string_type(), lambda r: (_reasons(r.end_reason), None)))
        else:
            kind = pl.unsigned_type(UNSIGNED[name])
            columns.append((name, kind, number(name, kind.physical)))
    for column in attribute_columns(groups):
        if column.kind in (tk.VLAN_ID, tk.MPLS_LABEL):
            bits = 16 if column.kind == tk.VLAN_ID else 32
            declared = pl.unsigned_type(bits, optional=True)
        else:
            declared = pl.string_type(optional=True)

        def encode(r: RecordTable, kind: int = column.kind, word: int = column.word) -> Encoded:
            return _attribute(kind, word, widened(r.attrs, a.ATTRIBUTE_WORDS))

        columns.append((column.name, declared, encode))
    return columns


class ParquetFlowWriter:
    """``write`` records, ``describe`` the run, ``close``; memory stays within one row group."""

    def __init__(
        self,
        path: str,
        groups: frozenset[FieldGroup] = frozenset(),
        row_group_rows: int = ROW_GROUP_ROWS,
    ) -> None:
        if path == "-":
            raise ExportError("Parquet needs a file to write to, not stdout")
        self.path = path
        self.row_group_rows = row_group_rows
        self._columns = _columns(groups)
        self._pending: list[RecordTable] = []
        self._rows = 0
        self._row_groups: list[tuple[int, list[pl.ChunkInfo]]] = []
        self._metadata: dict[str, str] = {}
        try:
            self._file: IO[bytes] = open(path, "wb")  # noqa: SIM115 -- closed by close()
        except OSError as exc:
            raise ExportError(f"{path}: {exc.strerror or exc}") from exc
        self._write(pl.MAGIC)

    def _write(self, data: bytes) -> None:
        try:
            self._file.write(data)
        except OSError as exc:
            raise ExportError(f"{self.path}: {exc.strerror or exc}") from exc

    def write(self, records: RecordTable) -> None:
        self._pending.append(records)
        self._rows += len(records)
        while self._rows >= self.row_group_rows:
            batch = RecordTable.concat(self._pending)
            self._row_group(batch.take(slice(0, self.row_group_rows)))
            rest = batch.take(slice(self.row_group_rows, None))
            self._pending, self._rows = [rest], len(rest)

    def describe(self, metadata: dict[str, str]) -> None:
        """Key-value metadata for the file (options, summary counters)."""
        self._metadata |= metadata

    def _row_group(self, records: RecordTable) -> None:
        rows = len(records)
        chunks = []
        for _, declared, encode in self._columns:
            values, present = encode(records)
            levels = pl.definition_levels(present) if present is not None else b""
            if declared.optional and present is None:
                levels = pl.definition_levels(np.ones(rows, bool))
            page = pl.data_page(declared, values, rows, levels)
            chunks.append(pl.ChunkInfo(self._file.tell(), len(page), rows))
            self._write(page)
        self._row_groups.append((rows, chunks))

    def close(self) -> None:
        if self._rows:
            self._row_group(RecordTable.concat(self._pending))
        self._pending, self._rows = [], 0
        schema = [(name, declared) for name, declared, _ in self._columns]
        self._write(pl.footer(schema, self._row_groups, self._metadata))
        try:
            self._file.close()
        except OSError as exc:
            raise ExportError(f"{self.path}: {exc.strerror or exc}") from exc
