"""A spoofed-source SYN flood through ``spanflow convert -``: each frame counted once, streaming."""

from __future__ import annotations

import csv
import io
import ipaddress
import random
import sys
import threading
from collections import Counter
from pathlib import Path

import dpkt
import pytest

from exporter.flowfile import FIELDS
from tests.bench.stream_run import END_REASONS, ChildStream, CsvTally
from tests.flood_stream import flood_chunks

FRAMES = 200_000
MAX_FLOWS = 4096
HELD_BACK_FRAMES = 50_000  # written only once records have come back (3.8 MB of input)
CHUNK_FRAMES = 10_000
SEED = 3
EPOCH_S = 1_767_603_600  # 2026-01-05 09:00:00 UTC, the flood's first frame
DEADLINE_S = 60.0  # first records, and the whole run; a warm run takes about 2 s
SOURCES = ipaddress.ip_network("198.18.0.0/15")
SERVER = ipaddress.ip_address("198.19.0.10")
SPANFLOW = Path(sys.executable).parent / "spanflow"


def test_flood_frames_are_syns_from_distinct_sources() -> None:
    """dpkt reads frame i as an IPv4 SYN to the server at i µs, from a key no other frame has."""
    stream = b"".join(flood_chunks(3000, SEED, chunk_frames=700))
    keys, times_s = set(), []
    for ts, frame in dpkt.pcap.Reader(io.BytesIO(stream)):
        ip = dpkt.ethernet.Ethernet(frame).data
        assert isinstance(ip, dpkt.ip.IP)
        assert isinstance(ip.data, dpkt.tcp.TCP)
        assert ip.data.flags == dpkt.tcp.TH_SYN
        assert ipaddress.ip_address(ip.src) in SOURCES
        assert ipaddress.ip_address(ip.dst) == SERVER
        assert ip.len == 40
        checksum, ip.sum = ip.sum, 0
        assert dpkt.ip.IP(bytes(ip)).sum == checksum  # dpkt fills in a zero checksum
        keys.add((ip.src, ip.data.sport))
        times_s.append(ts)
    assert len(keys) == 3000
    assert times_s == pytest.approx([EPOCH_S + i * 1e-6 for i in range(3000)], abs=1e-7)


def test_flood_bytes_do_not_depend_on_chunking() -> None:
    """The stream is the same whatever the chunk size."""
    assert b"".join(flood_chunks(5000, SEED, chunk_frames=333)) == b"".join(
        flood_chunks(5000, SEED, chunk_frames=5000)
    )


def test_flood_through_convert_stdin_counts_every_frame_once() -> None:
    """With every key new, N frames give N one-packet records: N - M cache_full, M forced,
    and records come back while part of the input is still unwritten."""
    received: list[bytes] = []
    first_record = threading.Event()

    lines = [0]

    def collect(block: bytes) -> None:
        received.append(block)
        lines[0] += block.count(b"\n")
        if lines[0] >= 2:  # the header and one record
            first_record.set()

    child = ChildStream(["--max-flows", str(MAX_FLOWS)], on_output=collect, spanflow=SPANFLOW)
    try:
        chunks = flood_chunks(FRAMES, SEED, CHUNK_FRAMES)
        child.write(next(chunks))
        for _ in range((FRAMES - HELD_BACK_FRAMES) // CHUNK_FRAMES):
            child.write(next(chunks))
        streamed = first_record.wait(DEADLINE_S)
        for chunk in chunks:
            child.write(chunk)
        finished = child.finish(DEADLINE_S)
    finally:
        child.kill()
    assert streamed, "no record came back before the end of input"
    assert finished.returncode == 0, finished.stderr
    rows = list(csv.DictReader(io.StringIO(b"".join(received).decode())))
    assert len(rows) == FRAMES
    assert sum(int(row["packets"]) for row in rows) == FRAMES
    assert Counter(row["end_reason"] for row in rows) == {
        "cache_full": FRAMES - MAX_FLOWS,
        "forced": MAX_FLOWS,
    }
    assert len({(row["src"], row["sport"]) for row in rows}) == FRAMES
    assert {(row["dst"], row["dport"], row["tcp_flags"]) for row in rows} == {
        (str(SERVER), "80", "2")
    }


def test_csv_tally_matches_the_csv_module_whatever_the_cuts() -> None:
    """The benchmarks' numpy tally gives the totals csv.DictReader gives, fed in random pieces."""
    rng = random.Random(SEED)
    rows = [
        {name: str(rng.randrange(10 ** rng.randrange(1, 12))) for name in FIELDS}
        | {"src": "2001:db8::1", "dst": "198.18.0.1", "end_reason": rng.choice(END_REASONS)}
        for _ in range(2000)
    ]
    text = io.StringIO()
    writer = csv.DictWriter(text, FIELDS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    data = text.getvalue().encode()
    tally, at = CsvTally(), 0
    while at < len(data):
        step = rng.randrange(1, 5000)
        tally.feed(data[at : at + step])
        at += step
    tally.check_complete()
    parsed = list(csv.DictReader(io.StringIO(data.decode())))
    assert tally.records == len(parsed) == 2000
    assert tally.packets == sum(int(row["packets"]) for row in parsed)
    assert tally.octets == sum(int(row["octets"]) for row in parsed)
    assert tally.by_reason == Counter(row["end_reason"] for row in parsed)
