"""The decoder against dpkt: every link type, encapsulation, IPv6 chain and snaplen cut, row by row."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import dpkt
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.packets import FrameBatch, PacketTable
from probe.decode.decoder import decode
from probe.decode.reasons import DecodeReason
from tests.frames import (
    AF_INET,
    AF_INET6_LINUX,
    DEST_OPTS,
    ESP,
    ETH_8021AD,
    ETH_8021Q,
    ETH_ARP,
    ETH_IP,
    ETH_IP6,
    ETH_LLDP,
    ETH_MPLS,
    ETH_MPLS_MCAST,
    ETH_QINQ,
    ETHERNET,
    FRAGMENT,
    GRE,
    HOP_BY_HOP,
    ICMP,
    ICMPV6,
    IPV4,
    IPV6,
    LINK_TYPES,
    LINUX_SLL,
    LINUX_SLL2,
    LOOP,
    MAC_DST,
    MAC_SRC,
    NO_NEXT,
    NULL,
    PPI,
    RAW,
    RAW_ALT,
    ROUTING,
    ROW_FIELDS,
    SCTP,
    T0_NS,
    TAG_TYPES,
    TCP,
    TH_ACK,
    TH_CWR,
    TH_ECE,
    TH_FIN,
    TH_NS,
    TH_PUSH,
    TH_RST,
    TH_SYN,
    UDP,
    Ext,
    Tag,
    ah,
    dest_opts,
    dissect,
    esp_payload,
    eth,
    expected_row,
    fragment,
    frame_batch,
    hop_by_hop,
    icmp,
    icmp6,
    ipv4,
    ipv6,
    loop,
    null,
    routing,
    sctp,
    sll,
    sll2,
    tcp,
    udp,
    undecodable,
    wrap,
)

REPO = Path(__file__).resolve().parents[2]
LINK_NAMES = {
    NULL: "null",
    ETHERNET: "eth",
    RAW_ALT: "raw12",
    RAW: "raw",
    LOOP: "loop",
    LINUX_SLL: "sll",
    IPV4: "ipv4",
    IPV6: "ipv6",
    LINUX_SLL2: "sll2",
    9: "ppp",
    50: "ppp_hdlc",
    104: "chdlc",
    105: "wifi",
    107: "fr",
    127: "radiotap",
    192: "ppi",
    239: "nflog",
    226: "ipnet",
    242: "ipoib",
}
LINK_HEADER_BYTES = {NULL: 4, ETHERNET: 14, LOOP: 4, LINUX_SLL: 16, LINUX_SLL2: 20}
OK, L4_TRUNCATED, UNKNOWN_LINKTYPE, L2_TRUNCATED, NOT_IP, IP_TRUNCATED, IP_BAD_HEADER = (
    int(r) for r in DecodeReason
)
Row = dict[str, int]


def rows(table: PacketTable) -> list[Row]:
    return [{name: int(getattr(table, name)[i]) for name in ROW_FIELDS} for i in range(len(table))]


def decode_one(linktype: int, data: bytes, caplen: int | None = None) -> Row:
    return rows(decode(frame_batch([(linktype, data)], caplens=[caplen])))[0]


def mismatches(got: Sequence[Row], want: Sequence[Row], labels: Sequence[object]) -> list[str]:
    """One line per differing field, naming the frame, for a readable failure."""
    assert len(got) == len(want) == len(labels)
    return [
        f"{label}: {name} = {g[name]}, expected {w[name]}"
        for g, w, label in zip(got, want, labels, strict=True)
        for name in ROW_FIELDS
        if g[name] != w[name]
    ]


def v4_mapped(a: int, b: int, c: int, d: int) -> int:
    return 0xFFFF_0000_0000 | (a << 24) | (b << 16) | (c << 8) | d


# --- the packets every link type carries ------------------------------------------------------

V4_CASES: dict[str, Callable[[], bytes]] = {
    "tcp-flags": lambda: ipv4(tcp(40000, 443, TH_SYN | TH_ACK | TH_ECE | TH_CWR | TH_NS, b"hello")),
    "udp": lambda: ipv4(udp(5353, 53)),
    "icmp-echo": lambda: ipv4(icmp(8, 0)),
    "icmp-unreachable": lambda: ipv4(icmp(3, 13)),
    "sctp": lambda: ipv4(sctp(2905, 36412)),
    "options-tcp": lambda: ipv4(
        tcp(flags=TH_FIN | TH_ACK), options=b"\x94\x04\x00\x00" + b"\x01" * 8
    ),
    "options-max-udp": lambda: ipv4(udp(), options=b"\x01" * 39 + b"\x00"),
    "tos": lambda: ipv4(udp(), tos=0xB9),
    "first-fragment": lambda: ipv4(udp(1234, 5678, b"x" * 64), more_fragments=True),
    "later-fragment": lambda: ipv4(b"y" * 64, UDP, frag_units=9, more_fragments=True),
    "last-fragment-3-bytes": lambda: ipv4(b"z" * 3, TCP, frag_units=185),
    "gre": lambda: ipv4(b"\x00\x00\x08\x00" + b"w" * 20, GRE),
    "esp": lambda: ipv4(esp_payload(), ESP),
}
V6_CASES: dict[str, Callable[[], bytes]] = {
    "tcp": lambda: ipv6(tcp(40001, 22, TH_PUSH | TH_ACK, b"data")),
    "udp": lambda: ipv6(udp(546, 547)),
    "icmpv6-echo": lambda: ipv6(icmp6(128, 0)),
    "icmpv6-unreachable": lambda: ipv6(icmp6(1, 4)),
    "sctp": lambda: ipv6(sctp(5000, 5001)),
    "traffic-class": lambda: ipv6(udp(), traffic_class=0xB9),
    "hop-by-hop": lambda: ipv6(tcp(), ext=[hop_by_hop()]),
    "hop-by-hop-32": lambda: ipv6(udp(), ext=[hop_by_hop(3)]),
    "routing": lambda: ipv6(udp(), ext=[routing(2)]),
    "dest-opts": lambda: ipv6(icmp6(), ext=[dest_opts(1)]),
    "fragment-first": lambda: ipv6(udp(7, 9, b"x" * 40), ext=[fragment(0, more=True)]),
    "fragment-later": lambda: ipv6(b"y" * 40, UDP, ext=[fragment(5, more=True)]),
    "fragment-last-3-bytes": lambda: ipv6(b"y" * 3, TCP, ext=[fragment(5, more=False)]),
    "ah-tcp": lambda: ipv6(tcp(flags=TH_ACK), ext=[ah()]),
    "ah-udp": lambda: ipv6(udp(), ext=[ah(1)]),
    "esp": lambda: ipv6(esp_payload(), ESP),
    "hop-by-hop-esp": lambda: ipv6(esp_payload(), ESP, ext=[hop_by_hop()]),
    "no-next-header": lambda: ipv6(b"", NO_NEXT, ext=[dest_opts()]),
    "chain": lambda: ipv6(
        tcp(flags=TH_RST),
        ext=[hop_by_hop(1), dest_opts(), routing(1), fragment(0), ah(2), dest_opts(2)],
    ),
    "chain-later-fragment": lambda: ipv6(
        b"q" * 24, TCP, ext=[hop_by_hop(), routing(1), fragment(77)]
    ),
}
CASES = [
    (lt, f"{LINK_NAMES[lt]}-v{version}-{name}", build)
    for version, cases in ((4, V4_CASES), (6, V6_CASES))
    for lt in LINK_TYPES
    if lt != (IPV6 if version == 4 else IPV4)
    for name, build in cases.items()
]
MATRIX = [pytest.param(lt, build, id=case_id) for lt, case_id, build in CASES]


class TestLinkTypes:
    @pytest.mark.parametrize(("linktype", "build"), MATRIX)
    def test_row_matches_dpkt(self, linktype: int, build: Callable[[], bytes]) -> None:
        """Each packet kind behind each link type decodes to the row dpkt reads from it."""
        frame = wrap(linktype, build())
        want = expected_row(linktype, frame)
        assert want["reason"] == OK
        assert mismatches([decode_one(linktype, frame)], [want], [LINK_NAMES[linktype]]) == []

    @pytest.mark.parametrize(
        ("linktype", "frame"),
        [
            pytest.param(NULL, null(ipv6(udp()), family=AF_INET), id="null-af-inet-carrying-ipv6"),
            pytest.param(LOOP, loop(ipv4(udp()), family=AF_INET6_LINUX), id="loop-af-inet6-carrying-ipv4"),
            pytest.param(NULL, null(ipv4(udp()), family=0xDEAD), id="null-unknown-family"),
        ],
    )  # fmt: skip
    def test_loopback_family_is_ignored(self, linktype: int, frame: bytes) -> None:
        """For NULL and LOOP the version nibble of the IP header decides, not the family."""
        got = decode_one(linktype, frame)
        assert got["version"] == frame[4] >> 4
        assert got["reason"] == OK


# --- Ethernet encapsulations ------------------------------------------------------------------

ENCAPSULATIONS: dict[str, tuple[dict[str, Any], int]] = {  # eth() keywords, outermost VID
    "dot1q": ({"tags": [Tag(42, pcp=5, dei=1)]}, 42),
    "dot1q-priority-only": ({"tags": [Tag(0, pcp=6)]}, 0),
    "dot1q-vid-4095": ({"tags": [Tag(4095, pcp=7, dei=1)]}, 4095),
    "qinq-88a8": ({"tags": [Tag(100, ETH_8021AD, pcp=1), Tag(200)]}, 100),
    "qinq-9100": ({"tags": [Tag(300, ETH_QINQ), Tag(400)]}, 300),
    "triple": ({"tags": [Tag(10, ETH_8021AD), Tag(20), Tag(30)]}, 10),
    "triple-mixed-tpids": (
        {"tags": [Tag(11, ETH_QINQ), Tag(22, ETH_8021AD), Tag(33, ETH_QINQ)]},
        11,
    ),
    "mpls": ({"labels": [16]}, 0),
    "mpls-multicast": ({"labels": [16], "mpls_type": ETH_MPLS_MCAST}, 0),
    "mpls-stack-3": ({"labels": [16, 1048575, 3]}, 0),
    "vlan-then-mpls-2": ({"tags": [Tag(5)], "labels": [100, 200]}, 5),
}
PAYLOADS: dict[str, Callable[[], bytes]] = {
    "v4-tcp": V4_CASES["tcp-flags"],
    "v4-options-tcp": V4_CASES["options-tcp"],
    "v4-icmp": V4_CASES["icmp-unreachable"],
    "v6-udp": V6_CASES["udp"],
    "v6-chain-tcp": V6_CASES["chain"],
    "v6-fragment-later": V6_CASES["fragment-later"],
}


class TestEthernet:
    @pytest.mark.parametrize("payload", PAYLOADS.values(), ids=PAYLOADS.keys())
    @pytest.mark.parametrize("encapsulation", ENCAPSULATIONS.values(), ids=ENCAPSULATIONS.keys())
    def test_tags_and_labels(
        self, encapsulation: tuple[dict[str, Any], int], payload: Callable[[], bytes]
    ) -> None:
        """VLAN tags and MPLS labels are skipped; the row is dpkt's, vlan the outermost VID."""
        keywords, outer_vid = encapsulation
        frame = eth(payload(), **keywords)
        got, want = decode_one(ETHERNET, frame), expected_row(ETHERNET, frame)
        assert want["reason"] == OK
        assert mismatches([got], [want], ["frame"]) == []
        assert got["vlan"] == outer_vid

    @pytest.mark.parametrize("depth", [4, 8, 9, 12])
    def test_deep_tag_stacks(self, depth: int) -> None:
        """Tags stack to any depth; the outermost VID is kept."""
        tags = [Tag(100 + i, ETH_8021AD if i % 2 else ETH_8021Q) for i in range(depth)]
        frame = eth(ipv4(udp()), tags=tags)
        assert decode_one(ETHERNET, frame) == {**expected_row(ETHERNET, frame), "vlan": 100}

    def test_deep_label_stack(self) -> None:
        """An MPLS stack of 12 labels is skipped to its bottom-of-stack label."""
        frame = eth(ipv6(tcp()), labels=list(range(16, 28)))
        assert decode_one(ETHERNET, frame) == expected_row(ETHERNET, frame)


