"""Compiled text formatting of record rows: integers, IP addresses, end-reason names.

A row is a sequence of fields; each field writes its ``prefix`` bytes and then
its value. ``kind`` selects the value: an integer column, the source or
destination address (dotted quad for IPv4, RFC 5952 text for IPv6), the
end-reason name, or an attribute word (``core.attributes``): a MAC address
(aa:bb:cc:dd:ee:ff), a VLAN id, an MPLS label, an outer tunnel address.
Text attributes are quoted when ``quote`` (JSON); an absent attribute
writes ``absent`` instead (CSV: nothing, JSON: null).
"""

from __future__ import annotations

import numpy as np

from aot import njit
from core.attributes import (
    MAC_BITS,
    MPLS_BITS,
    OUTER_DST_HI,
    OUTER_SRC_HI,
    OUTER_VERSION,
    VLAN_BITS,
)

INT, SRC_ADDR, DST_ADDR, REASON = 0, 1, 2, 3
MAC, VLAN_ID, MPLS_LABEL, OUTER_SRC, OUTER_DST = 4, 5, 6, 7, 8
MAX_FIELD_BYTES = 48  # an IPv6 address is at most 39 characters, an int64 20
HEX = np.frombuffer(b"0123456789abcdef", np.uint8)
_FF = np.uint64(0xFF)
_FFFF = np.uint64(0xFFFF)


@njit(cache=True, inline="always")
def _write_uint(out, pos, value):  # type: ignore[no-untyped-def]
    if value == 0:
        out[pos] = 48
        return pos + 1
    digits = 0
    v = value
    while v > 0:
        v //= 10
        digits += 1
    v = value
    for k in range(digits - 1, -1, -1):
        out[pos + k] = 48 + v % 10
        v //= 10
    return pos + digits


@njit(cache=True, inline="always")
def _write_int(out, pos, value):  # type: ignore[no-untyped-def]
    if value < 0:
        out[pos] = 45
        return _write_uint(out, pos + 1, -value)
    return _write_uint(out, pos, value)


@njit(cache=True, nogil=True)
def _write_ipv6(out, pos, hi, lo):  # type: ignore[no-untyped-def]
    groups = np.empty(8, np.int64)
    for g in range(4):
        groups[g] = np.int64((hi >> np.uint64(48 - 16 * g)) & _FFFF)
        groups[4 + g] = np.int64((lo >> np.uint64(48 - 16 * g)) & _FFFF)
    # RFC 5952 4.2: compress the longest run (>= 2) of zero groups, the first on ties.
    best_start, best_len, run_start, run_len = -1, 0, -1, 0
    for g in range(8):
        if groups[g] == 0:
            if run_len == 0:
                run_start = g
            run_len += 1
            if run_len > best_len:
                best_start, best_len = run_start, run_len
        else:
            run_len = 0
    if best_len < 2:
        best_start, best_len = -1, 0
    g = 0
    while g < 8:
        if g == best_start:
            out[pos] = 58
            out[pos + 1] = 58
            pos += 2
            g += best_len
            continue
        if g > 0 and g != best_start + best_len:
            out[pos] = 58
            pos += 1
        value = groups[g]
        started = False
        for shift in (12, 8, 4, 0):
            nibble = (value >> shift) & 0xF
            if nibble or started or shift == 0:
                out[pos] = HEX[nibble]
                pos += 1
                started = True
        g += 1
    return pos


@njit(cache=True, inline="always")
def _write_addr(out, pos, version, hi, lo):  # type: ignore[no-untyped-def]
    if version == 4:
        for k in range(4):
            if k:
                out[pos] = 46
                pos += 1
            pos = _write_uint(out, pos, np.int64((lo >> np.uint64(24 - 8 * k)) & _FF))
        return pos
    return _write_ipv6(out, pos, hi, lo)


@njit(cache=True, nogil=True)
def _write_attribute(out, pos, kind, words, word, quote, absent):  # type: ignore[no-untyped-def]
    """One attribute of a row (``words``: the row's attribute words) at ``pos``."""
    if kind == OUTER_SRC or kind == OUTER_DST:
        present = words[OUTER_VERSION] != 0
    elif kind == MAC:
        present = (words[word] >> np.uint64(MAC_BITS)) != 0
    elif kind == VLAN_ID:
        present = (words[word] >> np.uint64(VLAN_BITS)) != 0
    else:
        present = (words[word] >> np.uint64(MPLS_BITS)) != 0
    if not present:
        for b in range(len(absent)):
            out[pos] = absent[b]
            pos += 1
        return pos
    if kind == VLAN_ID:
        return _write_uint(out, pos, np.int64(words[word] & np.uint64(0x0FFF)))
    if kind == MPLS_LABEL:
        return _write_uint(out, pos, np.int64((words[word] >> np.uint64(4)) & np.uint64(0xFFFFF)))
    if quote:
        out[pos] = 34
        pos += 1
    if kind == MAC:
        for k in range(6):
            if k:
                out[pos] = 58
                pos += 1
            octet = (words[word] >> np.uint64(40 - 8 * k)) & _FF
            out[pos] = HEX[octet >> np.uint64(4)]
            out[pos + 1] = HEX[octet & np.uint64(0x0F)]
            pos += 2
    else:
        at = OUTER_SRC_HI if kind == OUTER_SRC else OUTER_DST_HI
        pos = _write_addr(out, pos, words[OUTER_VERSION], words[at], words[at + 1])
    if quote:
        out[pos] = 34
        pos += 1
    return pos


