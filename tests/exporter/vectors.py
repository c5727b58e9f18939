"""Export datagrams worked out by hand from the specs, byte by byte, for one flow record.

Sources: Cisco, "NetFlow Export Datagram Format", Version 5 header and flow
record tables; RFC 3954 (NetFlow v9) sections 5.1-5.3 and 6.1-6.2 and the
field type table of section 8; RFC 7011 (IPFIX) sections 3.1, 3.3.2, 3.4.1
and 3.4.2.2, with Information Element numbers from RFC 7012 / IANA and the
PSAMP Selector Report of RFC 5476 section 6.5.2.1. None of these bytes come
from spanflow: each field is written from the tables with its value worked
out in the comment, so the tests compare our encoder against the documents.

The flow: TCP 192.0.2.1:51000 -> 198.51.100.7:443, ToS 0x28, flags FIN SYN
PSH ACK (0x1b), 10 packets, 5000 octets, ifindex 3, VLAN 100, ended by FIN
(flowEndReason 3). Uptime zero (boot) is 1_700_000_000 s since the epoch
(0x6553f100); the flow starts 1.5 s and ends 4.250999 s after boot (1500 and
4250 ms, sub-millisecond truncated); the export clock is 10.123456789 s after
boot: unix secs 1_700_000_010 = 0x6553f10a, nsecs 123_456_789 = 0x075bcd15,
sysUptime 10123 ms = 0x0000278b.
"""

from __future__ import annotations

import re
import struct

import numpy as np
import numpy.typing as npt
from hypothesis import strategies as st

from core.records import RecordTable

BOOT_NS = 1_700_000_000_000_000_000
EXPORT_NS = BOOT_NS + 10_123_456_789
SOURCE_ID = 0x42
RECORD = {
    "version": 4,
    "src_hi": 0,
    "src_lo": 0xFFFF_0000_0000 | 0xC000_0201,  # ::ffff:192.0.2.1
    "dst_hi": 0,
    "dst_lo": 0xFFFF_0000_0000 | 0xC633_6407,  # ::ffff:198.51.100.7
    "sport": 51000,
    "dport": 443,
    "proto": 6,
    "tos": 0x28,
    "ifindex": 3,
    "vlan": 100,
    "first_ns": BOOT_NS + 1_500_000_000,
    "last_ns": BOOT_NS + 4_250_999_999,
    "packets": 10,
    "octets": 5000,
    "tcp_flags": 0x1B,
    "end_reason": 3,
}


def record_table() -> RecordTable:
    table = RecordTable.empty(1)
    for name, value in RECORD.items():
        getattr(table, name)[0] = value
    return table


def unhex(text: str) -> bytes:
    """Hex digits with '#' comments and any spacing removed."""
    return bytes.fromhex(re.sub(r"#[^\n]*|\s", "", text))


# NetFlow v5, engine type 1, engine id 2, deterministic 1-in-100 sampling.
V5_DATAGRAM = unhex("""
    # header (Cisco v5 header table), 24 bytes
    0005        # version
    0001        # count: 1 record
    0000278b    # SysUptime: 10123 ms
    6553f10a    # unix_secs
    075bcd15    # unix_nsecs: 123456789
    00000000    # flow_sequence: first datagram, no flows before it
    01          # engine_type
    02          # engine_id
    4064        # sampling_interval: mode 01 (deterministic) in the top 2 bits, 100 = 0x064
    # flow record (Cisco v5 record table), 48 bytes
    c0000201    # srcaddr 192.0.2.1
    c6336407    # dstaddr 198.51.100.7
    00000000    # nexthop
    0003        # input (ifindex)
    0000        # output
    0000000a    # dPkts: 10
    00001388    # dOctets: 5000
    000005dc    # First: 1500 ms of uptime
    0000109a    # Last: 4250 ms
    c738        # srcport 51000
    01bb        # dstport 443
    00          # pad1
    1b          # tcp_flags
    06          # prot: TCP
    28          # tos
    0000        # src_as
    0000        # dst_as
    00          # src_mask
    00          # dst_mask
    0000        # pad2
""")