class TestNotIp:
    ARP = bytes(dpkt.arp.ARP(sha=MAC_SRC, spa=b"\xc0\x00\x02\x01", tpa=b"\xc0\x00\x02\x02"))
    LLC_STP = b"\x42\x42\x03" + bytes(35)  # 802.2 LLC carrying spanning tree

    @pytest.mark.parametrize(
        ("linktype", "frame"),
        [
            pytest.param(ETHERNET, eth(ARP, ETH_ARP), id="arp"),
            pytest.param(ETHERNET, eth(ARP, ETH_ARP, tags=[Tag(42)]), id="arp-in-vlan"),
            pytest.param(ETHERNET, eth(ARP, ETH_ARP, tags=[Tag(7, ETH_8021AD), Tag(8)]), id="arp-in-qinq"),
            pytest.param(ETHERNET, eth(b"\x02\x07\x04" + bytes(40), ETH_LLDP), id="lldp"),
            pytest.param(ETHERNET, eth(LLC_STP, len(LLC_STP)), id="802.3-length-field"),
            pytest.param(ETHERNET, eth(b"\x00" * 4 + eth(ARP, ETH_ARP), labels=[16]), id="mpls-pseudowire-arp"),
            pytest.param(ETHERNET, eth(b"\x10" * 4 + eth(ipv4(udp())), labels=[16]), id="mpls-associated-channel"),
            pytest.param(LINUX_SLL, sll(ARP, ETH_ARP), id="sll-arp"),
            pytest.param(LINUX_SLL2, sll2(b"\x02\x07\x04" + bytes(40), ETH_LLDP), id="sll2-lldp"),
        ],
    )  # fmt: skip
    def test_not_ip(self, linktype: int, frame: bytes) -> None:
        """Frames whose ethertype (or MPLS payload nibble) is not IP are NOT_IP, all fields 0."""
        assert expected_row(linktype, frame) == undecodable(DecodeReason.NOT_IP)
        assert decode_one(linktype, frame) == undecodable(DecodeReason.NOT_IP)

    @pytest.mark.parametrize("linktype", [2, 10, 147, 163, 230, 275, 277, 1000, 0xFFFF])
    def test_unknown_link_type(self, linktype: int) -> None:
        """A link type outside the table is UNKNOWN_LINKTYPE, even if the bytes look like IP."""
        assert decode_one(linktype, ipv4(tcp())) == undecodable(DecodeReason.UNKNOWN_LINKTYPE)

    @pytest.mark.parametrize("first_byte", [0x00, 0x15, 0x55, 0x7F, 0xF0])
    @pytest.mark.parametrize("linktype", [RAW, RAW_ALT, NULL, LOOP])
    def test_no_ip_version_behind_a_nibble_link_type(self, linktype: int, first_byte: int) -> None:
        """A version nibble that is neither 4 nor 6 is not metered (the reason is not pinned down)."""
        l3 = bytes([first_byte]) + ipv4(udp())[1:]
        got = decode_one(linktype, _behind(linktype, l3))
        assert got["reason"] in (NOT_IP, IP_BAD_HEADER)
        assert got == undecodable(DecodeReason(got["reason"]))


