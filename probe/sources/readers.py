"""Capture file readers: classic pcap and pcapng, walked in compiled kernels.

A reader yields ``FrameBatch``es until the input ends. A damaged record stops
it with an ``InputError`` naming the file and byte offset, raised only after
every frame before the damage has been yielded.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from core.errors import InputError
from core.packets import FrameBatch
from probe.decode.linktypes import is_supported, linktype_name
from probe.sources import kernel as walk
from probe.sources.chunked import ChunkedInput
from probe.sources.mapped import MappedInput

PCAP_MAGIC_US, PCAP_MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BYTE_ORDER_MAGIC = 0x1A2B3C4D
MAX_PCAP_CAPLEN = 262_144  # libpcap's MAXIMUM_SNAPLEN: no real capture has longer records
MAX_PCAPNG_BLOCK = 16 << 20  # libpcap's limit on one pcapng block
DEFAULT_BATCH_FRAMES = 1 << 16
SHB_BYTES = b"\x0a\x0d\x0d\x0a"
BYTE_ORDER_BYTES = {b"\x4d\x3c\x2b\x1a": "<", b"\x1a\x2b\x3c\x4d": ">"}
UNKNOWN_LINKTYPE = 0xFFFF  # not in the link table: such frames are counted, not decoded
MAX_TSRESOL_UNITS = 10**18  # finer if_tsresol units would not fit a 64-bit timestamp's second
MAX_TSOFFSET_S = 1 << 32  # if_tsoffset beyond ±136 years cannot be a capture's clock offset

CaptureBytes = ChunkedInput | MappedInput


@dataclass(slots=True)
class Scratch:
    """Per-frame output arrays the walkers fill, reused from batch to batch."""

    offset: npt.NDArray[np.int64]
    caplen: npt.NDArray[np.uint32]
    wirelen: npt.NDArray[np.uint32]
    ts: npt.NDArray[np.int64]
    ts_raw: npt.NDArray[np.uint64]
    iface: npt.NDArray[np.uint32]

    @classmethod
    def allocate(cls, frames: int) -> Scratch:
        return cls(
            np.empty(frames, np.int64),
            np.empty(frames, np.uint32),
            np.empty(frames, np.uint32),
            np.empty(frames, np.int64),
            np.empty(frames, np.uint64),
            np.empty(frames, np.uint32),
        )


class CaptureReader:
    """Common state: the chunked input, the name for messages, the batch size."""

    def __init__(self, source: CaptureBytes, name: str, batch_frames: int) -> None:
        self.source = source
        self.name = name
        self.scratch = Scratch.allocate(batch_frames)

    def batches(self) -> Iterator[FrameBatch]:
        raise NotImplementedError

    def _damaged(self, pos: int, what: str) -> InputError:
        return InputError(f"{self.name}: {what} at byte offset {self.source.file_offset(pos)}")

    def _refill(self, pos: int, needed: int) -> bool:
        """Read more so the record at ``pos`` can be complete; False at end of input."""
        self.source.start = pos
        return self.source.fill(needed)


class PcapReader(CaptureReader):
    """Classic libpcap files: µs or ns magic, either byte order."""

    def __init__(self, source: CaptureBytes, name: str, batch_frames: int) -> None:
        super().__init__(source, name, batch_frames)
        header = source.take(24)
        if header is None:
            raise InputError(f"{name}: truncated pcap file header")
        magic_le = struct.unpack_from("<I", header)[0]
        self.big_endian = magic_le not in (PCAP_MAGIC_US, PCAP_MAGIC_NS)
        order = ">" if self.big_endian else "<"
        magic, _major, _minor, _zone, _sigfigs, self.snaplen, link = struct.unpack(
            order + "IHHiIII", header
        )
        self.frac_ns = 1 if magic == PCAP_MAGIC_NS else 1000
        self.linktype = link & 0xFFFF  # the upper bits carry FCS information
        if not is_supported(self.linktype):
            raise InputError(f"{name}: unsupported link type {linktype_name(self.linktype)}")

    def batches(self) -> Iterator[FrameBatch]:
        src, out = self.source, self.scratch
        pos = src.start
        while True:
            n, pos, status = walk.walk_pcap(
                src.buf, pos, src.end, self.big_endian, self.frac_ns, MAX_PCAP_CAPLEN,
                out.offset, out.caplen, out.wirelen, out.ts,
            )  # fmt: skip
            if n:
                yield FrameBatch(
                    src.buf, out.offset[:n], out.caplen[:n], out.wirelen[:n], out.ts[:n],
                    np.full(n, self.linktype, np.uint16), np.zeros(n, np.uint32),
                )  # fmt: skip
                src.consumed(pos)
            if status == walk.BAD_RECORD:
                caplen = int(
                    src.buf[pos + 8 : pos + 12].view(">u4" if self.big_endian else "<u4")[0]
                )
                raise self._damaged(pos, f"impossible record length {caplen}")
            if status == walk.NEED_MORE:
                needed = self._needed(pos)
                if not self._refill(pos, needed):
                    if src.unread:
                        raise self._damaged(
                            src.start, f"truncated last record ({src.unread} of {needed} bytes)"
                        )
                    return
                pos = src.start

    def _needed(self, pos: int) -> int:
        """Bytes of the record at ``pos``: its header, plus its data once the header is in."""
        src = self.source
        if src.end - pos < walk.PCAP_RECORD_HEADER:
            return walk.PCAP_RECORD_HEADER
        fmt = ">u4" if self.big_endian else "<u4"
        return walk.PCAP_RECORD_HEADER + int(src.buf[pos + 8 : pos + 12].view(fmt)[0])


@dataclass(slots=True)
class _Interface:
    linktype: int
    snaplen: int
    units_per_s: int  # if_tsresol
    offset_s: int  # if_tsoffset


class PcapngReader(CaptureReader):
    """pcapng: several sections and interfaces, per-interface link type and time resolution."""

    def __init__(self, source: CaptureBytes, name: str, batch_frames: int) -> None:
        super().__init__(source, name, batch_frames)
        self.big_endian = False
        self.interfaces: list[_Interface] = []
        self.last_ts_ns = 0  # simple packet blocks carry no time: they take the previous one's

    def batches(self) -> Iterator[FrameBatch]:
        src, out = self.source, self.scratch
        pos = src.start
        while True:
            snaplens = np.array([i.snaplen for i in self.interfaces[:1]], np.int64)
            n, pos, status = walk.walk_pcapng(
                src.buf, pos, src.end, self.big_endian, MAX_PCAPNG_BLOCK, snaplens,
                out.offset, out.caplen, out.wirelen, out.ts_raw, out.iface,
            )  # fmt: skip
            if n:
                yield self._frames(n)
                src.consumed(pos)
            if status == walk.BAD_RECORD:
                raise self._damaged(pos, "damaged pcapng block")
            if status == walk.CONTROL_BLOCK:
                pos = self._control_block(pos)
            elif status == walk.NEED_MORE:
                needed = self._needed(pos)
                if not self._refill(pos, needed):
                    if src.unread:
                        raise self._damaged(
                            src.start, f"truncated last block ({src.unread} of {needed} bytes)"
                        )
                    return
                pos = src.start

    def _needed(self, pos: int) -> int:
        """Length of the block at ``pos`` (12 until its header is in; a section header
        carries its own byte order; one with a bad byte-order magic counts as 12 so
        that parsing it reports the magic)."""
        src = self.source
        if src.end - pos < 12:
            return 12
        head = src.buf[pos : pos + 12].tobytes()
        if head[:4] == SHB_BYTES:
            if head[8:12] in BYTE_ORDER_BYTES:
                return int(struct.unpack(BYTE_ORDER_BYTES[head[8:12]] + "I", head[4:8])[0])
            return 12
        return self._u32(head[4:8])

    def _u32(self, data: bytes) -> int:
        return int(struct.unpack(">I" if self.big_endian else "<I", data[:4])[0])

    def _control_block(self, pos: int) -> int:
        """Parse the SHB or IDB at ``pos`` (reading it whole first); return the next position."""
        needed = self._needed(pos)
        is_section = self.source.buf[pos : pos + 4].tobytes() == SHB_BYTES
        minimum = 12 if needed == 12 and is_section else (28 if is_section else 20)
        if needed % 4 or needed < minimum or needed > MAX_PCAPNG_BLOCK:
            raise self._damaged(pos, f"damaged pcapng block (length {needed})")
        while self.source.end - pos < needed:
            if not self._refill(pos, needed):
                unread = self.source.unread
                raise self._damaged(
                    self.source.start, f"truncated last block ({unread} of {needed} bytes)"
                )
            pos = self.source.start
        block = self.source.buf[pos : pos + needed].tobytes()
        if block[:4] == SHB_BYTES:
            self._section_header(block, pos)
        else:
            self._interface(block, pos)
        return pos + needed

    def _section_header(self, block: bytes, pos: int) -> None:
        order = struct.unpack_from("<I", block, 8)[0]
        if order not in (PCAPNG_BYTE_ORDER_MAGIC, 0x4D3C2B1A):
            raise self._damaged(pos, "bad pcapng byte-order magic")
        self.big_endian = order != PCAPNG_BYTE_ORDER_MAGIC
        self.interfaces = []

    def _interface(self, block: bytes, pos: int) -> None:
        order = ">" if self.big_endian else "<"
        if len(block) < 20:
            raise self._damaged(pos, "damaged pcapng interface block")
        linktype, _reserved, snaplen = struct.unpack_from(order + "HHI", block, 8)
        units_per_s, offset_s = 1_000_000, 0
        at = 16
        while at + 4 <= len(block) - 4:
            code, length = struct.unpack_from(order + "HH", block, at)
            if code == 0:
                break
            if at + 4 + length > len(block) - 4:
                raise self._damaged(pos, f"pcapng interface option {code} runs past its block")
            value = block[at + 4 : at + 4 + length]
            if code == 9 and length >= 1:  # if_tsresol
                exponent = value[0] & 0x7F
                units_per_s = 2**exponent if value[0] & 0x80 else 10**exponent
            elif code == 14 and length >= 8:  # if_tsoffset
                offset_s = struct.unpack(order + "q", value[:8])[0]
            at += 4 + (length + 3) // 4 * 4
        if units_per_s > MAX_TSRESOL_UNITS:
            raise self._damaged(pos, f"pcapng if_tsresol of 1/{units_per_s} s is beyond 64 bits")
        if abs(offset_s) > MAX_TSOFFSET_S:
            raise self._damaged(pos, f"pcapng if_tsoffset of {offset_s} s is out of range")
        if not is_supported(linktype):
            linktype = UNKNOWN_LINKTYPE
        self.interfaces.append(_Interface(linktype, snaplen, units_per_s, offset_s))

    def _frames(self, n: int) -> FrameBatch:
        out = self.scratch
        iface = out.iface[:n]
        raw = out.ts_raw[:n]
        ts_ns = np.zeros(n, np.int64)
        linktype = np.full(n, UNKNOWN_LINKTYPE, np.uint16)
        for index, interface in enumerate(self.interfaces):
            rows = iface == index
            if rows.any():
                ts_ns[rows] = _to_ns(raw[rows], interface.units_per_s, interface.offset_s)
                linktype[rows] = interface.linktype
        simple = raw == walk.NO_TIMESTAMP
        if simple.any():
            timed = np.where(simple, -1, np.arange(n))
            np.maximum.accumulate(timed, out=timed)
            previous = np.where(timed >= 0, ts_ns[np.maximum(timed, 0)], self.last_ts_ns)
            ts_ns = np.where(simple, previous, ts_ns)
        self.last_ts_ns = int(ts_ns[-1])
        return FrameBatch(
            self.source.buf, out.offset[:n], out.caplen[:n], out.wirelen[:n], ts_ns,
            linktype, (iface + 1).astype(np.uint32),
        )  # fmt: skip


def _to_ns(raw: npt.NDArray[np.uint64], units_per_s: int, offset_s: int) -> npt.NDArray[np.int64]:
    """Timestamps in ``units_per_s`` units to ns since the epoch, exactly where possible."""
    ns_per_s = 1_000_000_000
    if ns_per_s % units_per_s == 0:
        ns = raw.astype(np.int64) * (ns_per_s // units_per_s)
    else:
        units = np.uint64(units_per_s)
        whole_s = (raw // units).astype(np.int64)
        fraction = (raw % units).astype(np.float64) * (ns_per_s / units_per_s)
        ns = whole_s * ns_per_s + fraction.astype(np.int64)
    return ns + offset_s * ns_per_s
