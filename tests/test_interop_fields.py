"""--fields: MACs, inner VLAN and MPLS labels reach nfdump and tshark; flow files match.

A capture built here: 24 flows over QinQ and MPLS label stacks of 1 to 4
entries (IPv4 and IPv6), each flow with its own MACs, inner VLAN and labels,
all known from how the frames were built. The CSV must show them; nfdump
(from nfcapd on loopback) and tshark (from --pcap-out) must decode them
from the v9 and IPFIX templates.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests import frames as f
from tests.captures import Frame, pcap_file
from tests.collectors import HAVE_NFDUMP, Nfcapd, run_nfdump

pytestmark = pytest.mark.interop
FLOWS = 24
PACKETS_PER_FLOW = 3
T0_NS = 1_767_225_600_000_000_000


@dataclass(frozen=True)
class Built:
    """What a flow's frames were built with."""

    sport: int
    src_mac: str
    dst_mac: str
    inner_vlan: int
    labels: tuple[int, ...]


def _mac(text: str) -> bytes:
    return bytes.fromhex(text.replace(":", ""))


def built_flows() -> list[Built]:
    flows = []
    for j in range(FLOWS):
        labels = tuple(16000 + 100 * k + j for k in range(1 + j % 4))
        flows.append(Built(20000 + j, f"02:aa:00:00:{j:02x}:01", f"02:bb:00:00:{j:02x}:02",
                           300 + j, labels))  # fmt: skip
    return flows


def capture_frames(flows: list[Built]) -> list[Frame]:
    frames = []
    for j, flow in enumerate(flows):
        if j % 3 == 2:
            l3 = f.ipv6(f.udp(flow.sport, 53, b"q" * 20), src="2001:db8:7::1", dst="2001:db8:7::2")
        else:
            l3 = f.ipv4(f.udp(flow.sport, 53, b"q" * 20), src="198.18.7.1", dst="198.18.7.2")
        frame = f.eth(l3, tags=[f.Tag(200, f.ETH_8021AD), f.Tag(flow.inner_vlan)],
                      labels=list(flow.labels))  # fmt: skip
        frame = _mac(flow.dst_mac) + _mac(flow.src_mac) + frame[12:]
        for k in range(PACKETS_PER_FLOW):
            frames.append(Frame(frame, T0_NS + (j * PACKETS_PER_FLOW + k) * 1_000_000))
    return frames


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("fields") / "qinq_mpls.pcap"
    path.write_bytes(pcap_file(capture_frames(built_flows())))
    return path