def _behind(linktype: int, l3: bytes) -> bytes:
    """``l3`` behind a link header that does not look at ``l3`` itself."""
    return {NULL: null(l3, AF_INET), LOOP: loop(l3, AF_INET), RAW: l3, RAW_ALT: l3}[linktype]


# --- hand-checked rows ------------------------------------------------------------------------


class TestWrittenOut:
    """Rows worked out by hand, so the dpkt oracle itself is checked too."""

    V6_SRC_HI = 0x2001_0DB8_0000_0000

    def test_vlan_ipv6_first_fragment(self) -> None:
        """VLAN + IPv6 + fragment header (offset 0): ports and flags come from the TCP header."""
        l3 = ipv6(
            tcp(1234, 80, TH_SYN, b"x" * 12),
            src="2001:db8::a",
            dst="2001:db8::b",
            traffic_class=0x20,
            ext=[fragment(0, more=True)],
        )
        frame = eth(l3, tags=[Tag(42, pcp=3)])
        want = {
            "version": 6, "src_hi": self.V6_SRC_HI, "src_lo": 0xA, "dst_hi": self.V6_SRC_HI,
            "dst_lo": 0xB, "sport": 1234, "dport": 80, "proto": TCP, "tos": 0x20,
            "tcp_flags": TH_SYN, "ip_len": 40 + 8 + 20 + 12, "vlan": 42, "reason": OK,
        }  # fmt: skip
        assert expected_row(ETHERNET, frame) == want
        assert decode_one(ETHERNET, frame) == want

    def test_vlan_ipv6_later_fragment(self) -> None:
        """VLAN + IPv6 + fragment header (offset != 0): protocol kept, ports and flags 0."""
        l3 = ipv6(
            b"\x04\xd2\x00\x50" + b"x" * 28,
            TCP,
            src="2001:db8::a",
            dst="2001:db8::b",
            traffic_class=0x20,
            ext=[fragment(4, more=False)],
        )
        frame = eth(l3, tags=[Tag(42, pcp=3)])
        want = {
            "version": 6, "src_hi": self.V6_SRC_HI, "src_lo": 0xA, "dst_hi": self.V6_SRC_HI,
            "dst_lo": 0xB, "sport": 0, "dport": 0, "proto": TCP, "tos": 0x20, "tcp_flags": 0,
            "ip_len": 40 + 8 + 32, "vlan": 42, "reason": OK,
        }  # fmt: skip
        assert expected_row(ETHERNET, frame) == want
        assert decode_one(ETHERNET, frame) == want
        header_end = 14 + 4 + 40 + 8
        assert decode_one(ETHERNET, frame, caplen=header_end) == want
        cut_chain = {**want, "proto": FRAGMENT, "reason": L4_TRUNCATED}
        assert expected_row(ETHERNET, frame, caplen=header_end - 1) == cut_chain
        assert decode_one(ETHERNET, frame, caplen=header_end - 1) == cut_chain
        assert decode_one(ETHERNET, frame, caplen=14 + 4 + 39) == undecodable(IP_TRUNCATED)

    def test_later_fragment_header_chain_stops(self) -> None:
        """After a later fragment's header the bytes are data: proto is its next header, even 60."""
        l3 = ipv6(b"\x06\x00" + b"d" * 22, DEST_OPTS, ext=[hop_by_hop(), fragment(8)])
        got = decode_one(RAW, l3)
        assert (got["proto"], got["sport"], got["dport"], got["reason"]) == (DEST_OPTS, 0, 0, OK)
        assert got == expected_row(RAW, l3)

    def test_qinq_ipv6_fragment_keeps_outer_vid(self) -> None:
        """An 802.1ad outer tag and an 802.1Q inner tag: vlan is the outer VID."""
        frame = eth(ipv6(udp(), ext=[fragment(0)]), tags=[Tag(3000, ETH_8021AD), Tag(10)])
        got = decode_one(ETHERNET, frame)
        assert (got["vlan"], got["sport"], got["dport"], got["reason"]) == (3000, 5353, 53, OK)

    @pytest.mark.parametrize(
        ("l3", "dport"),
        [
            (ipv4(icmp(8, 0)), 0x0800), (ipv4(icmp(0, 0)), 0), (ipv4(icmp(3, 3)), 771),
            (ipv4(icmp(11, 1)), 0x0B01), (ipv6(icmp6(128, 0)), 0x8000), (ipv6(icmp6(1, 4)), 260),
            (ipv6(icmp6(135, 0)), 0x8700),
        ],
    )  # fmt: skip
    def test_icmp_type_and_code(self, l3: bytes, dport: int) -> None:
        """ICMP and ICMPv6: source port 0, destination port type*256 + code."""
        got = decode_one(RAW, l3)
        assert (got["sport"], got["dport"], got["reason"]) == (0, dport, OK)

    @pytest.mark.parametrize(
        ("flags", "low8"), [(0x1FF, 0xFF), (TH_NS, 0), (TH_NS | TH_FIN, 1), (0xC2, 0xC2)]
    )
    def test_tcp_flags_are_the_low_8_bits(self, flags: int, low8: int) -> None:
        """tcp_flags is byte 13 of the TCP header; the NS bit in byte 12 is not kept."""
        assert decode_one(ETHERNET, eth(ipv4(tcp(flags=flags))))["tcp_flags"] == low8

    def test_ipv4_addresses_are_mapped(self) -> None:
        """IPv4 addresses are IPv4-mapped IPv6 addresses (::ffff:a.b.c.d)."""
        got = decode_one(LINUX_SLL, sll(ipv4(udp(), src="192.0.2.1", dst="10.255.0.254", tos=0x2E)))
        assert (got["src_hi"], got["src_lo"]) == (0, v4_mapped(192, 0, 2, 1))
        assert (got["dst_hi"], got["dst_lo"]) == (0, v4_mapped(10, 255, 0, 254))
        assert (got["version"], got["tos"], got["ip_len"]) == (4, 0x2E, 20 + 8 + 1)

    def test_ip_len_ignores_ethernet_padding(self) -> None:
        """ip_len is the IPv4 total length, not the (padded) frame length."""
        frame = eth(ipv4(udp(payload=b""))).ljust(60, b"\x00")
        assert decode_one(ETHERNET, frame)["ip_len"] == 28

    def test_ipv6_ip_len_is_40_plus_payload_length(self) -> None:
        """IPv6 ip_len is 40 + payload length, extension headers included."""
        l3 = ipv6(udp(payload=b"abcd"), ext=[hop_by_hop(), dest_opts(1)], traffic_class=0xFF)
        got = decode_one(IPV6, l3)
        assert (got["ip_len"], got["tos"], got["proto"]) == (40 + 8 + 16 + 12, 0xFF, UDP)

    def test_tso_zero_total_length(self) -> None:
        """IPv4 total length 0 (TSO): ip_len is the wire length minus the L3 offset."""
        l3 = bytearray(ipv4(tcp(1, 2, TH_ACK, b"x" * 100)))
        l3[2:4] = b"\x00\x00"
        frame = eth(bytes(l3), tags=[Tag(7)])  # 158 bytes on the wire, L3 at 18
        got = rows(decode(frame_batch([(ETHERNET, frame)], caplens=[64])))[0]
        assert (got["ip_len"], got["sport"], got["dport"], got["tcp_flags"]) == (
            158 - 18,
            1,
            2,
            TH_ACK,
        )
        assert got == expected_row(ETHERNET, frame, caplen=64)


