"""One source of decisions for the fuzz cases, fed by hypothesis or by atheris alike."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol, TypeVar

from hypothesis import strategies as st

T = TypeVar("T")


class Choices(Protocol):
    def integer(self, lo: int, hi: int) -> int: ...

    def binary(self, max_size: int) -> bytes: ...


def pick(choices: Choices, options: Sequence[T]) -> T:
    return options[choices.integer(0, len(options) - 1)]


class DrawChoices:
    """Decisions drawn by hypothesis (``st.data()``), so failures shrink."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data

    def integer(self, lo: int, hi: int) -> int:
        return self.data.draw(st.integers(lo, hi))

    def binary(self, max_size: int) -> bytes:
        return self.data.draw(st.binary(max_size=max_size))


class FdpChoices:
    """Decisions read from an ``atheris.FuzzedDataProvider``; zeros once the input runs out."""

    def __init__(self, provider: Any) -> None:
        self.provider = provider

    def integer(self, lo: int, hi: int) -> int:
        return int(self.provider.ConsumeIntInRange(lo, hi))

    def binary(self, max_size: int) -> bytes:
        size = self.provider.ConsumeIntInRange(0, max_size)
        return bytes(self.provider.ConsumeBytes(size))
