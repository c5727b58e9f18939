"""Why a frame was not (fully) decoded; counted per batch, never raised."""

from enum import IntEnum


class DecodeReason(IntEnum):
    """Per-frame decode outcome. ``OK`` and ``L4_TRUNCATED`` frames are metered."""

    OK = 0
    L4_TRUNCATED = 1  # IP header complete, ports/flags cut off: metered with ports 0
    # (also an IPv6 extension chain cut short: the protocol is the header it stops at)
    UNKNOWN_LINKTYPE = 2
    L2_TRUNCATED = 3  # frame ends inside the link header or its VLAN/MPLS tags
    NOT_IP = 4  # ARP, LLDP, STP, ...
    IP_TRUNCATED = 5  # frame ends inside the IPv4 header or IPv6's fixed 40 bytes
    IP_BAD_HEADER = 6  # IPv4 IHL < 5, total length below the header, version mismatch

    @property
    def metered(self) -> bool:
        return self in (DecodeReason.OK, DecodeReason.L4_TRUNCATED)
