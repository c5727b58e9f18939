"""The template layouts and encoder NetFlow v9 and IPFIX share (decoding: template_decoder.py).

Encoding (``TemplateExporter``): records split by IP version, template 256 for
IPv4 and 257 for IPv6; each family fills datagrams in order, one data set per
datagram, as many records as the MTU allows. A datagram carries the template
block (both flow templates, the sampling options template 258 and its one data
record) when it is the exporter's first, when K datagrams went out since the
last block, or when T seconds of export clock passed. Every set is padded to
4 bytes with zeros; no set is ever empty.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from core import attributes
from core.attributes import FieldGroup
from core.columns import widened
from core.errors import ConfigError
from core.records import RecordTable
from exporter.formats import (
    ExportConfig,
    WireArray,
    ipv4_of,
)

FLOWSET_HEADER = np.dtype([("flowset_id", ">u2"), ("length", ">u2")])
assert FLOWSET_HEADER.itemsize == 4
# Per datagram, struct packs a header in a fraction of a numpy row's time.
_FLOWSET_HEAD = struct.Struct(">HH")
assert _FLOWSET_HEAD.size == FLOWSET_HEADER.itemsize
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
    ICMP and ICMPv6 records, type * 256 + code, else 0), attrs (the low bytes
    of attribute word ``word``, big-endian), or "" (constant 0).
    """

    name: str
    ie: int
    dtype: Any
    source: str = ""
    word: int = 0

    @property
    def length(self) -> int:
        return int(np.dtype(self.dtype).itemsize)


def _attribute(name: str, ie: int, octets: int, word: int) -> Field:
    return Field(name, ie, ("u1", (octets,)), "attrs", word)


# What --fields adds to both flow templates; the numbers are IPFIX's, which v9
# collectors read too (IANA's registry continues RFC 3954's field types).
# Tunnel endpoints have no information element: they go to flow files only.
ATTRIBUTE_FIELDS: dict[FieldGroup, tuple[Field, ...]] = {
    FieldGroup.VLAN: (_attribute("dot1qCustomerVlanId", 245, 2, attributes.INNER_VLAN),),
    FieldGroup.MAC: (
        _attribute("sourceMacAddress", 56, 6, attributes.SRC_MAC),
        _attribute("destinationMacAddress", 80, 6, attributes.DST_MAC),
    ),
    FieldGroup.MPLS: tuple(
        _attribute(f"mplsLabelStackSection{k + 1}", 70 + k, 3, word)
        for k, word in enumerate(attributes.MPLS_WORDS)
    ),
    FieldGroup.TUNNEL: (),
}


class Layout:
    """A template as data: its id, fields (scope fields first) and the numpy record dtype."""

    def __init__(self, template_id: int, fields: tuple[Field, ...], scope_count: int = 0) -> None:
        self.template_id = template_id
        self.fields = fields
        self.scope_count = scope_count
        self.dtype = np.dtype([(f.name, f.dtype) for f in fields])
        self.specs = np.array([(f.ie, f.length) for f in fields], FIELD_SPEC)

    def with_fields(self, groups: frozenset[FieldGroup]) -> Layout:
        """This layout with the fields of ``groups`` appended, in ``FieldGroup`` order."""
        extra = [
            field for group in FieldGroup if group in groups for field in ATTRIBUTE_FIELDS[group]
        ]
        if not extra:
            return self
        return Layout(self.template_id, (*self.fields, *extra), self.scope_count)


def read_row(buffer: bytes, dtype: np.dtype, offset: int) -> tuple[int, ...]:
    """The integer fields of one ``dtype`` row at ``offset`` (the caller checked the length)."""
    return tuple(np.frombuffer(buffer, dtype, 1, offset)[0].item())


