"""The named choices the command line offers, importable without numpy.

They are values the engine also takes (sampling modes, flow file formats,
export formats, capture back ends, tunnel views); keeping them here lets
``spanflow --help`` build every command's options without loading numpy,
numba or the kernels.
"""

from __future__ import annotations

import sys
from enum import StrEnum


class SamplingMode(StrEnum):
    FULL = "full"
    DETERMINISTIC = "deterministic"  # frame i when i % N == 0
    RANDOM = "random"  # exactly one frame, uniformly, in each window [kN, (k+1)N)
    PROBABILISTIC = "probabilistic"  # each frame independently with probability 1/N


class FlowFileFormat(StrEnum):
    CSV = "csv"
    JSONL = "jsonl"
    PARQUET = "parquet"
    ARROW = "arrow"  # Arrow IPC stream


class ExportFormat(StrEnum):
    """The --format choices: each names a row of exporter.FORMATS (``exporter.format_named``)."""

    V5 = "5"
    V9 = "9"
    IPFIX = "ipfix"


class TunnelView(StrEnum):
    OUTER = "outer"
    INNER = "inner"


class Backend(StrEnum):
    AFPACKET = "afpacket"
    PCAP = "pcap"


DEFAULT_BACKEND = Backend.AFPACKET if sys.platform.startswith("linux") else Backend.PCAP
