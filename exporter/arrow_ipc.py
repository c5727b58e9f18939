"""Records to an Arrow IPC stream as they leave the cache (``-o flows.arrows``, or ``.arrow``).

One record batch per write, with the flow file's schema (exporter/arrow.py);
``-`` writes to stdout, so the stream can be piped into another program. A
stream has no place for metadata after its first message, so the run's
summary counters are not in it (Parquet keeps them).
"""

from __future__ import annotations

from typing import IO, Any

from core.attributes import FieldGroup
from core.errors import ExportError
from core.records import RecordTable
from exporter.arrow import arrow_table, optional


class ArrowStreamWriter:
    """``write`` records, ``close``; memory is one batch."""

    def __init__(
        self,
        path: str,
        stdout: IO[bytes] | None = None,
        groups: frozenset[FieldGroup] = frozenset(),
    ) -> None:
        self.path = path
        self.groups = groups
        self._pa = optional("pyarrow")
        schema = arrow_table(RecordTable.empty(0), groups).schema
        try:
            sink: Any = (
                stdout if path == "-" and stdout is not None else self._pa.OSFile(path, "wb")
            )
            self._sink = sink
            self._writer = self._pa.ipc.new_stream(sink, schema)
        except OSError as exc:
            raise ExportError(f"{path}: {exc}") from exc

    def write(self, records: RecordTable) -> None:
        if len(records) == 0:
            return
        try:
            for batch in arrow_table(records, self.groups).to_batches():
                self._writer.write_batch(batch)
        except OSError as exc:
            raise ExportError(f"{self.path}: {exc}") from exc

    def describe(self, metadata: dict[str, str]) -> None:
        """A stream's schema went out first: the summary has nowhere to go."""

    def close(self) -> None:
        try:
            self._writer.close()
            if self.path != "-":
                self._sink.close()
            else:
                self._sink.flush()
        except OSError as exc:
            raise ExportError(f"{self.path}: {exc}") from exc
