"""Damaged capture files: the shipped samples flipped, cut, spliced, with lying lengths.

A mutation either keeps the file valid (a lying header snaplen or wire
length, an empty record, a record above 64 KiB), names the exact offset where
the reader must stop (a record longer than any snaplen), or damages it
anywhere. The layout of an intact file is found here with ``struct``.
"""

from __future__ import annotations

import functools
import struct
from dataclasses import dataclass
from pathlib import Path

from tests.fuzz.choices import Choices, pick

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "samples"
SMALL_SAMPLES = ("web_be.pcap", "web_ns.pcap", "vlan.pcap", "ipv6.pcap", "fragments.pcap", "two_interfaces.pcapng")  # fmt: skip
ALL_SAMPLES = (*SMALL_SAMPLES, "web.pcap", "dnstunnel.pcap", "portscan.pcap", "synflood.pcap")
PCAP_HEADER, PCAP_RECORD = 24, 16
MAX_PCAP_CAPLEN = 262_144  # libpcap's MAXIMUM_SNAPLEN
EPB, IDB, SHB = 6, 1, 0x0A0D0D0A
PACKET_KINDS = (-1, 2, 3, 6)  # a pcap record; pcapng OPB, SPB, EPB
U32_VALUES = (0, 1, 3, 11, 12, 13, 16, 28, 31, 32, 33, 0xFFFF, 0x10000, 0x10001, MAX_PCAP_CAPLEN, MAX_PCAP_CAPLEN + 1, 16 << 20, (16 << 20) + 4, 0x7FFFFFFF, 0xFFFFFFFC, 0xFFFFFFFF)  # fmt: skip
SNAPLENS = (0, 1, 14, 64, 1500, 65535)
# if_tsresol bytes (10^-n or 2^-n s) and if_tsoffset seconds at the edges of int64 nanoseconds.
BYTE_VALUES = (0, 6, 9, 18, 19, 20, 0x7F, 0x80, 0x80 | 30, 0x80 | 63, 0x80 | 64, 0xFF)
I64_VALUES = (0, 1, -1, 9_223_372_036, -9_223_372_037, 2**62, -(2**63), 2**63 - 1)
OPTION_CODES, OPTION_LENGTHS = (0, 2, 9, 14), (0, 1, 4, 8, 255)  # end, if_name, tsresol, tsoffset


@dataclass(frozen=True, slots=True)
class Block:
    start: int
    end: int
    kind: int  # pcapng block type; -1 for a classic pcap record


@dataclass(frozen=True, slots=True)
class Layout:
    """Byte order and the records (pcap) or blocks (pcapng) of an intact capture."""

    pcapng: bool
    order: str
    blocks: tuple[Block, ...]

    @property
    def packets(self) -> list[Block]:
        return [b for b in self.blocks if b.kind in PACKET_KINDS]


def layout(data: bytes) -> Layout:
    if data[:4] == struct.pack("<I", SHB):
        order = "<" if data[8:12] == b"\x4d\x3c\x2b\x1a" else ">"
        blocks, pos = [], 0
        while pos + 12 <= len(data):
            kind, length = struct.unpack_from(order + "II", data, pos)
            blocks.append(Block(pos, pos + length, kind))
            pos += length
        return Layout(True, order, tuple(blocks))
    order = "<" if data[:4] in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    records, pos = [], PCAP_HEADER
    while pos + PCAP_RECORD <= len(data):
        (caplen,) = struct.unpack_from(order + "I", data, pos + 8)
        records.append(Block(pos, pos + PCAP_RECORD + caplen, -1))
        pos += PCAP_RECORD + caplen
    return Layout(False, order, tuple(records))


@dataclass(frozen=True, slots=True)
class Mutated:
    """A capture made from a valid one: itself valid, or to be cut at ``damage_at`` exactly."""

    data: bytes
    damage_at: int | None = None


def _boundary(c: Choices, lay: Layout) -> int:
    """The start of a packet record (or the end of the last one): where a record may go."""
    packets = lay.packets
    starts = [b.start for b in packets] + [packets[-1].end if packets else lay.blocks[-1].end]
    return pick(c, starts)


def _record(c: Choices, data: bytes, lay: Layout, caplen: int) -> bytes:
    """A packet record of ``caplen`` bytes in the file's format and byte order."""
    body = bytes(c.integer(0, 255) for _ in range(min(caplen, 4))) + bytes(max(caplen - 4, 0))
    wirelen = caplen if c.integer(0, 1) else c.integer(0, 2**32 - 1)
    first = lay.packets[0] if lay.packets else None
    if not lay.pcapng:
        ts = data[first.start : first.start + 8] if first else bytes(8)
        return ts + struct.pack(lay.order + "II", caplen, wirelen) + body
    ts = data[first.start + 12 : first.start + 20] if first else bytes(8)
    interfaces = sum(b.kind == IDB for b in lay.blocks)
    head = struct.pack(lay.order + "I", c.integer(0, max(interfaces - 1, 0))) + ts
    padded = body + bytes(-len(body) % 4)
    length = 32 + len(padded)
    return (
        struct.pack(lay.order + "II", EPB, length) + head
        + struct.pack(lay.order + "II", caplen, wirelen) + padded
        + struct.pack(lay.order + "I", length)
    )  # fmt: skip