# --- headers that lie ----------------------------------------------------------------------


def patched(l3: bytes, **at: int) -> bytes:
    """``l3`` with single bytes replaced: ``patched(b, b0=0x44)`` sets byte 0."""
    out = bytearray(l3)
    for key, value in at.items():
        out[int(key[1:])] = value
    return bytes(out)


V4_UDP = ipv4(udp(payload=b"p" * 40))  # 68 bytes, total length 68


class TestBadHeaders:
    @pytest.mark.parametrize(
        ("linktype", "frame", "reason"),
        [
            pytest.param(ETHERNET, eth(ipv6(udp()), ETH_IP), IP_BAD_HEADER, id="ethertype-ipv4-version-6"),
            pytest.param(ETHERNET, eth(V4_UDP, ETH_IP6), IP_BAD_HEADER, id="ethertype-ipv6-version-4"),
            pytest.param(LINUX_SLL, sll(patched(V4_UDP, b0=0x55), ETH_IP), IP_BAD_HEADER, id="ethertype-ipv4-version-5"),
            pytest.param(ETHERNET, eth(patched(V4_UDP, b0=0x44)), IP_BAD_HEADER, id="ihl-4"),
            pytest.param(RAW, patched(V4_UDP, b0=0x40), IP_BAD_HEADER, id="ihl-0"),
            pytest.param(RAW, patched(V4_UDP, b2=0, b3=19), IP_BAD_HEADER, id="total-length-19"),
            pytest.param(RAW, patched(V4_UDP, b0=0x48, b2=0, b3=28), IP_BAD_HEADER, id="total-length-below-ihl-8"),
            pytest.param(RAW, patched(V4_UDP, b0=0x4F, b2=0, b3=40), IP_BAD_HEADER, id="total-length-below-ihl-15"),
            pytest.param(RAW, patched(V4_UDP[:40], b0=0x4F, b2=0, b3=80), IP_TRUNCATED, id="ihl-15-in-40-bytes"),
            pytest.param(RAW, V4_UDP[:19], IP_TRUNCATED, id="19-bytes-of-ipv4"),
            pytest.param(RAW, ipv6(udp())[:39], IP_TRUNCATED, id="39-bytes-of-ipv6"),
            pytest.param(ETHERNET, eth(ipv4(udp()))[:14], IP_TRUNCATED, id="ethernet-header-only"),
            pytest.param(ETHERNET, eth(ipv4(udp()))[:13], L2_TRUNCATED, id="13-bytes-of-ethernet"),
            pytest.param(ETHERNET, eth(ipv4(udp()), tags=[Tag(5), Tag(6)])[:20], L2_TRUNCATED, id="inside-second-tag"),
            pytest.param(ETHERNET, bytes(dpkt.ethernet.Ethernet(dst=MAC_DST, src=MAC_SRC, type=ETH_MPLS)) + bytes(dpkt.ethernet.MPLSlabel(val=16, s=0)) * 3, L2_TRUNCATED, id="mpls-without-bottom-of-stack"),
            pytest.param(ETHERNET, eth(ipv4(udp()), labels=[16, 17])[:22], L2_TRUNCATED, id="mpls-stack-then-nothing"),
            pytest.param(LINUX_SLL2, sll2(ipv4(udp()))[:19], L2_TRUNCATED, id="19-bytes-of-sll2"),
            pytest.param(NULL, null(ipv4(udp()))[:3], L2_TRUNCATED, id="3-bytes-of-null"),
            pytest.param(RAW, b"", IP_TRUNCATED, id="empty-raw"),
        ],
    )  # fmt: skip
    def test_undecodable(self, linktype: int, frame: bytes, reason: int) -> None:
        """Headers that contradict themselves or end early get their reason and all-zero fields."""
        assert decode_one(linktype, frame) == undecodable(DecodeReason(reason))

    @pytest.mark.parametrize(
        ("caplen", "stopped_at"),
        [
            (40, HOP_BY_HOP),
            (41, HOP_BY_HOP),
            (47, HOP_BY_HOP),
            (48, ROUTING),
            (40 + 8 + 39, ROUTING),
        ],
    )
    def test_extension_chain_cut_is_metered(self, caplen: int, stopped_at: int) -> None:
        """IPv6 cut inside its extension chain (a short snaplen): metered on its fixed header,
        as tshark counts it; the protocol is the header the chain stops at, ports 0."""
        frame = ipv6(tcp(), ext=[hop_by_hop(), routing(2)])
        got = decode_one(IPV6, frame, caplen=caplen)
        assert got == expected_row(IPV6, frame, caplen=caplen)
        assert (got["reason"], got["proto"], got["ip_len"]) == (
            L4_TRUNCATED,
            stopped_at,
            len(frame),
        )
        assert (got["sport"], got["dport"]) == (0, 0)

    def test_ipv4_with_total_length_beyond_the_frame(self) -> None:
        """A total length larger than what was captured is still the row's ip_len."""
        got = decode_one(RAW, patched(V4_UDP, b2=0x05, b3=0xDC))
        assert (got["ip_len"], got["reason"], got["dport"]) == (1500, OK, 53)

    @pytest.mark.parametrize("ext_count", [8, 16, 17, 24])
    def test_long_extension_chains(self, ext_count: int) -> None:
        """Long chains of destination options are walked to the transport header."""
        frame = ipv6(tcp(9, 10, TH_ACK), ext=[dest_opts() for _ in range(ext_count)])
        want = expected_row(RAW, frame)
        assert (want["proto"], want["sport"], want["reason"]) == (TCP, 9, OK)
        assert decode_one(RAW, frame) == want


