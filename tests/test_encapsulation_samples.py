"""Every shipped sample's packet and octet totals against tshark, outer and inner IP headers.

tshark decodes the link layers and tunnels on its own (PPP, Cisco HDLC,
PPPoE, QinQ, GRE/ERSPAN, VXLAN, ...), so it is an independent count for the
samples that tests/ground_truth.py (dpkt, Ethernet/SLL/raw only) cannot
read. Per frame, the order of the layers in ``frame.protocols`` says which
occurrence of ``ip.*`` / ``ipv6.*`` / ``tcp.*`` ... belongs to which header:
the first IP layer is the outermost header, the last one before any
ICMP/ICMPv6 layer the innermost (the IP headers quoted inside ICMP errors
are no tunnel). A frame with an IP layer is one IP packet; its octets are
the chosen header's total length (IPv4 total length, IPv6 40 + payload
length). ``spanflow convert`` must sum to the outermost headers by default
and to the innermost ones with ``--tunnels inner``, and its distinct
(src, dst, sport, dport, proto) keys must be tshark's at that header.
"""

from __future__ import annotations

import csv
import functools
import ipaddress
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import spanflow

pytestmark = pytest.mark.skipif(shutil.which("tshark") is None, reason="tshark is not installed")

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "samples"
SAMPLES = sorted(p.name for p in SAMPLES_DIR.iterdir() if p.suffix in (".pcap", ".pcapng"))
ENCAPSULATION_SAMPLES = ["ppp.pcap", "chdlc.pcap", "pppoe_qinq.pcap", "erspan_vxlan.pcap",
                         "mpls_pw.pcap", "frame_relay.pcap", "l2_shims.pcap"]  # fmt: skip
SPANFLOW = Path(sys.executable).parent / "spanflow"
TIMEOUT_S = 120

# Per-frame fields, every occurrence in tree order; FIELDS[0] must stay frame.protocols.
FIELDS = [
    "frame.protocols", "ip.len", "ip.src", "ip.dst", "ip.proto", "ipv6.plen", "ipv6.src",
    "ipv6.dst", "ipv6.nxt", "tcp.srcport", "tcp.dstport", "udp.srcport", "udp.dstport",
    "icmp.type", "icmp.code", "icmpv6.type", "icmpv6.code", "ipv6.hopopts.nxt",
    "ipv6.routing.nxt", "ipv6.fraghdr.nxt", "ipv6.dstopts.nxt",
]  # fmt: skip
# The layer whose occurrences each field counts: one occurrence per layer of that name.
LAYER_OF = {field: field.rsplit(".", 1)[0] for field in FIELDS[1:]}
EXTENSION_HEADERS = ("ipv6.hopopts", "ipv6.routing", "ipv6.fraghdr", "ipv6.dstopts")
TRANSPORTS = {"tcp": 6, "udp": 17, "icmp": 1, "icmpv6": 58}
ICMP_LAYERS = ("icmp", "icmpv6")
# Per-frame dissection, no reassembly: each fragment and segment stands alone as in a probe.
TSHARK_PREFS = [
    "-o", "ip.defragment:FALSE", "-o", "ipv6.defragment:FALSE",
    "-o", "tcp.desegment_tcp_streams:FALSE",
]  # fmt: skip

Key = tuple[object, object, int, int, int]  # (src, dst, sport, dport, proto)


@dataclass(frozen=True, slots=True)
class IpLayer:
    octets: int
    key: Key


@dataclass(frozen=True, slots=True)
class Expected:
    packets: int
    octets: int
    keys: frozenset[Key]


def _ip_layers(line: str, frame_number: int) -> list[IpLayer]:
    """The frame's IP headers, outermost first, with ICMP-quoted ones left out."""
    columns = line.rstrip("\n").split("\t")
    columns += [""] * (len(FIELDS) - len(columns))
    protocols = columns[0].split(":")
    values = {
        field: column.split(",") if column else []
        for field, column in zip(FIELDS[1:], columns[1:], strict=True)
    }
    for field, layer in LAYER_OF.items():  # the occurrence <-> layer mapping must be exact
        assert len(values[field]) == protocols.count(layer), (frame_number, field, columns)
    cut = next((i + 1 for i, p in enumerate(protocols) if p in ICMP_LAYERS), len(protocols))
    layers: list[IpLayer] = []
    for position, protocol in enumerate(protocols[:cut]):
        if protocol not in ("ip", "ipv6"):
            continue
        index = protocols[:position].count(protocol)  # this header's occurrence

        def value(field: str, index: int = index) -> str:
            return values[field][index]

        if protocol == "ip":
            octets, proto = int(value("ip.len")), int(value("ip.proto"))
            src, dst = value("ip.src"), value("ip.dst")
        else:
            octets, proto = 40 + int(value("ipv6.plen")), int(value("ipv6.nxt"))
            src, dst = value("ipv6.src"), value("ipv6.dst")
        # The transport follows the header and its IPv6 extension headers: the last one's
        # next header is the protocol (what follows a non-first fragment is only "data").
        following = position + 1
        while following < len(protocols) and protocols[following].startswith("ipv6."):
            extension = protocols[following]
            if extension in EXTENSION_HEADERS:
                at = protocols[:following].count(extension)
                proto = int(values[f"{extension}.nxt"][at])
            following += 1
        sport = dport = 0
        transport = protocols[following] if following < len(protocols) else ""
        if transport in TRANSPORTS:
            proto = TRANSPORTS[transport]
            at = protocols[:following].count(transport)
            if transport in ("tcp", "udp"):
                sport = int(values[f"{transport}.srcport"][at])
                dport = int(values[f"{transport}.dstport"][at])
            else:  # ICMP: type * 256 + code in the destination port, as NetFlow keys it
                dport = int(values[f"{transport}.type"][at]) * 256
                dport += int(values[f"{transport}.code"][at])
        address = ipaddress.ip_address
        layers.append(IpLayer(octets, (address(src), address(dst), sport, dport, proto)))
    return layers