# NetFlow v9, source id 0x42, deterministic 1-in-100: the exporter's first datagram. Its
# header clock is the export clock rounded up to a whole second, 11 s after boot, so that
# UNIX Secs * 1000 - sysUpTime is the boot time to the millisecond (see exporter/v9.py).
# The field choice and order are ours (RFC 3954 leaves them to the exporter); the last
# field, type 136 (flowEndReason), is not in the section 8 table: it is the IPFIX element
# number (RFC 7012 / IANA), which softflowd also puts in its v9 templates.
V9_DATAGRAM = unhex("""
    # packet header (RFC 3954 section 5.1), 20 bytes
    0009        # Version
    0005        # Count: 2 templates + 1 options template + 1 options data + 1 data record
    00002af8    # sysUpTime: 11000 ms
    6553f10b    # UNIX Secs: 1_700_000_011
    00000000    # Sequence Number: no datagram before this one
    00000042    # Source ID
    # Template FlowSet (section 5.2): 4 + 2 * (4 + 16 * 4) = 140 bytes
    0000 008c   # FlowSet ID 0, Length 140
    0100 0010   # Template ID 256 (IPv4), Field Count 16
    0008 0004   # IPV4_SRC_ADDR (8), 4 bytes (section 8 field types)
    000c 0004   # IPV4_DST_ADDR (12)
    0007 0002   # L4_SRC_PORT (7)
    000b 0002   # L4_DST_PORT (11)
    0020 0002   # ICMP_TYPE (32): type * 256 + code
    0004 0001   # PROTOCOL (4)
    0005 0001   # SRC_TOS (5)
    0006 0001   # TCP_FLAGS (6)
    000a 0004   # INPUT_SNMP (10)
    0001 0008   # IN_BYTES (1), 8 bytes
    0002 0008   # IN_PKTS (2), 8 bytes
    0016 0004   # FIRST_SWITCHED (22)
    0015 0004   # LAST_SWITCHED (21)
    003a 0002   # SRC_VLAN (58)
    003c 0001   # IP_PROTOCOL_VERSION (60)
    0088 0001   # flowEndReason (136), 1 byte: IPFIX numbering, see above
    0101 0010   # Template ID 257 (IPv6), Field Count 16
    001b 0010   # IPV6_SRC_ADDR (27), 16 bytes
    001c 0010   # IPV6_DST_ADDR (28)
    0007 0002  000b 0002  0020 0002  0004 0001  0005 0001  0006 0001  000a 0004  # as in 256
    0001 0008  0002 0008  0016 0004  0015 0004  003a 0002  003c 0001  0088 0001
    # Options Template FlowSet (section 6.1): 4 + 6 + 3 * 4 = 22, padded to 24
    0001 0018   # FlowSet ID 1, Length 24
    0102        # Template ID 258
    0004        # Option Scope Length: one scope field
    0008        # Option Length: two option fields
    0001 0004   # scope System (1), 4 bytes
    0022 0004   # SAMPLING_INTERVAL (34)
    0023 0001   # SAMPLING_ALGORITHM (35)
    0000        # Padding
    # options Data FlowSet (section 6.2): 4 + 9 = 13, padded to 16
    0102 0010   # FlowSet ID = Template ID 258, Length 16
    00000042    # System scope: the source id
    00000064    # SAMPLING_INTERVAL: 100
    01          # SAMPLING_ALGORITHM: 1 deterministic
    000000      # Padding
    # Data FlowSet (section 5.3): 4 + 49 = 53, padded to 56
    0100 0038   # FlowSet ID = Template ID 256, Length 56
    c0000201    # IPV4_SRC_ADDR
    c6336407    # IPV4_DST_ADDR
    c738        # L4_SRC_PORT 51000
    01bb        # L4_DST_PORT 443
    0000        # ICMP_TYPE: 0, not an ICMP flow
    06          # PROTOCOL
    28          # SRC_TOS
    1b          # TCP_FLAGS
    00000003    # INPUT_SNMP
    0000000000001388  # IN_BYTES 5000
    000000000000000a  # IN_PKTS 10
    000005dc    # FIRST_SWITCHED 1500
    0000109a    # LAST_SWITCHED 4250
    0064        # SRC_VLAN 100
    04          # IP_PROTOCOL_VERSION
    03          # flowEndReason: 3 end of flow (FIN)
    000000      # Padding
""")

