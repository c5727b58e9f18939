"""Encoders, decoders and sinks for NetFlow v5, v9 and IPFIX; the exporter is picked by version."""

from exporter.formats import ExportConfig, Exporter, SamplingAlgorithm
from exporter.ipfix import IpfixDecoder, IpfixExporter
from exporter.v5 import V5Exporter, decode_v5
from exporter.v9 import V9Decoder, V9Exporter

EXPORTERS: dict[int, type[V5Exporter] | type[V9Exporter] | type[IpfixExporter]] = {
    5: V5Exporter,
    9: V9Exporter,
    10: IpfixExporter,
}

__all__ = [
    "EXPORTERS",
    "ExportConfig",
    "Exporter",
    "IpfixDecoder",
    "IpfixExporter",
    "SamplingAlgorithm",
    "V5Exporter",
    "V9Decoder",
    "V9Exporter",
    "decode_v5",
]
