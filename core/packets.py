"""Per-batch tables of captured frames and of their decoded header fields."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import numpy.typing as npt

from core.columns import ColumnTable


@dataclass(slots=True)
class FrameBatch:
    """Frames of one read, as a byte buffer plus one row per frame.

    - ``buf``: uint8, the bytes the frames live in (a reused read buffer: copy
      anything that must outlive the next read);
    - ``offset``: int64, start of each frame in ``buf``;
    - ``caplen``: uint32, bytes captured (``offset + caplen <= len(buf)``);
    - ``wirelen``: uint32, length of the frame on the wire (``>= caplen`` in
      sane files, not trusted);
    - ``ts_ns``: int64, capture time, nanoseconds since the Unix epoch;
    - ``linktype``: uint16, the LINKTYPE_ code of each frame;
    - ``ifindex``: uint32, input interface index (pcapng interface id + 1, 0
      when unknown).
    """

    buf: npt.NDArray[np.uint8]
    offset: npt.NDArray[np.int64]
    caplen: npt.NDArray[np.uint32]
    wirelen: npt.NDArray[np.uint32]
    ts_ns: npt.NDArray[np.int64]
    linktype: npt.NDArray[np.uint16]
    ifindex: npt.NDArray[np.uint32]

    def __len__(self) -> int:
        return len(self.offset)

    def take(self, index: npt.NDArray[np.bool_] | npt.NDArray[np.int64]) -> FrameBatch:
        """The selected frames, over the same buffer."""
        return FrameBatch(
            self.buf, self.offset[index], self.caplen[index], self.wirelen[index],
            self.ts_ns[index], self.linktype[index], self.ifindex[index],
        )  # fmt: skip

    def owned(self) -> FrameBatch:
        """The frames copied into a buffer of their own (a read buffer is reused).

        One slice copy of the byte span the frames lie in (record headers
        between them included): no per-byte index arrays.
        """
        if len(self) == 0:
            low = high = 0
        else:
            low = int(self.offset.min())
            high = int((self.offset + self.caplen).max())
        return FrameBatch(
            self.buf[low:high].copy(), self.offset - low, self.caplen.copy(),
            self.wirelen.copy(), self.ts_ns.copy(), self.linktype.copy(), self.ifindex.copy(),
        )  # fmt: skip


@dataclass(slots=True)
class PacketTable(ColumnTable):
    """Decoded header fields, one row per captured frame (decodable or not).

    Addresses are 16 bytes held as two big-endian uint64 halves (``*_hi`` =
    bytes 0-7, ``*_lo`` = bytes 8-15); IPv4 is IPv4-mapped (``::ffff:a.b.c.d``),
    so an IPv4 address is ``src_lo & 0xFFFFFFFF``.

    - ``ts_ns`` int64 ns since the epoch;
    - ``version`` uint8: 4 or 6, 0 when the frame was not decoded (then every
      key field is 0 and ``reason`` says why);
    - ``sport``/``dport`` uint16: TCP/UDP/SCTP ports; ICMP(v6): 0 and
      type*256+code; 0 for non-first fragments and other protocols;
    - ``proto`` uint8 IP protocol (IPv6: the last next-header of the chain);
    - ``tos`` uint8 IPv4 ToS / IPv6 traffic class;
    - ``tcp_flags`` uint8 (0 when not TCP or not captured);
    - ``ip_len`` uint32 octets at the IP layer (IPv4 total length, IPv6
      40 + payload length);
    - ``ifindex`` uint32; ``vlan`` uint16 outermost 802.1Q/ad VLAN id, 0 if none;
    - ``reason`` uint8 ``DecodeReason``;
    - ``attrs`` uint64, rows of ``core.attributes`` words (0 wide unless asked for).
    """

    ts_ns: npt.NDArray[np.int64]
    version: npt.NDArray[np.uint8]
    src_hi: npt.NDArray[np.uint64]
    src_lo: npt.NDArray[np.uint64]
    dst_hi: npt.NDArray[np.uint64]
    dst_lo: npt.NDArray[np.uint64]
    sport: npt.NDArray[np.uint16]
    dport: npt.NDArray[np.uint16]
    proto: npt.NDArray[np.uint8]
    tos: npt.NDArray[np.uint8]
    tcp_flags: npt.NDArray[np.uint8]
    ip_len: npt.NDArray[np.uint32]
    ifindex: npt.NDArray[np.uint32]
    vlan: npt.NDArray[np.uint16]
    reason: npt.NDArray[np.uint8]
    attrs: npt.NDArray[np.uint64]

    WIDE: ClassVar[frozenset[str]] = frozenset({"attrs"})
    DTYPES: ClassVar[dict[str, type]] = {
        "ts_ns": np.int64,
        "version": np.uint8,
        "src_hi": np.uint64,
        "src_lo": np.uint64,
        "dst_hi": np.uint64,
        "dst_lo": np.uint64,
        "sport": np.uint16,
        "dport": np.uint16,
        "proto": np.uint8,
        "tos": np.uint8,
        "tcp_flags": np.uint8,
        "ip_len": np.uint32,
        "ifindex": np.uint32,
        "vlan": np.uint16,
        "reason": np.uint8,
        "attrs": np.uint64,
    }