# IPFIX, observation domain 0x42, deterministic 1-in-100: the exporter's first message.
IPFIX_MESSAGE = unhex("""
    # message header (RFC 7011 section 3.1), 16 bytes
    000a        # Version Number 10
    0110        # Length: 16 + 140 + 28 + 24 + 64 = 272
    6553f10a    # Export Time
    00000000    # Sequence Number: no data record before this message
    00000042    # Observation Domain ID
    # Template Set (sections 3.3.2, 3.4.1): 4 + 2 * (4 + 16 * 4) = 140
    0002 008c   # Set ID 2, Length 140
    0100 0010   # Template ID 256, Field Count 16
    0008 0004   # sourceIPv4Address (8)
    000c 0004   # destinationIPv4Address (12)
    0007 0002   # sourceTransportPort (7)
    000b 0002   # destinationTransportPort (11)
    0020 0002   # icmpTypeCodeIPv4 (32)
    0004 0001   # protocolIdentifier (4)
    0005 0001   # ipClassOfService (5)
    0006 0002   # tcpControlBits (6), unsigned16
    000a 0004   # ingressInterface (10)
    0001 0008   # octetDeltaCount (1)
    0002 0008   # packetDeltaCount (2)
    0098 0008   # flowStartMilliseconds (152)
    0099 0008   # flowEndMilliseconds (153)
    0088 0001   # flowEndReason (136)
    003a 0002   # vlanId (58)
    003c 0001   # ipVersion (60)
    0101 0010   # Template ID 257, Field Count 16
    001b 0010   # sourceIPv6Address (27)
    001c 0010   # destinationIPv6Address (28)
    0007 0002  000b 0002
    008b 0002   # icmpTypeCodeIPv6 (139)
    0004 0001  0005 0001  0006 0002  000a 0004  0001 0008  # as in 256
    0002 0008  0098 0008  0099 0008  0088 0001  003a 0002  003c 0001
    # Options Template Set (section 3.4.2.2): 4 + 6 + 4 * 4 = 26, padded to 28
    0003 001c   # Set ID 3, Length 28
    0102 0004 0001  # Template ID 258, Field Count 4, Scope Field Count 1
    012e 0008   # scope selectorId (302), unsigned64 (RFC 5476 section 6.5.2)
    0130 0001   # selectorAlgorithm (304)
    0131 0004   # samplingPacketInterval (305)
    0132 0004   # samplingPacketSpace (306)
    0000        # Padding
    # options Data Set: 4 + 8 + 1 + 4 + 4 = 21, padded to 24
    0102 0018   # Set ID 258, Length 24
    0000000000000000  # selectorId 0
    01          # selectorAlgorithm 1: systematic count-based (RFC 5476 section 6.5.2.1)
    00000001    # samplingPacketInterval: 1 packet selected
    00000063    # samplingPacketSpace: 99 skipped, so 1 in 100
    000000      # Padding
    # Data Set (section 3.3.2): 4 + 58 = 62, padded to 64
    0100 0040   # Set ID 256, Length 64
    c0000201  c6336407  c738  01bb
    0000        # icmpTypeCodeIPv4: 0, not an ICMP flow
    06  28
    001b        # tcpControlBits
    00000003    # ingressInterface
    0000000000001388  # octetDeltaCount 5000
    000000000000000a  # packetDeltaCount 10
    0000018bcfe56ddc  # flowStartMilliseconds 1_700_000_001_500
    0000018bcfe5789a  # flowEndMilliseconds 1_700_000_004_250
    03          # flowEndReason: end of Flow detected
    0064        # vlanId 100
    04          # ipVersion
    0000        # Padding
""")


