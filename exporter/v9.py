"""NetFlow v9 (RFC 3954): layouts and the thin entry points over the shared template engine.

Header (section 5.1): Count is every record in the datagram (templates,
options template, options data, flow data); Sequence Number counts the
datagrams sent before this one. The header has whole UNIX Secs only, and a
collector dates records as UNIX Secs * 1000 - sysUpTime + FIRST_SWITCHED, so
the datagram's clock is rounded up to a whole second before both are written:
collectors then get record times exact to the millisecond, instead of up to
a second early. FIRST/LAST_SWITCHED (22/21) are sysUptime milliseconds;
IN_BYTES/IN_PKTS are 64-bit. ICMP type/code (type * 256 + code) goes in
L4_DST_PORT, as Cisco exports it, and in ICMP_TYPE (32), where nfdump looks
for it. flowEndReason (136, the IPFIX number: RFC 3954 section 8 lists no end
reason) ends each record, as softflowd exports it, so collectors see why a
flow ended. The options template 258 (scope System = source id) carries
SAMPLING_INTERVAL (34) and SAMPLING_ALGORITHM (35) with every template
refresh, also when not sampling (interval 1): collectors such as goflow2
otherwise assume a rate of 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.records import RecordTable
from exporter.errors import DecodeError
from exporter.formats import (
    NS_PER_S,
    I64Array,
    SamplingInfo,
    WireArray,
    switched_to_ns,
    uptime_ms,
)
from exporter.template_decoder import Template, TemplateDecoder, read_v9_fields
from exporter.templates import (
    IPV4_TEMPLATE_ID,
    IPV6_TEMPLATE_ID,
    OPTIONS_TEMPLATE_ID,
    Field,
    Layout,
    TemplateExporter,
    read_row,
)

V9_HEADER = np.dtype(
    [
        ("version", ">u2"),
        ("count", ">u2"),
        ("sys_uptime", ">u4"),
        ("unix_secs", ">u4"),
        ("sequence_number", ">u4"),
        ("source_id", ">u4"),
    ]
)
assert V9_HEADER.itemsize == 20

OPTIONS_TEMPLATE_HEADER = np.dtype(
    [("template_id", ">u2"), ("option_scope_length", ">u2"), ("option_length", ">u2")]
)
assert OPTIONS_TEMPLATE_HEADER.itemsize == 6

SCOPE_SYSTEM = 1  # RFC 3954 section 6.1 scope field types: 1 System .. 5 Template


def _flow_fields(src: Field, dst: Field) -> tuple[Field, ...]:
    return (
        src,
        dst,
        Field("L4_SRC_PORT", 7, ">u2", "sport"),
        Field("L4_DST_PORT", 11, ">u2", "dport"),
        Field("ICMP_TYPE", 32, ">u2", "icmp"),  # nfdump reads ICMP type/code only from here
        Field("PROTOCOL", 4, "u1", "proto"),
        Field("SRC_TOS", 5, "u1", "tos"),
        Field("TCP_FLAGS", 6, "u1", "tcp_flags"),
        Field("INPUT_SNMP", 10, ">u4", "ifindex"),
        Field("IN_BYTES", 1, ">u8", "octets"),
        Field("IN_PKTS", 2, ">u8", "packets"),
        Field("FIRST_SWITCHED", 22, ">u4", "first"),
        Field("LAST_SWITCHED", 21, ">u4", "last"),
        Field("SRC_VLAN", 58, ">u2", "vlan"),
        Field("IP_PROTOCOL_VERSION", 60, "u1", "version"),
        Field("FLOW_END_REASON", 136, "u1", "end_reason"),  # as softflowd exports it
    )


V9_IPV4 = Layout(
    IPV4_TEMPLATE_ID,
    _flow_fields(
        Field("IPV4_SRC_ADDR", 8, ">u4", "src4"), Field("IPV4_DST_ADDR", 12, ">u4", "dst4")
    ),
)
assert V9_IPV4.dtype.itemsize == 49
V9_IPV6 = Layout(
    IPV6_TEMPLATE_ID,
    _flow_fields(
        Field("IPV6_SRC_ADDR", 27, (">u8", (2,)), "src6"),
        Field("IPV6_DST_ADDR", 28, (">u8", (2,)), "dst6"),
    ),
)
assert V9_IPV6.dtype.itemsize == 73
V9_OPTIONS = Layout(
    OPTIONS_TEMPLATE_ID,
    (
        Field("scope_system", SCOPE_SYSTEM, ">u4"),
        Field("SAMPLING_INTERVAL", 34, ">u4"),
        Field("SAMPLING_ALGORITHM", 35, "u1"),
    ),
    scope_count=1,
)
assert V9_OPTIONS.dtype.itemsize == 9


class V9Exporter(TemplateExporter):
    """Encodes record tables as NetFlow v9 datagrams; all state lives on the instance."""

    version = 9
    HEADER = V9_HEADER
    TEMPLATE_SET_ID = 0
    OPTIONS_SET_ID = 1
    FLOW_LAYOUTS = (V9_IPV4, V9_IPV6)

    def options_layout(self) -> Layout:
        return V9_OPTIONS

    def options_template_record(self, layout: Layout) -> bytes:
        scope = layout.specs[: layout.scope_count]
        options = layout.specs[layout.scope_count :]
        head = np.array(
            [(layout.template_id, scope.nbytes, options.nbytes)], OPTIONS_TEMPLATE_HEADER
        )
        return head.tobytes() + layout.specs.tobytes()

    def options_data(self, layout: Layout) -> WireArray:
        row = np.zeros(1, layout.dtype)
        row["scope_system"] = self.config.source_id
        row["SAMPLING_INTERVAL"] = self.config.sampling_interval
        row["SAMPLING_ALGORITHM"] = self.config.sampling_algorithm.v9_value
        return row

    def times(self, records: RecordTable) -> dict[str, Any]:
        return {
            "first": uptime_ms(records.first_ns, self.boot_ns),
            "last": uptime_ms(records.last_ns, self.boot_ns),
        }

    def headers(
        self, counts: I64Array, lengths: I64Array, clocks_ns: I64Array, data_records: I64Array
    ) -> bytes:
        clock_s = -(-clocks_ns // NS_PER_S)  # rounded up: see the module docstring
        rows = np.zeros(len(counts), V9_HEADER)
        rows["version"] = 9
        rows["count"] = counts
        rows["sys_uptime"] = uptime_ms(clock_s * NS_PER_S, self.boot_ns)
        rows["unix_secs"] = clock_s
        rows["sequence_number"] = (self.datagrams_sent + np.arange(len(counts))) % (1 << 32)
        rows["source_id"] = self.config.source_id
        return rows.tobytes()


class V9Decoder(TemplateDecoder):
    """Reads NetFlow v9 datagrams; templates are kept per (exporter, source id)."""

    version = 9
    HEADER = V9_HEADER
    DOMAIN_FIELD = "source_id"
    TEMPLATE_SET_ID = 0
    OPTIONS_SET_ID = 1

    def check_header(self, header: np.void, size: int) -> int:
        return size

    def read_fields(self, body: bytes, pos: int, count: int) -> tuple[list[tuple[int, int]], int]:
        return read_v9_fields(body, pos, count)

    def options_header(self, body: bytes, pos: int) -> tuple[int, int, int, int]:
        if len(body) - pos < OPTIONS_TEMPLATE_HEADER.itemsize:
            raise DecodeError("v9: options template header overruns its flowset")
        template_id, scope_bytes, option_bytes = read_row(body, OPTIONS_TEMPLATE_HEADER, pos)
        if scope_bytes % 4 or option_bytes % 4:
            raise DecodeError(f"v9: options template {template_id} lengths are not whole fields")
        count = (scope_bytes + option_bytes) // 4
        return template_id, count, scope_bytes // 4, pos + OPTIONS_TEMPLATE_HEADER.itemsize

    def times(self, rows: WireArray, template: Template, header: np.void) -> tuple[I64Array, ...]:
        export_ms = int(header["unix_secs"]) * 1000
        uptime = int(header["sys_uptime"])
        zeros = np.zeros(len(rows), np.int64)
        return tuple(
            switched_to_ns(export_ms, uptime, template.values(rows, ie))
            if template.has(ie)
            else zeros
            for ie in (22, 21)
        )

    def sampling(self, rows: WireArray, template: Template) -> SamplingInfo | None:
        if not len(rows) or not template.has(34, options=True):
            return None
        interval = int(template.values(rows, 34, options=True)[0])
        algorithm = 0
        if template.has(35, options=True):
            algorithm = int(template.values(rows, 35, options=True)[0])
        return SamplingInfo(algorithm, interval)
