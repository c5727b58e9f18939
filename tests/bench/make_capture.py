"""Write the seeded benchmark capture with numpy (no per-packet Python) and return its ground truth.

``python -m tests.bench.make_capture OUT.pcap [--packets N] [--seed S]`` writes a
classic little-endian µs libpcap file (LINKTYPE_ETHERNET, snaplen 65535) and prints
the ground truth as JSON. The traffic: heavy-tailed flow sizes (Pareto, most flows
1-3 packets, a few with tens of thousands), flows interleaved over about 120 s,
~75 % TCP / 22 % UDP / 3 % ICMP packets, ~10 % IPv6 packets, ~5 % 802.1Q-tagged
frames, FIN on the last packet of part of the TCP flows, a ~350-byte mean frame
(mostly 60-byte and 1514-byte frames). Addresses come from 198.18.0.0/15 and
2001:db8::/32. IP length fields are exact (frames shorter than 60 bytes are
padded, as a SPAN port delivers them); IPv4 header checksums are valid, L4 ones 0.

Flows are drawn first (size, start, packet rate, key), packets get times inside
their flow, then every packet column is sorted by time once and the bytes are
laid out chunk by chunk, so memory stays at a few hundred bytes per packet.
"""

from __future__ import annotations

import argparse
import json
import struct
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np
import numpy.typing as npt

EPOCH_S = 1_767_603_600  # 2026-01-05 09:00:00 UTC, as samples/make_samples.py
SPAN_S = 120.0
CHUNK_PACKETS = 200_000
SNAPLEN = 65535
LINKTYPE_ETHERNET = 1
PCAP_FILE_HEADER = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)
RECORD_HEADER_BYTES = 16
MIN_FRAME = 60  # Ethernet minimum without FCS: shorter frames are zero-padded

TCP, UDP, ICMP, ICMPV6 = 6, 17, 1, 58
FIN, SYN, PSH, ACK = 0x01, 0x02, 0x08, 0x10
ETH_IPV4, ETH_IPV6, ETH_8021Q = 0x0800, 0x86DD, 0x8100
V4_BASE = 0xC6120000  # 198.18.0.0/15
V4_HOSTS = 1 << 17
V6_PREFIX = 0x20010DB8  # 2001:db8::/32, the top 32 bits of the high half

# Shares of packets: (TCP, UDP, ICMP), IPv6, VLAN-tagged.
PROTO_SHARES = (0.75, 0.22, 0.03)
IPV6_SHARE = 0.10
VLAN_SHARE = 0.05
PARETO_ALPHA = 1.1  # P(flow has >= k packets) = k ** -alpha
MAX_FLOW_PACKETS = 60_000
# Mean time between a flow's packets: log-normal, so that flows overlap by the ten thousand.
GAP_MEDIAN_S, GAP_SIGMA = 2.0, 1.2
FIN_SHARE = 0.6  # TCP flows (of 2+ packets) whose last packet carries FIN
SYN_SHARE = 0.7  # TCP flows whose first packet is a SYN (the rest were already open)
TCP_FULL, TCP_SMALL = 0.175, 0.15  # TCP packets carrying a full MSS / 1-700 bytes; rest: ACKs
UDP_FULL = 0.10
TCP_SERVICES = np.array([443, 443, 443, 80, 80, 22, 8080, 993, 25], dtype=np.uint64)
UDP_SERVICES = np.array([53, 53, 443, 123, 5353, 514, 161], dtype=np.uint64)
TOS_VALUES = np.array([0, 0x10, 0x28, 0xB8], dtype=np.uint64)
TOS_WEIGHTS = (0.85, 0.05, 0.05, 0.05)

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


@dataclass(slots=True)
class Flows:
    """One row per flow: what every packet of the flow shares.

    Addresses are (hi, lo) uint64 halves of the 16-byte address; IPv4 keeps its
    32-bit value in ``lo`` with ``hi == 0``. ``sport``/``dport`` are the key's
    ports (ICMP: 0 and type*256+code). ``gap_s`` is the mean time between packets.
    """

    size: I64
    version: U64
    proto: U64
    tos: U64
    vlan: U64  # 802.1Q VLAN id, 0 = untagged
    src_hi: U64
    src_lo: U64
    dst_hi: U64
    dst_lo: U64
    sport: U64
    dport: U64
    syn: npt.NDArray[np.bool_]
    fin: npt.NDArray[np.bool_]
    isn: U64
    start_s: npt.NDArray[np.float64]
    duration_s: npt.NDArray[np.float64]


