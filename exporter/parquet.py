"""Records to a Parquet file as they leave the cache: row groups of bounded size.

The file's key-value metadata holds what produced it: the options given
when it is opened and the run's summary counters when it is closed.
"""

from __future__ import annotations

from typing import Any

from core.errors import ExportError
from core.records import RecordTable
from exporter.arrow import arrow_table, optional

ROW_GROUP_ROWS = 1 << 16  # rows held before a row group is written


class ParquetFlowWriter:
    """``write`` records, ``describe`` the run, ``close``; memory stays within one row group."""

    def __init__(self, path: str) -> None:
        if path == "-":
            raise ExportError("Parquet needs a file to write to, not stdout")
        self.path = path
        self._pq = optional("pyarrow.parquet")
        self._writer: Any = None
        self._pending: list[RecordTable] = []
        self._rows = 0
        self._metadata: dict[str, str] = {}
        self._schema = arrow_table(RecordTable.empty(0)).schema

    def write(self, records: RecordTable) -> None:
        self._pending.append(records)
        self._rows += len(records)
        if self._rows >= ROW_GROUP_ROWS:
            self._flush()

    def describe(self, metadata: dict[str, str]) -> None:
        """Key-value metadata for the file (options, summary counters)."""
        self._metadata |= metadata

    def _open(self) -> Any:
        if self._writer is None:
            try:
                self._writer = self._pq.ParquetWriter(self.path, self._schema, compression="zstd")
            except OSError as exc:
                raise ExportError(f"{self.path}: {exc}") from exc
        return self._writer

    def _flush(self) -> None:
        if self._pending:
            table = arrow_table(RecordTable.concat(self._pending))
            self._pending, self._rows = [], 0
            try:
                self._open().write_table(table, row_group_size=ROW_GROUP_ROWS)
            except OSError as exc:
                raise ExportError(f"{self.path}: {exc}") from exc

    def close(self) -> None:
        self._flush()
        writer = self._open()  # an empty run still leaves a valid file with its schema
        try:
            if self._metadata:
                writer.add_key_value_metadata(self._metadata)
            writer.close()
        except OSError as exc:
            raise ExportError(f"{self.path}: {exc}") from exc