def clean_mutation(c: Choices, data: bytes) -> Mutated:
    """A change that keeps the capture valid, or a record too long for any snaplen."""
    lay = layout(data)
    op = c.integer(0, 4)
    out = bytearray(data)
    if op == 0:  # the header's snaplen lies (spanflow trusts each record's own length)
        idbs = [b for b in lay.blocks if b.kind == IDB]
        at = pick(c, idbs).start + 12 if lay.pcapng else 16
        out[at : at + 4] = struct.pack(lay.order + "I", pick(c, SNAPLENS))
        return Mutated(bytes(out))
    if op == 1 and lay.packets:  # a record's wire length lies (not trusted)
        block = pick(c, lay.packets)
        at = block.start + (24 if lay.pcapng else 12)
        out[at : at + 4] = struct.pack(lay.order + "I", pick(c, U32_VALUES))
        return Mutated(bytes(out))
    at = _boundary(c, lay)
    if op == 4 and not lay.pcapng:  # longer than libpcap's largest snaplen: damage right there
        caplen = c.integer(MAX_PCAP_CAPLEN + 1, 2**32 - 1)
        return Mutated(data[:at] + _record(c, data, lay, 0)[:8] + struct.pack(
            lay.order + "II", caplen, caplen
        ) + data[at:], at)  # fmt: skip
    caplen = 0 if op == 2 else c.integer(0x10000, 0x10000 + 3000) * c.integer(1, 3)
    return Mutated(data[:at] + _record(c, data, lay, caplen) + data[at:])


def _options(data: bytes, block: Block, order: str) -> list[int]:
    """Offsets of the option headers of an interface block (after its 8-byte fixed part)."""
    found, at = [], block.start + 16
    end = min(block.end, len(data))  # an earlier mutation may have cut the file short
    while at + 4 <= end - 4:
        found.append(at)
        (length,) = struct.unpack_from(order + "H", data, at + 2)
        at += 4 + (length + 3) // 4 * 4
    return found


def option_mutation(c: Choices, data: bytes, lay: Layout) -> bytes:
    """An interface block option (if_tsresol, if_tsoffset, ...) given an edge code, length or value."""
    idbs = [b for b in lay.blocks if b.kind == IDB]
    options = _options(data, pick(c, idbs), lay.order) if idbs else []
    if not options:
        return data
    at = pick(c, options)
    kind = c.integer(0, 2)
    if kind == 0:
        value = struct.pack(lay.order + "HH", pick(c, OPTION_CODES), pick(c, OPTION_LENGTHS))
    elif kind == 1:
        value = bytes([pick(c, BYTE_VALUES)])
        at += 4
    else:
        value = struct.pack(lay.order + "q", pick(c, I64_VALUES))
        at += 4
    return data[:at] + value + data[at + len(value) :]


def damaging_mutation(c: Choices, data: bytes, lay: Layout, options: bool = False) -> bytes:
    """One flip, cut, splice, overwrite or lying length field, anywhere in the file
    (``options``: or an edge value in an interface block)."""
    op = c.integer(0, 6 if options else 5)
    if op == 6:
        return option_mutation(c, data, lay)
    at = c.integer(0, len(data))
    if op == 0 and data:
        at = min(at, len(data) - 1)
        return data[:at] + bytes([data[at] ^ c.integer(1, 255)]) + data[at + 1 :]
    if op == 1:
        return data[:at]
    if op == 2:  # a stretch of this file copied (inserted or written over) elsewhere
        source = c.integer(0, len(data))
        chunk = data[source : source + c.integer(1, 4096)]
        rest = data[at + len(chunk) :] if c.integer(0, 1) else data[at:]
        return data[:at] + chunk + rest
    if op == 3:
        new = c.binary(64)
        return data[:at] + new + data[at + len(new) * c.integer(0, 1) :]
    if not lay.blocks:
        return data
    block = pick(c, lay.blocks)
    if lay.pcapng:  # total length, trailing length, captured length, wire length
        field = pick(c, (block.start + 4, block.end - 4, block.start + 20, block.start + 24))
    else:
        field = block.start + 8 + 4 * c.integer(0, 1)  # captured, wire length
    if op == 4:
        value = pick(c, U32_VALUES)
    else:
        old = struct.unpack_from(lay.order + "I", data.ljust(field + 4, b"\0"), field)[0]
        value = (old + c.integer(-8, 8)) % 2**32
    return data[:field] + struct.pack(lay.order + "I", value) + data[field + 4 :]


@dataclass(frozen=True, slots=True)
class CaptureCase:
    """A valid capture, the file made from it, and where reading it must stop (if known)."""

    reference: bytes
    data: bytes
    damage_at: int | None = None


@functools.cache
def sample(name: str) -> bytes:
    return (SAMPLES_DIR / name).read_bytes()


def capture_case(
    c: Choices,
    samples: tuple[str, ...] = SMALL_SAMPLES,
    clean: bool | None = None,
    options: bool = False,
) -> CaptureCase:
    """A sample, maybe changed cleanly first, then damaged (``clean``: only one or the other;
    ``options``: interface-block options may be damaged too)."""
    reference = sample(pick(c, samples))
    changed = bool(c.integer(0, 1)) if clean is None else clean
    if changed:
        mutated = clean_mutation(c, reference)
        if mutated.damage_at is not None:
            return CaptureCase(reference, mutated.data, mutated.damage_at)
        reference = mutated.data
    data = reference
    if clean is not True:
        lay = layout(reference)
        for _ in range(c.integer(0 if changed else 1, 3)):
            data = damaging_mutation(c, data, lay, options)
    return CaptureCase(reference, data)
