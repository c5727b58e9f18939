"""Records as Apache Arrow tables: the flow file's columns, typed, with no per-row Python objects.

pyarrow is optional (``pip install 'spanflow[arrow]'``): imported on first use,
and its absence is one clear error.

Addresses are strings (dotted quad, RFC 5952 IPv6), as in the CSV: what an
analyst groups and filters by in pandas, Polars and DuckDB without an inet
extension; the text is formatted by the same compiled kernel as the CSV.
Times are ``timestamp[ns, UTC]``; the end reason is a dictionary of names.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

import numpy as np

from core.attributes import (
    ATTRIBUTE_WORDS,
    MAC_BITS,
    MPLS_BITS,
    OUTER_VERSION,
    VLAN_BITS,
    FieldGroup,
)
from core.columns import widened
from core.errors import ConfigError
from core.records import RecordTable
from exporter import text_kernel as tk
from exporter.flowfile import (
    REASON_NAMES,
    AttributeColumn,
    attribute_columns,
    flow_columns,
)

INTEGER_FIELDS = ("sport", "dport", "proto", "tos", "tcp_flags", "packets", "octets", "ifindex",
                  "vlan")  # fmt: skip


def optional(module: str, install: str = "'spanflow[arrow]'") -> ModuleType:
    """Import an optional library, or fail in one line saying how to install it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        name = module.split(".")[0]
        raise ConfigError(f"{name} is not installed: pip install {install}") from exc


def arrow_table(records: RecordTable, groups: frozenset[FieldGroup] = frozenset()) -> Any:
    """A pyarrow Table of ``records`` with the flow file's columns, in its order.

    ``groups``' attribute columns follow (``--fields``); null where a record has none.
    """
    pa = optional("pyarrow")
    timestamp = pa.timestamp("ns", tz="UTC")
    columns = {
        "first_ns": pa.array(records.first_ns, timestamp),
        "last_ns": pa.array(records.last_ns, timestamp),
        "src": _addresses(pa, records.version, records.src_hi, records.src_lo),
        "dst": _addresses(pa, records.version, records.dst_hi, records.dst_lo),
        "end_reason": pa.DictionaryArray.from_arrays(  # REASON_NAMES[flowEndReason]
            pa.array(records.end_reason.astype(np.int8)), pa.array(REASON_NAMES)
        ),
    }
    columns |= {name: pa.array(getattr(records, name)) for name in INTEGER_FIELDS}
    words = widened(records.attrs, ATTRIBUTE_WORDS) if groups else records.attrs
    for column in attribute_columns(groups):
        columns[column.name] = _attribute(pa, column, words)
    return pa.table({name: columns[name] for name in flow_columns(groups)})


def _attribute(pa: Any, column: AttributeColumn, words: np.ndarray) -> Any:
    """One attribute column: numbers for VLAN ids and MPLS labels, else text; null if absent."""
    value = words[:, column.word]
    if column.kind in (tk.OUTER_SRC, tk.OUTER_DST):
        present = words[:, OUTER_VERSION] != 0
    else:
        bits = {tk.MAC: MAC_BITS, tk.VLAN_ID: VLAN_BITS, tk.MPLS_LABEL: MPLS_BITS}[column.kind]
        present = (value >> np.uint64(bits)) != 0
    if column.kind == tk.VLAN_ID:
        return pa.array((value & np.uint64(0x0FFF)).astype(np.uint16), mask=~present)
    if column.kind == tk.MPLS_LABEL:
        label = (value >> np.uint64(4)) & np.uint64(0xFFFFF)
        return pa.array(label.astype(np.uint32), mask=~present)
    n = len(words)
    out = np.empty(n * 39 + 1, np.uint8)
    offsets = np.empty(n + 1, np.int32)
    size = tk.format_attributes(column.kind, np.ascontiguousarray(words), column.word, out, offsets)
    validity = pa.array(present).buffers()[1]
    return pa.StringArray.from_buffers(
        n, pa.py_buffer(offsets), pa.py_buffer(out[:size].tobytes()), validity,
        int((~present).sum()),
    )  # fmt: skip


def _addresses(pa: Any, version: np.ndarray, hi: np.ndarray, lo: np.ndarray) -> Any:
    n = len(version)
    out = np.empty(n * 39 + 1, np.uint8)
    offsets = np.empty(n + 1, np.int32)
    size = tk.format_addresses(version, hi, lo, out, offsets)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out[:size].tobytes()))