# --- every cut a snaplen can make -------------------------------------------------------------

CUT_FRAMES: dict[str, tuple[int, bytes]] = {
    "eth-vlan-ipv4-options-tcp": (
        ETHERNET,
        eth(ipv4(tcp(80, 51000, TH_SYN | TH_ACK, b"abcdef"), options=b"\x01" * 4), tags=[Tag(42)]),
    ),
    "eth-ipv6-chain-tcp": (
        ETHERNET,
        eth(
            ipv6(
                tcp(443, 40000, TH_FIN | TH_ACK),
                ext=[hop_by_hop(), routing(1), fragment(0), ah(1), dest_opts()],
            )
        ),
    ),
    "sll2-ipv4-udp": (LINUX_SLL2, sll2(ipv4(udp(123, 123, b"ntp")))),
    "null-ipv6-icmpv6": (NULL, null(ipv6(icmp6(135, 0, b"\x00" * 20)))),
    "eth-qinq-mpls3-ipv6-udp": (
        ETHERNET,
        eth(ipv6(udp()), tags=[Tag(100, ETH_8021AD), Tag(200)], labels=[16, 17, 18]),
    ),
    "eth-vlan-ipv6-later-fragment": (
        ETHERNET,
        eth(ipv6(b"x" * 16, TCP, ext=[hop_by_hop(), fragment(3)]), tags=[Tag(9)]),
    ),
    "sll-ipv4-later-fragment": (LINUX_SLL, sll(ipv4(b"x" * 8, TCP, frag_units=3))),
    "loop-ipv4-icmp": (LOOP, loop(ipv4(icmp(3, 1)))),
    "raw-ipv4-sctp": (RAW, ipv4(sctp())),
    "eth-vlan-arp": (ETHERNET, eth(TestNotIp.ARP, ETH_ARP, tags=[Tag(5)])),
    "eth-mpls-pseudowire": (ETHERNET, eth(b"\x00" * 4 + eth(ipv4(udp())), labels=[16, 17])),
}


