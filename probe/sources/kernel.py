"""Compiled record walkers for pcap and pcapng buffers.

Each walker starts at ``pos`` in ``buf[:end]``, fills the per-frame output
arrays with up to ``len(out_offset)`` frames and returns ``(frames, pos,
status)``: ``pos`` is where the next unread record starts and ``status`` says
why it stopped. The caller refills the buffer and calls again; a record is
only taken once it is wholly in the buffer.
"""

from __future__ import annotations

import numpy as np

from aot import njit
from cache.prefetch import prefetch

NEED_MORE = 0  # the record at pos is not wholly in the buffer
BATCH_FULL = 1
BAD_RECORD = 2  # the record at pos has an impossible length
CONTROL_BLOCK = 3  # pcapng: a section header or interface block at pos, for Python to parse

PCAP_RECORD_HEADER = 16
# Where the next record starts is read from this one: a chain of memory loads the CPU
# cannot run ahead of. Hinting the bytes this far on starts them loading meanwhile.
PREFETCH_BYTES = 4096
NO_TIMESTAMP = np.uint64(0xFFFFFFFFFFFFFFFF)  # simple packet blocks carry none
PCAPNG_SHB, PCAPNG_IDB, PCAPNG_OPB, PCAPNG_SPB, PCAPNG_EPB = 0x0A0D0D0A, 1, 2, 3, 6


@njit(cache=True, inline="always")
def _u32(buf, pos, big_endian):  # type: ignore[no-untyped-def]
    b0 = np.int64(buf[pos])
    b1 = np.int64(buf[pos + 1])
    b2 = np.int64(buf[pos + 2])
    b3 = np.int64(buf[pos + 3])
    if big_endian:
        return (b0 << 24) | (b1 << 16) | (b2 << 8) | b3
    return (b3 << 24) | (b2 << 16) | (b1 << 8) | b0


@njit(cache=True, inline="always")
def _u16(buf, pos, big_endian):  # type: ignore[no-untyped-def]
    if big_endian:
        return (np.int64(buf[pos]) << 8) | np.int64(buf[pos + 1])
    return (np.int64(buf[pos + 1]) << 8) | np.int64(buf[pos])


@njit(cache=True, nogil=True)
def walk_pcap(  # type: ignore[no-untyped-def]
    buf,
    pos,
    end,
    big_endian,
    frac_ns,
    max_caplen,
    out_offset,
    out_caplen,
    out_wirelen,
    out_ts_ns,
):
    """Classic pcap records; ``frac_ns`` is 1000 for µs files, 1 for ns files."""
    n = 0
    limit = len(out_offset)
    while n < limit:
        if end - pos < PCAP_RECORD_HEADER:
            return n, pos, NEED_MORE
        prefetch(buf, pos + PREFETCH_BYTES)
        caplen = _u32(buf, pos + 8, big_endian)
        if caplen > max_caplen:
            return n, pos, BAD_RECORD
        if end - pos < PCAP_RECORD_HEADER + caplen:
            return n, pos, NEED_MORE
        out_ts_ns[n] = (
            _u32(buf, pos, big_endian) * 1_000_000_000 + _u32(buf, pos + 4, big_endian) * frac_ns
        )
        out_caplen[n] = caplen
        out_wirelen[n] = _u32(buf, pos + 12, big_endian)
        out_offset[n] = pos + PCAP_RECORD_HEADER
        pos += PCAP_RECORD_HEADER + caplen
        n += 1
    return n, pos, BATCH_FULL


@njit(cache=True, nogil=True)
def walk_pcapng(  # type: ignore[no-untyped-def]
    buf,
    pos,
    end,
    big_endian,
    max_block,
    iface_snaplen,
    out_offset,
    out_caplen,
    out_wirelen,
    out_ts_raw,
    out_iface,
):
    """pcapng packet blocks (EPB, SPB, OPB); skips other blocks, stops at SHB/IDB."""
    n = 0
    limit = len(out_offset)
    while n < limit:
        if end - pos < 12:
            return n, pos, NEED_MORE
        block_type = _u32(buf, pos, big_endian)
        if block_type == PCAPNG_SHB or block_type == PCAPNG_IDB:
            return n, pos, CONTROL_BLOCK
        block_len = _u32(buf, pos + 4, big_endian)
        if block_len < 12 or block_len % 4 != 0 or block_len > max_block:
            return n, pos, BAD_RECORD
        if end - pos < block_len:
            return n, pos, NEED_MORE
        if block_type == PCAPNG_EPB or block_type == PCAPNG_OPB:
            if block_len < 32:
                return n, pos, BAD_RECORD
            caplen = _u32(buf, pos + 20, big_endian)
            if caplen > block_len - 32:
                return n, pos, BAD_RECORD
            if block_type == PCAPNG_EPB:
                out_iface[n] = _u32(buf, pos + 8, big_endian)
            else:
                out_iface[n] = _u16(buf, pos + 8, big_endian)
            high = np.uint64(_u32(buf, pos + 12, big_endian))
            out_ts_raw[n] = (high << np.uint64(32)) | np.uint64(_u32(buf, pos + 16, big_endian))
            out_caplen[n] = caplen
            out_wirelen[n] = _u32(buf, pos + 24, big_endian)
            out_offset[n] = pos + 28
            n += 1
        elif block_type == PCAPNG_SPB:
            if block_len < 16:
                return n, pos, BAD_RECORD
            wirelen = _u32(buf, pos + 8, big_endian)
            caplen = min(wirelen, block_len - 16)
            if len(iface_snaplen) > 0 and iface_snaplen[0] > 0:
                caplen = min(caplen, iface_snaplen[0])
            out_iface[n] = 0
            out_ts_raw[n] = NO_TIMESTAMP
            out_caplen[n] = caplen
            out_wirelen[n] = wirelen
            out_offset[n] = pos + 12
            n += 1
        pos += block_len
    return n, pos, BATCH_FULL


@njit(cache=True, inline="always")
def _plausible_pcap_header(buf, pos, end, big_endian, frac_limit, max_caplen, sec_low, sec_high):  # type: ignore[no-untyped-def]
    """Could a classic pcap record header start at ``pos``? (Its data may run past ``end``.)"""
    if end - pos < PCAP_RECORD_HEADER:
        return False
    sec = _u32(buf, pos, big_endian)
    frac = _u32(buf, pos + 4, big_endian)
    caplen = _u32(buf, pos + 8, big_endian)
    wirelen = _u32(buf, pos + 12, big_endian)
    return (
        sec_low <= sec <= sec_high
        and frac < frac_limit
        and caplen <= max_caplen
        and caplen <= wirelen <= 4 * max_caplen
    )


@njit(cache=True, nogil=True)
def find_pcap_record(  # type: ignore[no-untyped-def]
    buf, pos, end, big_endian, frac_limit, max_caplen, sec_low, sec_high, chain
):
    """First offset at or after ``pos`` where ``chain`` plausible records follow one another.

    A chain that reaches ``end`` exactly counts whole. Returns ``end`` when no
    record starts before it. Random bytes pass one header check about once in
    10^13 offsets; a slice's start is also checked against where the previous
    slice's walk really ended (probe/meter/slice_merge.py).
    """
    for start in range(pos, end):
        at = start
        found = 0
        while found < chain:
            if at == end:
                found = chain
                break
            if not _plausible_pcap_header(
                buf, at, end, big_endian, frac_limit, max_caplen, sec_low, sec_high
            ):
                break
            at += PCAP_RECORD_HEADER + _u32(buf, at + 8, big_endian)
            if at > end:
                break
            found += 1
        if found == chain:
            return start
    return end
