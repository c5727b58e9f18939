"""The Parquet file layout, written without pyarrow: pages, row groups, the footer.

Apache Parquet's format (parquet.thrift): a file is ``PAR1``, column chunks,
then the FileMetaData struct in Thrift's compact protocol, its length (4
bytes, little-endian) and ``PAR1`` again. Each column chunk here is one data
page (version 1) of PLAIN values, uncompressed; an OPTIONAL column's page
starts with its definition levels (1 bit each, RLE/bit-packed hybrid, in
bit-packed runs) behind a 4-byte length. Values are numpy buffers built by
the caller; nothing here touches a row.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

MAGIC = b"PAR1"
# parquet.thrift enums
INT32, INT64, BYTE_ARRAY = 1, 2, 6
REQUIRED, OPTIONAL = 0, 1
PLAIN, RLE = 0, 3
UNCOMPRESSED = 0
DATA_PAGE = 0
UTF8, UINT_8, UINT_16, UINT_32, UINT_64 = 0, 11, 12, 13, 14  # ConvertedType, for old readers

# Thrift compact protocol (THRIFT-110) type nibbles.
T_TRUE, T_FALSE, T_BYTE, T_I32, T_I64, T_BINARY, T_LIST, T_STRUCT = 1, 2, 3, 5, 6, 8, 9, 12

Struct = list[tuple[int, int, Any]]  # (field id, compact type, value), ids ascending


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _zigzag(n: int) -> bytes:
    return _varint((n << 1) ^ (n >> 63))


def _value(kind: int, value: Any) -> bytes:
    if kind in (T_I32, T_I64):
        return _zigzag(value)
    if kind == T_BYTE:
        return struct.pack("b", value)
    if kind == T_BINARY:
        data = value.encode() if isinstance(value, str) else value
        return _varint(len(data)) + data
    if kind == T_STRUCT:
        return thrift_struct(value)
    if kind == T_LIST:
        element, items = value
        head = bytes([len(items) << 4 | element]) if len(items) < 15 else (
            bytes([0xF0 | element]) + _varint(len(items)))  # fmt: skip
        return head + b"".join(_value(element, item) for item in items)
    raise ValueError(f"no compact encoding for type {kind}")


def thrift_struct(fields: Struct) -> bytes:
    """A struct in the compact protocol: delta-coded field headers, then the stop byte."""
    out, last = bytearray(), 0
    for field_id, kind, value in fields:
        if kind in (T_TRUE, T_FALSE):  # a bool field's value is its type nibble
            kind, payload = (T_TRUE if value else T_FALSE), b""
        else:
            payload = _value(kind, value)
        delta = field_id - last
        out += bytes([delta << 4 | kind]) if 0 < delta <= 15 else bytes([kind]) + _zigzag(field_id)
        out += payload
        last = field_id
    out.append(0)
    return bytes(out)


@dataclass(frozen=True, slots=True)
class ColumnType:
    """How a column is declared: physical type, logical type struct, converted type."""

    physical: int
    logical: Struct  # a LogicalType union member as (field id, struct), or []
    converted: int | None = None
    optional: bool = False


def string_type(optional: bool = False) -> ColumnType:
    return ColumnType(BYTE_ARRAY, [(1, T_STRUCT, [])], UTF8, optional)  # STRING


def unsigned_type(bits: int, optional: bool = False) -> ColumnType:
    converted = {8: UINT_8, 16: UINT_16, 32: UINT_32, 64: UINT_64}[bits]
    physical = INT64 if bits == 64 else INT32
    logical: Struct = [(10, T_STRUCT, [(1, T_BYTE, bits), (2, T_FALSE, False)])]  # INTEGER
    return ColumnType(physical, logical, converted, optional)


def timestamp_ns_utc() -> ColumnType:
    unit: Struct = [(3, T_STRUCT, [])]  # NANOS
    logical: Struct = [(8, T_STRUCT, [(1, T_TRUE, True), (2, T_STRUCT, unit)])]  # TIMESTAMP
    return ColumnType(INT64, logical)


def plain_numbers(values: npt.NDArray[Any], physical: int) -> bytes:
    """PLAIN INT32/INT64: little-endian; unsigned values keep their bits (the logical type
    says they are unsigned)."""
    return values.astype("<i4" if physical == INT32 else "<i8").tobytes()


def definition_levels(present: npt.NDArray[np.bool_]) -> bytes:
    """1-bit levels (1: a value) as one bit-packed run, behind the page's 4-byte length."""
    groups = -(-len(present) // 8)
    packed = np.packbits(present, bitorder="little").tobytes()
    run = _varint(groups << 1 | 1) + packed
    return struct.pack("<I", len(run)) + run


@dataclass(slots=True)
class ChunkInfo:
    """Where a written column chunk lies, for the footer."""

    offset: int
    size: int
    values: int


def data_page(column: ColumnType, values: bytes, rows: int, levels: bytes = b"") -> bytes:
    """One uncompressed DATA_PAGE holding ``rows`` entries of a column chunk."""
    body = levels + values
    header: Struct = [
        (1, T_I32, DATA_PAGE),
        (2, T_I32, len(body)),
        (3, T_I32, len(body)),
        (5, T_STRUCT, [(1, T_I32, rows), (2, T_I32, PLAIN), (3, T_I32, RLE), (4, T_I32, RLE)]),
    ]
    return thrift_struct(header) + body


def schema_elements(columns: list[tuple[str, ColumnType]]) -> list[Struct]:
    root: Struct = [(4, T_BINARY, "schema"), (5, T_I32, len(columns))]
    elements = [root]
    for name, kind in columns:
        element: Struct = [
            (1, T_I32, kind.physical),
            (3, T_I32, OPTIONAL if kind.optional else REQUIRED),
            (4, T_BINARY, name),
        ]
        if kind.converted is not None:
            element.append((6, T_I32, kind.converted))
        if kind.logical:
            element.append((10, T_STRUCT, kind.logical))
        elements.append(element)
    return elements


def footer(
    columns: list[tuple[str, ColumnType]],
    row_groups: list[tuple[int, list[ChunkInfo]]],
    metadata: dict[str, str],
) -> bytes:
    """FileMetaData, its length and the closing magic."""
    groups: list[Struct] = []
    for rows, chunks in row_groups:
        chunk_structs: list[Struct] = []
        for (name, kind), chunk in zip(columns, chunks, strict=True):
            encodings = (T_I32, [PLAIN, RLE] if kind.optional else [PLAIN])
            meta: Struct = [
                (1, T_I32, kind.physical), (2, T_LIST, encodings), (3, T_LIST, (T_BINARY, [name])),
                (4, T_I32, UNCOMPRESSED), (5, T_I64, chunk.values), (6, T_I64, chunk.size),
                (7, T_I64, chunk.size), (9, T_I64, chunk.offset),
            ]  # fmt: skip
            chunk_structs.append([(2, T_I64, chunk.offset), (3, T_STRUCT, meta)])
        total = sum(chunk.size for chunk in chunks)
        groups.append([(1, T_LIST, (T_STRUCT, chunk_structs)), (2, T_I64, total), (3, T_I64, rows)])
    pairs = [[(1, T_BINARY, key), (2, T_BINARY, value)] for key, value in metadata.items()]
    file_meta: Struct = [
        (1, T_I32, 1),
        (2, T_LIST, (T_STRUCT, schema_elements(columns))),
        (3, T_I64, sum(rows for rows, _ in row_groups)),
        (4, T_LIST, (T_STRUCT, groups)),
    ]
    if pairs:
        file_meta.append((5, T_LIST, (T_STRUCT, pairs)))
    file_meta.append((6, T_BINARY, "spanflow"))
    encoded = thrift_struct(file_meta)
    return encoded + struct.pack("<I", len(encoded)) + MAGIC
