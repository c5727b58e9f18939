"""atheris target: the decoder over fuzzed frames of every link type (run by run_campaign.py).

Usage: python tests/fuzz/fuzz_decode.py [CORPUS_DIR] [libFuzzer options]
"""

from __future__ import annotations

import sys

import atheris  # type: ignore[import-untyped]  # ships no type information

from tests.fuzz.choices import FdpChoices
from tests.fuzz.instrument import fuzz, load

MODULES = load()
frame_cases = MODULES["tests.fuzz.frame_cases"]
decode_checks = MODULES["tests.fuzz.decode_checks"]


def test_one_input(data: bytes) -> None:
    """Up to 8 frames (random, or valid then damaged), checked row by row; a failure crashes."""
    c = FdpChoices(atheris.FuzzedDataProvider(data))
    frames = [frame_cases.fuzz_frame(c) for _ in range(c.integer(0, 8))]
    decode_checks.check_decode(frame_cases.batch_of(frames, c))


if __name__ == "__main__":
    fuzz(test_one_input, sys.argv)
