"""Independent ground truth for a capture: dpkt decoding in plain Python, no spanflow code.

Reads classic pcap with dpkt's reader and pcapng with the small struct reader
below (dpkt's pcapng reader applies the first interface's link type to every
packet). Keys follow docs/design.md: IP version, addresses, ports (ICMP: 0 and
type*256+code; non-first fragments: 0), protocol after IPv6 extension headers,
ToS / traffic class, input ifIndex (pcapng interface id + 1, else 0), plus the
outer VLAN id when asked.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import dpkt

NS_PER_S = 1_000_000_000
TCP_FIN, TCP_RST = 0x01, 0x04
PORTS_PROTOS = (6, 17, 132)  # TCP, UDP, SCTP
ICMP_PROTOS = (1, 58)

# (version, src, dst, sport, dport, proto, tos, ifindex[, vlan]); addresses as 4 or 16 bytes
Key = tuple[object, ...]


@dataclass(slots=True)
class KeyTotals:
    """What the packets of one flow key add up to."""

    packets: int = 0
    octets: int = 0
    first_ns: int = 0
    last_ns: int = 0
    fin_or_rst: int = 0  # packets with FIN or RST set
    last_is_fin_or_rst: bool = False


@dataclass(slots=True)
class GroundTruth:
    frames: int = 0
    ip_packets: int = 0
    ip_octets: int = 0
    by_key: dict[Key, KeyTotals] = field(default_factory=dict)

    @property
    def flows(self) -> int:
        return len(self.by_key)

    @property
    def records_without_timeouts(self) -> tuple[int, int]:
        """(end of flow, forced) record counts when neither timeout can fire.

        Each FIN/RST packet ends the record it joined; the packets after the
        last one of a key make one more record, ended at end of input.
        """
        ended = sum(t.fin_or_rst for t in self.by_key.values())
        forced = sum(not t.last_is_fin_or_rst for t in self.by_key.values())
        return ended, forced


def captured_frames(path: str | Path) -> Iterator[tuple[int, int, int, bytes]]:
    """(ts_ns, linktype, ifindex, frame) for every packet record, in file order."""
    data = Path(path).read_bytes()
    if data[:4] == b"\x0a\x0d\x0d\x0a":
        yield from _pcapng_frames(data)
        return
    with open(path, "rb") as stream:
        reader = dpkt.pcap.Reader(stream)
        linktype = reader.datalink()
        for ts, frame in reader:
            if isinstance(ts, Decimal):  # ns magic: dpkt keeps the time exact
                ts_ns = int(ts * NS_PER_S)
            else:  # µs magic: a float of sec + usec / 1e6, exact to well under 1 µs
                ts_ns = round(ts * 1_000_000) * 1_000
            yield ts_ns, linktype, 0, frame


def _pcapng_frames(data: bytes) -> Iterator[tuple[int, int, int, bytes]]:
    """Enhanced packet blocks of every section, with per-interface link type and if_tsresol."""
    order, pos = "<", 0
    interfaces: list[tuple[int, int]] = []  # (linktype, units per second)
    while pos + 12 <= len(data):
        if data[pos : pos + 4] == b"\x0a\x0d\x0d\x0a":
            order = "<" if data[pos + 8 : pos + 12] == b"\x4d\x3c\x2b\x1a" else ">"
            interfaces = []
        block_type, length = struct.unpack_from(order + "II", data, pos)
        body = data[pos + 8 : pos + length - 4]
        if block_type == 1:  # interface description
            linktype = struct.unpack_from(order + "H", body, 0)[0]
            interfaces.append((linktype, _units_per_s(body[8:], order)))
        elif block_type == 6:  # enhanced packet
            iface, high, low, caplen = struct.unpack_from(order + "IIII", body, 0)
            linktype, units = interfaces[iface]
            ts_ns = ((high << 32) | low) * NS_PER_S // units
            yield ts_ns, linktype, iface + 1, body[20 : 20 + caplen]
        pos += length


def _units_per_s(options: bytes, order: str) -> int:
    at = 0
    while at + 4 <= len(options):
        code, length = struct.unpack_from(order + "HH", options, at)
        if code == 0:
            break
        if code == 9:  # if_tsresol
            value = options[at + 4]
            return 2 ** (value & 0x7F) if value & 0x80 else 10 ** (value & 0x7F)
        at += 4 + (length + 3) // 4 * 4
    return 1_000_000


_BY_ETHERTYPE = {0x0800: dpkt.ip.IP, 0x86DD: dpkt.ip6.IP6}
_NSH_NEXT = {1: 0x0800, 2: 0x86DD}  # RFC 8300 next protocol: IPv4, IPv6 (3: Ethernet)


def _shimmed(ethertype: int, payload: bytes) -> object:
    """What dpkt leaves as bytes behind MACsec (IEEE 802.1AE SecTAG; integrity-only frames
    only), NSH (RFC 8300) and Arista timestamp headers: the dpkt IP/IP6 inside, if any."""
    while ethertype in (0x88E5, 0x894F, 0xD28B):
        if ethertype == 0x88E5:
            tci = payload[0]
            if tci & 0x0C:  # encrypted
                return payload
            at = 6 + (8 if tci & 0x20 else 0)
            ethertype, payload = struct.unpack_from(">H", payload, at)[0], payload[at + 2 :]
        elif ethertype == 0x894F:
            length, following = (payload[1] & 0x3F) * 4, payload[3]
            payload = payload[length:]
            if following == 3:
                inner = dpkt.ethernet.Ethernet(payload)
                return (
                    _shimmed(inner.type, bytes(inner.data))
                    if isinstance(inner.data, bytes)
                    else inner.data
                )
            ethertype = _NSH_NEXT.get(following, 0)
        else:
            at = 4 + (8 if payload[3] == 0x10 else 6)
            ethertype, payload = struct.unpack_from(">H", payload, at)[0], payload[at + 2 :]
    kind = _BY_ETHERTYPE.get(ethertype)
    return kind(payload) if kind else payload


def _frame_relay(frame: bytes) -> object:
    """Frame Relay: the Q.922 address (octets up to EA), then RFC 2427 (0x03, an optional pad,
    NLPID 0xCC / 0x8E / 0x80 SNAP) or Cisco's ethertype."""
    pos = next(i for i, octet in enumerate(frame) if octet & 1) + 1
    if frame[pos] != 0x03:
        return _shimmed(struct.unpack_from(">H", frame, pos)[0], frame[pos + 2 :])
    pos += 2 if frame[pos + 1] == 0 else 1
    nlpid = frame[pos]
    if nlpid == 0x80:
        return _shimmed(struct.unpack_from(">H", frame, pos + 4)[0], frame[pos + 6 :])
    return _shimmed({0xCC: 0x0800, 0x8E: 0x86DD}.get(nlpid, 0), frame[pos + 1 :])


