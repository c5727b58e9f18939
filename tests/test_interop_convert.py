"""`spanflow convert` into real collectors: nfcapd/nfdump totals equal the ground truth.

Every sample and a 200,000-packet generated capture go out as NetFlow v5, v9
and IPFIX to an nfcapd on 127.0.0.1; nfdump's record, packet and byte totals
must equal an independent dpkt count exactly (v5: the IPv4 part), with no
sequence failures. tshark must decode every datagram of a --pcap-out file
without a malformed packet, with the same per-flow fields (end reason included,
IE 136 in v9 as in IPFIX) as our CSV.
"""

from __future__ import annotations

import csv
import math
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.records import EndReason
from tests.bench.make_capture import write_capture
from tests.collectors import HAVE_NFDUMP, Nfcapd
from tests.ground_truth import GroundTruth, ground_truth

pytestmark = pytest.mark.interop
REPO = Path(__file__).resolve().parent.parent
SAMPLES = sorted(p for p in (REPO / "samples").iterdir() if p.suffix in (".pcap", ".pcapng"))
NO_TIMEOUT = ["--inactive", "1e6", "--active", "1e6"]
FORMATS = {"5": "v5", "9": "v9", "ipfix": "ipfix"}

needs = pytest.mark.skipif(not HAVE_NFDUMP, reason="nfdump is not installed")


@pytest.fixture
def nfcapd(tmp_path: Path) -> Iterator[Nfcapd]:
    with Nfcapd(tmp_path / "nfcapd") as collector:
        yield collector


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
    nfcapd.drain()  # every datagram read before it is stopped
    nfcapd.stop()
    got = nfcapd.summary()
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
    """tshark reads every --pcap-out datagram cleanly, with our per-flow fields and end reason."""
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
              "cflow.packets", "cflow.octets", "cflow.flow_end_reason"]  # fmt: skip
    out = subprocess.run([*tshark, "-T", "fields", "-E", "occurrence=a", "-E", "aggregator=;",
                          *[arg for f in fields for arg in ("-e", f)]],
                         capture_output=True, text=True, timeout=60, check=True, env=env).stdout  # fmt: skip
    seen = set()
    for line in out.splitlines():
        columns = [column.split(";") for column in line.split("\t")]
        if columns and columns[0] != [""]:
            seen.update(zip(*columns, strict=True))
    with flows.open() as handle:
        ours = {(r["src"], r["dst"], r["sport"], r["dport"], r["packets"], r["octets"],
                 str(int(EndReason[r["end_reason"].upper()])))
                for r in csv.DictReader(handle) if ":" not in r["src"]}  # fmt: skip
    assert len({row[-1] for row in ours}) >= 2  # web.pcap ends flows in more than one way
    assert ours
    assert ours <= seen
