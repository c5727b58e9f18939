"""NetFlow v5: layouts, encoder and decoder (Cisco "NetFlow Export Datagram Format", v5).

A datagram is a 24-byte header and 1..30 records of 48 bytes. v5 carries IPv4
only: IPv6 records are counted in ``skipped_ipv6`` and skipped, with one
warning per exporter. Its counters are 32-bit: a record with more than 2^32-1
packets or octets goes out as several records with the same key and times
whose sums are exact. The 16-bit ``input`` field holds the ifindex (values
above 65535 are sent as 65535). ``flow_sequence`` counts the records sent
before the datagram; the header ``sampling_interval`` is 2 mode bits and a
14-bit interval (0 when not sampling).
"""

from __future__ import annotations

import logging

import numpy as np

from core.errors import ConfigError
from core.records import RecordTable
from exporter.errors import DecodeError
from exporter.formats import (
    NS_PER_MS,
    NS_PER_S,
    UPTIME_MODULUS,
    Decoded,
    ExportConfig,
    SamplingInfo,
    U64Array,
    chunk_clocks,
    ipv4_of,
    mapped,
    switched_to_ns,
    uptime_ms,
)
from exporter.templates import ATTRIBUTE_FIELDS

log = logging.getLogger(__name__)

V5_HEADER = np.dtype(
    [
        ("version", ">u2"),
        ("count", ">u2"),
        ("SysUptime", ">u4"),
        ("unix_secs", ">u4"),
        ("unix_nsecs", ">u4"),
        ("flow_sequence", ">u4"),
        ("engine_type", "u1"),
        ("engine_id", "u1"),
        ("sampling_interval", ">u2"),
    ]
)
assert V5_HEADER.itemsize == 24

V5_RECORD = np.dtype(
    [
        ("srcaddr", ">u4"),
        ("dstaddr", ">u4"),
        ("nexthop", ">u4"),
        ("input", ">u2"),
        ("output", ">u2"),
        ("dPkts", ">u4"),
        ("dOctets", ">u4"),
        ("First", ">u4"),
        ("Last", ">u4"),
        ("srcport", ">u2"),
        ("dstport", ">u2"),
        ("pad1", "u1"),
        ("tcp_flags", "u1"),
        ("prot", "u1"),
        ("tos", "u1"),
        ("src_as", ">u2"),
        ("dst_as", ">u2"),
        ("src_mask", "u1"),
        ("dst_mask", "u1"),
        ("pad2", ">u2"),
    ]
)
assert V5_RECORD.itemsize == 48

MAX_RECORDS = 30
COUNTER_MAX = (1 << 32) - 1
SAMPLING_INTERVAL_MAX = (1 << 14) - 1


def split_counters(records: RecordTable) -> RecordTable:
    """Records whose packets and octets fit 32 bits, with the same sums.

    A record needing k = max(ceil(packets / M), ceil(octets / M)) parts
    (M = 2^32-1) becomes k consecutive copies; part r gets packets // k, plus
    one if r < packets % k, and octets likewise, so every part is <= M.
    """
    parts = np.maximum(_ceil_parts(records.packets), _ceil_parts(records.octets))
    parts = np.maximum(parts, np.uint64(1)).astype(np.int64)
    if not (parts > 1).any():
        return records
    source = np.repeat(np.arange(len(records)), parts)
    rank = (np.arange(len(source)) - np.repeat(np.cumsum(parts) - parts, parts)).astype(np.uint64)
    out = records.take(source)
    k = parts[source].astype(np.uint64)
    out.packets = _share(out.packets, k, rank)
    out.octets = _share(out.octets, k, rank)
    return out


def _ceil_parts(total: U64Array) -> U64Array:
    m = np.uint64(COUNTER_MAX)
    parts: U64Array = total // m + (total % m != 0).astype(np.uint64)
    return parts


def _share(total: U64Array, k: U64Array, rank: U64Array) -> U64Array:
    return total // k + (rank < total % k).astype(np.uint64)