def flowset(set_id: int, body: bytes) -> bytes:
    """A set (v9: FlowSet) of ``body`` zero-padded to a 4-byte boundary."""
    padding = -len(body) % 4
    head = _FLOWSET_HEAD.pack(set_id, _FLOWSET_HEAD.size + len(body) + padding)
    return head + body + bytes(padding)


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
        elif source == "attrs":
            words = widened(records.attrs, attributes.ATTRIBUTE_WORDS)[:, field.word]
            octets = words.astype(">u8").view(np.uint8).reshape(-1, 8)
            wire[field.name] = octets[:, 8 - field.length :]
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
    FLOW_LAYOUTS: ClassVar[tuple[Layout, Layout]]  # IPv4, IPv6, before ``config.fields``

    def __init__(self, config: ExportConfig | None = None) -> None:
        self.config = config = config or ExportConfig()
        self.boot_ns = config.boot_ns
        self.datagrams_sent = 0
        self.records_sent = 0  # flow data records
        self.data_records_sent = 0  # flow and options data records (IPFIX sequence)
        self._since_templates: int | None = None  # datagrams since the last template block
        self._templates_ns = 0
        self.flow_layouts = tuple(layout.with_fields(config.fields) for layout in self.FLOW_LAYOUTS)
        options = self.options_layout()
        self.template_block = (
            flowset(self.TEMPLATE_SET_ID, b"".join(map(template_record, self.flow_layouts)))
            + flowset(self.OPTIONS_SET_ID, self.options_template_record(options))
            + flowset(options.template_id, self.options_data(options).tobytes())
        )
        self.template_records = len(self.flow_layouts) + 2  # templates, options template, data
        room = config.mtu - self.HEADER.itemsize - FLOWSET_HEADER.itemsize
        self._capacity = {
            layout.template_id: (
                records_that_fit(room, layout),
                records_that_fit(room - len(self.template_block), layout),
            )
            for layout in self.flow_layouts
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
        datagrams: list[bytes] = []
        is_v6 = records.version == 6
        for layout, family in zip(self.flow_layouts, (~is_v6, is_v6), strict=True):
            if not family.any():
                continue
            chosen = records.take(family)
            wire = fill(layout, chosen, self.times(chosen))
            # Where each datagram's records start and stop, templates first where due.
            starts, stops, templated = [], [], []
            start, n = 0, len(chosen)
            while start < n:
                with_templates = self._templates_due(export_ns)
                stop = min(n, start + self._capacity[layout.template_id][with_templates])
                starts.append(start)
                stops.append(stop)
                templated.append(with_templates)
                self._count_datagram(with_templates, export_ns)
                start = stop
            # A datagram's clock: export_ns, or its latest record's LAST if that is later.
            latest = np.maximum.reduceat(chosen.last_ns, np.array(starts, np.intp))
            clocks = np.maximum(latest, np.int64(export_ns)).tolist()
            data, size = wire.tobytes(), wire.dtype.itemsize
            for start, stop, with_templates, clock_ns in zip(
                starts, stops, templated, clocks, strict=True
            ):
                records_bytes = data[start * size : stop * size]
                datagrams.append(
                    self._datagram(layout, records_bytes, stop - start, with_templates, clock_ns)
                )
        return datagrams

    def _templates_due(self, export_ns: int) -> bool:
        return (
            self._since_templates is None
            or self._since_templates >= self.config.template_refresh_packets
            or export_ns - self._templates_ns >= self.config.template_refresh_ns
        )

    def _count_datagram(self, with_templates: bool, export_ns: int) -> None:
        """The template refresh state after one more datagram (templates in it or not)."""
        if with_templates:
            self._since_templates = 0
            self._templates_ns = export_ns
        assert self._since_templates is not None
        self._since_templates += 1

    def _datagram(
        self, layout: Layout, records: bytes, n_records: int, with_templates: bool, clock_ns: int
    ) -> bytes:
        """Header, the template block when due, and one data set of ``n_records`` records."""
        padding = -len(records) % 4
        set_head = _FLOWSET_HEAD.pack(
            layout.template_id, _FLOWSET_HEAD.size + len(records) + padding
        )
        templates = self.template_block if with_templates else b""
        count = n_records + (self.template_records if with_templates else 0)
        length = self.HEADER.itemsize + len(templates) + len(set_head) + len(records) + padding
        header = self.header(count, length, clock_ns)
        self.datagrams_sent += 1
        self.records_sent += n_records
        self.data_records_sent += n_records + with_templates
        return b"".join((header, templates, set_head, records, bytes(padding)))
