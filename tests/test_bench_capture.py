"""The benchmark capture generator: every frame parses with dpkt, and its ground truth is right."""

from __future__ import annotations

import hashlib
import ipaddress
import json
import struct
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import dpkt
import pytest

from tests.bench.make_capture import main, write_capture
from tests.ground_truth import TCP_FIN, GroundTruth, ground_truth

N_PACKETS = 5000
SEED = 7
V4_NET = ipaddress.ip_network("198.18.0.0/15")
V6_NET = ipaddress.ip_network("2001:db8::/32")
# libpcap 2.4, µs, little endian: magic, version, thiszone, sigfigs, snaplen 65535, DLT_EN10MB.
PCAP_HEADER = bytes.fromhex("d4c3b2a1 0200 0400 00000000 00000000 ffff0000 01000000")


@dataclass(frozen=True, slots=True)
class Record:
    ts_us: int
    caplen: int
    wirelen: int
    frame: bytes


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    path = tmp_path_factory.mktemp("bench") / "bench.pcap"
    return path, write_capture(path, N_PACKETS, SEED)


@pytest.fixture(scope="module")
def records(capture: tuple[Path, dict[str, int]]) -> list[Record]:
    """The packet records, split with struct from the file header on (not with dpkt)."""
    data = capture[0].read_bytes()
    out, pos = [], 24
    while pos < len(data):
        sec, usec, caplen, wirelen = struct.unpack_from("<IIII", data, pos)
        out.append(
            Record(sec * 1_000_000 + usec, caplen, wirelen, data[pos + 16 : pos + 16 + caplen])
        )
        pos += 16 + caplen
    assert pos == len(data), "the last record runs past the end of the file"
    return out


@pytest.fixture(scope="module")
def dpkt_truth(capture: tuple[Path, dict[str, int]]) -> GroundTruth:
    return ground_truth(capture[0])


def ip_layer(frame: bytes) -> tuple[dpkt.ip.IP | dpkt.ip6.IP6, int]:
    """The IP packet of an Ethernet frame and the L2 header length."""
    eth = dpkt.ethernet.Ethernet(frame)
    ip = eth.data
    assert isinstance(ip, dpkt.ip.IP | dpkt.ip6.IP6), f"not IP: {frame[:40].hex()}"
    return ip, 14 + 4 * len(getattr(eth, "vlan_tags", []))


class TestFile:
    def test_header_is_classic_microsecond_ethernet(
        self, capture: tuple[Path, dict[str, int]]
    ) -> None:
        """The file opens with the little-endian µs libpcap header, snaplen 65535, LINKTYPE_ETHERNET."""
        assert capture[0].read_bytes()[:24] == PCAP_HEADER

    def test_records_tile_the_file(
        self, capture: tuple[Path, dict[str, int]], records: list[Record]
    ) -> None:
        """There are n_packets full records, no truncation, and file_bytes is the file size."""
        path, truth = capture
        assert len(records) == N_PACKETS == truth["frames"]
        assert all(r.caplen == r.wirelen == len(r.frame) for r in records)
        assert truth["file_bytes"] == path.stat().st_size
        assert truth["wire_bytes"] == sum(r.caplen for r in records)

    def test_times_are_sorted_within_two_minutes(self, records: list[Record]) -> None:
        """Timestamps never go back and span at most 120 s, more than 100 s."""
        times = [r.ts_us for r in records]
        assert times == sorted(times)
        assert 100_000_000 < times[-1] - times[0] <= 120_000_000

    def test_same_seed_same_bytes_whatever_the_chunking(self, tmp_path: Path) -> None:
        """A seed gives the same file at any chunk size; another seed gives another file."""
        digests = []
        for seed, chunk in [(3, 200_000), (3, 97), (4, 200_000)]:
            path = tmp_path / f"{seed}-{chunk}.pcap"
            write_capture(path, 800, seed, chunk_packets=chunk)
            digests.append(hashlib.sha256(path.read_bytes()).hexdigest())
        assert digests[0] == digests[1] != digests[2]