def spanflow(*args: str) -> subprocess.CompletedProcess[str]:
    command = [str(Path(sys.executable).parent / "spanflow"), *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture
def nfcapd(tmp_path: Path) -> Iterator[Nfcapd]:
    with Nfcapd(tmp_path / "nfcapd") as collector:
        yield collector


def test_csv_and_jsonl_columns_hold_what_the_frames_were_built_with(
    capture: Path, tmp_path: Path
) -> None:
    out = tmp_path / "flows.csv"
    result = spanflow("convert", str(capture), "--fields", "mpls,mac,vlan", "-o", str(out), "-q")
    assert result.returncode == 0, result.stderr
    with out.open() as handle:
        rows = {int(r["sport"]): r for r in csv.DictReader(handle)}
    assert list(next(iter(rows.values())))[-6:] == [
        "inner_vlan", "src_mac", "dst_mac", "mpls1", "mpls2", "mpls3"
    ]  # fmt: skip
    for flow in built_flows():
        row = rows[flow.sport]
        labels = [row[f"mpls{k}"] for k in (1, 2, 3)]
        assert labels == [str(v) for v in flow.labels[:3]] + [""] * (3 - len(flow.labels[:3]))
        assert (row["src_mac"], row["dst_mac"]) == (flow.src_mac, flow.dst_mac)
        assert (row["vlan"], row["inner_vlan"]) == ("200", str(flow.inner_vlan))
    jsonl = tmp_path / "flows.jsonl"
    result = spanflow("convert", str(capture), "--fields", "mpls", "-o", str(jsonl), "-q")
    assert result.returncode == 0, result.stderr
    records = {r["sport"]: r for r in map(json.loads, jsonl.read_text().splitlines())}
    one_label = records[built_flows()[0].sport]
    assert (one_label["mpls1"], one_label["mpls2"], one_label["mpls3"]) == (16000, None, None)


@pytest.mark.skipif(not HAVE_NFDUMP, reason="nfdump is not installed")
@pytest.mark.parametrize("export_format", ["9", "ipfix"])
def test_nfdump_shows_macs_and_labels(capture: Path, nfcapd: Nfcapd, export_format: str) -> None:
    result = spanflow("convert", str(capture), "-c", f"127.0.0.1:{nfcapd.port}", "--format",
                      export_format, "--fields", "vlan,mac,mpls", "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    nfcapd.drain()
    nfcapd.stop()
    out = run_nfdump(
        "-R", str(nfcapd.directory), "-q", "-o", "fmt:%sp %ismc %idmc %mpls1 %mpls2 %mpls3"
    )
    shown = {int(line.split()[0]): line.split()[1:] for line in out.splitlines() if line.strip()}
    assert len(shown) == FLOWS
    for flow in built_flows():
        macs, labels = shown[flow.sport][:2], shown[flow.sport][2:]
        assert macs == [flow.src_mac, flow.dst_mac]
        for k, label in enumerate(flow.labels[:3]):
            assert labels[k].split("-")[0] == str(label), (flow, labels)


@pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")
@pytest.mark.parametrize("export_format", ["9", "ipfix"])
def test_tshark_decodes_every_field(capture: Path, tmp_path: Path, export_format: str) -> None:
    pcap = tmp_path / "export.pcap"
    result = spanflow("convert", str(capture), "--pcap-out", str(pcap), "--format", export_format,
                      "--fields", "vlan,mac,mpls", "-q")  # fmt: skip
    assert result.returncode == 0, result.stderr
    fields = ["cflow.srcport", "cflow.srcmac", "cflow.dstmac", "cflow.dot1q_customer_vlan_id",
              "cflow.mpls_label"]  # fmt: skip
    command = [
        "tshark",
        "-n",
        "-r",
        str(pcap),
        "-d",
        "udp.port==2055,cflow",
        "-T",
        "fields",
        "-E",
        "occurrence=a",
        "-E",
        "aggregator=;",
        *[a for x in fields for a in ("-e", x)],
    ]
    env = {**os.environ, "HOME": str(tmp_path)}
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=True, env=env)
    seen: dict[int, tuple[str, str, str, list[str]]] = {}
    for line in out.stdout.splitlines():
        ports, src, dst, vlans, labels = (column.split(";") for column in line.split("\t"))
        if ports == [""]:
            continue
        per_record = len(labels) // len(ports)  # three label fields in every record
        for r, port in enumerate(ports):
            seen[int(port)] = (
                src[r],
                dst[r],
                vlans[r],
                labels[r * per_record : (r + 1) * per_record],
            )
    assert len(seen) == FLOWS
    for flow in built_flows():
        src, dst, vlan, labels = seen[flow.sport]
        assert (src, dst, vlan) == (flow.src_mac, flow.dst_mac, str(flow.inner_vlan))
        top = list(flow.labels[:3])
        assert labels == [str(v) for v in top] + ["0"] * (3 - len(top))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ["--fields", "mac", "--format", "5", "-c", "127.0.0.1:9"],
            "NetFlow v5 records have no room",
        ),
        (["--fields", "tunnel", "-o", "-"], "--fields tunnel needs --tunnels inner"),
        (["--fields", "mac,colour", "-o", "-"], "unknown field 'colour'"),
    ],
)
def test_fields_that_cannot_be_honoured_are_one_line_errors(
    capture: Path, options: list[str], message: str
) -> None:
    result = spanflow("convert", str(capture), *options)
    assert result.returncode == 2
    assert message in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_key_mac_splits_a_five_tuple_seen_from_two_macs(tmp_path: Path) -> None:
    """Four packets of one UDP 5-tuple, alternately from two source MACs."""
    l3 = f.ipv4(f.udp(5000, 53, b"q"), src="198.18.9.1", dst="198.18.9.2")
    macs = ["02:00:00:00:00:0a", "02:00:00:00:00:0b"]
    frames = [Frame(_mac("02:00:00:00:00:01") + _mac(macs[k % 2]) + f.eth(l3)[12:], T0_NS + k)
              for k in range(4)]  # fmt: skip
    capture = tmp_path / "two_macs.pcap"
    capture.write_bytes(pcap_file(frames))

    def records(*options: str) -> list[dict[str, str]]:
        out = tmp_path / "flows.csv"
        result = spanflow("convert", str(capture), "-o", str(out), "-q", *options)
        assert result.returncode == 0, result.stderr
        with out.open() as handle:
            return list(csv.DictReader(handle))

    split = records("--key-mac", "--fields", "mac")
    assert sorted((r["src_mac"], r["packets"]) for r in split) == [(macs[0], "2"), (macs[1], "2")]
    one = records("--fields", "mac")
    assert [(r["src_mac"], r["packets"]) for r in one] == [(macs[0], "4")]  # the first packet's
