"""--fields: each frame's L2 and tunnel attributes, and records that keep their first packet's.

Expected words come from dpkt's parse of the frames built (tests/frames.py,
tests/tunnels.py), not from the decoder's walk.
"""

from __future__ import annotations

import random
import struct

import dpkt
import numpy as np
import pytest

from cache.config import CacheConfig
from cache.flow_cache import FlowCache
from core import attributes as a
from core.packets import PacketTable
from probe.decode.decoder import decode
from tests import frames as f
from tests import tunnels as t
from tests.reference_engine import ReferenceCache, record_rows

MAC_PRESENT, VLAN_PRESENT, MPLS_PRESENT = 1 << 48, 1 << 16, 1 << 24
V4 = f.ipv4(f.tcp(40000, 443, f.TH_SYN), src="198.18.1.1", dst="198.18.2.2")
V6 = f.ipv6(f.udp(5353, 53, b"q"), src="2001:db8:1::1", dst="2001:db8:2::2")


def words_of(linktype: int, frame: bytes, inner: bool = False) -> list[int]:
    table = decode(f.frame_batch([(linktype, frame)]), inner, attributes=True)
    assert table.attrs.shape == (1, a.ATTRIBUTE_WORDS)
    return [int(w) for w in table.attrs[0]]


def expected_l2(frame: bytes) -> list[int]:
    """MACs, inner VLAN and the top three MPLS entries of an Ethernet frame, read per IEEE
    802.1Q (TPID, TCI with the VID in its low 12 bits) and RFC 3032 (4-byte entries)."""
    words = [0] * a.ATTRIBUTE_WORDS
    words[a.DST_MAC] = MAC_PRESENT | int.from_bytes(frame[0:6], "big")
    words[a.SRC_MAC] = MAC_PRESENT | int.from_bytes(frame[6:12], "big")
    (ethertype,), pos, vids = struct.unpack_from(">H", frame, 12), 14, []
    while ethertype in f.TAG_TYPES:
        tci, ethertype = struct.unpack_from(">HH", frame, pos)
        vids.append(tci & 0x0FFF)
        pos += 4
    if len(vids) >= 2:
        words[a.INNER_VLAN] = VLAN_PRESENT | vids[1]
    if ethertype == f.ETH_MPLS:
        for k in range(3):
            (entry,) = struct.unpack_from(">I", frame, pos + 4 * k)
            words[a.MPLS_WORDS[k]] = MPLS_PRESENT | entry >> 8
            if entry & 0x100:
                break
    return words


@pytest.mark.parametrize("tags", [0, 1, 2, 3])
@pytest.mark.parametrize("labels", [0, 1, 2, 3, 5])
@pytest.mark.parametrize("l3", [V4, V6], ids=["v4", "v6"])
def test_ethernet_macs_inner_vlan_and_labels(tags: int, labels: int, l3: bytes) -> None:
    tag_list = [f.Tag(100 + i * 7, f.ETH_8021AD if i == 0 and tags > 1 else f.ETH_8021Q)
                for i in range(tags)]  # fmt: skip
    label_list = [16000 + 13 * k for k in range(labels)]
    frame = f.eth(l3, tags=tag_list, labels=label_list)
    assert words_of(f.ETHERNET, frame) == expected_l2(frame)


def test_a_label_of_zero_is_present_not_absent() -> None:
    """IPv4 explicit null (label 0) is a label: its word says so."""
    words = words_of(f.ETHERNET, f.eth(V4, labels=[0]))
    assert words[a.MPLS1] == MPLS_PRESENT | 0x001
    assert words[a.MPLS2] == 0


@pytest.mark.parametrize("linktype", [f.LINUX_SLL, f.PPP, f.C_HDLC, f.RAW, f.NULL])
def test_links_without_ethernet_addresses_have_no_macs(linktype: int) -> None:
    assert words_of(linktype, f.wrap(linktype, V4)) == [0] * a.ATTRIBUTE_WORDS


def test_undecodable_frames_carry_nothing() -> None:
    frame = f.eth(V4, labels=[100])[:20]  # cut inside the label stack
    assert words_of(f.ETHERNET, frame) == [0] * a.ATTRIBUTE_WORDS


TUNNELS = {
    "ipip": t.ip_in_ip(V4, 4),
    "6in6": t.ip_in_ip(V6, 6),
    "gre": t.gre(V4, f.ETH_IP),
    "erspan2": t.erspan2(f.eth(V6)),
    "vxlan": t.vxlan(f.eth(V4)),
    "geneve": t.geneve(V6, f.ETH_IP6),
    "gtpu": t.gtpu(V4, extension=True),
}