class TestFrames:
    def test_lengths_agree_with_the_frame(self, records: list[Record]) -> None:
        """IP length fields equal the frame minus L2; only frames padded to 60 bytes are longer."""
        for r in records:
            ip, l2 = ip_layer(r.frame)
            ip_len = ip.len if isinstance(ip, dpkt.ip.IP) else 40 + ip.plen
            if r.caplen > 60:
                assert ip_len == r.caplen - l2
            else:
                assert r.caplen == 60
                assert ip_len <= 60 - l2
                assert r.frame[l2 + ip_len :] == bytes(60 - l2 - ip_len)

    def test_headers_are_well_formed(self, records: list[Record]) -> None:
        """IPv4 headers have valid checksums; TCP, UDP and ICMP headers parse with consistent lengths."""
        for r in records:
            ip, l2 = ip_layer(r.frame)
            if isinstance(ip, dpkt.ip.IP):
                assert ip.hl == 5
                assert dpkt.in_cksum(r.frame[l2 : l2 + 20]) == 0
                payload_len = ip.len - 20
            else:
                payload_len = ip.plen
            l4 = ip.data
            if ip.p == 6:
                assert isinstance(l4, dpkt.tcp.TCP)
                assert l4.off == 5
            elif ip.p == 17:
                assert isinstance(l4, dpkt.udp.UDP)
                assert l4.ulen == payload_len
            else:
                assert (ip.p, l4.type, l4.code) in {
                    (1, 8, 0),
                    (1, 0, 0),
                    (58, 128, 0),
                    (58, 129, 0),
                }

    def test_addresses_are_documentation_ranges(self, records: list[Record]) -> None:
        """Every address lies in 198.18.0.0/15 or 2001:db8::/32."""
        for r in records:
            ip, _ = ip_layer(r.frame)
            net = V4_NET if isinstance(ip, dpkt.ip.IP) else V6_NET
            assert ipaddress.ip_address(ip.src) in net
            assert ipaddress.ip_address(ip.dst) in net


class TestGroundTruth:
    def test_totals_match_a_dpkt_recount(
        self, capture: tuple[Path, dict[str, int]], dpkt_truth: GroundTruth
    ) -> None:
        """Frames, IP octets and distinct flow keys equal tests/ground_truth.py's dpkt count."""
        truth = capture[1]
        assert (truth["frames"], truth["ip_octets"], truth["flows"]) == (
            dpkt_truth.frames, dpkt_truth.ip_octets, dpkt_truth.flows,
        )  # fmt: skip
        assert dpkt_truth.ip_packets == N_PACKETS

    def test_descriptive_counts_match_dpkt(
        self, capture: tuple[Path, dict[str, int]], records: list[Record]
    ) -> None:
        """The IPv6, VLAN, per-protocol and FIN counts equal what dpkt finds in the frames."""
        counts: Counter[str] = Counter()
        for r in records:
            ip, l2 = ip_layer(r.frame)
            counts["ipv6_packets"] += isinstance(ip, dpkt.ip6.IP6)
            counts["vlan_frames"] += l2 == 18
            name = {6: "tcp_packets", 17: "udp_packets", 1: "icmp_packets", 58: "icmp_packets"}
            counts[name[ip.p]] += 1
            counts["fin_packets"] += ip.p == 6 and bool(ip.data.flags & TCP_FIN)
        assert {k: capture[1][k] for k in counts} == dict(counts)

    def test_fin_only_on_a_flows_last_packet(self, dpkt_truth: GroundTruth) -> None:
        """A key has at most one FIN, on its last packet, and some TCP keys have one."""
        fins = [t for t in dpkt_truth.by_key.values() if t.fin_or_rst]
        assert fins
        assert all(t.fin_or_rst == 1 and t.last_is_fin_or_rst for t in fins)


class TestTrafficMix:
    def test_shares_follow_the_brief(self, capture: tuple[Path, dict[str, int]]) -> None:
        """About 75/22/3 % TCP/UDP/ICMP, 10 % IPv6, 5 % VLAN, and a mean frame near 350 bytes."""
        truth = capture[1]
        share = {k: truth[k] / N_PACKETS for k in ("tcp_packets", "udp_packets", "icmp_packets",
                                                    "ipv6_packets", "vlan_frames")}  # fmt: skip
        assert 0.70 <= share["tcp_packets"] <= 0.80
        assert 0.17 <= share["udp_packets"] <= 0.27
        assert 0.01 <= share["icmp_packets"] <= 0.05
        assert 0.07 <= share["ipv6_packets"] <= 0.13
        assert 0.03 <= share["vlan_frames"] <= 0.07
        assert 300 <= truth["wire_bytes"] / N_PACKETS <= 400

    def test_frames_are_mostly_small_or_full(self, records: list[Record]) -> None:
        """Over a third of the frames are at most 64 bytes and over a tenth are 1514 or 1518."""
        sizes = Counter(r.caplen for r in records)
        assert sum(n for size, n in sizes.items() if size <= 64) > N_PACKETS / 3
        assert sizes[1514] + sizes[1518] > N_PACKETS / 10

    def test_flow_sizes_are_heavy_tailed(self, dpkt_truth: GroundTruth) -> None:
        """Most keys have 1-3 packets while the largest has at least 2 % of all packets."""
        sizes = sorted(t.packets for t in dpkt_truth.by_key.values())
        assert sum(size <= 3 for size in sizes) > len(sizes) / 2
        assert sizes[-1] >= N_PACKETS * 0.02


def test_cli_writes_the_file_and_prints_its_truth(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``main`` writes the capture it is given and prints the ground truth as JSON."""
    path = tmp_path / "cli.pcap"
    assert main([str(path), "--packets", "50", "--seed", "3"]) == 0
    printed = json.loads(capsys.readouterr().out)
    with path.open("rb") as stream:
        assert sum(1 for _ in dpkt.pcap.Reader(stream)) == printed["frames"] == 50
    assert printed["file_bytes"] == path.stat().st_size
