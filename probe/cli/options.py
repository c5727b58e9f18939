"""Command-line options that several commands share, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

from probe.cli.export import ExportFormat
from probe.meter.sampling import SamplingMode

Inactive = Annotated[
    float, typer.Option(help="Inactive timeout, seconds: a flow idle this long ends.")
]
Active = Annotated[float, typer.Option(help="Active timeout, seconds: a flow this old ends.")]
MaxFlows = Annotated[
    int, typer.Option(help="Flow cache size; when full, the least recently updated flow ends.")
]
KeyVlan = Annotated[bool, typer.Option(help="Make the outer VLAN id part of the flow key.")]
Sampling = Annotated[SamplingMode, typer.Option(help="Packet sampling before the cache.")]
SamplingRate = Annotated[int, typer.Option(help="N of 1-in-N sampling (needs a --sampling mode).")]
Seed = Annotated[int, typer.Option(help="Seed of random and probabilistic sampling.")]
Collectors = Annotated[
    list[str] | None,
    typer.Option("--collector", "-c", help="Send NetFlow to HOST:PORT (repeat for several)."),
]
Format = Annotated[ExportFormat, typer.Option("--format", help="Export format.")]
SourceId = Annotated[int, typer.Option(help="v9 source id / IPFIX observation domain.")]
EngineType = Annotated[int, typer.Option(help="v5 header engine type.")]
EngineId = Annotated[int, typer.Option(help="v5 header engine id.")]
Mtu = Annotated[int, typer.Option(help="Largest UDP payload of a datagram, bytes.")]
RefreshPackets = Annotated[int, typer.Option(help="v9/IPFIX: resend templates every N datagrams.")]
RefreshSeconds = Annotated[
    float, typer.Option(help="v9/IPFIX: resend templates every S seconds of export clock.")
]
Pace = Annotated[float, typer.Option(help="Datagrams per second at most (0: no limit).")]
PcapOut = Annotated[
    str | None, typer.Option(help="Also write the export datagrams to a pcap file.")
]
FlowsOut = Annotated[
    str | None,
    typer.Option(
        "--flows-out", "-o", help="Write records to FILE.csv or FILE.jsonl (- = CSV on stdout)."
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No summary on stderr.")]
