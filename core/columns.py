"""Column tables: a dataclass of equal-length numpy arrays, one per field."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt


class ColumnTable:
    """Mixin for dataclasses whose fields are all numpy arrays of one length.

    Subclasses declare ``DTYPES`` (field name -> numpy dtype) in field order.
    Columns named in ``WIDE`` are two-dimensional (one row per table row, any
    number of words, the same for every row); ``empty`` makes them 0 words wide.
    """

    DTYPES: ClassVar[dict[str, Any]] = {}
    WIDE: ClassVar[frozenset[str]] = frozenset()

    def __len__(self) -> int:
        first = dataclasses.fields(self)[0].name  # type: ignore[arg-type]
        return len(getattr(self, first))

    def columns(self) -> dict[str, npt.NDArray[Any]]:
        return {name: getattr(self, name) for name in self.DTYPES}

    @classmethod
    def empty(cls, n: int) -> Self:
        return cls(
            **{
                name: np.zeros((n, 0) if name in cls.WIDE else n, dtype)
                for name, dtype in cls.DTYPES.items()
            }
        )

    def take(self, index: npt.NDArray[Any] | slice) -> Self:
        """Rows selected by a boolean mask, an index array or a slice."""
        return type(self)(**{name: col[index] for name, col in self.columns().items()})

    @classmethod
    def concat(cls, tables: list[Self]) -> Self:
        if not tables:
            return cls.empty(0)
        if len(tables) == 1:
            return tables[0]
        columns = {}
        for name in cls.DTYPES:
            parts = [getattr(t, name) for t in tables]
            if name in cls.WIDE:
                width = max(part.shape[1] for part in parts)
                parts = [widened(part, width) for part in parts]
            columns[name] = np.concatenate(parts)
        return cls(**columns)


def widened(column: npt.NDArray[Any], width: int) -> npt.NDArray[Any]:
    """A wide column of ``width`` words: itself, or zeros if it has none (absent values)."""
    if column.shape[1] == width:
        return column
    if column.shape[1]:
        raise ValueError(f"a column {column.shape[1]} words wide cannot widen to {width}")
    return np.zeros((len(column), width), column.dtype)