def outer_words(outer_ip: bytes) -> list[int]:
    """The outer header's version and address halves, parsed by dpkt."""
    version = outer_ip[0] >> 4
    header = dpkt.ip.IP(outer_ip) if version == 4 else dpkt.ip6.IP6(outer_ip)
    words = []
    for raw in (header.src, header.dst):
        value = int.from_bytes(raw, "big") | ((0xFFFF << 32) if version == 4 else 0)
        words += [value >> 64, value & ((1 << 64) - 1)]
    return [version, *words]


@pytest.mark.parametrize("name", sorted(TUNNELS))
def test_outer_endpoints_of_a_tunnel_opened(name: str) -> None:
    frame = f.eth(TUNNELS[name])
    inner = words_of(f.ETHERNET, frame, inner=True)
    assert inner[a.OUTER_VERSION :] == outer_words(TUNNELS[name])
    assert inner[: a.OUTER_VERSION] == expected_l2(frame)[: a.OUTER_VERSION]
    outer = words_of(f.ETHERNET, frame, inner=False)
    assert outer[a.OUTER_VERSION :] == [0] * 5  # the key is the outer header itself


def test_a_plain_packet_has_no_outer_endpoints_with_inner_tunnels() -> None:
    assert words_of(f.ETHERNET, f.eth(V4), inner=True)[a.OUTER_VERSION :] == [0] * 5


def test_decoding_without_attributes_carries_none() -> None:
    table = decode(f.frame_batch([(f.ETHERNET, f.eth(V4, labels=[5]))]))
    assert table.attrs.shape == (1, 0)


def _stream(rng: random.Random, n: int) -> PacketTable:
    table = PacketTable.empty(n)
    table.ts_ns[:] = np.cumsum([rng.choice([1, 3, 40]) for _ in range(n)])
    table.version[:] = 4
    table.src_lo[:] = [0xFFFF_0A00_0000 | rng.randrange(4) for _ in range(n)]
    table.sport[:] = [rng.randrange(3) for _ in range(n)]
    table.proto[:] = 6
    table.tcp_flags[:] = [rng.choice([0x10, 0x10, 0x10, 0x11]) for _ in range(n)]
    table.ip_len[:] = [rng.randrange(40, 1500) for _ in range(n)]
    table.attrs = np.array(
        [[rng.randrange(1 << 49) for _ in range(a.ATTRIBUTE_WORDS)] for _ in range(n)], np.uint64
    )
    return table


@pytest.mark.parametrize("seed", range(6))
def test_records_keep_their_first_packets_attributes_as_the_reference_does(seed: int) -> None:
    """Idle, active, FIN and cache-full ends with attributes differing packet by packet."""
    rng = random.Random(seed)
    config = CacheConfig(30e-9, 200e-9, 5, attributes=True)
    fast, reference = FlowCache(config), ReferenceCache(config)
    got, want = [], []
    for _ in range(4):
        packets = _stream(rng, 300)
        got += record_rows(fast.update(packets))
        want += reference.update(packets)
    got += record_rows(fast.flush())
    want += reference.flush()
    assert got == want
    assert all(len(r.attrs) == a.ATTRIBUTE_WORDS for r in got)


def test_adopted_records_keep_their_attributes() -> None:
    config = CacheConfig(1.0, 10.0, 8, attributes=True)
    first = FlowCache(config)
    first.update(_stream(random.Random(9), 20))
    left_open = first.flush().records()
    second = FlowCache(config)
    second.adopt(left_open, int(left_open.last_ns.max()))
    assert record_rows(second.flush().records()) == record_rows(left_open)


@pytest.mark.parametrize("seed", range(6))
def test_key_mac_splits_records_by_mac_as_the_reference_does(seed: int) -> None:
    """--key-mac: a 5-tuple seen with two MAC pairs is two records; otherwise one."""
    rng = random.Random(100 + seed)
    config = CacheConfig(30e-9, 200e-9, 6, key_mac=True)
    assert config.attributes  # the MACs live in the attribute words
    fast, reference = FlowCache(config), ReferenceCache(config)
    got, want = [], []
    for _ in range(4):
        packets = _stream(rng, 300)
        packets.attrs[:, a.SRC_MAC] = [MAC_PRESENT | rng.randrange(2) for _ in range(300)]
        packets.attrs[:, a.DST_MAC] = [MAC_PRESENT | rng.randrange(2) for _ in range(300)]
        got += record_rows(fast.update(packets))
        want += reference.update(packets)
    got += record_rows(fast.flush())
    want += reference.flush()
    assert got == want
    keys = {(r.src_lo, r.sport) for r in got}
    with_macs = {(r.src_lo, r.sport, r.attrs[0], r.attrs[1]) for r in got}
    assert len(with_macs) > len(keys)  # the MACs did split keys