# Shared by the round-trip tests: generated record tables and an independent set walker.

V4_MAPPED = 0xFFFF_0000_0000
COUNTER_32 = (1 << 32) - 1
COUNTER_64 = (1 << 64) - 1
DAY_MS = 86_400_000


@st.composite
def record_tables(
    draw: st.DrawFn,
    max_size: int = 60,
    ipv6: bool = True,
    max_counter: int = COUNTER_32,
    max_ifindex: int = COUNTER_32,
) -> tuple[RecordTable, int, int]:
    """(records, boot_ns, export_ns): boot on a whole millisecond, up to 100 days before export.

    Every record ends at or before the export clock and lasts at most a day,
    so uptime values wrap 2^32 ms but every record stays within 2^31 ms of
    its datagram's clock.
    """
    n = draw(st.integers(0, max_size))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    boot_ns = draw(st.integers(1_500_000_000_000, 1_900_000_000_000)) * 1_000_000
    export_ns = boot_ns + draw(st.integers(DAY_MS, 100 * DAY_MS)) * 1_000_000
    export_ns += draw(st.integers(0, 999_999))
    table = RecordTable.empty(n)
    six = rng.random(n) < 0.5 if ipv6 else np.zeros(n, bool)
    table.version[:] = np.where(six, 6, 4)
    for side in ("src", "dst"):
        hi = rng.integers(0, 2**64, n, np.uint64, endpoint=False)
        lo = rng.integers(0, 2**64, n, np.uint64, endpoint=False)
        v4 = rng.integers(0, 2**32, n, np.uint64) | np.uint64(V4_MAPPED)
        getattr(table, side + "_hi")[:] = np.where(six, hi, 0)
        getattr(table, side + "_lo")[:] = np.where(six, lo, v4)
    for name, high in (("sport", 0xFFFF), ("dport", 0xFFFF), ("proto", 255), ("tos", 255),
                       ("tcp_flags", 255), ("vlan", 4095), ("ifindex", max_ifindex)):  # fmt: skip
        getattr(table, name)[:] = rng.integers(0, high, n, endpoint=True)
    for name in ("packets", "octets"):
        values = rng.integers(1, max_counter, n, np.uint64, endpoint=True)
        edges = rng.random(n) < 0.2  # the largest value often, to hit counter limits
        getattr(table, name)[:] = np.where(edges, np.uint64(max_counter), values)
    table.end_reason[:] = rng.integers(1, 5, n, endpoint=True)
    table.last_ns[:] = export_ns - rng.integers(0, DAY_MS * 1_000_000, n)
    table.first_ns[:] = table.last_ns - rng.integers(0, DAY_MS * 1_000_000, n)
    return table, boot_ns, export_ns


def rows(table: RecordTable, drop: tuple[str, ...] = ()) -> npt.NDArray[np.void]:
    """The table as a sorted structured array (a multiset), without the ``drop`` columns."""
    names = [name for name in RecordTable.DTYPES if name not in drop]
    out = np.zeros(
        len(table),
        [(name, RecordTable.DTYPES[name], getattr(table, name).shape[1:]) for name in names],
    )
    for name in names:
        out[name] = getattr(table, name)
    return np.sort(out)


def to_ms(table: RecordTable) -> RecordTable:
    """A copy with first/last truncated to the millisecond, as every format carries them."""
    out = table.take(slice(None))
    out.first_ns = table.first_ns // 1_000_000 * 1_000_000
    out.last_ns = table.last_ns // 1_000_000 * 1_000_000
    return out


def walk_sets(datagram: bytes, header_size: int) -> list[tuple[int, int, bytes]]:
    """(set id, length, body) of every set, read with struct only (not spanflow's decoder)."""
    sets, offset = [], header_size
    while offset < len(datagram):
        set_id, length = struct.unpack_from(">HH", datagram, offset)
        assert length >= 4, f"set length {length} at {offset}"
        sets.append((set_id, length, datagram[offset + 4 : offset + length]))
        offset += length
    assert offset == len(datagram), "sets overrun the datagram"
    return sets
