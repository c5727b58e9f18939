"""The template engine NetFlow v9 and IPFIX share; v9.py and ipfix.py are thin entry points.

Encoding (``TemplateExporter``): records split by IP version, template 256 for
IPv4 and 257 for IPv6; each family fills datagrams in order, one data set per
datagram, as many records as the MTU allows. A datagram carries the template
block (both flow templates, the sampling options template 258 and its one data
record) when it is the exporter's first, when K datagrams went out since the
last block, or when T seconds of export clock passed. Every set is padded to
4 bytes with zeros; no set is ever empty.

Decoding (``TemplateDecoder``): templates are kept per (exporter, source id or
observation domain); a data set whose template is unknown is counted and
skipped, as RFC 3954 section 9 and RFC 7011 section 8 ask. Malformed
datagrams raise DecodeError, nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from core.errors import ConfigError
from core.records import RecordTable
from exporter.errors import DecodeError
from exporter.formats import (
    Decoded,
    ExportConfig,
    I64Array,
    SamplingInfo,
    U64Array,
    WireArray,
    anchor_boot,
    ipv4_of,
    mapped,
)

FLOWSET_HEADER = np.dtype([("flowset_id", ">u2"), ("length", ">u2")])
assert FLOWSET_HEADER.itemsize == 4
TEMPLATE_HEADER = np.dtype([("template_id", ">u2"), ("field_count", ">u2")])
assert TEMPLATE_HEADER.itemsize == 4
FIELD_SPEC = np.dtype([("field_type", ">u2"), ("field_length", ">u2")])
assert FIELD_SPEC.itemsize == 4

IPV4_TEMPLATE_ID = 256
IPV6_TEMPLATE_ID = 257
OPTIONS_TEMPLATE_ID = 258
MIN_DATA_SET_ID = 256
ICMP_PROTOCOLS = (1, 58)
ICMP_FIELDS = (32, 139)  # ICMP_TYPE / icmpTypeCodeIPv4, icmpTypeCodeIPv6


@dataclass(frozen=True, slots=True)
class Field:
    """One template field: its name in the spec, field type (IE), wire dtype, and source.

    ``source`` is a RecordTable column, or src4/dst4/src6/dst6 (address
    halves), first/last (times in the version's encoding), icmp (the dport of
    ICMP and ICMPv6 records, type * 256 + code, else 0), or "" (constant 0).
    """

    name: str
    ie: int
    dtype: Any
    source: str = ""

    @property
    def length(self) -> int:
        return int(np.dtype(self.dtype).itemsize)


class Layout:
    """A template as data: its id, fields (scope fields first) and the numpy record dtype."""

    def __init__(self, template_id: int, fields: tuple[Field, ...], scope_count: int = 0) -> None:
        self.template_id = template_id
        self.fields = fields
        self.scope_count = scope_count
        self.dtype = np.dtype([(f.name, f.dtype) for f in fields])
        self.specs = np.array([(f.ie, f.length) for f in fields], FIELD_SPEC)


def read_row(buffer: bytes, dtype: np.dtype, offset: int) -> tuple[int, ...]:
    """The integer fields of one ``dtype`` row at ``offset`` (the caller checked the length)."""
    return tuple(np.frombuffer(buffer, dtype, 1, offset)[0].item())


def flowset(set_id: int, body: bytes) -> bytes:
    """A set (v9: FlowSet) of ``body`` zero-padded to a 4-byte boundary."""
    padding = -len(body) % 4
    head = np.array([(set_id, FLOWSET_HEADER.itemsize + len(body) + padding)], FLOWSET_HEADER)
    return head.tobytes() + body + bytes(padding)


def template_record(layout: Layout) -> bytes:
    head = np.array([(layout.template_id, len(layout.fields))], TEMPLATE_HEADER)
    return head.tobytes() + layout.specs.tobytes()


def fill(layout: Layout, records: RecordTable, times: dict[str, Any]) -> WireArray:
    """The layout's wire records for ``records``; ``times`` gives the first/last encodings."""
    wire = np.zeros(len(records), layout.dtype)
    for field in layout.fields:
        source = field.source
        if source in ("src4", "dst4"):
            wire[field.name] = ipv4_of(getattr(records, source[:3] + "_lo"))
        elif source in ("src6", "dst6"):
            prefix = source[:3]
            pair = (getattr(records, prefix + "_hi"), getattr(records, prefix + "_lo"))
            wire[field.name] = np.column_stack(pair)
        elif source == "icmp":
            wire[field.name] = np.where(np.isin(records.proto, ICMP_PROTOCOLS), records.dport, 0)
        elif source in times:
            wire[field.name] = times[source]
        elif source:
            wire[field.name] = getattr(records, source)
    return wire


