"""`spanflow convert` into real collectors: nfcapd/nfdump totals equal the ground truth.

Every sample and a 200,000-packet generated capture go out as NetFlow v5, v9
and IPFIX to an nfcapd on 127.0.0.1; nfdump's record, packet and byte totals
must equal an independent dpkt count exactly (v5: the IPv4 part), with no
sequence failures. tshark must decode every datagram of a --pcap-out file
without a malformed packet, with the same per-flow fields as our CSV.
"""

from __future__ import annotations

import csv
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bench.make_capture import write_capture
from tests.ground_truth import GroundTruth, ground_truth

pytestmark = pytest.mark.interop
REPO = Path(__file__).resolve().parent.parent
SAMPLES = sorted(p for p in (REPO / "samples").iterdir() if p.suffix in (".pcap", ".pcapng"))
NO_TIMEOUT = ["--inactive", "1e6", "--active", "1e6"]
FORMATS = {"5": "v5", "9": "v9", "ipfix": "ipfix"}
DEADLINE_S = 20

needs = pytest.mark.skipif(
    not (shutil.which("nfcapd") and shutil.which("nfdump")), reason="nfdump is not installed"
)


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Nfcapd:
    """nfcapd on 127.0.0.1, stopped by PID with a deadline, whatever happens."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True)
        self.port = free_udp_port()
        self.process = subprocess.Popen(
            ["nfcapd", "-b", "127.0.0.1", "-p", str(self.port), "-w", str(directory), "-t", "3600"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + DEADLINE_S
        while not self._listening():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                pytest.fail("nfcapd did not start listening")
            time.sleep(0.05)

    def _listening(self) -> bool:
        wanted = f":{self.port:04X} "
        return any(wanted in line for line in Path("/proc/net/udp").read_text().splitlines())

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(DEADLINE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(DEADLINE_S)

    def totals(self) -> dict[str, int]:
        """nfdump's summary of everything nfcapd stored: Flows, Packets, Bytes, Sequence failures."""
        files = sorted(self.directory.glob("nfcapd.*"))
        assert files, "nfcapd wrote no file"
        totals = {"Flows": 0, "Packets": 0, "Bytes": 0, "Sequence failures": 0}
        for path in files:
            out = subprocess.run(["nfdump", "-r", str(path), "-I"], capture_output=True,
                                 text=True, timeout=DEADLINE_S, check=True).stdout  # fmt: skip
            for line in out.splitlines():
                name, _, value = line.partition(":")
                if name in totals:
                    totals[name] += int(value)
        return totals

    def addresses(self) -> list[str]:
        out = subprocess.run(["nfdump", "-R", str(self.directory), "-q", "-o", "fmt:%sa"],
                             capture_output=True, text=True, timeout=DEADLINE_S, check=True)  # fmt: skip
        return [line.strip() for line in out.stdout.splitlines() if line.strip()]


@pytest.fixture
def nfcapd(tmp_path: Path) -> Iterator[Nfcapd]:
    collector = Nfcapd(tmp_path / "nfcapd")
    try:
        yield collector
    finally:
        collector.stop()


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("generated") / "generated-200k.pcap"
    write_capture(path, 200_000, seed=7)
    return path


@pytest.fixture(scope="module")
def truths(generated: Path) -> dict[Path, GroundTruth]:
    return {path: ground_truth(path) for path in [*SAMPLES, generated]}


def expected(truth: GroundTruth, ipv4_only: bool) -> dict[str, int]:
    """Records, packets and octets a router cache exports when no timeout fires."""
    keys = [(k, t) for k, t in truth.by_key.items() if not ipv4_only or k[0] == 4]
    records = sum(t.fin_or_rst + (0 if t.last_is_fin_or_rst else 1) for _, t in keys)
    return {
        "Flows": records,
        "Packets": sum(t.packets for _, t in keys),
        "Bytes": sum(t.octets for _, t in keys),
    }


