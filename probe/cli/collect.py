"""``spanflow collect``: its options; the decoders are imported when it runs (collecting.py)."""

from __future__ import annotations

import signal
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from probe.cli.errors import errors_exit


class OutputFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSONL = "jsonl"


def collect(
    listen: Annotated[
        str,
        typer.Option(metavar="HOST:PORT", help="Address to listen on, HOST:PORT (IPv4 or [IPv6])."),
    ] = "127.0.0.1:2055",
    output: Annotated[
        OutputFormat, typer.Option("--format", metavar="table|csv|jsonl", help="Output format.")
    ] = OutputFormat.TABLE,
    from_pcap: Annotated[
        Path | None,
        typer.Option(
            metavar="FILE", help="Read export datagrams from a pcap instead of listening."
        ),
    ] = None,
    scale: Annotated[
        bool, typer.Option(help="Multiply counters by the announced sampling interval.")
    ] = False,
    count: Annotated[
        int, typer.Option(min=0, metavar="N", help="Stop after this many datagrams (0: never).")
    ] = 0,
    duration: Annotated[
        float,
        typer.Option(min=0, metavar="SECONDS", help="Stop after this many seconds (0: never)."),
    ] = 0,
) -> None:
    """Decode NetFlow v5, v9 and IPFIX datagrams and print their flows.

    Templates are kept per exporter and source id; sequence gaps are counted;
    malformed datagrams are counted and skipped. Stops on Ctrl-C or SIGTERM.
    """
    from exporter.collector import Collector
    from probe.cli.collecting import RecordPrinter, from_pcap_file, listen_on

    collector = Collector(scale)
    printer = RecordPrinter(output)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with errors_exit(OSError):
            if from_pcap is not None:
                from_pcap_file(from_pcap, collector, printer, count)
            else:
                listen_on(listen, collector, printer, count, duration)
    except KeyboardInterrupt:
        pass
    stats = collector.stats
    typer.echo(
        f"spanflow: {stats.datagrams} datagrams ({stats.bad_datagrams} malformed), "
        f"{stats.records} records, {stats.sequence_gaps} sequence gaps",
        err=True,
    )
    if stats.first_error:
        typer.echo(f"spanflow: first malformed datagram: {stats.first_error}", err=True)
    for (sender, version, domain), interval in stats.sampling.items():
        typer.echo(
            f"spanflow: {sender} v{version} domain {domain}: sampling 1 in {interval}", err=True
        )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