@dataclass(slots=True)
class Packets:
    """One row per packet, in time order: its flow, time, payload and TCP fields."""

    flow: npt.NDArray[np.int32]
    ts_us: I64
    payload: I64
    tcp_flags: U64
    seq: U64
    index_in_flow: I64


def write_capture(
    path: str | Path, n_packets: int = 2_000_000, seed: int = 1, *,
    chunk_packets: int = CHUNK_PACKETS,
) -> dict[str, int]:  # fmt: skip
    """Write the capture to ``path`` and return its ground truth.

    The bytes depend only on ``n_packets`` and ``seed``: ``chunk_packets`` (the
    packets laid out per write) bounds memory and changes nothing in the file.

    Keys: ``frames``, ``ip_octets`` (IPv4 total length / IPv6 40 + payload length,
    summed), ``flows`` (distinct docs/design.md default keys), plus descriptive
    counts (``wire_bytes``, ``file_bytes``, ``ipv6_packets``, ``vlan_frames``,
    ``tcp_packets``, ``udp_packets``, ``icmp_packets``, ``fin_packets``,
    ``peak_active_flows``, ``largest_flow_packets``, ``span_us``).
    """
    if n_packets < 1:
        raise ValueError("n_packets must be at least 1")
    rng = np.random.default_rng(seed)
    flows = _draw_flows(rng, n_packets)
    packets = _draw_packets(rng, flows)
    truth = _ground_truth(flows, packets)
    wire_bytes = 0
    with open(path, "wb") as out:
        out.write(PCAP_FILE_HEADER)
        for begin in range(0, n_packets, chunk_packets):
            wire_bytes += _write_chunk(out, flows, packets, slice(begin, begin + chunk_packets))
    truth["wire_bytes"] = wire_bytes
    truth["file_bytes"] = len(PCAP_FILE_HEADER) + RECORD_HEADER_BYTES * n_packets + wire_bytes
    return truth


# ----------------------------------------------------------------- flows


