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

from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from core import attributes
from core.attributes import FieldGroup
from core.columns import widened
from core.errors import ConfigError
from core.records import RecordTable
from exporter.formats import (
    ExportConfig,
    I64Array,
    WireArray,
    ipv4_of,
)

FLOWSET_HEADER = np.dtype([("flowset_id", ">u2"), ("length", ">u2")])
assert FLOWSET_HEADER.itemsize == 4
_PADDING = (b"", b"\0", b"\0\0", b"\0\0\0")  # a set's zero padding to 4 bytes, by length
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
    head = np.array([(set_id, FLOWSET_HEADER.itemsize + len(body) + padding)], FLOWSET_HEADER)
    return head.tobytes() + body + bytes(padding)


def template_record(layout: Layout) -> bytes:
    head = np.array([(layout.template_id, len(layout.fields))], TEMPLATE_HEADER)
    return head.tobytes() + layout.specs.tobytes()


def fill(
    layout: Layout,
    records: RecordTable,
    times: dict[str, Any],
    rows: npt.NDArray[np.intp] | None = None,
) -> WireArray:
    """The layout's wire records for ``records`` (or its ``rows``, in order); ``times`` gives
    the first/last encodings of all ``records``. Only the columns the layout uses are taken."""

    def column(name: str) -> Any:
        values = times[name] if name in times else getattr(records, name)
        return values if rows is None else values[rows]

    wire = np.zeros(len(records) if rows is None else len(rows), layout.dtype)
    for field in layout.fields:
        source = field.source
        if source in ("src4", "dst4"):
            wire[field.name] = ipv4_of(column(source[:3] + "_lo"))
        elif source in ("src6", "dst6"):
            prefix = source[:3]
            wire[field.name] = np.column_stack((column(prefix + "_hi"), column(prefix + "_lo")))
        elif source == "icmp":
            wire[field.name] = np.where(
                np.isin(column("proto"), ICMP_PROTOCOLS), column("dport"), 0
            )
        elif source == "attrs":
            words = widened(column("attrs"), attributes.ATTRIBUTE_WORDS)[:, field.word]
            octets = words.astype(">u8").view(np.uint8).reshape(-1, 8)
            wire[field.name] = octets[:, 8 - field.length :]
        elif source:
            wire[field.name] = column(source)
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

    def headers(
        self, counts: I64Array, lengths: I64Array, clocks_ns: I64Array, data_records: I64Array
    ) -> bytes:
        """The headers of datagrams about to go out, in order, one ``HEADER`` row each:
        record counts, byte lengths, clocks and data records (flow and options) of each."""
        raise NotImplementedError

    def encode(self, records: RecordTable, export_ns: int) -> list[bytes]:
        """Datagrams for ``records`` at export clock ``export_ns`` (IPv4 ones first)."""
        datagrams: list[bytes] = []
        is_v6 = records.version == 6
        times = self.times(records)
        for layout, family in zip(self.flow_layouts, (~is_v6, is_v6), strict=True):
            if not family.any():
                continue
            rows = None if family.all() else np.flatnonzero(family)
            wire = fill(layout, records, times, rows)
            plain, templated = self._capacity[layout.template_id]
            plan = datagram_plan(len(wire), plain, templated, self._due_in(export_ns),
                                 self.config.template_refresh_packets)  # fmt: skip
            if plan.templated.any():
                self._since_templates = len(plan.starts) - int(np.flatnonzero(plan.templated)[-1])
                self._templates_ns = export_ns
            else:
                assert self._since_templates is not None
                self._since_templates += len(plan.starts)
            # A datagram's clock: export_ns, or its latest record's LAST if that is later.
            last_ns = records.last_ns if rows is None else records.last_ns[rows]
            latest = np.maximum.reduceat(last_ns, plan.starts)
            clocks = np.maximum(latest, np.int64(export_ns))
            datagrams += self._datagrams(layout, wire, plan, clocks)
        return datagrams

    def _due_in(self, export_ns: int) -> int:
        """Datagrams before the next that must carry templates (0: the next one)."""
        refresh = self.config.template_refresh_packets
        if (
            self._since_templates is None
            or self._since_templates >= refresh
            or export_ns - self._templates_ns >= self.config.template_refresh_ns
        ):
            return 0
        return refresh - self._since_templates

    def _datagrams(
        self, layout: Layout, wire: WireArray, plan: DatagramPlan, clocks_ns: I64Array
    ) -> list[bytes]:
        """Header, the template block where due, and one data set of the plan's records each.

        Headers and set headers are built for all datagrams at once; per datagram, Python
        only joins five byte strings.
        """
        size = wire.dtype.itemsize
        n_records = plan.stops - plan.starts
        data_bytes = n_records * size
        padding = -data_bytes % 4
        sets = np.empty(len(n_records), FLOWSET_HEADER)
        sets["flowset_id"] = layout.template_id
        sets["length"] = FLOWSET_HEADER.itemsize + data_bytes + padding
        counts = n_records + plan.templated * self.template_records
        lengths = self.HEADER.itemsize + plan.templated * len(self.template_block) + sets["length"]
        data_records = n_records + plan.templated
        heads = self.headers(counts, lengths, clocks_ns, data_records)
        set_heads, data = sets.tobytes(), wire.tobytes()
        step, set_step, block = self.HEADER.itemsize, FLOWSET_HEADER.itemsize, self.template_block
        datagrams = [
            b"".join((
                heads[k * step : k * step + step],
                block if with_templates else b"",
                set_heads[k * set_step : k * set_step + set_step],
                data[start * size : stop * size],
                _PADDING[pad],
            ))
            for k, (start, stop, with_templates, pad) in enumerate(zip(
                plan.starts.tolist(), plan.stops.tolist(), plan.templated.tolist(),
                padding.tolist(), strict=True,
            ))
        ]  # fmt: skip
        self.datagrams_sent += len(datagrams)
        self.records_sent += int(n_records.sum())
        self.data_records_sent += int(data_records.sum())
        return datagrams


@dataclass(frozen=True, slots=True)
class DatagramPlan:
    """Where each datagram's records start and stop, and which datagrams carry templates."""

    starts: I64Array
    stops: I64Array
    templated: npt.NDArray[np.bool_]


def datagram_plan(
    n: int, plain: int, templated: int, due_in: int, refresh_every: int
) -> DatagramPlan:
    """Datagrams for ``n`` records: ``plain`` fit one without templates, ``templated`` one
    with; the first to carry templates is ``due_in`` datagrams on, then every
    ``refresh_every``-th."""
    most = -(-n // max(min(plain, templated), 1)) if n else 0
    k = np.arange(most, dtype=np.int64)
    carries = (k >= due_in) & ((k - due_in) % refresh_every == 0)
    ends = np.cumsum(np.where(carries, templated, plain))
    count = int(np.searchsorted(ends, n)) + 1 if n else 0
    stops = np.minimum(ends[:count], n)
    starts = np.concatenate((np.zeros(min(count, 1), np.int64), stops[:-1]))
    return DatagramPlan(starts, stops, carries[:count])