def every_cut(linktype: int, frame: bytes) -> list[tuple[int, bytes]]:
    return [(linktype, frame)] * (len(frame) + 1)


class TestTruncation:
    @pytest.mark.parametrize("name", CUT_FRAMES)
    def test_every_cut(self, name: str) -> None:
        """Cut at every length, a frame decodes to what the cut leaves (reason and fields)."""
        linktype, frame = CUT_FRAMES[name]
        cuts = range(len(frame) + 1)
        got = rows(decode(frame_batch(every_cut(linktype, frame), caplens=list(cuts))))
        want = [expected_row(linktype, frame, caplen=cut) for cut in cuts]
        assert mismatches(got, want, [f"cut {cut}" for cut in cuts]) == []

    def test_every_cut_covers_every_stage(self) -> None:
        """The cut frames reach every truncation reason, so the sweep tests each of them."""
        reasons = {
            expected_row(lt, frame, caplen=cut)["reason"]
            for lt, frame in CUT_FRAMES.values()
            for cut in range(len(frame) + 1)
        }
        assert reasons == {OK, L4_TRUNCATED, L2_TRUNCATED, NOT_IP, IP_TRUNCATED}

    def test_no_byte_past_caplen_is_read(self) -> None:
        """Run uncompiled with each cut frame alone at the end of its buffer: no read past caplen."""
        frames = [
            (lt, frame, cut) for lt, frame in CUT_FRAMES.values() for cut in range(len(frame) + 1)
        ]
        got = decode_uncompiled(frames)
        want = [expected_row(lt, frame, caplen=cut) for lt, frame, cut in frames]
        labels = [f"{LINK_NAMES[lt]} {len(frame)} bytes cut at {cut}" for lt, frame, cut in frames]
        assert [g for g in got if "error" in g] == []
        assert mismatches(got, want, labels) == []

    def test_garbage_reads_no_byte_past_caplen(self) -> None:
        """Seeded garbage, each frame alone in its buffer and decoded uncompiled, never over-reads."""
        rng = random.Random(20260101)
        frames = []
        for _ in range(1500):
            linktype = rng.choice(LINK_TYPES)
            body = bytes([rng.choice([0x45, 0x4F, 0x60, 0x81, rng.randrange(256)])])
            body += rng.randbytes(rng.randrange(80))
            ethertype = rng.choice(
                [*TAG_TYPES, ETH_MPLS, ETH_IP, ETH_IP6, ETH_ARP, rng.randrange(65536)]
            )
            frame = garbage_frame(linktype, ethertype, body)
            frames.append((linktype, frame, rng.randrange(len(frame) + 1)))
        got = decode_uncompiled(frames)
        assert [g for g in got if "error" in g] == []
        assert len(got) == len(frames)


UNCOMPILED = """
import json, sys
from probe.decode.decoder import decode
from tests.frames import ROW_FIELDS, frame_batch
out = []
for linktype, data, cut in json.load(sys.stdin):
    try:
        batch = frame_batch([(linktype, bytes.fromhex(data))], caplens=[cut], keep_uncaptured=False)
        table = decode(batch)
        out.append({name: int(getattr(table, name)[0]) for name in ROW_FIELDS})
    except Exception as exc:
        out.append({"error": f"{linktype} {data} cut {cut}: {exc!r}"})
json.dump(out, sys.stdout)
"""