def convert(capture: Path, *options: str) -> subprocess.CompletedProcess[str]:
    spanflow = Path(sys.executable).parent / "spanflow"
    return subprocess.run([str(spanflow), "convert", str(capture), *options],
                          capture_output=True, text=True, timeout=300, check=False)  # fmt: skip


@needs
@pytest.mark.parametrize("export_format", list(FORMATS))
def test_nfdump_totals_equal_ground_truth(
    nfcapd: Nfcapd, generated: Path, truths: dict[Path, GroundTruth], export_format: str
) -> None:
    """Every sample and the generated capture: nfdump's totals are exactly the ground truth."""
    want = {"Flows": 0, "Packets": 0, "Bytes": 0}
    refreshes_followed = 0  # messages with the sampling options record and one after them
    for source_id, capture in enumerate([*SAMPLES, generated], start=1):
        ids = (
            ["--engine-id", str(source_id)]
            if export_format == "5"
            else ["--source-id", str(source_id)]
        )
        result = convert(
            capture, "-c", f"127.0.0.1:{nfcapd.port}", "--format", export_format, *ids, *NO_TIMEOUT
        )
        assert result.returncode == 0, result.stderr
        datagrams = int(re.search(r"in (\d+) datagrams", result.stderr).group(1))  # type: ignore[union-attr]
        refreshes_followed += math.ceil((datagrams - 1) / 20)
        for name, value in expected(truths[capture], ipv4_only=export_format == "5").items():
            want[name] += value
    time.sleep(0.5)  # let nfcapd drain its socket before it is stopped
    nfcapd.stop()
    got = nfcapd.totals()
    assert {name: got[name] for name in want} == want
    # RFC 7011 3.1 counts every data record, the sampling options record too (Wireshark
    # agrees); nfdump 1.7 counts flow records only, so it flags the message after each
    # template refresh. v5 and v9 must show none.
    assert got["Sequence failures"] == (refreshes_followed if export_format == "ipfix" else 0)
    has_ipv6 = any(":" in address for address in nfcapd.addresses())
    assert has_ipv6 is (export_format != "5")


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("export_format", ["9", "ipfix"])
def test_tshark_decodes_pcap_out_like_our_csv(tmp_path: Path, export_format: str) -> None:
    """tshark reads every --pcap-out datagram cleanly, with our per-flow addresses and counters."""
    pcap, flows = tmp_path / "export.pcap", tmp_path / "flows.csv"
    result = convert(REPO / "samples" / "web.pcap", "--pcap-out", str(pcap), "-o", str(flows),
                     "--format", export_format)  # fmt: skip
    assert result.returncode == 0, result.stderr
    tshark = ["tshark", "-n", "-r", str(pcap), "-d", "udp.port==2055,cflow"]
    env = {**os.environ, "HOME": str(tmp_path)}
    expert = subprocess.run([*tshark, "-z", "expert,warn", "-q"], capture_output=True, text=True,
                            timeout=60, check=True, env=env).stdout  # fmt: skip
    assert "Malformed" not in expert
    assert "Errors (" not in expert
    fields = ["cflow.srcaddr", "cflow.dstaddr", "cflow.srcport", "cflow.dstport",
              "cflow.packets", "cflow.octets"]  # fmt: skip  # fmt: skip
    out = subprocess.run([*tshark, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=;",
                          *[arg for f in fields for arg in ("-e", f)]],
                         capture_output=True, text=True, timeout=60, check=True, env=env).stdout  # fmt: skip
    seen = set()
    for line in out.splitlines():
        columns = [column.split(";") for column in line.split("\t")]
        if columns and columns[0] != [""]:
            seen.update(zip(*columns, strict=True))
    with flows.open() as handle:
        ours = {(r["src"], r["dst"], r["sport"], r["dport"], r["packets"], r["octets"])
                for r in csv.DictReader(handle) if ":" not in r["src"]}  # fmt: skip
    assert ours
    assert ours <= seen