@njit(cache=True, nogil=True)
def format_rows(  # type: ignore[no-untyped-def]
    ints,
    version,
    addrs,
    reason,
    kinds,
    columns,
    prefix_bytes,
    prefix_starts,
    row_end,
    names,
    name_starts,
    words,
    quote,
    absent,
    out,
):
    """Write every row into ``out``; return the number of bytes written."""
    pos = 0
    for r in range(len(version)):
        for f in range(len(kinds)):
            for b in range(prefix_starts[f], prefix_starts[f + 1]):
                out[pos] = prefix_bytes[b]
                pos += 1
            kind = kinds[f]
            if kind == INT:
                pos = _write_int(out, pos, ints[r, columns[f]])
            elif kind == SRC_ADDR:
                pos = _write_addr(out, pos, version[r], addrs[r, 0], addrs[r, 1])
            elif kind == DST_ADDR:
                pos = _write_addr(out, pos, version[r], addrs[r, 2], addrs[r, 3])
            elif kind >= MAC:
                pos = _write_attribute(out, pos, kind, words[r], columns[f], quote, absent)
            else:
                code = reason[r]
                for b in range(name_starts[code], name_starts[code + 1]):
                    out[pos] = names[b]
                    pos += 1
        for b in range(len(row_end)):
            out[pos] = row_end[b]
            pos += 1
    return pos


@njit(cache=True, nogil=True)
def format_addresses(version, hi, lo, out, offsets):  # type: ignore[no-untyped-def]
    """Each address as text, one after another in ``out``; ``offsets[i]`` where row i starts."""
    pos = 0
    for r in range(len(version)):
        offsets[r] = pos
        pos = _write_addr(out, pos, version[r], hi[r], lo[r])
    offsets[len(version)] = pos
    return pos


@njit(cache=True, nogil=True)
def format_attributes(kind, words, word, out, offsets):  # type: ignore[no-untyped-def]
    """Each row's attribute as text (absent: empty), as ``format_addresses`` lays them out."""
    pos = 0
    absent = np.empty(0, np.uint8)
    for r in range(len(words)):
        offsets[r] = pos
        pos = _write_attribute(out, pos, kind, words[r], word, False, absent)
    offsets[len(words)] = pos
    return pos


@njit(cache=True, inline="always")
def _write_length(out, pos, length):  # type: ignore[no-untyped-def]
    for k in range(4):
        out[pos + k] = (length >> (8 * k)) & 0xFF


@njit(cache=True, nogil=True)
def plain_addresses(version, hi, lo, out):  # type: ignore[no-untyped-def]
    """Each address as a Parquet PLAIN BYTE_ARRAY value (4-byte little-endian length, text)."""
    pos = 0
    for r in range(len(version)):
        end = _write_addr(out, pos + 4, version[r], hi[r], lo[r])
        _write_length(out, pos, end - pos - 4)
        pos = end
    return pos


@njit(cache=True, nogil=True)
def plain_attributes(kind, words, word, out):  # type: ignore[no-untyped-def]
    """``plain_addresses`` for the rows that have the attribute (the others write nothing)."""
    pos = 0
    absent = np.empty(0, np.uint8)
    for r in range(len(words)):
        end = _write_attribute(out, pos + 4, kind, words[r], word, False, absent)
        if end > pos + 4:
            _write_length(out, pos, end - pos - 4)
            pos = end
    return pos


@njit(cache=True, nogil=True)
def plain_names(codes, names, name_starts, out):  # type: ignore[no-untyped-def]
    """Each row's end-reason name as a PLAIN BYTE_ARRAY value."""
    pos = 0
    for r in range(len(codes)):
        first, last = name_starts[codes[r]], name_starts[codes[r] + 1]
        _write_length(out, pos, last - first)
        pos += 4
        for b in range(first, last):
            out[pos] = names[b]
            pos += 1
    return pos