def records_that_fit(room: int, layout: Layout) -> int:
    """How many records of a layout fit one padded set body of at most ``room`` bytes."""
    return max(room, 0) // 4 * 4 // layout.dtype.itemsize


class TemplateExporter:
    """Datagram assembly, MTU packing and template refresh; versions supply the hooks."""

    version: ClassVar[int]
    HEADER: ClassVar[np.dtype]
    TEMPLATE_SET_ID: ClassVar[int]
    OPTIONS_SET_ID: ClassVar[int]
    FLOW_LAYOUTS: ClassVar[tuple[Layout, Layout]]  # IPv4, IPv6

    def __init__(self, config: ExportConfig | None = None) -> None:
        self.config = config = config or ExportConfig()
        self.boot_ns: int | None = config.boot_ns
        self.datagrams_sent = 0
        self.records_sent = 0  # flow data records
        self.data_records_sent = 0  # flow and options data records (IPFIX sequence)
        self._since_templates: int | None = None  # datagrams since the last template block
        self._templates_ns = 0
        options = self.options_layout()
        self.template_block = (
            flowset(self.TEMPLATE_SET_ID, b"".join(map(template_record, self.FLOW_LAYOUTS)))
            + flowset(self.OPTIONS_SET_ID, self.options_template_record(options))
            + flowset(options.template_id, self.options_data(options).tobytes())
        )
        self.template_records = len(self.FLOW_LAYOUTS) + 2  # templates, options template, data
        room = config.mtu - self.HEADER.itemsize - FLOWSET_HEADER.itemsize
        self._capacity = {
            layout.template_id: (
                records_that_fit(room, layout),
                records_that_fit(room - len(self.template_block), layout),
            )
            for layout in self.FLOW_LAYOUTS
        }
        if min(min(pair) for pair in self._capacity.values()) < 1:
            raise ConfigError(
                f"MTU {config.mtu} is too small for the templates and one record "
                f"(NetFlow v{self.version})"
            )

    # Hooks for the versions.
    def options_layout(self) -> Layout:
        raise NotImplementedError

    def options_template_record(self, layout: Layout) -> bytes:
        raise NotImplementedError

    def options_data(self, layout: Layout) -> WireArray:
        raise NotImplementedError

    def times(self, records: RecordTable) -> dict[str, Any]:
        raise NotImplementedError

    def header(self, count: int, length: int, clock_ns: int) -> bytes:
        raise NotImplementedError

    def encode(self, records: RecordTable, export_ns: int) -> list[bytes]:
        """Datagrams for ``records`` at export clock ``export_ns`` (IPv4 ones first)."""
        if self.boot_ns is None:
            self.boot_ns = anchor_boot(self.config, records, export_ns)
        datagrams: list[bytes] = []
        is_v6 = records.version == 6
        for layout, family in zip(self.FLOW_LAYOUTS, (~is_v6, is_v6), strict=True):
            if not family.any():
                continue
            chosen = records.take(family)
            wire = fill(layout, chosen, self.times(chosen))
            start, n = 0, len(chosen)
            while start < n:
                with_templates = self._templates_due(export_ns)
                stop = min(n, start + self._capacity[layout.template_id][with_templates])
                clock_ns = max(export_ns, int(chosen.last_ns[start:stop].max()))
                datagrams.append(
                    self._datagram(layout, wire[start:stop], with_templates, clock_ns, export_ns)
                )
                start = stop
        return datagrams

    def _templates_due(self, export_ns: int) -> bool:
        return (
            self._since_templates is None
            or self._since_templates >= self.config.template_refresh_packets
            or export_ns - self._templates_ns >= self.config.template_refresh_ns
        )

    def _datagram(
        self, layout: Layout, wire: WireArray, with_templates: bool, clock_ns: int, export_ns: int
    ) -> bytes:
        body = flowset(layout.template_id, wire.tobytes())
        count = len(wire)
        if with_templates:
            body = self.template_block + body
            count += self.template_records
            self._since_templates = 0
            self._templates_ns = export_ns
        datagram = self.header(count, self.HEADER.itemsize + len(body), clock_ns) + body
        assert self._since_templates is not None
        self._since_templates += 1
        self.datagrams_sent += 1
        self.records_sent += len(wire)
        self.data_records_sent += len(wire) + with_templates
        return datagram


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
