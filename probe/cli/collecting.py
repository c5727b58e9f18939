"""What ``spanflow collect`` does: read datagrams from a socket or a pcap, print records."""

from __future__ import annotations

import select
import socket
import sys
import time
from pathlib import Path

import typer

from core.errors import ConfigError
from core.records import RecordTable
from exporter.collector import Collector, udp_payload
from exporter.flowfile import RowFormat
from exporter.table import table_lines
from probe.cli.collect import OutputFormat
from probe.cli.endpoints import parse_endpoint
from probe.sources.capture import Capture

POLL_S = 0.2


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


def _sender(sender: object) -> str:
    if isinstance(sender, tuple) and len(sender) == 2:
        host, port = sender
        return f"[{host}]:{port}" if ":" in str(host) else f"{host}:{port}"
    return str(sender)


def from_pcap_file(path: Path, collector: Collector, printer: RecordPrinter, count: int) -> None:
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


def listen_on(
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
