"""Ethernet encapsulations and tunnels, cut at every byte, against independent expectations.

Ethernet-borne headers (PPPoE behind QinQ, FabricPath, 802.1ah) are taken
apart by ``tests.frames.dissect``. For tunnels the expectation is the inner IP
packet on its own: with ``inner`` the decoder must give exactly the row the
bare inner packet gives as a raw IP frame (the outer VLAN kept), and where a
cut leaves the inner header incomplete, the row of the outer header, which
is also what ``outer`` gives for every cut. Tunnel headers are built byte by
byte from their specifications (cited per builder). Every frame is also
decoded by the interpreted kernel over a buffer ending at the cut, so a read
past the captured bytes raises.
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np
import pytest

from core.packets import FrameBatch
from probe.decode.decoder import decode
from probe.decode.reasons import DecodeReason
from tests import frames as f
from tests.fuzz.interpreted import decode_frames_py
from tests.tunnels import (
    ETH_ERSPAN_2,
    ETH_TEB,
    OUTER,
    V4_TCP,
    V6_UDP,
    erspan2,
    erspan3,
    geneve,
    gre,
    gtpu,
    ip_in_ip,
    pptp_gre,
    teredo,
    udp_tunnel,
    vxlan,
)

Row = dict[str, int]


def rows(frames: FrameBatch, inner: bool) -> list[Row]:
    table = decode(frames, inner)
    return [{n: int(getattr(table, n)[i]) for n in f.ROW_FIELDS} for i in range(len(table))]


def interpreted_row(linktype: int, data: bytes, inner: bool) -> Row:
    """The interpreted kernel on a buffer holding exactly ``data``."""
    import probe.decode.decoder as decoder

    compiled = decoder.decode_frames
    decoder.decode_frames = decode_frames_py  # type: ignore[assignment]
    try:
        batch = f.frame_batch([(linktype, data)], keep_uncaptured=False)
        return rows(batch, inner)[0]
    finally:
        decoder.decode_frames = compiled


def cuts(linktype: int, frame: bytes, inner: bool) -> list[Row]:
    batch = f.frame_batch([(linktype, frame)] * (len(frame) + 1), caplens=range(len(frame) + 1))
    return rows(batch, inner)


TUNNELS: dict[str, tuple[Callable[[], bytes], bytes]] = {
    "ipip": (lambda: ip_in_ip(V4_TCP, 4), V4_TCP),
    "6in4": (lambda: ip_in_ip(V6_UDP, 4), V6_UDP),
    "4in6": (lambda: ip_in_ip(V4_TCP, 6), V4_TCP),
    "6in6": (lambda: ip_in_ip(V6_UDP, 6), V6_UDP),
    "gre-ipv4": (lambda: gre(V4_TCP, f.ETH_IP), V4_TCP),
    "gre-key-seq-ipv6": (lambda: gre(V6_UDP, f.ETH_IP6, key=9, seq=3), V6_UDP),
    "nvgre-ethernet": (lambda: gre(f.eth(V4_TCP, tags=[f.Tag(30)]), ETH_TEB, key=5 << 8), V4_TCP),
    "pptp-ppp": (lambda: pptp_gre(f.ppp(V4_TCP)), V4_TCP),
    "erspan2": (lambda: erspan2(f.eth(V6_UDP)), V6_UDP),
    "erspan1": (lambda: gre(f.eth(V4_TCP), ETH_ERSPAN_2), V4_TCP),
    "erspan3": (lambda: erspan3(f.eth(V4_TCP), subheader=False), V4_TCP),
    "erspan3-subheader": (lambda: erspan3(f.eth(V6_UDP, tags=[f.Tag(5)]), True), V6_UDP),
    "vxlan": (lambda: vxlan(f.eth(V4_TCP)), V4_TCP),
    "geneve-ethernet": (lambda: geneve(f.eth(V6_UDP), ETH_TEB, option_words=2), V6_UDP),
    "geneve-ip": (lambda: geneve(V4_TCP, f.ETH_IP), V4_TCP),
    "gtpu": (lambda: gtpu(V4_TCP, extension=False), V4_TCP),
    "gtpu-extension": (lambda: gtpu(V6_UDP, extension=True), V6_UDP),
    "teredo": (lambda: teredo(V6_UDP, origin=False), V6_UDP),
    "teredo-origin": (lambda: teredo(V6_UDP, origin=True), V6_UDP),
    "vxlan-in-gre": (lambda: gre(vxlan(f.eth(V4_TCP)), f.ETH_IP), V4_TCP),
}
# Headers between the outer and the innermost: a cut inside the inner one leaves these.
BETWEEN = {"vxlan-in-gre": [vxlan(f.eth(V4_TCP))]}


def inner_start(frame: bytes, inner: bytes) -> int:
    at = frame.rfind(inner)
    assert at > 0
    return at


@pytest.mark.parametrize("name", list(TUNNELS))
@pytest.mark.parametrize("tags", [(), (f.Tag(100, f.ETH_8021AD), f.Tag(200))], ids=["", "qinq"])
def test_inner_is_the_bare_inner_packet_outer_is_the_outer_header(
    name: str, tags: tuple[f.Tag, ...]
) -> None:
    build, inner_ip = TUNNELS[name]
    outer_ip = build()
    frame = f.eth(outer_ip, tags=tags)
    start = inner_start(frame, inner_ip)
    vlan = tags[0].vid if tags else 0
    layers = [inner_ip, *reversed(BETWEEN.get(name, []))]  # innermost first
    outer_rows, inner_rows = cuts(f.ETHERNET, frame, False), cuts(f.ETHERNET, frame, True)
    for cut in range(len(frame) + 1):
        outer = f.expected_row(f.ETHERNET, frame, cut)
        want_inner = outer
        for packet in layers:  # the deepest header the cut leaves whole
            at = inner_start(frame, packet)
            alone = f.expected_row(f.RAW, packet, cut - at) if cut >= at else None
            if alone is not None and DecodeReason(alone["reason"]).metered:
                want_inner = {**alone, "vlan": vlan}
                break
        assert outer_rows[cut] == outer, f"{name} outer, cut {cut}"
        assert inner_rows[cut] == want_inner, f"{name} inner, cut {cut}"
    assert inner_rows[-1] == {**f.expected_row(f.RAW, inner_ip), "vlan": vlan}
    for cut in (len(frame), start + 1, start + 21, start + 41):
        data = frame[:cut]
        for inner in (False, True):  # the interpreted kernel raises on a read past the end
            assert interpreted_row(f.ETHERNET, data, inner) == cuts(f.ETHERNET, data, inner)[-1]


def test_a_fragmented_outer_packet_is_not_opened() -> None:
    """A fragment carries part of the inner packet: it is counted on the outer header."""
    outer = f.ipv4(V4_TCP, proto=4, more_fragments=True, **OUTER)
    frame = f.eth(outer)
    assert cuts(f.ETHERNET, frame, True)[-1] == f.expected_row(f.ETHERNET, frame)


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(lambda: gre(V4_TCP, 0x1234), id="gre-unknown-protocol"),
        pytest.param(
            lambda: f.ipv4(
                struct.pack(">HH", 0x4000, 0x0800) + bytes(8) + V4_TCP, proto=f.GRE, **OUTER
            ),
            id="gre-sre",
        ),
        pytest.param(lambda: udp_tunnel(4789, bytes(8) + f.eth(V4_TCP)), id="vxlan-no-i-flag"),
        pytest.param(lambda: udp_tunnel(2152, bytes(8) + V4_TCP), id="gtp-not-gpdu"),
        pytest.param(lambda: udp_tunnel(3544, V4_TCP), id="teredo-not-ipv6"),
    ],
)
def test_what_is_not_a_tunnel_stays_on_the_outer_header(payload: Callable[[], bytes]) -> None:
    frame = f.eth(payload())
    assert cuts(f.ETHERNET, frame, True)[-1] == f.expected_row(f.ETHERNET, frame)


# --- link layers with headers of their own, and what Ethernet carries -------------------------

ENCAPSULATED: dict[str, tuple[int, bytes]] = {
    "pppoe-qinq-v4": (
        f.ETHERNET,
        f.eth(f.pppoe(V4_TCP), f.ETH_PPPOE, tags=[f.Tag(10, f.ETH_8021AD), f.Tag(20)]),
    ),
    "pppoe-v6": (f.ETHERNET, f.eth(f.pppoe(V6_UDP), f.ETH_PPPOE)),
    "pppoe-lcp": (f.ETHERNET, f.eth(f.pppoe(b"\x01\x01\x00\x04", protocol=f.PPP_LCP), f.ETH_PPPOE)),
    "fabricpath": (  # FTag and TTL, then the classic frame: MACs, a tag, IPv4
        f.ETHERNET,
        f.eth(
            b"\x00\x10" + f.MAC_DST + f.MAC_SRC + b"\x81\x00\x00\x07\x08\x00" + V4_TCP,
            f.ETH_FABRICPATH,
        ),
    ),
    "pbb": (
        f.ETHERNET,
        f.eth(
            struct.pack(">I", 0x00ABCDEF) + f.MAC_DST + f.MAC_SRC + b"\x86\xdd" + V6_UDP,
            f.ETH_PBB,
            tags=[f.Tag(300, f.ETH_8021AD)],
        ),
    ),
    "macsec-sci-v4": (f.ETHERNET, f.eth(f.macsec(V4_TCP), f.ETH_MACSEC)),
    "macsec-no-sci-tagged-v6": (
        f.ETHERNET,
        f.eth(f.macsec(V6_UDP, sci=False), f.ETH_MACSEC, tags=[f.Tag(77)]),
    ),
    "macsec-over-qinq-inside": (  # a tag inside the secured payload
        f.ETHERNET,
        f.eth(f.macsec(b"\x00\x05\x08\x00" + V4_TCP, ethertype=f.ETH_8021Q), f.ETH_MACSEC),
    ),
    "macsec-encrypted": (f.ETHERNET, f.eth(f.macsec(V4_TCP, encrypted=True), f.ETH_MACSEC)),
    "nsh-v4": (f.ETHERNET, f.eth(f.nsh(V4_TCP, 1), f.ETH_NSH)),
    "nsh-v6-md2": (f.ETHERNET, f.eth(f.nsh(V6_UDP, 2, context_words=0), f.ETH_NSH)),
    "nsh-ethernet": (f.ETHERNET, f.eth(f.nsh(f.eth(V4_TCP, tags=[f.Tag(3)]), 3), f.ETH_NSH)),
    "nsh-in-nsh-mpls": (
        f.ETHERNET,
        f.eth(f.nsh(f.nsh(b"\x00\x01\x01\x40" + V6_UDP, 5, 1), 4), f.ETH_NSH),
    ),
    "nsh-unknown-next": (f.ETHERNET, f.eth(f.nsh(V4_TCP, 0x41), f.ETH_NSH)),
    "arista-64": (f.ETHERNET, f.eth(f.arista(V4_TCP), f.ETH_ARISTA)),
    "arista-48-tagged": (
        f.ETHERNET,
        f.eth(f.arista(V6_UDP, wide=False), f.ETH_ARISTA, tags=[f.Tag(8)]),
    ),
    "fr-cisco-v4": (f.FRAME_RELAY, f.frame_relay(V4_TCP, "cisco", dlci=17)),
    "fr-padded-nlpid-v6": (f.FRAME_RELAY, f.frame_relay(V6_UDP, "padded", dlci=1000)),
    "fr-snap-v4": (f.FRAME_RELAY, f.frame_relay(V4_TCP, "snap")),
    "fr-cisco-tagged": (
        f.FRAME_RELAY,
        f.frame_relay(b"\x00\x2a\x86\xdd" + V6_UDP, "cisco", ethertype=f.ETH_8021Q),
    ),
    "fr-lmi": (f.FRAME_RELAY, b"\x00\x01\x03\x08\x00\x75\x95\x01\x01\x01"),  # Q.933 on DLCI 0
    "ppp-no-hdlc": (f.PPP, f.ppp(V6_UDP, hdlc=False)),
    "ppp-compressed": (f.PPP, f.ppp(V4_TCP, compressed=True)),
    "ppp-lcp": (f.PPP, f.ppp(b"\x01\x01\x00\x04", protocol=f.PPP_LCP)),
    "ppp-hdlc-cisco": (f.PPP_HDLC, f.chdlc(V4_TCP)),
    "chdlc-broadcast-v6": (f.C_HDLC, f.chdlc(V6_UDP, broadcast=True)),
    "chdlc-mpls": (f.C_HDLC, f.chdlc(b"\x00\x01\x01\x40" + V4_TCP, ethertype=f.ETH_MPLS)),
    "chdlc-slarp": (f.C_HDLC, f.chdlc(bytes(20), ethertype=0x8035)),
    "wifi-qos": (f.IEEE802_11, f.ieee802_11(V4_TCP, qos=True)),
    "wifi-four-addresses": (f.IEEE802_11, f.ieee802_11(V6_UDP, four_addresses=True)),
    "radiotap": (f.RADIOTAP, f.radiotap(f.ieee802_11(V6_UDP))),
    "ppi-wifi": (f.PPI, f.ppi(f.IEEE802_11, f.ieee802_11(V4_TCP, qos=True))),
    "nflog-v6": (f.NFLOG, f.nflog(V6_UDP)),
    # RFC 4385 control word (first nibble 0) and an RFC 4448 Ethernet pseudowire, tagged inside.
    "mpls-pw-ethernet": (
        f.ETHERNET,
        f.eth(bytes(4) + f.eth(V4_TCP, tags=[f.Tag(9)]), labels=[16, 17]),
    ),
    "mpls-pw-in-pw": (
        f.ETHERNET,
        f.eth(bytes(4) + f.eth(bytes(4) + f.eth(V6_UDP), labels=[5]), labels=[16]),
    ),
}


UNREADABLE = {"macsec-encrypted", "nsh-unknown-next"}  # IP bytes inside, but not to be read


@pytest.mark.parametrize("name", list(ENCAPSULATED))
def test_every_cut_of_each_encapsulation(name: str) -> None:
    linktype, frame = ENCAPSULATED[name]
    got = cuts(linktype, frame, False)
    want = [f.expected_row(linktype, frame, cut) for cut in range(len(frame) + 1)]
    bad = [cut for cut in range(len(frame) + 1) if got[cut] != want[cut]]
    assert not bad, f"{name}: first bad cut {bad[0]}: {got[bad[0]]} != {want[bad[0]]}"
    for cut in range(len(frame) + 1):
        assert interpreted_row(linktype, frame[:cut], False) == got[cut], f"{name} cut {cut}"


def test_the_encapsulated_ip_is_the_bare_packet() -> None:
    """Fields equal those of the IP packet alone (VLAN aside), for each IP case."""
    for name, (linktype, frame) in ENCAPSULATED.items():
        row = cuts(linktype, frame, False)[-1]
        packet = V4_TCP if V4_TCP in frame else V6_UDP if V6_UDP in frame else None
        if packet is None or name in UNREADABLE:
            assert row["reason"] == DecodeReason.NOT_IP, name
            continue
        assert {**row, "vlan": 0} == f.expected_row(f.RAW, packet), name


def test_unknown_inner_link_type_of_ppi_is_unknown() -> None:
    frame = f.ppi(147, f.eth(V4_TCP))
    assert cuts(f.PPI, frame, False)[-1]["reason"] == DecodeReason.UNKNOWN_LINKTYPE


def test_interpreted_helper_really_is_interpreted() -> None:
    """A frame whose claimed length passes its buffer raises in the interpreted kernel."""
    batch = f.frame_batch([(f.ETHERNET, f.eth(V4_TCP))])
    short = FrameBatch(batch.buf[:20].copy(), batch.offset, batch.caplen, batch.wirelen,
                       batch.ts_ns, batch.linktype, batch.ifindex)  # fmt: skip
    import probe.decode.decoder as decoder

    compiled = decoder.decode_frames
    decoder.decode_frames = decode_frames_py  # type: ignore[assignment]
    try:
        with pytest.raises(IndexError):
            decode(short)
    finally:
        decoder.decode_frames = compiled
    assert np.all(batch.caplen > 20)
