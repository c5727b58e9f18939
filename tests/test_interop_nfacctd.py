"""`spanflow convert` into pmacct's nfacctd: its print plugin's totals equal the ground truth.

web.pcap and ipv6.pcap go out as NetFlow v5, v9 and IPFIX to an nfacctd on
127.0.0.1 whose print plugin appends CSV rows every second; the packets and
bytes summed over those rows must equal an independent dpkt count exactly
(v5: the IPv4 part).
"""

from __future__ import annotations

import csv
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.collectors import free_udp_port, stop_process, udp_queue_bytes
from tests.ground_truth import ground_truth

pytestmark = pytest.mark.interop
REPO = Path(__file__).resolve().parent.parent
CAPTURES = [REPO / "samples" / "web.pcap", REPO / "samples" / "ipv6.pcap"]
NO_TIMEOUT = ["--inactive", "1e6", "--active", "1e6"]
DEADLINE_S = 20
REFRESH_S = 1  # print_refresh_time
SETTLED_S = 3 * REFRESH_S  # totals unchanged this long: every purge has been written

needs = pytest.mark.skipif(
    shutil.which("nfacctd") is None, reason="pmacct (nfacctd) is not installed"
)


class Nfacctd:
    """nfacctd in the foreground on 127.0.0.1, stopped by PID with a deadline, whatever happens."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True)
        self.port = free_udp_port()
        self.output = directory / "out.csv"
        config = directory / "nfacctd.conf"
        config.write_text(
            "daemonize: false\n"
            "nfacctd_ip: 127.0.0.1\n"
            f"nfacctd_port: {self.port}\n"
            "plugins: print\n"
            "print_output: csv\n"
            f"print_output_file: {self.output}\n"
            "print_output_file_append: true\n"
            f"print_refresh_time: {REFRESH_S}\n"
            "aggregate: src_host, dst_host, src_port, dst_port, proto\n"
        )
        self.log = directory / "nfacctd.log"
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                ["nfacctd", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + DEADLINE_S
        while udp_queue_bytes(self.port) is None:
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail(f"nfacctd did not start listening:\n{self.log.read_text()}")
            time.sleep(0.05)

    def stop(self) -> None:
        # nfacctd ends on SIGINT; SIGTERM can leave it running for seconds.
        stop_process(self.process, signal.SIGINT, DEADLINE_S)

    def totals(self) -> tuple[int, int]:
        """(packets, bytes) summed over every CSV row the print plugin has written so far."""
        if not self.output.exists():
            return 0, 0
        packets = octets = 0
        with self.output.open(newline="") as handle:
            for row in csv.DictReader(handle):
                packets += int(row["PACKETS"])
                octets += int(row["BYTES"])
        return packets, octets

    def settled_totals(self) -> tuple[int, int]:
        """Totals once they have not changed for SETTLED_S (print purges every REFRESH_S)."""
        deadline = time.monotonic() + DEADLINE_S
        last, since = self.totals(), time.monotonic()
        while time.monotonic() - since < SETTLED_S:
            if time.monotonic() > deadline:
                pytest.fail(f"nfacctd's totals never settled: {self.totals()}")
            time.sleep(0.25)
            now = self.totals()
            if now != last:
                last, since = now, time.monotonic()
        return last


@pytest.fixture
def nfacctd(tmp_path: Path) -> Iterator[Nfacctd]:
    collector = Nfacctd(tmp_path / "nfacctd")
    try:
        yield collector
    finally:
        collector.stop()


def convert(capture: Path, *options: str) -> subprocess.CompletedProcess[str]:
    spanflow = Path(sys.executable).parent / "spanflow"
    return subprocess.run([str(spanflow), "convert", str(capture), *options],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


@needs
@pytest.mark.parametrize("export_format", ["5", "9", "ipfix"])
def test_nfacctd_totals_equal_ground_truth(nfacctd: Nfacctd, export_format: str) -> None:
    """web.pcap and ipv6.pcap: nfacctd's packet and byte totals are exactly the ground truth."""
    want_packets = want_octets = 0
    for source_id, capture in enumerate(CAPTURES, start=1):
        ids = ["--engine-id" if export_format == "5" else "--source-id", str(source_id)]
        result = convert(capture, "-c", f"127.0.0.1:{nfacctd.port}", "--format", export_format,
                         "-q", *ids, *NO_TIMEOUT)  # fmt: skip
        assert result.returncode == 0, result.stderr
        truth = ground_truth(capture)
        if export_format == "5":
            ipv4 = [t for k, t in truth.by_key.items() if k[0] == 4]
            want_packets += sum(t.packets for t in ipv4)
            want_octets += sum(t.octets for t in ipv4)
        else:
            want_packets += truth.ip_packets
            want_octets += truth.ip_octets
    assert want_packets > 0
    got = nfacctd.settled_totals()
    nfacctd.stop()
    assert nfacctd.totals() == got  # stopping wrote nothing that had not settled
    assert got == (want_packets, want_octets)