def _network_layer(linktype: int, frame: bytes) -> tuple[object, int]:
    """The dpkt IP/IP6 object of a frame (or whatever dpkt made of it) and the outer VLAN id."""
    if linktype == 1:
        eth = dpkt.ethernet.Ethernet(frame)
        tags = getattr(eth, "vlan_tags", [])
        data = eth.data
        while isinstance(data, dpkt.ethernet.Ethernet):  # a pseudowire under MPLS labels
            tags = tags or getattr(data, "vlan_tags", [])
            data = data.data
        if isinstance(data, dpkt.pppoe.PPPoE):  # a session frame: PPP, then IP or not
            data = getattr(data.data, "data", data.data)
        if isinstance(data, bytes):
            inner_type = eth.vlan_tags[-1].type if getattr(eth, "vlan_tags", None) else eth.type
            data = _shimmed(inner_type, data)
        return data, tags[0].id if tags else 0
    if linktype in (9, 50):  # PPP, with or without the FF 03 address and control
        return dpkt.pppoe.PPP(frame[2:] if frame[:2] == b"\xff\x03" else frame).data, 0
    if linktype == 104:  # Cisco HDLC: address, control, ethertype
        kind = {0x0800: dpkt.ip.IP, 0x86DD: dpkt.ip6.IP6}.get(int.from_bytes(frame[2:4], "big"))
        return (kind(frame[4:]) if kind else frame[4:]), 0
    if linktype == 107:
        return _frame_relay(frame), 0
    if linktype == 113:
        return dpkt.sll.SLL(frame).data, 0
    if linktype in (12, 101):
        return (dpkt.ip.IP(frame) if frame[0] >> 4 == 4 else dpkt.ip6.IP6(frame)), 0
    raise ValueError(f"ground truth does not know link type {linktype}")


def _transport(proto: int, l4: object, first_fragment: bool) -> tuple[int, int, int]:
    """(sport, dport, tcp flags) as docs/design.md keys them."""
    if not first_fragment:
        return 0, 0, 0
    if proto in PORTS_PROTOS and isinstance(l4, dpkt.Packet):
        flags = l4.flags if proto == 6 else 0
        return l4.sport, l4.dport, flags
    if proto in ICMP_PROTOS and isinstance(l4, dpkt.Packet):
        return 0, l4.type * 256 + l4.code, 0
    return 0, 0, 0


def ground_truth(path: str | Path, key_vlan: bool = False) -> GroundTruth:
    """Count frames, IP packets and octets, and per-key totals, of one capture."""
    truth = GroundTruth()
    for ts_ns, linktype, ifindex, frame in captured_frames(path):
        truth.frames += 1
        ip, vlan = _network_layer(linktype, frame)
        if isinstance(ip, dpkt.ip.IP):
            version, octets, tos, proto = 4, ip.len, ip.tos, ip.p
            first_fragment = ip.offset == 0
        elif isinstance(ip, dpkt.ip6.IP6):
            version, octets, tos, proto = 6, 40 + ip.plen, ip.fc, ip.p
            fragment = ip.extension_hdrs.get(44)
            first_fragment = fragment is None or fragment.frag_off == 0
        else:
            continue
        sport, dport, flags = _transport(proto, ip.data, first_fragment)
        key: Key = (version, ip.src, ip.dst, sport, dport, proto, tos, ifindex)
        if key_vlan:
            key = (*key, vlan)
        totals = truth.by_key.get(key)
        if totals is None:
            totals = truth.by_key[key] = KeyTotals(first_ns=ts_ns, last_ns=ts_ns)
        ends = bool(flags & (TCP_FIN | TCP_RST))
        totals.packets += 1
        totals.octets += octets
        totals.first_ns = min(totals.first_ns, ts_ns)
        totals.last_ns = max(totals.last_ns, ts_ns)
        totals.fin_or_rst += ends
        totals.last_is_fin_or_rst = ends
        truth.ip_packets += 1
        truth.ip_octets += octets
    return truth


def _main() -> None:  # pragma: no cover - a debugging aid: python tests/ground_truth.py FILE...
    import sys

    for name in sys.argv[1:]:
        truth = ground_truth(name)
        ended, forced = truth.records_without_timeouts
        print(
            f"{name}: frames={truth.frames} ip_packets={truth.ip_packets} "
            f"ip_octets={truth.ip_octets} flows={truth.flows} "
            f"no-timeout records: end_of_flow={ended} forced={forced}"
        )


if __name__ == "__main__":
    _main()