def decode_uncompiled(frames: Sequence[tuple[int, bytes, int]]) -> list[dict[str, Any]]:
    """Rows from the decoder run as plain Python (NUMBA_DISABLE_JIT), where reading past the
    buffer raises IndexError instead of returning a stray byte."""
    payload = json.dumps([(lt, frame.hex(), cut) for lt, frame, cut in frames])
    done = subprocess.run(
        [sys.executable, "-c", UNCOMPILED], input=payload, capture_output=True, text=True,
        cwd=REPO, env={**os.environ, "NUMBA_DISABLE_JIT": "1"}, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    result: list[dict[str, Any]] = json.loads(done.stdout)
    return result


def garbage_frame(linktype: int, ethertype: int, body: bytes) -> bytes:
    """``body`` behind a well-formed header of ``linktype`` announcing ``ethertype``."""
    if linktype == ETHERNET:
        return eth(body, ethertype)
    if linktype == LINUX_SLL:
        return sll(body, ethertype)
    if linktype == LINUX_SLL2:
        return sll2(body, ethertype)
    if linktype in (NULL, LOOP):
        return (null if linktype == NULL else loop)(body, ethertype & 0xFF)
    return body


# --- batches ----------------------------------------------------------------------------------


def mixed_frames() -> list[tuple[int, bytes, int | None]]:
    """Every matrix case, the cut frames at a few cuts, non-IP and unknown link types."""
    frames: list[tuple[int, bytes, int | None]] = [
        (lt, wrap(lt, build()), None) for lt, _, build in CASES
    ]
    for lt, frame in CUT_FRAMES.values():
        frames += [
            (lt, frame, cut)
            for cut in (0, 13, 17, 21, 45, 60, None)
            if cut is None or cut <= len(frame)
        ]
    frames += [(ETHERNET, eth(TestNotIp.ARP, ETH_ARP), None), (147, ipv4(udp()), None)]
    random.Random(7).shuffle(frames)
    return frames


class TestBatches:
    def test_mixed_batch(self) -> None:
        """One batch mixing link types, ifindex values and cuts: each row as if decoded alone."""
        frames = mixed_frames()
        ts = [T0_NS + 37 * i * i for i in range(len(frames))]
        ts[:3] = [0, -1, 2**62]
        ifindex = [(0, 1, 7, 2**32 - 1)[i % 4] for i in range(len(frames))]
        table = decode(
            frame_batch([(lt, f) for lt, f, _ in frames], ts, ifindex, [c for _, _, c in frames])
        )
        want = [expected_row(lt, f, caplen=c) for lt, f, c in frames]
        assert mismatches(rows(table), want, range(len(frames))) == []
        assert table.ts_ns.tolist() == ts
        assert table.ifindex.tolist() == ifindex

    def test_frames_in_any_buffer_order(self) -> None:
        """Rows follow the batch's order even when frames sit out of order in the buffer."""
        frames = mixed_frames()
        batch = frame_batch([(lt, f) for lt, f, _ in frames], caplens=[c for _, _, c in frames])
        order = np.random.default_rng(3).permutation(len(frames))
        table = decode(batch.take(order))
        want = [expected_row(frames[i][0], frames[i][1], caplen=frames[i][2]) for i in order]
        assert mismatches(rows(table), want, order.tolist()) == []
        assert table.ts_ns.tolist() == batch.ts_ns[order].tolist()

    def test_column_dtypes(self) -> None:
        """Every column has the PacketTable dtype and one row per frame."""
        table = decode(frame_batch([(ETHERNET, eth(ipv4(tcp()))), (RAW, b"")]))
        for name, dtype in PacketTable.DTYPES.items():
            column = getattr(table, name)
            assert (column.dtype, len(column)) == (np.dtype(dtype), 2), name

    def test_empty_batch(self) -> None:
        """An empty batch gives an empty table."""
        table = decode(frame_batch([]))
        assert len(table) == 0
        assert table.reason.dtype == np.uint8


# --- generated frames -------------------------------------------------------------------------

PORTS = st.integers(0, 65535)
SMALL = st.binary(max_size=24)
OTHER_PROTOS = st.sampled_from([GRE, 4, 89, 253, 254])  # no ports: not TCP/UDP/SCTP/ICMP(v6)


@st.composite
def transports(draw: st.DrawFn, version: int) -> tuple[dpkt.Packet | bytes, int]:
    """A transport payload and its protocol number."""
    kind = draw(st.sampled_from(["tcp", "udp", "sctp", "icmp", "esp", "other"]))
    if kind == "tcp":
        return tcp(draw(PORTS), draw(PORTS), draw(st.integers(0, 0x1FF)), draw(SMALL)), TCP
    if kind == "udp":
        return udp(draw(PORTS), draw(PORTS), draw(SMALL)), UDP
    if kind == "sctp":
        return sctp(draw(PORTS), draw(PORTS), draw(SMALL)), SCTP
    if kind == "icmp":
        type_code = (draw(st.integers(0, 255)), draw(st.integers(0, 255)))
        return (
            (icmp(*type_code, draw(SMALL)), ICMP)
            if version == 4
            else (icmp6(*type_code, draw(SMALL)), ICMPV6)
        )
    if kind == "esp":
        return esp_payload(draw(st.integers(0, 24))), ESP
    return draw(SMALL), draw(OTHER_PROTOS if version == 4 else st.sampled_from([NO_NEXT, GRE, 253]))


@st.composite
def ipv4_packets(draw: st.DrawFn) -> bytes:
    payload, proto = draw(transports(4))
    later = draw(st.booleans())
    return ipv4(
        draw(SMALL) if later else payload, proto, tos=draw(st.integers(0, 255)),
        src=".".join(str(draw(st.integers(0, 255))) for _ in range(4)),
        options=b"\x01" * 4 * draw(st.integers(0, 10)),
        frag_units=draw(st.integers(1, 8191)) if later else 0, more_fragments=draw(st.booleans()),
    )  # fmt: skip


EXT_BUILDERS: dict[str, Callable[[int], Ext]] = {
    "hop": hop_by_hop,
    "dest": dest_opts,
    "routing": routing,
    "ah": lambda n: ah(n + 1),
    "fragment-first": lambda n: fragment(0, more=bool(n % 2)),
}


@st.composite
def ipv6_packets(draw: st.DrawFn) -> bytes:
    kinds = draw(st.lists(st.sampled_from(sorted(EXT_BUILDERS)), max_size=4))
    ext = [EXT_BUILDERS[kind](draw(st.integers(0, 3))) for kind in kinds]
    if draw(st.booleans()):  # a later fragment: what follows its header is data, not headers
        ext.append(fragment(draw(st.integers(1, 8191)), more=draw(st.booleans())))
        proto = draw(st.sampled_from([TCP, UDP, ICMPV6, SCTP, NO_NEXT, 253]))
        return ipv6(draw(SMALL), proto, ext=ext, traffic_class=draw(st.integers(0, 255)))
    payload, proto = draw(transports(6))
    return ipv6(
        payload,
        proto,
        ext=ext,
        traffic_class=draw(st.integers(0, 255)),
        src=f"2001:db8::{draw(st.integers(0, 0xFFFF)):x}",
    )


@st.composite
def valid_frames(draw: st.DrawFn) -> tuple[int, bytes, int | None]:
    """A well-formed frame of any link type, maybe cut short, as (linktype, bytes, caplen)."""
    version = draw(st.sampled_from([4, 6]))
    l3 = draw(ipv4_packets() if version == 4 else ipv6_packets())
    linktype = draw(
        st.sampled_from([lt for lt in LINK_TYPES if lt != (IPV6 if version == 4 else IPV4)])
    )
    if linktype == ETHERNET:
        tags = draw(
            st.lists(
                st.builds(
                    Tag,
                    st.integers(0, 4095),
                    st.sampled_from(TAG_TYPES),
                    st.integers(0, 7),
                    st.integers(0, 1),
                ),
                max_size=3,
            )
        )
        labels = draw(st.lists(st.integers(0, 2**20 - 1), max_size=3))
        frame = eth(
            l3,
            tags=tags,
            labels=labels,
            mpls_type=draw(st.sampled_from([ETH_MPLS, ETH_MPLS_MCAST])),
        )
    else:
        frame = wrap(linktype, l3)
    l4 = dissect(linktype, frame).l3_end  # cut often where the transport bytes run out
    near_l4 = st.integers(max(0, l4 - 2), min(len(frame), l4 + 15))
    return linktype, frame, draw(st.none() | st.integers(0, len(frame)) | near_l4)


@st.composite
def garbage(draw: st.DrawFn) -> tuple[int, bytes, int]:
    """Random or damaged bytes behind a random (mostly known) link type, cut anywhere."""
    linktype = draw(st.sampled_from(LINK_TYPES) | st.sampled_from(LINK_TYPES) | st.integers(0, 65535))  # fmt: skip
    start = draw(st.sampled_from([0x45, 0x46, 0x4F, 0x44, 0x40, 0x60, 0x6F]) | st.integers(0, 255))
    body = bytes([start]) + draw(st.binary(max_size=96))
    if draw(st.booleans()):  # a real packet with a few bytes overwritten
        damaged = bytearray(draw(ipv4_packets() | ipv6_packets()))
        for _ in range(draw(st.integers(0, 4))):
            damaged[draw(st.integers(0, len(damaged) - 1))] = draw(st.integers(0, 255))
        body = bytes(damaged)
    ethertype = draw(
        st.sampled_from([*TAG_TYPES, ETH_MPLS, ETH_IP, ETH_IP6]) | st.integers(0, 65535)
    )
    frame = garbage_frame(linktype, ethertype, body) if draw(st.booleans()) else body
    return linktype, frame, draw(st.integers(0, len(frame)))


class TestGenerated:
    @settings(max_examples=400, deadline=None)
    @given(st.lists(valid_frames(), min_size=1, max_size=6), st.data())
    def test_valid_frames_match_dpkt(
        self, frames: list[tuple[int, bytes, int | None]], data: st.DataObject
    ) -> None:
        """Generated well-formed frames, cut anywhere, decode to the rows dpkt reads from them."""
        ifindex = data.draw(
            st.lists(st.integers(0, 2**32 - 1), min_size=len(frames), max_size=len(frames))
        )
        batch = frame_batch(
            [(lt, f) for lt, f, _ in frames], ifindex=ifindex, caplens=[c for *_, c in frames]
        )
        table = decode(batch)
        want = [expected_row(lt, f, caplen=c) for lt, f, c in frames]
        assert mismatches(rows(table), want, [f.hex() for _, f, _ in frames]) == []
        assert table.ifindex.tolist() == ifindex

    @settings(max_examples=500, deadline=None)
    @given(st.lists(garbage(), max_size=12), st.data())
    def test_garbage_never_raises(
        self, frames: list[tuple[int, bytes, int]], data: st.DataObject
    ) -> None:
        """Garbage gives one row per frame, a valid reason, version 0 exactly when not metered."""
        n = len(frames)
        ts = data.draw(st.lists(st.integers(-(2**63), 2**63 - 1), min_size=n, max_size=n))
        ifindex = data.draw(st.lists(st.integers(0, 2**32 - 1), min_size=n, max_size=n))
        batch = frame_batch([(lt, f) for lt, f, _ in frames], ts, ifindex, [c for *_, c in frames])
        table = decode(batch)
        assert len(table) == n
        assert table.ts_ns.tolist() == ts
        assert table.ifindex.tolist() == ifindex
        for (linktype, _, caplen), row in zip(frames, rows(table), strict=True):
            check_invariants(linktype, caplen, row)


def check_invariants(linktype: int, caplen: int, row: Row) -> None:
    """What the contract says of any row, whatever the frame held."""
    reason = DecodeReason(row["reason"])
    assert (row["version"] != 0) == reason.metered
    # PPI names the link type inside it, which may be one not in the table.
    unknown = linktype not in LINK_TYPES or linktype == PPI
    assert (reason == DecodeReason.UNKNOWN_LINKTYPE) <= unknown
    assert (linktype not in LINK_TYPES) <= (reason == DecodeReason.UNKNOWN_LINKTYPE)
    if caplen < LINK_HEADER_BYTES.get(linktype, 0):
        assert reason == DecodeReason.L2_TRUNCATED
    if not reason.metered:
        assert row == undecodable(reason)
        return
    assert row["version"] in (4, 6)
    if row["version"] == 4:
        assert (row["src_hi"], row["dst_hi"]) == (0, 0)
        assert row["src_lo"] >> 32 == row["dst_lo"] >> 32 == 0xFFFF
        assert row["ip_len"] >= 20
    else:
        assert row["ip_len"] >= 40
    if linktype not in (ETHERNET, LINUX_SLL, LINUX_SLL2):
        assert row["vlan"] == 0
    if reason == DecodeReason.L4_TRUNCATED or row["proto"] != TCP:
        assert row["tcp_flags"] == 0
    if reason == DecodeReason.L4_TRUNCATED or row["proto"] in (ICMP, ICMPV6):
        assert row["sport"] == 0
    if reason == DecodeReason.L4_TRUNCATED or row["proto"] not in (TCP, UDP, SCTP, ICMP, ICMPV6):
        assert row["dport"] == 0


def test_frame_batch_layout() -> None:
    """frame_batch puts frames back to back, keeps cut bytes, and sets wirelen to the full length."""
    batch = frame_batch([(RAW, b"abcd"), (NULL, b"xyz")], caplens=[2, None], ifindex=[5, 6])
    assert isinstance(batch, FrameBatch)
    assert bytes(batch.buf) == b"abcdxyz"
    assert (batch.offset.tolist(), batch.caplen.tolist(), batch.wirelen.tolist()) == (
        [0, 4],
        [2, 3],
        [4, 3],
    )
    assert (batch.linktype.tolist(), batch.ifindex.tolist()) == ([RAW, NULL], [5, 6])
    short = frame_batch([(RAW, b"abcd"), (NULL, b"xyz")], caplens=[2, None], keep_uncaptured=False)
    assert (bytes(short.buf), short.offset.tolist()) == (b"abxyz", [0, 2])


class TestLinkTypeVersion:
    @pytest.mark.parametrize(
        ("linktype", "payload"),
        [(IPV4, lambda: ipv6(udp())), (IPV6, lambda: ipv4(udp()))],
    )
    def test_ip_link_types_insist_on_their_version(self, linktype: int, payload: Any) -> None:
        """LINKTYPE_IPV4 (228) carrying IPv6, or IPV6 (229) carrying IPv4, is a bad header."""
        row = decode(frame_batch([(linktype, bytes(payload()))]))
        assert row.reason.tolist() == [DecodeReason.IP_BAD_HEADER]
        assert row.version.tolist() == [0]