def _flow_sizes(rng: np.random.Generator, n_packets: int) -> I64:
    """Pareto packet counts, drawn until they cover ``n_packets``; the last one is cut to fit."""
    cap = max(1, min(MAX_FLOW_PACKETS, n_packets // 20))
    blocks: list[I64] = []
    total = 0
    while total < n_packets:
        block = np.minimum(np.floor(rng.pareto(PARETO_ALPHA, n_packets // 4 + 16) + 1), cap)
        blocks.append(block.astype(np.int64))
        total += int(blocks[-1].sum())
    sizes = np.concatenate(blocks)
    ends = np.cumsum(sizes)
    n_flows = int(np.searchsorted(ends, n_packets)) + 1
    sizes = sizes[:n_flows]
    sizes[-1] -= int(ends[n_flows - 1]) - n_packets
    return sizes


def _by_packet_share(
    rng: np.random.Generator, sizes: I64, shares: tuple[float, ...]
) -> npt.NDArray[np.intp]:
    """A category per flow such that category k carries about ``shares[k]`` of the packets.

    Flows are taken in random order and laid end to end; a flow belongs to the
    category whose share of the packet line its midpoint falls in.
    """
    order = rng.permutation(len(sizes))
    midpoints = np.cumsum(sizes[order]) - sizes[order] / 2
    bounds = np.cumsum(shares)[:-1] * float(sizes.sum())
    category = np.empty(len(sizes), dtype=np.intp)
    category[order] = np.searchsorted(bounds, midpoints)
    return category


def _draw_flows(rng: np.random.Generator, n_packets: int) -> Flows:
    size = _flow_sizes(rng, n_packets)
    n = len(size)
    version = np.where(_by_packet_share(rng, size, (1 - IPV6_SHARE, IPV6_SHARE)) == 1, 6, 4)
    kind = _by_packet_share(rng, size, PROTO_SHARES)  # 0 TCP, 1 UDP, 2 ICMP
    is_v6 = version == 6
    proto = np.choose(kind, [TCP, UDP, np.where(is_v6, ICMPV6, ICMP)])
    tagged = _by_packet_share(rng, size, (1 - VLAN_SHARE, VLAN_SHARE)) == 1
    vlan = np.where(tagged, rng.integers(10, 100, n), 0)
    tos = rng.choice(TOS_VALUES, n, p=TOS_WEIGHTS)

    v6_hi = (np.uint64(V6_PREFIX) << np.uint64(32)) | rng.integers(0, 1 << 32, (2, n), np.uint64)
    v6_lo = rng.integers(0, 1 << 63, (2, n), np.uint64) << np.uint64(1)
    v6_lo |= rng.integers(0, 2, (2, n), np.uint64)
    v4 = np.uint64(V4_BASE) + rng.integers(0, V4_HOSTS, (2, n), np.uint64)
    hi = np.where(is_v6, v6_hi, np.uint64(0))
    lo = np.where(is_v6, v6_lo, v4)

    # TCP/UDP: a service port and an ephemeral port, the service on either side.
    ephemeral = rng.integers(32768, 61000, n, np.uint64)
    service = np.where(kind == 0, rng.choice(TCP_SERVICES, n), rng.choice(UDP_SERVICES, n)).astype(
        np.uint64
    )
    to_server = rng.random(n) < 0.5
    sport = np.where(to_server, ephemeral, service)
    dport = np.where(to_server, service, ephemeral)
    # ICMP: echo request or reply; the key's dport is type*256+code.
    request = rng.random(n) < 0.5
    icmp_type = np.where(is_v6, np.where(request, 128, 129), np.where(request, 8, 0))
    sport = np.where(kind == 2, 0, sport).astype(np.uint64)
    dport = np.where(kind == 2, icmp_type * 256, dport).astype(np.uint64)

    is_tcp = kind == 0
    fin = is_tcp & (size >= 2) & (rng.random(n) < FIN_SHARE)
    syn = is_tcp & (rng.random(n) < SYN_SHARE)
    gap_s = np.clip(rng.lognormal(np.log(GAP_MEDIAN_S), GAP_SIGMA, n), 1e-5, 30.0)
    duration_s = np.minimum((size - 1) * gap_s, SPAN_S * 0.999)
    start_s = rng.random(n) * (SPAN_S - duration_s)
    return Flows(
        size=size, version=version.astype(np.uint64), proto=proto.astype(np.uint64),
        tos=tos.astype(np.uint64), vlan=vlan.astype(np.uint64),
        src_hi=hi[0], src_lo=lo[0], dst_hi=hi[1], dst_lo=lo[1], sport=sport, dport=dport,
        syn=syn, fin=fin, isn=rng.integers(0, 1 << 32, n, np.uint64),
        start_s=start_s, duration_s=duration_s,
    )  # fmt: skip


# ----------------------------------------------------------------- packets


def _draw_packets(rng: np.random.Generator, flows: Flows) -> Packets:
    """Every packet's time, payload and TCP fields, then all of them sorted by time."""
    size = flows.size
    n = int(size.sum())
    first = np.cumsum(size) - size  # index of each flow's first packet, in flow order
    flow = np.repeat(np.arange(len(size), dtype=np.int32), size)
    index = np.arange(n, dtype=np.int64) - np.repeat(first, size)
    # Strictly increasing inside a flow: (i + u) / size with u in [0, 1).
    offset = (index + rng.random(n)) / size[flow]
    ts_us = np.floor((flows.start_s[flow] + flows.duration_s[flow] * offset) * 1e6).astype(np.int64)

    proto, v6 = flows.proto[flow], flows.version[flow] == 6
    draw, small = rng.random(n), rng.integers(1, 701, n)
    payload = np.where(proto == UDP, rng.integers(16, 401, n), 56)  # ICMP: a 56-byte ping
    payload = np.where((proto == UDP) & (draw < UDP_FULL), np.where(v6, 1452, 1472), payload)
    tcp_payload = np.where(draw < TCP_FULL + TCP_SMALL, small, 0)
    tcp_payload = np.where(draw < TCP_FULL, np.where(v6, 1440, 1460), tcp_payload)
    last = index == size[flow] - 1
    opens = (index == 0) & flows.syn[flow] & ~last
    tcp_payload[opens] = 0
    payload = np.where(proto == TCP, tcp_payload, payload).astype(np.int64)

    flags = np.where(payload > 0, ACK | PSH, ACK)
    flags = np.where(opens, SYN, flags)
    flags = np.where(last & flows.fin[flow], flags | FIN, flags)
    flags = np.where(proto == TCP, flags, 0).astype(np.uint64)
    sent_before = np.cumsum(payload) - payload
    seq = (
        flows.isn[flow] + (sent_before - sent_before[first][flow]).astype(np.uint64)
    ) & np.uint64(0xFFFFFFFF)
    order = np.argsort(ts_us, kind="stable")  # ties keep flow order, so FIN stays last
    return Packets(
        flow=flow[order], ts_us=ts_us[order], payload=payload[order],
        tcp_flags=flags[order], seq=seq[order], index_in_flow=index[order],
    )  # fmt: skip


def _l4_header_bytes(proto: U64) -> I64:
    return np.where(proto == TCP, 20, 8).astype(np.int64)


def _ground_truth(flows: Flows, packets: Packets) -> dict[str, int]:
    """Totals computed from the columns (independently of the byte layout)."""
    f = packets.flow
    version, proto = flows.version[f], flows.proto[f]
    ip_len = np.where(version == 6, 40, 20) + _l4_header_bytes(proto) + packets.payload
    keys = np.stack([
        flows.version, flows.src_hi, flows.src_lo, flows.dst_hi, flows.dst_lo,
        flows.sport, flows.dport, flows.proto, flows.tos,
    ], axis=1)  # fmt: skip
    first_us = np.full(len(flows.size), np.iinfo(np.int64).max)
    last_us = np.full(len(flows.size), np.iinfo(np.int64).min)
    np.minimum.at(first_us, f, packets.ts_us)
    np.maximum.at(last_us, f, packets.ts_us)
    # Active flows: +1 at a flow's first packet, -1 just after its last one.
    times = np.concatenate([first_us * 2, last_us * 2 + 1])
    steps = np.concatenate([np.ones_like(first_us), -np.ones_like(last_us)])
    peak = int(np.cumsum(steps[np.argsort(times, kind="stable")]).max())
    return {
        "frames": len(f),
        "ip_octets": int(ip_len.sum()),
        "flows": len(np.unique(keys, axis=0)),
        "ipv6_packets": int((version == 6).sum()),
        "vlan_frames": int((flows.vlan[f] != 0).sum()),
        "tcp_packets": int((proto == TCP).sum()),
        "udp_packets": int((proto == UDP).sum()),
        "icmp_packets": int(((proto == ICMP) | (proto == ICMPV6)).sum()),
        "fin_packets": int(((packets.tcp_flags & np.uint64(FIN)) != 0).sum()),
        "peak_active_flows": peak,
        "largest_flow_packets": int(flows.size.max()),
        "span_us": int(packets.ts_us[-1] - packets.ts_us[0]),
    }


# ----------------------------------------------------------------- bytes


def _put(buf: npt.NDArray[np.uint8], at: I64, value: U64 | int, width: int) -> None:
    """Write ``value`` big-endian, ``width`` bytes, at every position of ``at``."""
    value = np.asarray(value, dtype=np.uint64)
    for k in range(width):
        shift = np.uint64(8 * (width - 1 - k))
        buf[at + k] = ((value >> shift) & np.uint64(0xFF)).astype(np.uint8)


def _put_le32(buf: npt.NDArray[np.uint8], at: I64, value: I64) -> None:
    value = np.asarray(value, dtype=np.uint64)
    for k in range(4):
        buf[at + k] = ((value >> np.uint64(8 * k)) & np.uint64(0xFF)).astype(np.uint8)


def _write_chunk(out: BinaryIO, flows: Flows, packets: Packets, part: slice) -> int:
    """Lay out the records of ``packets[part]`` in one buffer, write it; return its frame bytes."""
    f = packets.flow[part]
    payload, ts_us = packets.payload[part], packets.ts_us[part]
    version, proto = flows.version[f], flows.proto[f]
    v6, tagged = version == 6, flows.vlan[f] != 0
    l2 = np.where(tagged, 18, 14)
    l4 = _l4_header_bytes(proto)
    ip_len = np.where(v6, 40, 20) + l4 + payload
    frame_len = np.maximum(MIN_FRAME, l2 + ip_len)
    record = np.cumsum(RECORD_HEADER_BYTES + frame_len) - (RECORD_HEADER_BYTES + frame_len)
    buf = np.zeros(int(record[-1] + RECORD_HEADER_BYTES + frame_len[-1]), dtype=np.uint8)

    seconds = EPOCH_S + ts_us // 1_000_000
    _put_le32(buf, record, seconds)
    _put_le32(buf, record + 4, ts_us % 1_000_000)
    _put_le32(buf, record + 8, frame_len)
    _put_le32(buf, record + 12, frame_len)

    eth = record + RECORD_HEADER_BYTES
    _put(buf, eth, 0x020000000001, 6)  # to the router
    _put(buf, eth + 6, np.uint64(0x0200 << 32) | (f.astype(np.uint64) & np.uint64(0xFFFFFFFF)), 6)
    vlan_at = eth[tagged] + 12
    _put(buf, vlan_at, ETH_8021Q, 2)
    _put(buf, vlan_at + 2, flows.vlan[f][tagged], 2)
    _put(buf, eth + l2 - 2, np.where(v6, ETH_IPV6, ETH_IPV4).astype(np.uint64), 2)

    ip = eth + l2
    number = np.arange(part.start or 0, (part.start or 0) + len(f), dtype=np.uint64)
    _write_ipv4(buf, ip[~v6], flows, f[~v6], ip_len[~v6], number[~v6])
    _write_ipv6(buf, ip[v6], flows, f[v6], ip_len[v6])

    l4_at = ip + np.where(v6, 40, 20)
    _put(buf, l4_at, flows.sport[f], 2)  # ICMP: type and code overwritten below
    _put(buf, l4_at + 2, flows.dport[f], 2)
    tcp, udp = proto == TCP, proto == UDP
    at = l4_at[tcp]
    _put(buf, at + 4, packets.seq[part][tcp], 4)
    _put(buf, at + 8, flows.isn[f[tcp]] ^ np.uint64(0x5A5A5A5A), 4)  # some ack number
    _put(buf, at + 12, 0x50, 1)  # data offset 5 words
    _put(buf, at + 13, packets.tcp_flags[part][tcp], 1)
    _put(buf, at + 14, 502, 2)
    _put(buf, l4_at[udp] + 4, (8 + payload[udp]).astype(np.uint64), 2)
    icmp = ~(tcp | udp)
    at = l4_at[icmp]
    _put(buf, at, flows.dport[f[icmp]] >> np.uint64(8), 1)  # type
    _put(buf, at + 1, 0, 1)  # code
    _put(buf, at + 2, 0, 2)  # checksum
    _put(buf, at + 4, f[icmp].astype(np.uint64) & np.uint64(0xFFFF), 2)  # identifier
    index = packets.index_in_flow[part][icmp].astype(np.uint64)
    _put(buf, at + 6, index & np.uint64(0xFFFF), 2)  # sequence

    out.write(buf.data)
    return int(frame_len.sum())


def _write_ipv4(
    buf: npt.NDArray[np.uint8], at: I64, flows: Flows, f: npt.NDArray[np.int32],
    ip_len: I64, number: U64,
) -> None:  # fmt: skip
    """IPv4 headers; the identification field is the packet's number in the capture."""
    proto = flows.proto[f]
    _put(buf, at, 0x45, 1)
    _put(buf, at + 1, flows.tos[f], 1)
    _put(buf, at + 2, ip_len.astype(np.uint64), 2)
    _put(buf, at + 4, number & np.uint64(0xFFFF), 2)
    _put(buf, at + 6, np.where(proto == TCP, 0x4000, 0).astype(np.uint64), 2)  # DF for TCP
    _put(buf, at + 8, 64, 1)
    _put(buf, at + 9, proto, 1)
    _put(buf, at + 12, flows.src_lo[f], 4)
    _put(buf, at + 16, flows.dst_lo[f], 4)
    header = buf[at[:, None] + np.arange(20)].astype(np.uint32)
    total = (header[:, 0::2] << 8 | header[:, 1::2]).sum(axis=1, dtype=np.uint32)
    total = (total & 0xFFFF) + (total >> 16)
    total = (total & 0xFFFF) + (total >> 16)
    _put(buf, at + 10, (~total & 0xFFFF).astype(np.uint64), 2)


def _write_ipv6(
    buf: npt.NDArray[np.uint8], at: I64, flows: Flows, f: npt.NDArray[np.int32], ip_len: I64
) -> None:
    first_word = (np.uint64(6 << 28) | (flows.tos[f] << np.uint64(20))) | (
        f.astype(np.uint64) & np.uint64(0xFFFFF)  # flow label
    )
    _put(buf, at, first_word, 4)
    _put(buf, at + 4, (ip_len - 40).astype(np.uint64), 2)
    _put(buf, at + 6, flows.proto[f], 1)
    _put(buf, at + 7, 64, 1)
    _put(buf, at + 8, flows.src_hi[f], 8)
    _put(buf, at + 16, flows.src_lo[f], 8)
    _put(buf, at + 24, flows.dst_hi[f], 8)
    _put(buf, at + 32, flows.dst_lo[f], 8)


def main(argv: list[str] | None = None) -> int:
    """CLI: write the capture and print its ground truth as JSON on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", help="the pcap file to write")
    parser.add_argument("--packets", type=int, default=2_000_000, help="frames (default 2000000)")
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    args = parser.parse_args(argv)
    truth = write_capture(args.out, args.packets, args.seed)
    json.dump(truth, sys.stdout, indent=1)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
