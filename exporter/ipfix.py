"""IPFIX (RFC 7011): layouts and the thin entry points over the shared template engine.

Message header (section 3.1): Length is the whole message; Sequence Number
counts the Data Records sent before this message in the observation domain,
and a Data Record is one defined by a Template or an Options Template
(section 2), so the sampling options data record counts, as Wireshark checks.
nfdump (1.7 and later) and softflowd count flow records only: nfdump reports
one sequence failure after each template refresh, a known peer difference
documented rather than copied. Flow records carry absolute
flowStartMilliseconds/flowEndMilliseconds (152/153), flowEndReason (136), and
ICMP type/code in icmpTypeCodeIPv4/IPv6 (32/139) as well as in the destination
port, where spanflow's records keep it.
Sampling goes in options template 258 as an RFC 5476 section 6.5.2 Selector
Report: scope selectorId (302) = 0, the exporter's only Selector (nfdump reads
a zero selectorId as applying to every flow), then selectorAlgorithm (304) and
the algorithm's parameters: 305/306 systematic count-based, 309/310 random
n-out-of-N, 311 uniform probabilistic.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.records import RecordTable
from exporter.errors import DecodeError
from exporter.formats import (
    NS_PER_MS,
    NS_PER_S,
    I64Array,
    SamplingAlgorithm,
    SamplingInfo,
    WireArray,
)
from exporter.template_decoder import Template, TemplateDecoder
from exporter.templates import (
    FIELD_SPEC,
    IPV4_TEMPLATE_ID,
    IPV6_TEMPLATE_ID,
    OPTIONS_TEMPLATE_ID,
    Field,
    Layout,
    TemplateExporter,
    read_row,
)

IPFIX_HEADER = np.dtype(
    [
        ("version", ">u2"),
        ("length", ">u2"),
        ("export_time", ">u4"),
        ("sequence_number", ">u4"),
        ("observation_domain_id", ">u4"),
    ]
)
assert IPFIX_HEADER.itemsize == 16

OPTIONS_TEMPLATE_HEADER = np.dtype(
    [("template_id", ">u2"), ("field_count", ">u2"), ("scope_field_count", ">u2")]
)
assert OPTIONS_TEMPLATE_HEADER.itemsize == 6

ENTERPRISE_BIT = 0x8000
VARIABLE_LENGTH = 0xFFFF


def _flow_fields(src: Field, dst: Field, icmp: Field) -> tuple[Field, ...]:
    return (
        src,
        dst,
        Field("sourceTransportPort", 7, ">u2", "sport"),
        Field("destinationTransportPort", 11, ">u2", "dport"),
        icmp,
        Field("protocolIdentifier", 4, "u1", "proto"),
        Field("ipClassOfService", 5, "u1", "tos"),
        Field("tcpControlBits", 6, ">u2", "tcp_flags"),
        Field("ingressInterface", 10, ">u4", "ifindex"),
        Field("octetDeltaCount", 1, ">u8", "octets"),
        Field("packetDeltaCount", 2, ">u8", "packets"),
        Field("flowStartMilliseconds", 152, ">u8", "first"),
        Field("flowEndMilliseconds", 153, ">u8", "last"),
        Field("flowEndReason", 136, "u1", "end_reason"),
        Field("vlanId", 58, ">u2", "vlan"),
        Field("ipVersion", 60, "u1", "version"),
    )


IPFIX_IPV4 = Layout(
    IPV4_TEMPLATE_ID,
    _flow_fields(
        Field("sourceIPv4Address", 8, ">u4", "src4"),
        Field("destinationIPv4Address", 12, ">u4", "dst4"),
        Field("icmpTypeCodeIPv4", 32, ">u2", "icmp"),
    ),
)
assert IPFIX_IPV4.dtype.itemsize == 58
IPFIX_IPV6 = Layout(
    IPV6_TEMPLATE_ID,
    _flow_fields(
        Field("sourceIPv6Address", 27, (">u8", (2,)), "src6"),
        Field("destinationIPv6Address", 28, (">u8", (2,)), "dst6"),
        Field("icmpTypeCodeIPv6", 139, ">u2", "icmp"),
    ),
)
assert IPFIX_IPV6.dtype.itemsize == 82

SELECTOR_PARAMETERS = {
    SamplingAlgorithm.DETERMINISTIC: (
        Field("samplingPacketInterval", 305, ">u4"),
        Field("samplingPacketSpace", 306, ">u4"),
    ),
    SamplingAlgorithm.RANDOM: (
        Field("samplingSize", 309, ">u4"),
        Field("samplingPopulation", 310, ">u4"),
    ),
    SamplingAlgorithm.PROBABILISTIC: (Field("samplingProbability", 311, ">f8"),),
}


def selector_layout(algorithm: SamplingAlgorithm) -> Layout:
    """Options template 258: a Selector Report Interpretation (RFC 5476 section 6.5.2)."""
    fields = (
        Field("selectorId", 302, ">u8"),
        Field("selectorAlgorithm", 304, "u1"),
        *SELECTOR_PARAMETERS[algorithm],
    )
    return Layout(OPTIONS_TEMPLATE_ID, fields, scope_count=1)


class IpfixExporter(TemplateExporter):
    """Encodes record tables as IPFIX messages; all state lives on the instance."""

    version = 10
    HEADER = IPFIX_HEADER
    TEMPLATE_SET_ID = 2
    OPTIONS_SET_ID = 3
    FLOW_LAYOUTS = (IPFIX_IPV4, IPFIX_IPV6)

    def options_layout(self) -> Layout:
        return selector_layout(self.config.sampling_algorithm)

    def options_template_record(self, layout: Layout) -> bytes:
        head = np.array(
            [(layout.template_id, len(layout.fields), layout.scope_count)], OPTIONS_TEMPLATE_HEADER
        )
        return head.tobytes() + layout.specs.tobytes()

    def options_data(self, layout: Layout) -> WireArray:
        n = self.config.sampling_interval
        algorithm = self.config.sampling_algorithm
        row = np.zeros(1, layout.dtype)
        row["selectorAlgorithm"] = algorithm.selector_algorithm
        if algorithm is SamplingAlgorithm.DETERMINISTIC:
            row["samplingPacketInterval"] = 1
            row["samplingPacketSpace"] = n - 1
        elif algorithm is SamplingAlgorithm.RANDOM:
            row["samplingSize"] = 1
            row["samplingPopulation"] = n
        else:
            row["samplingProbability"] = 1.0 / n
        return row

    def times(self, records: RecordTable) -> dict[str, Any]:
        return {"first": records.first_ns // NS_PER_MS, "last": records.last_ns // NS_PER_MS}

    def headers(
        self, counts: I64Array, lengths: I64Array, clocks_ns: I64Array, data_records: I64Array
    ) -> bytes:
        rows = np.zeros(len(counts), IPFIX_HEADER)
        rows["version"] = 10
        rows["length"] = lengths
        rows["export_time"] = clocks_ns // NS_PER_S
        before = self.data_records_sent + np.cumsum(data_records) - data_records
        rows["sequence_number"] = before % (1 << 32)
        rows["observation_domain_id"] = self.config.source_id
        return rows.tobytes()


class IpfixDecoder(TemplateDecoder):
    """Reads IPFIX messages; templates are kept per (exporter, observation domain)."""

    version = 10
    HEADER = IPFIX_HEADER
    DOMAIN_FIELD = "observation_domain_id"
    TEMPLATE_SET_ID = 2
    OPTIONS_SET_ID = 3

    def check_header(self, header: np.void, size: int) -> int:
        if int(header["length"]) != size:
            raise DecodeError(f"IPFIX: length field {int(header['length'])} != {size} bytes")
        return size

    def trailing(self, rest: bytes) -> None:
        if rest:
            raise DecodeError(f"IPFIX: {len(rest)} bytes after the last set")

    def read_fields(self, body: bytes, pos: int, count: int) -> tuple[list[tuple[int, int]], int]:
        """Field specifiers, each 4 bytes plus 4 for an enterprise number (section 3.2)."""
        fields = []
        for _ in range(count):
            if len(body) - pos < FIELD_SPEC.itemsize:
                raise DecodeError(f"IPFIX: template of {count} fields overruns its set")
            ie, length = read_row(body, FIELD_SPEC, pos)
            pos += FIELD_SPEC.itemsize
            if ie & ENTERPRISE_BIT:
                if len(body) - pos < 4:
                    raise DecodeError("IPFIX: enterprise number overruns its set")
                ie, pos = -1, pos + 4
            fields.append((ie, length))
        return fields, pos

    def options_header(self, body: bytes, pos: int) -> tuple[int, int, int, int]:
        template_id, count = read_row(body, FIELD_SPEC, pos)
        if count == 0:  # an Options Template Withdrawal is 4 bytes (section 8.1)
            return template_id, 0, 0, pos + 4
        if len(body) - pos < OPTIONS_TEMPLATE_HEADER.itemsize:
            raise DecodeError("IPFIX: options template header overruns its set")
        scope_count = int(np.frombuffer(body, ">u2", 1, pos + 4)[0])
        if not 1 <= scope_count <= count:
            raise DecodeError(f"IPFIX: options template {template_id} scope count {scope_count}")
        return template_id, count, scope_count, pos + OPTIONS_TEMPLATE_HEADER.itemsize

    def times(self, rows: WireArray, template: Template, header: np.void) -> tuple[I64Array, ...]:
        zeros = np.zeros(len(rows), np.int64)
        return tuple(
            template.values(rows, ie).astype(np.int64) * NS_PER_MS if template.has(ie) else zeros
            for ie in (152, 153)
        )

    def sampling(self, rows: WireArray, template: Template) -> SamplingInfo | None:
        if not len(rows) or not template.has(304, options=True):
            return None

        def value(ie: int) -> int:
            return int(template.values(rows, ie, options=True)[0])

        algorithm = value(304)
        if template.has(305, options=True) and template.has(306, options=True):
            packets = value(305)
            interval = (packets + value(306)) // packets if packets else 0
        elif template.has(309, options=True) and template.has(310, options=True):
            size = value(309)
            interval = value(310) // size if size else 0
        elif template.has(311, options=True):
            column = template.column(rows, 311, options=True)
            if column.dtype != np.dtype(">u8"):  # float64 only, not a reduced float32
                return None
            probability = float(column[:1].view(">f8")[0])
            if not 0 < probability <= 1:  # also NaN
                return None
            interval = round(1 / probability)
        else:
            return None
        return SamplingInfo(algorithm, interval)