@functools.cache
def tshark_frames(name: str) -> tuple[tuple[IpLayer, ...], ...]:
    """One tshark run per sample: every frame's IP layers, outermost first."""
    command = ["tshark", "-n", "-r", str(SAMPLES_DIR / name), *TSHARK_PREFS, "-T", "fields"]
    command += ["-E", "occurrence=a", "-E", "aggregator=,", "-E", "header=n"]
    for field in FIELDS:
        command += ["-e", field]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    return tuple(tuple(_ip_layers(line, number)) for number, line in enumerate(lines, 1))


def expected(name: str, tunnels: str) -> Expected:
    """tshark's IP packets, octets and keys at the outermost or the innermost IP header."""
    pick = 0 if tunnels == "outer" else -1
    chosen = [layers[pick] for layers in tshark_frames(name) if layers]
    octets = sum(layer.octets for layer in chosen)
    return Expected(len(chosen), octets, frozenset(layer.key for layer in chosen))


@functools.cache
def converted(name: str, tunnels: str | None) -> tuple[dict[str, object], ...]:
    """The flow rows of ``spanflow.convert(SAMPLE, tunnels=MODE)``: the command's columns."""
    flows = spanflow.convert(SAMPLES_DIR / name, tunnels=tunnels or "outer")
    return tuple(flows.to_arrow().to_pylist())


def converted_by_command(name: str, tunnels: str | None) -> tuple[dict[str, str], ...]:
    """The CSV rows of ``spanflow convert SAMPLE -o flows.csv -q [--tunnels MODE]``."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "flows.csv"
        command = [str(SPANFLOW), "convert", str(SAMPLES_DIR / name), "-o", str(out), "-q"]
        if tunnels is not None:
            command += ["--tunnels", tunnels]
        result = subprocess.run(
            command, capture_output=True, text=True, timeout=TIMEOUT_S, check=False
        )
        assert result.returncode == 0, f"{' '.join(command[1:])}: {result.stderr.strip()}"
        with out.open(newline="") as stream:
            return tuple(csv.DictReader(stream))


def totals(rows: tuple[dict[str, Any], ...]) -> tuple[int, int]:
    return sum(int(r["packets"]) for r in rows), sum(int(r["octets"]) for r in rows)


def csv_keys(rows: tuple[dict[str, Any], ...]) -> frozenset[Key]:
    address = ipaddress.ip_address
    return frozenset(
        (address(r["src"]), address(r["dst"]), int(r["sport"]), int(r["dport"]), int(r["proto"]))
        for r in rows
    )


def test_every_encapsulation_sample_is_shipped() -> None:
    assert set(ENCAPSULATION_SAMPLES) <= set(SAMPLES)


@pytest.mark.parametrize("name", SAMPLES)
def test_default_totals_are_the_outermost_ip_headers(name: str) -> None:
    """Without --tunnels, the CSV's packets and octets equal tshark's outermost IP headers."""
    want = expected(name, "outer")
    assert want.packets > 0
    assert totals(converted(name, None)) == (want.packets, want.octets)


@pytest.mark.parametrize("name", SAMPLES)
def test_inner_totals_are_the_innermost_ip_headers(name: str) -> None:
    """With --tunnels inner, the CSV's packets and octets equal tshark's innermost IP headers."""
    want = expected(name, "inner")
    assert totals(converted(name, "inner")) == (want.packets, want.octets)


@pytest.mark.parametrize("tunnels", ["outer", "inner"])
@pytest.mark.parametrize("name", SAMPLES)
def test_distinct_keys_are_tsharks(name: str, tunnels: str) -> None:
    """The distinct (src, dst, sport, dport, proto) of the CSV are tshark's at that layer."""
    rows = converted(name, None if tunnels == "outer" else tunnels)
    assert csv_keys(rows) == expected(name, tunnels).keys


@pytest.mark.parametrize("tunnels", [None, "outer", "inner"])
def test_the_command_writes_what_the_library_gives(tunnels: str | None) -> None:
    """``convert --tunnels MODE`` (default outer) writes the rows ``spanflow.convert`` returns."""
    by_command = converted_by_command("erspan_vxlan.pcap", tunnels)
    assert totals(by_command) == totals(converted("erspan_vxlan.pcap", tunnels))
    assert csv_keys(by_command) == csv_keys(converted("erspan_vxlan.pcap", tunnels))


def test_tunnels_make_inner_differ_from_outer() -> None:
    """In erspan_vxlan.pcap tshark's outer and inner views differ (the test can tell them apart)."""
    outer, inner = expected("erspan_vxlan.pcap", "outer"), expected("erspan_vxlan.pcap", "inner")
    assert outer.packets == inner.packets
    assert outer.octets > inner.octets
    assert not outer.keys & inner.keys


def _main() -> None:  # pragma: no cover - python tests/test_encapsulation_samples.py [NAME...]
    for name in sys.argv[1:] or SAMPLES:
        frames = len(tshark_frames(name))
        outer, inner = expected(name, "outer"), expected(name, "inner")
        print(
            f"{name}: frames={frames} outer: packets={outer.packets} octets={outer.octets} "
            f"keys={len(outer.keys)}; inner: packets={inner.packets} octets={inner.octets} "
            f"keys={len(inner.keys)}"
        )


if __name__ == "__main__":
    _main()