class V5Exporter:
    """Encodes record tables as NetFlow v5 datagrams; all state lives on the instance."""

    version = 5

    def __init__(self, config: ExportConfig | None = None) -> None:
        self.config = config = config or ExportConfig()
        if config.sampling_interval > SAMPLING_INTERVAL_MAX:
            raise ConfigError(
                f"NetFlow v5 carries a sampling interval up to {SAMPLING_INTERVAL_MAX}, "
                f"got {config.sampling_interval}"
            )
        on_wire = sorted(group.value for group in config.fields if ATTRIBUTE_FIELDS[group])
        if on_wire:
            raise ConfigError(
                f"NetFlow v5 records have no room for --fields {','.join(on_wire)}: "
                "use --format 9 or ipfix"
            )
        self.per_datagram = min(MAX_RECORDS, (config.mtu - V5_HEADER.itemsize) // 48)
        if self.per_datagram < 1:
            raise ConfigError(f"MTU {config.mtu} is too small for one NetFlow v5 record (72 B)")
        sampling = 0
        if config.sampling_interval > 1:
            sampling = config.sampling_algorithm.v5_mode << 14 | config.sampling_interval
        self.sampling_field = sampling
        self.boot_ns = config.boot_ns
        self.flows_exported = 0  # records sent: the next flow_sequence
        self.datagrams_sent = 0
        self.skipped_ipv6 = 0

    def encode(self, records: RecordTable, export_ns: int) -> list[bytes]:
        ipv4 = records.version == 4
        skipped = len(records) - int(ipv4.sum())
        if skipped:
            if not self.skipped_ipv6:
                log.warning("NetFlow v5 carries IPv4 only: IPv6 records are skipped")
            self.skipped_ipv6 += skipped
            records = records.take(ipv4)
        records = split_counters(records)
        n = len(records)
        if n == 0:
            return []
        wire = self._records(records)
        bounds = np.arange(0, n, self.per_datagram)
        headers = self._headers(records, bounds, export_ns)
        stops = [*bounds[1:].tolist(), n]
        datagrams = [
            headers[i].tobytes() + wire[start:stop].tobytes()
            for i, (start, stop) in enumerate(zip(bounds.tolist(), stops, strict=True))
        ]
        self.flows_exported += n
        self.datagrams_sent += len(datagrams)
        return datagrams

    def _records(self, records: RecordTable) -> np.ndarray:
        wire = np.zeros(len(records), V5_RECORD)
        wire["srcaddr"] = ipv4_of(records.src_lo)
        wire["dstaddr"] = ipv4_of(records.dst_lo)
        wire["input"] = np.minimum(records.ifindex, 0xFFFF)
        wire["dPkts"] = records.packets
        wire["dOctets"] = records.octets
        wire["First"] = uptime_ms(records.first_ns, self.boot_ns)
        wire["Last"] = uptime_ms(records.last_ns, self.boot_ns)
        wire["srcport"] = records.sport
        wire["dstport"] = records.dport
        wire["tcp_flags"] = records.tcp_flags
        wire["prot"] = records.proto
        wire["tos"] = records.tos
        return wire

    def _headers(self, records: RecordTable, bounds: np.ndarray, export_ns: int) -> np.ndarray:
        n = len(records)
        clock_ns = chunk_clocks(records.last_ns, bounds, export_ns)
        headers = np.zeros(len(bounds), V5_HEADER)
        headers["version"] = 5
        headers["count"] = np.diff(np.append(bounds, n))
        headers["SysUptime"] = uptime_ms(clock_ns, self.boot_ns)
        headers["unix_secs"] = clock_ns // NS_PER_S
        headers["unix_nsecs"] = clock_ns % NS_PER_S
        headers["flow_sequence"] = (self.flows_exported + bounds) % UPTIME_MODULUS
        headers["engine_type"] = self.config.engine_type
        headers["engine_id"] = self.config.engine_id
        headers["sampling_interval"] = self.sampling_field
        return headers


def decode_v5(datagram: bytes) -> Decoded:
    """Read one v5 datagram; raises DecodeError (only) when it is not one."""
    size = len(datagram)
    if size < V5_HEADER.itemsize:
        raise DecodeError(f"v5: {size} bytes is shorter than the 24-byte header")
    header = np.frombuffer(datagram, V5_HEADER, count=1)[0]
    if header["version"] != 5:
        raise DecodeError(f"v5: version field is {int(header['version'])}, not 5")
    count = int(header["count"])
    if not 1 <= count <= MAX_RECORDS:
        raise DecodeError(f"v5: record count {count} is outside 1..{MAX_RECORDS}")
    if size != V5_HEADER.itemsize + count * V5_RECORD.itemsize:
        raise DecodeError(f"v5: {size} bytes do not hold a header and {count} records")
    wire = np.frombuffer(datagram, V5_RECORD, count=count, offset=V5_HEADER.itemsize)
    export_ms = int(header["unix_secs"]) * 1000 + int(header["unix_nsecs"]) // NS_PER_MS
    uptime = int(header["SysUptime"])
    records = RecordTable.empty(count)
    records.version[:] = 4
    records.src_lo = mapped(wire["srcaddr"])
    records.dst_lo = mapped(wire["dstaddr"])
    records.sport = wire["srcport"].astype(np.uint16)
    records.dport = wire["dstport"].astype(np.uint16)
    records.proto = wire["prot"].astype(np.uint8)
    records.tos = wire["tos"].astype(np.uint8)
    records.tcp_flags = wire["tcp_flags"].astype(np.uint8)
    records.ifindex = wire["input"].astype(np.uint32)
    records.packets = wire["dPkts"].astype(np.uint64)
    records.octets = wire["dOctets"].astype(np.uint64)
    records.first_ns = switched_to_ns(export_ms, uptime, wire["First"])
    records.last_ns = switched_to_ns(export_ms, uptime, wire["Last"])
    field = int(header["sampling_interval"])
    sampling = SamplingInfo(field >> 14, field & SAMPLING_INTERVAL_MAX) if field else None
    return Decoded(5, header, records, sampling=sampling, data_records=count)
