"""Flow attributes beyond the key, taken from a record's first packet (``--fields``).

One uint64 word each, in a wide ``attrs`` column of packet and record tables
(width 0 when no field is asked for, so the default path carries nothing):
the Ethernet source and destination MAC (48 bits), the inner (customer)
VLAN id of a double-tagged frame, the top three MPLS label stack entries as
they stand on the wire (label << 4 | traffic class << 1 | bottom of stack,
24 bits), and with ``--tunnels inner`` the outermost IP header of a
tunnelled packet (its version, 0 when the packet was not tunnelled, and its
address halves, IPv4-mapped as in ``PacketTable``).

A MAC, VLAN or MPLS word has the bit just above its value set when the
packet has one (``present``): 0 means absent, never a label or VLAN 0.
"""

from __future__ import annotations

from enum import StrEnum

from core.errors import ConfigError

(SRC_MAC, DST_MAC, INNER_VLAN, MPLS1, MPLS2, MPLS3,
 OUTER_VERSION, OUTER_SRC_HI, OUTER_SRC_LO, OUTER_DST_HI, OUTER_DST_LO) = range(11)  # fmt: skip
ATTRIBUTE_WORDS = 11
MPLS_WORDS = (MPLS1, MPLS2, MPLS3)
MAC_BITS, VLAN_BITS, MPLS_BITS = 48, 16, 24  # value bits of those words; the next says present


class FieldGroup(StrEnum):
    """What ``--fields`` can add to records, flow files and templates."""

    VLAN = "vlan"  # the inner VLAN id (the outer one is in every record already)
    MAC = "mac"
    MPLS = "mpls"
    TUNNEL = "tunnel"


def parse_fields(text: str) -> frozenset[FieldGroup]:
    """``vlan,mac,mpls,tunnel`` (any subset, any order; "" is none) as field groups."""
    groups: set[FieldGroup] = set()
    for name in filter(None, (part.strip() for part in text.split(","))):
        try:
            groups.add(FieldGroup(name))
        except ValueError:
            known = ",".join(group.value for group in FieldGroup)
            raise ConfigError(f"unknown field {name!r} in --fields (known: {known})") from None
    return frozenset(groups)


def check_fields(groups: frozenset[FieldGroup], inner_tunnels: bool) -> None:
    """ConfigError for a field that could never have a value."""
    if FieldGroup.TUNNEL in groups and not inner_tunnels:
        raise ConfigError(
            "--fields tunnel needs --tunnels inner (outer endpoints of what it opens)"
        )
