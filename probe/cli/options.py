"""Command-line options that several commands share, declared once."""

from __future__ import annotations

from typing import Annotated

import typer

from core.choices import ExportFormat, FlowFileFormat, SamplingMode, TunnelView

DEFAULT_PACE = 10_000.0  # datagrams/s: nfcapd on loopback lost none at 40,000 (README)


Inactive = Annotated[
    float,
    typer.Option(metavar="SECONDS", help="Inactive timeout, seconds: a flow idle this long ends."),
]
Active = Annotated[
    float, typer.Option(metavar="SECONDS", help="Active timeout, seconds: a flow this old ends.")
]
MaxFlows = Annotated[
    int,
    typer.Option(
        metavar="N", help="Flow cache size; when full, the least recently updated flow ends."
    ),
]
KeyVlan = Annotated[bool, typer.Option(help="Make the outer VLAN id part of the flow key.")]
KeyMac = Annotated[
    bool, typer.Option(help="Make the source and destination MACs part of the flow key.")
]


Tunnels = Annotated[
    TunnelView,
    typer.Option(
        metavar="outer|inner",
        help="Key and count on the outermost IP header (a router's view) or the innermost of "
        "IPIP, GRE, ERSPAN, VXLAN, Geneve, GTP-U and Teredo tunnels.",
    ),
]
Fields = Annotated[
    str,
    typer.Option(
        "--fields",
        metavar="vlan,mac,mpls,tunnel",
        help="Add the first packet's inner VLAN, MACs, top 3 MPLS labels or (with --tunnels "
        "inner) outer tunnel endpoints to records: flow file columns, and v9/IPFIX fields "
        "(IE 245, 56/80, 70-72; tunnel endpoints have no IE: flow files only).",
    ),
]
Sampling = Annotated[
    SamplingMode,
    typer.Option(
        metavar="MODE",
        help="Packet sampling before the cache: full, deterministic, random or probabilistic.",
    ),
]
SamplingRate = Annotated[
    int | None,
    typer.Option(
        metavar="N", help="N of 1-in-N sampling; required by every --sampling mode but full."
    ),
]
Seed = Annotated[int, typer.Option(metavar="N", help="Seed of random and probabilistic sampling.")]
Collectors = Annotated[
    list[str] | None,
    typer.Option(
        "--collector",
        "-c",
        metavar="HOST:PORT",
        help="Send NetFlow to HOST:PORT (repeat for several).",
    ),
]
Format = Annotated[
    ExportFormat, typer.Option("--format", metavar="5|9|ipfix", help="Export format.")
]
SourceId = Annotated[
    int, typer.Option(metavar="N", help="v9 source id / IPFIX observation domain.")
]
EngineType = Annotated[int, typer.Option(metavar="N", help="v5 header engine type.")]
EngineId = Annotated[int, typer.Option(metavar="N", help="v5 header engine id.")]
Mtu = Annotated[
    int, typer.Option(metavar="BYTES", help="Largest UDP payload of a datagram, bytes.")
]
RefreshPackets = Annotated[
    int, typer.Option(metavar="N", help="v9/IPFIX: resend templates every N datagrams.")
]
RefreshSeconds = Annotated[
    float,
    typer.Option(
        metavar="SECONDS", help="v9/IPFIX: resend templates every S seconds of export clock."
    ),
]
Pace = Annotated[
    float, typer.Option(metavar="N", help="Datagrams per second at most (0: no limit).")
]
PcapOut = Annotated[
    str | None,
    typer.Option(metavar="FILE", help="Also write the export datagrams to a pcap file."),
]
FlowsOut = Annotated[
    str | None,
    typer.Option(
        "--flows-out",
        "-o",
        metavar="FILE",
        help="Write one row per record to FILE (any path, /dev/null too; - is stdout).",
    ),
]
FlowsFormat = Annotated[
    FlowFileFormat | None,
    typer.Option(
        "--flows-format",
        metavar="csv|jsonl|parquet|arrow",
        help="Format of the -o file (default: from its suffix .jsonl/.json/.parquet/.arrow(s), "
        "else CSV).",
    ),
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No summary on stderr.")]
Jobs = Annotated[
    int,
    typer.Option(
        "--jobs",
        "-j",
        metavar="N",
        help="Convert in slices on N local processes (records equal one pass).",
    ),
]
Dask = Annotated[
    str | None,
    typer.Option(
        metavar="tcp://HOST:PORT",
        help="Convert in slices on this Dask scheduler's workers (files at the same paths).",
    ),
]
SliceMib = Annotated[
    float | None,
    typer.Option(
        metavar="MIB",
        help="With --jobs/--dask: bytes per slice of a large pcap file (default: from its size).",
    ),
]
