"""Packet sampling before the cache, over all captured frames, vectorized per batch.

Every mode counts frames across batch and file boundaries, so the frames it
selects never depend on how the input was cut.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

from core.choices import SamplingMode
from core.errors import ConfigError

BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True)
class SamplingConfig:
    mode: SamplingMode = SamplingMode.FULL
    rate: int | None = None  # N of 1-in-N; None: not given (full mode needs none)
    seed: int = 0

    def __post_init__(self) -> None:
        if self.mode is SamplingMode.FULL:
            if self.rate not in (None, 1):
                raise ConfigError("--sampling-rate needs a sampling mode other than full")
        elif self.rate is None:
            raise ConfigError(f"--sampling {self.mode} needs --sampling-rate N (1-in-N)")
        elif not 1 <= self.rate <= 1 << 30:
            raise ConfigError(f"sampling rate must be between 1 and {1 << 30}, got {self.rate}")

    @property
    def interval(self) -> int:
        """The 1-in-N interval collectors scale by (1 when not sampling)."""
        return 1 if self.mode is SamplingMode.FULL or self.rate is None else self.rate


class Sampler(Protocol):
    def select(self, frames: int) -> BoolArray | None:
        """Which of the next ``frames`` frames are kept (None: all of them)."""


class FullSampler:
    def select(self, frames: int) -> BoolArray | None:
        return None


class DeterministicSampler:
    def __init__(self, rate: int) -> None:
        self.rate = rate
        self.seen = 0

    def select(self, frames: int) -> BoolArray | None:
        index = np.arange(self.seen, self.seen + frames, dtype=np.int64)
        self.seen += frames
        keep: BoolArray = index % self.rate == 0
        return keep


class RandomSampler:
    """One frame per window; offsets are drawn window by window, in order, from one stream."""

    def __init__(self, rate: int, seed: int) -> None:
        self.rate = rate
        self.rng = np.random.default_rng(seed)
        self.seen = 0
        self.windows_drawn = 0
        self.last_offset = 0  # offset chosen in window windows_drawn - 1

    def select(self, frames: int) -> BoolArray | None:
        if frames == 0:
            return np.zeros(0, np.bool_)
        index = np.arange(self.seen, self.seen + frames, dtype=np.int64)
        self.seen += frames
        first_window = int(index[0]) // self.rate
        last_window = int(index[-1]) // self.rate
        new = self.rng.integers(0, self.rate, last_window + 1 - self.windows_drawn, np.int64)
        known = np.array([self.last_offset], np.int64)[: max(self.windows_drawn - first_window, 0)]
        offsets = np.concatenate([known, new])
        if len(new):
            self.last_offset = int(new[-1])
            self.windows_drawn = last_window + 1
        keep: BoolArray = index % self.rate == offsets[index // self.rate - first_window]
        return keep


class ProbabilisticSampler:
    def __init__(self, rate: int, seed: int) -> None:
        self.probability = 1.0 / rate
        self.rng = np.random.default_rng(seed)

    def select(self, frames: int) -> BoolArray | None:
        keep: BoolArray = self.rng.random(frames) < self.probability
        return keep


def make_sampler(config: SamplingConfig) -> Sampler:
    """Build the sampler for ``config`` once, before the loop."""
    rate = config.interval
    if rate == 1:
        return FullSampler()
    if config.mode is SamplingMode.DETERMINISTIC:
        return DeterministicSampler(rate)
    if config.mode is SamplingMode.RANDOM:
        return RandomSampler(rate, config.seed)
    return ProbabilisticSampler(rate, config.seed)
