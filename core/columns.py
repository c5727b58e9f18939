"""Column tables: a dataclass of equal-length numpy arrays, one per field."""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, Self

import numpy as np
import numpy.typing as npt


class ColumnTable:
    """Mixin for dataclasses whose fields are all numpy arrays of one length.

    Subclasses declare ``DTYPES`` (field name -> numpy dtype) in field order.
    """

    DTYPES: ClassVar[dict[str, Any]] = {}

    def __len__(self) -> int:
        first = dataclasses.fields(self)[0].name  # type: ignore[arg-type]
        return len(getattr(self, first))

    def columns(self) -> dict[str, npt.NDArray[Any]]:
        return {name: getattr(self, name) for name in self.DTYPES}

    @classmethod
    def empty(cls, n: int) -> Self:
        return cls(**{name: np.zeros(n, dtype) for name, dtype in cls.DTYPES.items()})

    def take(self, index: npt.NDArray[Any] | slice) -> Self:
        """Rows selected by a boolean mask, an index array or a slice."""
        return type(self)(**{name: col[index] for name, col in self.columns().items()})

    @classmethod
    def concat(cls, tables: list[Self]) -> Self:
        if not tables:
            return cls.empty(0)
        if len(tables) == 1:
            return tables[0]
        return cls(
            **{name: np.concatenate([getattr(t, name) for t in tables]) for name in cls.DTYPES}
        )
