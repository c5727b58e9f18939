"""atheris target: the capture readers, meter and CLI over damaged samples (run by run_campaign.py).

Usage: python tests/fuzz/fuzz_readers.py [CORPUS_DIR] [libFuzzer options]
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import atheris  # type: ignore[import-untyped]  # ships no type information

from tests.fuzz.capture_cases import SMALL_SAMPLES, capture_case
from tests.fuzz.choices import FdpChoices
from tests.fuzz.instrument import fuzz, load

MODULES = load()
capture_checks = MODULES["tests.fuzz.capture_checks"]
SAMPLES = (*SMALL_SAMPLES, "web.pcap", "two_interfaces.pcapng")  # the pcapng twice: its blocks
WORK = Path(tempfile.mkdtemp(prefix="spanflow-fuzz-readers-"))


def test_one_input(data: bytes) -> None:
    """A sample changed, damaged or both, read every way; one case in 16 also runs the CLI."""
    c = FdpChoices(atheris.FuzzedDataProvider(data))
    case = capture_case(c, SAMPLES, options=True)
    cli = c.integer(0, 15) == 0
    capture_checks.check_capture(case, WORK / "capture.pcap", c.integer(1, 80), cli=cli)


if __name__ == "__main__":
    fuzz(test_one_input, sys.argv)
