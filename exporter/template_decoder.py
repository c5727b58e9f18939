"""Decoding NetFlow v9 and IPFIX datagrams through the templates they carry (v9.py, ipfix.py).

Templates are kept per (exporter, source id or observation domain); a data set
whose template is unknown is counted and skipped, as RFC 3954 section 9 and
RFC 7011 section 8 ask. Malformed datagrams raise DecodeError, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from core.records import RecordTable
from exporter.errors import DecodeError
from exporter.formats import Decoded, I64Array, SamplingInfo, U64Array, WireArray, mapped
from exporter.templates import (
    FIELD_SPEC,
    FLOWSET_HEADER,
    ICMP_FIELDS,
    ICMP_PROTOCOLS,
    MIN_DATA_SET_ID,
    TEMPLATE_HEADER,
    read_row,
)

NATURAL_WIDTHS = {1: ">u1", 2: ">u2", 4: ">u4", 8: ">u8"}


@dataclass(frozen=True, slots=True)
class Template:
    """A template as received: record dtype, field types and where each type first occurs.

    Fields of 1, 2, 4 or 8 bytes are big-endian unsigned columns; other widths
    (reduced-size encodings, IPv6 addresses) are byte columns. ``ies`` holds
    -1 for enterprise-specific fields; v9 scope fields keep their scope types
    and are looked up only through ``scope_count``.
    """

    dtype: np.dtype
    ies: tuple[int, ...]
    scope_count: int
    options: bool
    first: dict[int, int]  # field type -> index of its first field
    first_option: dict[int, int]  # the same over the non-scope fields

    @classmethod
    def of(cls, fields: list[tuple[int, int]], scope_count: int, options: bool) -> Template:
        if sum(length for _, length in fields) == 0:
            raise DecodeError("template with records of zero length")
        dtype = np.dtype(
            [
                (f"f{i}", NATURAL_WIDTHS.get(length, ("u1", (length,))))
                for i, (_, length) in enumerate(fields)
            ]
        )
        ies = tuple(ie for ie, _ in fields)
        first: dict[int, int] = {}
        first_option: dict[int, int] = {}
        for index, ie in enumerate(ies):
            first.setdefault(ie, index)
            if index >= scope_count:
                first_option.setdefault(ie, index)
        return cls(dtype, ies, scope_count, options, first, first_option)

    def has(self, ie: int, options: bool = False) -> bool:
        return ie in (self.first_option if options else self.first)

    def column(self, rows: WireArray, ie: int, options: bool = False) -> npt.NDArray[Any]:
        """The first field of type ``ie`` (non-scope if ``options``), as stored."""
        index = (self.first_option if options else self.first)[ie]
        return rows[f"f{index}"]

    def values(self, rows: WireArray, ie: int, options: bool = False) -> U64Array:
        """The first field of type ``ie`` as unsigned integers (reduced sizes included)."""
        column = self.column(rows, ie, options)
        if column.ndim == 1:
            return column.astype(np.uint64)
        return unsigned(column)


def unsigned(column: npt.NDArray[np.uint8]) -> U64Array:
    """Big-endian unsigned integers from byte columns (the low 8 bytes of wider ones)."""
    value = np.zeros(len(column), np.uint64)
    for i in range(column.shape[1]):
        value = (value << np.uint64(8)) | column[:, i].astype(np.uint64)
    return value


def halves(column: npt.NDArray[np.uint8]) -> tuple[U64Array, U64Array]:
    """The high and low 64-bit halves of 16-byte big-endian values."""
    words = np.ascontiguousarray(column).view(">u8").astype(np.uint64)
    return words[:, 0], words[:, 1]


# Field type -> RecordTable column for plain unsigned fields (same numbers in v9 and IPFIX).
UNSIGNED_COLUMNS = {
    1: "octets", 2: "packets", 4: "proto", 5: "tos", 6: "tcp_flags", 7: "sport",
    10: "ifindex", 11: "dport", 58: "vlan", 60: "version", 136: "end_reason",
}  # fmt: skip
ADDRESS_FIELDS = {8: ("src", 4), 12: ("dst", 4), 27: ("src", 16), 28: ("dst", 16)}


class TemplateDecoder:
    """Reads v9/IPFIX datagrams, keeping templates per (exporter, domain)."""

    version: ClassVar[int]
    HEADER: ClassVar[np.dtype]
    DOMAIN_FIELD: ClassVar[str]
    TEMPLATE_SET_ID: ClassVar[int]
    OPTIONS_SET_ID: ClassVar[int]

    def __init__(self) -> None:
        self.templates: dict[tuple[object, int], dict[int, Template | None]] = {}

    # Hooks for the versions.
    def check_header(self, header: np.void, size: int) -> int:
        """Validate the header; return where the sets end."""
        raise NotImplementedError

    def read_fields(self, body: bytes, pos: int, count: int) -> tuple[list[tuple[int, int]], int]:
        raise NotImplementedError

    def options_header(self, body: bytes, pos: int) -> tuple[int, int, int, int]:
        """(template id, field count, scope field count, position after it)."""
        raise NotImplementedError

    def times(self, rows: WireArray, template: Template, header: np.void) -> tuple[I64Array, ...]:
        raise NotImplementedError

    def sampling(self, rows: WireArray, template: Template) -> SamplingInfo | None:
        raise NotImplementedError

    def decode(self, datagram: bytes, exporter: object = None) -> Decoded:
        """Read one datagram from ``exporter`` (any hashable naming the sender)."""
        datagram = bytes(datagram)
        if len(datagram) < self.HEADER.itemsize:
            raise DecodeError(f"v{self.version}: {len(datagram)} bytes is shorter than the header")
        header = np.frombuffer(datagram, self.HEADER, count=1)[0]
        if header["version"] != self.version:
            raise DecodeError(f"v{self.version}: version field is {int(header['version'])}")
        end = self.check_header(header, len(datagram))
        known = self.templates.setdefault((exporter, int(header[self.DOMAIN_FIELD])), {})
        defined: list[int] = []
        tables: list[RecordTable] = []
        sampling: SamplingInfo | None = None
        skipped = data_records = 0
        offset = self.HEADER.itemsize
        while end - offset >= FLOWSET_HEADER.itemsize:
            set_id, length = read_row(datagram, FLOWSET_HEADER, offset)
            if length < FLOWSET_HEADER.itemsize or offset + length > end:
                raise DecodeError(f"v{self.version}: set at byte {offset} has length {length}")
            body = datagram[offset + FLOWSET_HEADER.itemsize : offset + length]
            if set_id == self.TEMPLATE_SET_ID:
                defined += self._templates(body, known, options=False)
            elif set_id == self.OPTIONS_SET_ID:
                defined += self._templates(body, known, options=True)
            elif set_id >= MIN_DATA_SET_ID and known.get(set_id) is not None:
                template = known[set_id]
                assert template is not None
                rows = np.frombuffer(body, template.dtype, len(body) // template.dtype.itemsize)
                data_records += len(rows)
                if template.options:
                    sampling = self.sampling(rows, template) or sampling
                else:
                    tables.append(self._records(rows, template, header))
            else:
                skipped += 1
            offset += length
        self.trailing(datagram[offset:end])
        records = RecordTable.concat(tables)
        return Decoded(
            self.version, header, records, tuple(defined), sampling, skipped, data_records
        )

    def trailing(self, rest: bytes) -> None:
        """Bytes after the last set: v9 tolerates up to 3, IPFIX overrides."""

    def _templates(
        self, body: bytes, known: dict[int, Template | None], options: bool
    ) -> list[int]:
        defined = []
        pos = 0
        while len(body) - pos >= TEMPLATE_HEADER.itemsize:
            if not any(body[pos:]):
                break  # padding
            if options:
                template_id, count, scope_count, pos = self.options_header(body, pos)
            else:
                template_id, count = read_row(body, TEMPLATE_HEADER, pos)
                scope_count, pos = 0, pos + TEMPLATE_HEADER.itemsize
            if template_id < MIN_DATA_SET_ID:
                raise DecodeError(f"v{self.version}: template id {template_id} is below 256")
            if count == 0:  # IPFIX template withdrawal (RFC 7011 section 8.1)
                known.pop(template_id, None)
                continue
            fields, pos = self.read_fields(body, pos, count)
            if any(length == 0xFFFF for _, length in fields):
                known[template_id] = None  # variable-length fields: data sets are skipped
            else:
                known[template_id] = Template.of(fields, scope_count, options)
            defined.append(template_id)
        return defined

    def _records(self, rows: WireArray, template: Template, header: np.void) -> RecordTable:
        records = RecordTable.empty(len(rows))
        for ie, name in UNSIGNED_COLUMNS.items():
            if template.has(ie):
                values = template.values(rows, ie)
                setattr(records, name, values.astype(RecordTable.DTYPES[name]))
        icmp = np.isin(records.proto, ICMP_PROTOCOLS) & (records.dport == 0)
        for ie in ICMP_FIELDS:
            if template.has(ie) and icmp.any():
                records.dport[icmp] = template.values(rows, ie)[icmp].astype(np.uint16)
        if not template.has(60):
            records.version[:] = 6 if template.has(27) else 4
        for ie, (prefix, size) in ADDRESS_FIELDS.items():
            if not template.has(ie) or template.dtype[template.first[ie]].itemsize != size:
                continue
            if size == 4:
                setattr(records, prefix + "_lo", mapped(template.values(rows, ie)))
            else:
                hi, lo = halves(template.column(rows, ie))
                setattr(records, prefix + "_hi", hi)
                setattr(records, prefix + "_lo", lo)
        records.first_ns, records.last_ns = self.times(rows, template, header)
        return records


def read_v9_fields(body: bytes, pos: int, count: int) -> tuple[list[tuple[int, int]], int]:
    """``count`` fixed 4-byte field specifiers (RFC 3954 section 5.2)."""
    end = pos + count * FIELD_SPEC.itemsize
    if end > len(body):
        raise DecodeError(f"template of {count} fields overruns its set")
    specs = np.frombuffer(body, FIELD_SPEC, count, pos)
    return [(int(t), int(n)) for t, n in specs.tolist()], end
