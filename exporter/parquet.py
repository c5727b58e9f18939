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
from exporter.flowfile import (
    REASON_NAMES,
    AttributeColumn,
    attribute_columns,
    flow_columns,
    packed,
)

ROW_GROUP_ROWS = 1 << 16  # rows held before a row group is written

# A column's values: (PLAIN bytes of the values present, which rows have one or None: all).
Encoded = tuple[bytes, npt.NDArray[np.bool_] | None]
UNSIGNED = {"sport": 16, "dport": 16, "proto": 8, "tos": 8, "tcp_flags": 8, "packets": 64,
            "octets": 64, "ifindex": 32, "vlan": 16}  # fmt: skip


def _addresses(version: Any, hi: Any, lo: Any) -> bytes:
    out = np.empty(len(version) * 43, np.uint8)  # 4-byte length + at most 39 characters
    return out[: tk.plain_addresses(version, hi, lo, out)].tobytes()


def _reasons(codes: npt.NDArray[np.uint8]) -> bytes:
    names, starts = packed([name.encode() for name in REASON_NAMES])
    out = np.empty(len(codes) * (4 + int(np.diff(starts).max())), np.uint8)
    return out[: tk.plain_names(codes, names, starts, out)].tobytes()


def _attribute(column: AttributeColumn, words: npt.NDArray[np.uint64]) -> Encoded:
    """An attribute's values for the rows that have one, and which rows those are."""
    present = column.present(words)
    if column.numeric:
        return pl.plain_numbers(column.numbers(words)[present], pl.INT32), present
    out = np.empty(len(words) * 43, np.uint8)
    size = tk.plain_attributes(column.kind, np.ascontiguousarray(words), column.word, out)
    return out[:size].tobytes(), present


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
        if column.numeric:
            bits = 16 if column.kind == tk.VLAN_ID else 32
            declared = pl.unsigned_type(bits, optional=True)
        else:
            declared = pl.string_type(optional=True)

        def encode(r: RecordTable, column: AttributeColumn = column) -> Encoded:
            return _attribute(column, widened(r.attrs, a.ATTRIBUTE_WORDS))

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
