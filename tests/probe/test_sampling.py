"""Packet sampling: which frames each mode keeps, whatever the batch cuts."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ConfigError
from probe.meter.sampling import SamplingConfig, SamplingMode, make_sampler

MODES = [SamplingMode.DETERMINISTIC, SamplingMode.RANDOM, SamplingMode.PROBABILISTIC]


def selected(mode: SamplingMode, rate: int, cuts: list[int], seed: int = 7) -> np.ndarray:
    """Indices kept when the frames arrive in batches of the given sizes."""
    sampler = make_sampler(SamplingConfig(mode, rate, seed))
    masks = []
    for size in cuts:
        keep = sampler.select(size)
        masks.append(np.ones(size, bool) if keep is None else keep)
    return np.flatnonzero(np.concatenate(masks)) if masks else np.zeros(0, np.int64)


class TestDeterministic:
    def test_picks_every_nth_frame_from_zero(self) -> None:
        """Frame i is kept exactly when i % N == 0, across batches."""
        assert selected(SamplingMode.DETERMINISTIC, 4, [3, 1, 5, 2, 6]).tolist() == [
            0,
            4,
            8,
            12,
            16,
        ]


class TestRandom:
    def test_exactly_one_frame_per_window(self) -> None:
        """Each window [kN, (k+1)N) holds exactly one kept frame."""
        rate = 100
        kept = selected(SamplingMode.RANDOM, rate, [rate * 500])
        assert np.array_equal(kept // rate, np.arange(500))

    def test_offsets_are_uniform(self) -> None:
        """The kept offset within a window is uniform: mean and spread of 20,000 windows."""
        rate, windows = 50, 20_000
        offsets = selected(SamplingMode.RANDOM, rate, [rate * windows]) % rate
        mean, sd_of_mean = (rate - 1) / 2, math.sqrt((rate**2 - 1) / 12 / windows)
        assert abs(offsets.mean() - mean) < 5 * sd_of_mean
        counts = np.bincount(offsets, minlength=rate)
        expected = windows / rate
        chi2 = float(((counts - expected) ** 2 / expected).sum())
        assert chi2 < 49 + 5 * math.sqrt(2 * 49)  # 49 degrees of freedom, 5 sigma

    def test_seed_reproduces_and_differs(self) -> None:
        """The same seed gives the same frames; another seed other frames."""
        a = selected(SamplingMode.RANDOM, 10, [1000], seed=1)
        assert np.array_equal(a, selected(SamplingMode.RANDOM, 10, [1000], seed=1))
        assert not np.array_equal(a, selected(SamplingMode.RANDOM, 10, [1000], seed=2))


class TestProbabilistic:
    def test_selection_rate_within_binomial_bound(self) -> None:
        """About 1/N of the frames are kept: within 5 standard deviations of n/N."""
        frames, rate = 200_000, 100
        kept = len(selected(SamplingMode.PROBABILISTIC, rate, [frames]))
        p = 1 / rate
        assert abs(kept - frames * p) < 5 * math.sqrt(frames * p * (1 - p))


@settings(max_examples=60, deadline=None)
@given(
    mode=st.sampled_from(MODES),
    rate=st.integers(1, 40),
    cuts=st.lists(st.integers(0, 90), min_size=1, max_size=25),
)
def test_batch_cuts_never_change_the_selection(
    mode: SamplingMode, rate: int, cuts: list[int]
) -> None:
    """The frames kept depend on frame order and seed only, never on batch sizes."""
    assert np.array_equal(selected(mode, rate, cuts), selected(mode, rate, [sum(cuts)]))


def test_full_keeps_everything() -> None:
    """Full mode keeps every frame."""
    assert selected(SamplingMode.FULL, 1, [5, 5]).tolist() == list(range(10))


@pytest.mark.parametrize(
    ("mode", "rate", "message"),
    [
        (SamplingMode.FULL, 10, "needs a sampling mode"),
        (SamplingMode.RANDOM, 0, "between 1 and"),
    ],
)
def test_bad_settings_are_refused(mode: SamplingMode, rate: int, message: str) -> None:
    """Contradictory or out-of-range settings raise a ConfigError saying why."""
    with pytest.raises(ConfigError, match=message):
        SamplingConfig(mode, rate)
