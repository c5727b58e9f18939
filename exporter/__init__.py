"""Encoders, decoders and sinks for NetFlow v5, v9 and IPFIX; formats are looked up in FORMATS."""

from exporter.formats import ExportConfig, Exporter, SamplingAlgorithm
from exporter.ipfix import IpfixDecoder, IpfixExporter
from exporter.registry import FORMATS, ExporterClass, WireFormat, format_named
from exporter.v5 import V5Exporter, decode_v5
from exporter.v9 import V9Decoder, V9Exporter

EXPORTERS: dict[int, ExporterClass] = {version: f.exporter for version, f in FORMATS.items()}

__all__ = [
    "EXPORTERS",
    "FORMATS",
    "ExportConfig",
    "Exporter",
    "IpfixDecoder",
    "IpfixExporter",
    "SamplingAlgorithm",
    "V5Exporter",
    "V9Decoder",
    "V9Exporter",
    "WireFormat",
    "decode_v5",
    "format_named",
]
