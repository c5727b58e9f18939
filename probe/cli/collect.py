"""``spanflow collect``: a small NetFlow v5/v9/IPFIX collector for users without nfdump."""

from __future__ import annotations

import select
import signal
import socket
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer

from core.errors import ConfigError
from core.records import RecordTable
from exporter.collector import Collector, udp_payload
from exporter.flowfile import RowFormat
from exporter.table import table_lines
from probe.cli.endpoints import parse_endpoint
from probe.cli.errors import errors_exit
from probe.sources.capture import Capture

POLL_S = 0.2


class OutputFormat(StrEnum):
    TABLE = "table"
    CSV = "csv"
    JSONL = "jsonl"


class RecordPrinter:
    """Writes records to stdout as they arrive, the header once."""

    def __init__(self, output: OutputFormat) -> None:
        self.output = output
        self.started = False

    def __call__(self, records: RecordTable) -> None:
        if len(records) == 0:
            return
        if self.output is OutputFormat.TABLE:
            lines = list(table_lines(records))
            text = "\n".join(lines if not self.started else lines[1:]) + "\n"
            sys.stdout.write(text)
        else:
            row_format = RowFormat.csv() if self.output is OutputFormat.CSV else RowFormat.jsonl()
            out = sys.stdout.buffer
            if not self.started:
                out.write(row_format.header)
            out.write(row_format.render(records))
        self.started = True
        sys.stdout.flush()


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
    collector = Collector(scale)
    printer = RecordPrinter(output)
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        with errors_exit(OSError):
            if from_pcap is not None:
                _from_pcap(from_pcap, collector, printer, count)
            else:
                _listen(listen, collector, printer, count, duration)
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


def _sender(sender: object) -> str:
    if isinstance(sender, tuple) and len(sender) == 2:
        host, port = sender
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(sender)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def _from_pcap(path: Path, collector: Collector, printer: RecordPrinter, count: int) -> None:
    capture = Capture(str(path))
    try:
        seen = 0
        for frames in capture.reader.batches():
            for row in range(len(frames)):
                start = int(frames.offset[row])
                frame = frames.buf[start : start + int(frames.caplen[row])].tobytes()
                found = udp_payload(frame, int(frames.linktype[row]))
                if found is None:
                    continue
                source, port, payload = found
                printer(collector.feed(payload, (source, port)))
                seen += 1
                if count and seen >= count:
                    return
    finally:
        capture.close()


def _listen(
    listen: str, collector: Collector, printer: RecordPrinter, count: int, duration: float
) -> None:
    endpoint = parse_endpoint(listen, default_port=2055)
    with socket.socket(endpoint.family, socket.SOCK_DGRAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32 << 20)
        try:
            sock.bind(endpoint.sockaddr)
        except OSError as exc:
            raise ConfigError(f"cannot listen on {endpoint}: {exc.strerror}") from exc
        typer.echo(f"spanflow: listening on {endpoint}", err=True)
        deadline = time.monotonic() + duration if duration else None
        seen = 0
        while deadline is None or time.monotonic() < deadline:
            readable, _, _ = select.select([sock], [], [], POLL_S)
            if not readable:
                continue
            payload, sender = sock.recvfrom(65535)
            printer(collector.feed(payload, sender[:2]))
            seen += 1
            if count and seen >= count:
                return
