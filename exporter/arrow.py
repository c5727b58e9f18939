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
    FieldGroup,
)
from core.columns import widened
from core.errors import ConfigError
from core.records import RecordTable
from exporter.flowfile import (
    REASON_NAMES,
    AttributeColumn,
    address_texts,
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
        "src": _strings(pa, *address_texts(records.version, records.src_hi, records.src_lo)),
        "dst": _strings(pa, *address_texts(records.version, records.dst_hi, records.dst_lo)),
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
    present = column.present(words)
    if column.numeric:
        return pa.array(column.numbers(words), mask=~present)
    validity = pa.array(present).buffers()[1]
    return _strings(pa, *column.texts(words), validity, int((~present).sum()))


def _strings(pa: Any, text: np.ndarray, offsets: np.ndarray, validity: Any = None,
             nulls: int = 0) -> Any:  # fmt: skip
    return pa.StringArray.from_buffers(
        len(offsets) - 1, pa.py_buffer(offsets.astype(np.int32)), pa.py_buffer(text.tobytes()),
        validity, nulls,
    )  # fmt: skip
