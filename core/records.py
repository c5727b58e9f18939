"""Flow records leaving the cache, and why they ended (IPFIX flowEndReason)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from core.columns import ColumnTable


class EndReason(IntEnum):
    """Why a record ended; the values are IPFIX flowEndReason (IE 136)."""

    IDLE = 1
    ACTIVE = 2
    END_OF_FLOW = 3
    FORCED = 4
    CACHE_FULL = 5


@dataclass(slots=True)
class RecordTable(ColumnTable):
    """Ended flow records, one row each.

    Key columns are as in ``PacketTable`` (``version``, address halves, ports,
    ``proto``, ``tos``, ``ifindex``, ``vlan``). ``first_ns <= last_ns`` (ns
    since the epoch), ``packets >= 1``, ``octets`` is the sum of IP-layer
    lengths, ``tcp_flags`` the OR over the record's packets, ``end_reason`` an
    ``EndReason`` value. ``vlan`` is the first packet's VLAN id unless VLAN is
    part of the key; so are ``attrs`` (``core.attributes`` words, 0 wide unless
    asked for).
    """

    version: npt.NDArray[np.uint8]
    src_hi: npt.NDArray[np.uint64]
    src_lo: npt.NDArray[np.uint64]
    dst_hi: npt.NDArray[np.uint64]
    dst_lo: npt.NDArray[np.uint64]
    sport: npt.NDArray[np.uint16]
    dport: npt.NDArray[np.uint16]
    proto: npt.NDArray[np.uint8]
    tos: npt.NDArray[np.uint8]
    ifindex: npt.NDArray[np.uint32]
    vlan: npt.NDArray[np.uint16]
    first_ns: npt.NDArray[np.int64]
    last_ns: npt.NDArray[np.int64]
    packets: npt.NDArray[np.uint64]
    octets: npt.NDArray[np.uint64]
    tcp_flags: npt.NDArray[np.uint8]
    end_reason: npt.NDArray[np.uint8]
    attrs: npt.NDArray[np.uint64]

    WIDE: ClassVar[frozenset[str]] = frozenset({"attrs"})
    DTYPES: ClassVar[dict[str, type]] = {
        "version": np.uint8,
        "src_hi": np.uint64,
        "src_lo": np.uint64,
        "dst_hi": np.uint64,
        "dst_lo": np.uint64,
        "sport": np.uint16,
        "dport": np.uint16,
        "proto": np.uint8,
        "tos": np.uint8,
        "ifindex": np.uint32,
        "vlan": np.uint16,
        "first_ns": np.int64,
        "last_ns": np.int64,
        "packets": np.uint64,
        "octets": np.uint64,
        "tcp_flags": np.uint8,
        "end_reason": np.uint8,
        "attrs": np.uint64,
    }


@dataclass(slots=True)
class EndedRecords(RecordTable):
    """Records as they leave a cache, each with the export clock it ended at.

    ``export_ns`` is the cache clock when the record ended, except for an idle
    record: the moment it went idle (``last_ns`` + inactive + 1 ns) if the
    clock had passed it. So ``export_ns - last_ns`` never exceeds the inactive
    timeout, whatever gap the input has, and a record alone says when to send it.
    """

    export_ns: npt.NDArray[np.int64]

    DTYPES: ClassVar[dict[str, type]] = {**RecordTable.DTYPES, "export_ns": np.int64}

    def records(self) -> RecordTable:
        """The records without their export clocks."""
        return RecordTable(**{name: getattr(self, name) for name in RecordTable.DTYPES})
