"""Fuzz frames for the decoder: random bytes, and valid dpkt-built frames then damaged.

Every link type of the table (probe/decode/linktypes.py, mirrored in tests.frames) is
drawn, and codes the table does not hold.
"""

from __future__ import annotations

import numpy as np

from core.packets import FrameBatch
from tests import tunnels
from tests.frames import (
    ETH_IP,
    ETH_IP6,
    ETH_MPLS,
    ETH_MPLS_MCAST,
    ETHERNET,
    LINK_TYPES,
    TAG_TYPES,
    Ext,
    Tag,
    ah,
    dest_opts,
    eth,
    fragment,
    hop_by_hop,
    icmp,
    icmp6,
    ipv4,
    ipv6,
    routing,
    sctp,
    tcp,
    udp,
    wrap,
)
from tests.fuzz.choices import Choices, pick
from tests.fuzz.decode_checks import UNSUPPORTED_LINK_TYPES

# 16-bit values that steer a decoder: ethertypes, tags, MPLS, lengths at the edges.
FIELD_VALUES = (
    0,
    1,
    19,
    20,
    39,
    40,
    0xFFFF,
    0x0800,
    0x86DD,
    0x8100,
    0x88A8,
    0x9100,
    0x8847,
    0x88E5,
    0x894F,
    0xD28B,
    0x4500,
    0x6000,
    0x2C00,
    0x0006,
)
Frame = tuple[int, bytes, int, int]  # linktype, bytes, caplen, wirelen


def transport(c: Choices, version: int) -> tuple[object, int | None]:
    kind = c.integer(0, 4)
    port = c.integer(0, 0xFFFF)
    if kind == 0:
        return tcp(port, c.integer(0, 0xFFFF), c.integer(0, 0x1FF), c.binary(8)), None
    if kind == 1:
        return udp(port, c.integer(0, 0xFFFF), c.binary(8)), None
    if kind == 2:
        return (icmp if version == 4 else icmp6)(c.integer(0, 255), c.integer(0, 255)), None
    if kind == 3:
        return sctp(port, c.integer(0, 0xFFFF)), None
    return c.binary(16), c.integer(0, 255)


def extension(c: Choices) -> Ext:
    kind = c.integer(0, 4)
    if kind == 0:
        return hop_by_hop(c.integer(0, 3))
    if kind == 1:
        return dest_opts(c.integer(0, 3))
    if kind == 2:
        return routing(c.integer(0, 3))
    if kind == 3:
        return ah(c.integer(1, 4))
    return fragment(c.integer(0, 3) * c.integer(0, 2000), more=bool(c.integer(0, 1)))


def ip_packet(c: Choices) -> bytes:
    version = pick(c, (4, 6))
    payload, proto = transport(c, version)
    if version == 4:
        return ipv4(
            payload, proto, tos=c.integer(0, 255), options=b"\x01" * 4 * c.integer(0, 10),
            frag_units=c.integer(0, 1) * c.integer(0, 8191), more_fragments=bool(c.integer(0, 1)),
        )  # fmt: skip
    ext = [extension(c) for _ in range(c.integer(0, 4))]
    return ipv6(payload, proto, ext=ext, traffic_class=c.integer(0, 255))


def tunneled(c: Choices, l3: bytes) -> bytes:
    """``l3`` inside one of the tunnels ``--tunnels inner`` opens, or as it is."""
    kind = c.integer(0, 8)
    if kind == 0:
        return tunnels.ip_in_ip(l3, pick(c, (4, 6)))
    if kind == 1:
        return tunnels.gre(l3, ETH_IP if l3[0] >> 4 == 4 else ETH_IP6, seq=c.integer(0, 1) or None)
    if kind == 2:
        return tunnels.erspan3(eth(l3), bool(c.integer(0, 1)))
    if kind == 3:
        return tunnels.vxlan(eth(l3))
    if kind == 4:
        return tunnels.geneve(eth(l3), tunnels.ETH_TEB, c.integer(0, 3))
    if kind == 5:
        return tunnels.gtpu(l3, bool(c.integer(0, 1)))
    if kind == 6 and l3[0] >> 4 == 6:
        return tunnels.teredo(l3, bool(c.integer(0, 1)))
    return l3


def link_frame(c: Choices, linktype: int, l3: bytes) -> bytes:
    if linktype == ETHERNET:
        tags = [Tag(c.integer(0, 4095), pick(c, TAG_TYPES)) for _ in range(c.integer(0, 3))]
        labels = [c.integer(0, 2**20 - 1) for _ in range(c.integer(0, 1) * c.integer(0, 3))]
        return eth(l3, tags=tags, labels=labels, mpls_type=pick(c, (ETH_MPLS, ETH_MPLS_MCAST)))
    if linktype in LINK_TYPES:
        return wrap(linktype, l3)
    return l3


def damage(c: Choices, frame: bytes) -> bytes:
    """A few byte flips, 16-bit field overwrites, cuts or insertions."""
    data = bytearray(frame)
    for _ in range(c.integer(0, 4)):
        op = c.integer(0, 3)
        at = c.integer(0, max(len(data) - 1, 0))
        if op == 0 and data:
            data[at] ^= c.integer(1, 255)
        elif op == 1 and len(data) >= 2:
            at = min(at, len(data) - 2)
            data[at : at + 2] = pick(c, FIELD_VALUES).to_bytes(2, "big")
        elif op == 2:
            del data[at : at + c.integer(1, 8)]
        else:
            data[at:at] = c.binary(8)
    return bytes(data)


def fuzz_frame(c: Choices) -> Frame:
    """Random bytes behind any link type code, or a valid frame damaged; cut anywhere."""
    if c.integer(0, 7):
        linktype = pick(c, LINK_TYPES)
    else:
        linktype = pick(c, UNSUPPORTED_LINK_TYPES) if c.integer(0, 1) else c.integer(0, 0xFFFF)
    if c.integer(0, 2) == 0:
        data = c.binary(128)
    else:
        data = link_frame(c, linktype, tunneled(c, ip_packet(c)))
        if c.integer(0, 1):
            data = damage(c, data)
    caplen = len(data) if c.integer(0, 1) else c.integer(0, len(data))
    wirelen = len(data) if c.integer(0, 3) else c.integer(0, 2**32 - 1)
    return linktype, data, caplen, wirelen


def batch_of(frames: list[Frame], c: Choices) -> FrameBatch:
    """Frames back to back, the bytes past each ``caplen`` left in the buffer as a snaplen would."""
    offsets = np.cumsum([0] + [len(data) for _, data, _, _ in frames[:-1]], dtype=np.int64)
    n = len(frames)
    return FrameBatch(
        buf=np.frombuffer(b"".join(data for _, data, _, _ in frames) + b"\0", np.uint8).copy(),
        offset=offsets[:n],
        caplen=np.array([cut for _, _, cut, _ in frames], np.uint32),
        wirelen=np.array([wire for *_, wire in frames], np.uint32),
        ts_ns=np.array([c.integer(-(2**63), 2**63 - 1) for _ in frames], np.int64),
        linktype=np.array([lt for lt, *_ in frames], np.uint16),
        ifindex=np.array([c.integer(0, 2**32 - 1) for _ in frames], np.uint32),
    )
