"""Link-layer table: where the L3 header and its type field sit, per LINKTYPE_ code.

Like softflowd's ``lt[]``: one row per link type, so the decoder finds every
frame's L3 offset with one lookup. ``kind`` says how the L3 protocol is found:
an ethertype-style field (then VLAN tags, PPPoE, MPLS and the rest of
``_ethertype_l3`` may follow), the IP version nibble of the first L3 byte, or
a header of its own parsed by the decode kernel (PPP, 802.11, radiotap and
PPI wrapping another link type, NFLOG's TLVs, Frame Relay's address).
"""

from __future__ import annotations

import numpy as np

UNKNOWN, ETHERTYPE, NIBBLE, PPP, PPP_HDLC, IEEE802_11, RADIOTAP, PPI, NFLOG, FRAME_RELAY = range(10)

# code: (name, kind, offset of the 16-bit type field, L3 offset)
LINK_TYPES: dict[int, tuple[str, int, int, int]] = {
    0: ("NULL", NIBBLE, 0, 4),  # 4-byte host-order address family
    1: ("ETHERNET", ETHERTYPE, 12, 14),
    9: ("PPP", PPP, 0, 0),  # RFC 1661, optionally with RFC 1662's FF 03 in front
    12: ("RAW", NIBBLE, 0, 0),  # DLT_RAW as most systems number it
    50: ("PPP_HDLC", PPP_HDLC, 0, 0),  # RFC 1662 framing, or Cisco HDLC (address 0x0F/0x8F)
    101: ("RAW", NIBBLE, 0, 0),
    104: ("C_HDLC", ETHERTYPE, 2, 4),  # address, control, then an ethertype
    105: ("IEEE802_11", IEEE802_11, 0, 0),
    107: ("FRELAY", FRAME_RELAY, 0, 0),  # Q.922 address, then RFC 2427 NLPIDs or an ethertype
    127: ("IEEE802_11_RADIOTAP", RADIOTAP, 0, 0),
    108: ("LOOP", NIBBLE, 0, 4),  # 4-byte network-order address family
    113: ("LINUX_SLL", ETHERTYPE, 14, 16),
    192: ("PPI", PPI, 0, 0),  # a PPI header naming the link type inside it
    226: ("IPNET", NIBBLE, 0, 24),  # Solaris ipnet: version, family, htype, length, zones
    228: ("IPV4", NIBBLE, 0, 0),
    229: ("IPV6", NIBBLE, 0, 0),
    239: ("NFLOG", NFLOG, 0, 0),
    242: ("IPOIB", ETHERTYPE, 40, 44),  # IP over InfiniBand (RFC 4391): addresses, ethertype
    276: ("LINUX_SLL2", ETHERTYPE, 0, 20),
}

TABLE_SIZE = max(LINK_TYPES) + 1
LT_KIND = np.zeros(TABLE_SIZE, np.uint8)
LT_TYPE_OFFSET = np.zeros(TABLE_SIZE, np.int64)
LT_L3_OFFSET = np.zeros(TABLE_SIZE, np.int64)
LT_VERSION = np.zeros(TABLE_SIZE, np.uint8)  # 228/229 say the IP version; 0: read the nibble
LT_VERSION[228], LT_VERSION[229] = 4, 6
for _code, (_name, _kind, _type_off, _l3_off) in LINK_TYPES.items():
    LT_KIND[_code] = _kind
    LT_TYPE_OFFSET[_code] = _type_off
    LT_L3_OFFSET[_code] = _l3_off


def is_supported(linktype: int) -> bool:
    return linktype in LINK_TYPES


def linktype_name(linktype: int) -> str:
    return LINK_TYPES[linktype][0] if linktype in LINK_TYPES else f"LINKTYPE {linktype}"
