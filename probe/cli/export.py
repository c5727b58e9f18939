"""Export options shared by ``convert`` and ``capture``: resolved once, into a session."""

from __future__ import annotations

from dataclasses import dataclass, field

from core.attributes import FieldGroup
from core.choices import ExportFormat
from core.records import EndedRecords, RecordTable
from exporter import ExportConfig, Exporter, SamplingAlgorithm, format_named
from exporter.collector import Collector
from exporter.session import ExportSession
from exporter.sinks import MemorySink, PcapSink, Sink, UdpSink
from probe.cli.endpoints import Endpoint, parse_endpoint
from probe.meter.counters import RecordSink
from probe.meter.sampling import SamplingConfig


@dataclass(slots=True)
class ExportOptions:
    """What the command line said about export, before anything is opened."""

    collectors: list[str] = field(default_factory=list)
    export_format: ExportFormat = ExportFormat.V9
    source_id: int = 0
    engine_type: int = 0
    engine_id: int = 0
    mtu: int = 1472
    template_refresh_packets: int = 20
    template_refresh_seconds: float = 1800.0
    pace: float = 0.0
    pcap_out: str | None = None
    fields: frozenset[FieldGroup] = frozenset()

    @property
    def wants_export(self) -> bool:
        return bool(self.collectors) or self.pcap_out is not None


def open_session(
    options: ExportOptions, sampling: SamplingConfig, boot_ns: int = 0
) -> tuple[ExportSession, MemorySink | None]:
    """The session and its sinks; with no collector and no pcap, an in-memory sink to show.

    Raises ConfigError (bad address, MTU, sampling interval for v5) before any work.
    """
    exporter = make_exporter(options, sampling, boot_ns)
    endpoints: list[Endpoint] = [parse_endpoint(text) for text in options.collectors]
    sinks: list[Sink] = []
    memory: MemorySink | None = None
    try:
        for endpoint in endpoints:
            sinks.append(UdpSink(endpoint.address, endpoint.port))
        if options.pcap_out is not None:
            target = endpoints[0].sockaddr if endpoints else ("127.0.0.1", 2055)
            sinks.append(PcapSink(options.pcap_out, collector=target))
        if not sinks:
            memory = MemorySink()
            sinks.append(memory)
    except BaseException:
        for sink in sinks:
            sink.close()
        raise
    return ExportSession(exporter, sinks, options.pace), memory


def make_exporter(options: ExportOptions, sampling: SamplingConfig, boot_ns: int = 0) -> Exporter:
    """The encoder for these options; ConfigError for values it cannot honour."""
    for text in options.collectors:
        parse_endpoint(text)
    config = ExportConfig(
        source_id=options.source_id, engine_type=options.engine_type,
        engine_id=options.engine_id, mtu=options.mtu,
        template_refresh_packets=options.template_refresh_packets,
        template_refresh_seconds=options.template_refresh_seconds,
        sampling_interval=sampling.interval,
        sampling_algorithm=SamplingAlgorithm.for_mode(str(sampling.mode)), boot_ns=boot_ns,
        fields=options.fields,
    )  # fmt: skip
    exporter: Exporter = format_named(options.export_format.value).exporter(config)
    return exporter


def decoded_back(memory: MemorySink) -> RecordTable:
    """What a collector reads from the datagrams just built."""
    collector = Collector()
    return RecordTable.concat([collector.feed(d, ("spanflow", 0)) for d in memory.datagrams])


def fan_out(sinks: list[RecordSink]) -> RecordSink:
    """One record sink that hands every table to each of ``sinks``."""
    if len(sinks) == 1:
        return sinks[0]

    def every(records: EndedRecords) -> None:
        for sink in sinks:
            sink(records)

    return every
