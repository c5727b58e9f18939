"""Sinks: memory, UDP over loopback (IPv4 and IPv6, errors counted), pcap of datagrams."""

from __future__ import annotations

import socket
import struct
import time
from pathlib import Path

import dpkt
import pytest

from core.errors import ConfigError, ExportError
from exporter.sinks import MemorySink, PcapSink, Sink, UdpSink

EXPORT_NS = 1_700_000_010_123_456_789
DEADLINE_S = 5.0


def ones_complement_sum(data: bytes) -> int:
    """RFC 1071 sum written out independently; a correct checksum makes it 0xffff."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f">{len(data) // 2}H", data))
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def receiver(family: socket.AddressFamily, host: str) -> socket.socket:
    sock = socket.socket(family, socket.SOCK_DGRAM)
    sock.bind((host, 0))
    sock.settimeout(DEADLINE_S)
    return sock


class TestMemorySink:
    def test_keeps_datagrams_and_clocks_in_order(self) -> None:
        """Every datagram and its export clock are kept, in order; close marks it closed."""
        with MemorySink() as sink:
            sink.send(b"one", 1)
            sink.send(bytearray(b"two"), 2)
        assert (sink.datagrams, sink.export_ns, sink.closed) == ([b"one", b"two"], [1, 2], True)

    def test_every_sink_satisfies_the_protocol(self, tmp_path: Path) -> None:
        """Memory, UDP and pcap sinks all offer send(datagram, export_ns) and close()."""
        sinks: list[Sink] = [
            MemorySink(),
            UdpSink("127.0.0.1", 9),
            PcapSink(tmp_path / "x.pcap"),
        ]
        for sink in sinks:
            sink.send(b"x", EXPORT_NS)
            sink.close()


class TestUdpSink:
    @pytest.mark.parametrize(
        ("family", "host"), [(socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")]
    )
    def test_delivers_datagrams_over_loopback(
        self, family: socket.AddressFamily, host: str
    ) -> None:
        """Datagrams arrive byte for byte at an IPv4 or IPv6 collector, counted as sent."""
        with receiver(family, host) as collector:
            port = collector.getsockname()[1]
            with UdpSink(host, port) as sink:
                sink.send(b"\x00\x09first", EXPORT_NS)
                sink.send(b"\x00\x09second", EXPORT_NS)
            received = [collector.recv(2048), collector.recv(2048)]
        assert received == [b"\x00\x09first", b"\x00\x09second"]
        assert (sink.sent, sink.bytes_sent, sink.errors) == (2, 15, 0)

    def test_refused_sends_are_counted_not_raised(self) -> None:
        """After ICMP port unreachable, sends fail with ECONNREFUSED; they are counted only."""
        with receiver(socket.AF_INET, "127.0.0.1") as closed:
            port = closed.getsockname()[1]  # bound then closed: nobody listens there
        with UdpSink("127.0.0.1", port) as sink:
            deadline = time.monotonic() + DEADLINE_S
            while sink.errors == 0 and time.monotonic() < deadline:
                sink.send(b"datagram", EXPORT_NS)
                time.sleep(0.01)
            for _ in range(3):
                sink.send(b"datagram", EXPORT_NS)
        assert sink.errors >= 1
        assert sink.first_error is not None
        assert "refused" in sink.first_error.lower()

    def test_unknown_host_is_an_export_error(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """A collector name that does not resolve raises ExportError when the sink opens."""

        def no_such_name(*args: object, **kwargs: object) -> None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

        monkeypatch.setattr(socket, "getaddrinfo", no_such_name)  # no DNS traffic in tests
        with pytest.raises(ExportError, match=r"cannot open a UDP socket to collector\.example"):
            UdpSink("collector.example", 2055)

    def test_port_out_of_range_is_a_config_error(self) -> None:
        """Port 0 or above 65535 is refused."""
        with pytest.raises(ConfigError, match="between 1 and 65535, got 70000"):
            UdpSink("127.0.0.1", 70000)


class TestPcapSink:
    @pytest.mark.parametrize(
        ("collector", "source", "ethertype"),
        [
            (("127.0.0.1", 2055), None, 0x0800),
            (("::1", 4739), ("::1", 40000), 0x86DD),
        ],
    )
    def test_frames_carry_the_datagrams_at_the_export_clock(
        self,
        tmp_path: Path,
        collector: tuple[str, int],
        source: tuple[str, int] | None,
        ethertype: int,
    ) -> None:
        """dpkt reads Ethernet/IP/UDP frames with our payloads, ports, ns times, checksums."""
        path = tmp_path / "export.pcap"
        payloads = [b"\x00\x0a" + bytes(range(40)), b"\x00\x0a" + bytes(41)]
        with PcapSink(path, collector, source) as sink:
            for offset, payload in enumerate(payloads):
                sink.send(payload, EXPORT_NS + offset)
        with path.open("rb") as file:
            assert struct.unpack("<I", file.read(4))[0] == 0xA1B23C4D  # nanosecond pcap
            file.seek(0)
            reader = dpkt.pcap.Reader(file)
            assert reader.datalink() == dpkt.pcap.DLT_EN10MB
            frames = [(ts, buf) for ts, buf in reader]
        raw = path.read_bytes()
        stamps = [
            struct.unpack_from("<II", raw, 24),
            struct.unpack_from("<II", raw, 24 + 16 + len(frames[0][1])),
        ]
        assert stamps == [(1_700_000_010, 123_456_789), (1_700_000_010, 123_456_790)]
        for (_, buf), payload in zip(frames, payloads, strict=True):
            ethernet = dpkt.ethernet.Ethernet(buf)
            assert ethernet.type == ethertype
            ip = ethernet.data
            udp = ip.data
            assert (udp.dport, udp.data) == (collector[1], payload)
            assert udp.sport == (source[1] if source else 50_000)
            assert udp.ulen == 8 + len(payload)
            if ethertype == 0x0800:
                assert ones_complement_sum(bytes(buf[14:34])) == 0xFFFF
                pseudo = ip.src + ip.dst + struct.pack(">BBH", 0, 17, udp.ulen)
            else:
                pseudo = ip.src + ip.dst + struct.pack(">IxxxB", udp.ulen, 17)
            udp_bytes = buf[len(buf) - udp.ulen :]
            assert ones_complement_sum(pseudo + udp_bytes) == 0xFFFF

    def test_mixed_address_families_are_refused(self, tmp_path: Path) -> None:
        """An IPv6 source with an IPv4 collector is a configuration error."""
        with pytest.raises(ConfigError, match="differ in IP version"):
            PcapSink(tmp_path / "x.pcap", ("127.0.0.1", 2055), ("::1", 1))

    def test_unwritable_path_is_an_export_error(self, tmp_path: Path) -> None:
        """A pcap path in a missing directory raises ExportError naming it."""
        with pytest.raises(ExportError, match="cannot write"):
            PcapSink(tmp_path / "missing" / "x.pcap")
