"""Test plumbing for live capture: a throwaway network namespace, processes stopped by PID.

Everything the live tests start lives inside a namespace they create: a veth
pair with both ends inside it, and its own loopback for the collector. Nothing
reaches the host's interfaces. Every wait has a deadline; ``Namespace`` and
``Child`` clean up whatever happens.
"""

from __future__ import annotations

import ipaddress
import json
import os
import secrets
import signal
import struct
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import dpkt
import pytest

DEADLINE_S = 10.0
SAMPLE_NETWORKS = (ipaddress.ip_network("198.18.0.0/15"), ipaddress.ip_network("2001:db8::/32"))


def wait_until(ready: Callable[[], bool], what: str, deadline_s: float = DEADLINE_S) -> None:
    """Poll ``ready`` until it is true; fail the test with ``what`` at the deadline."""
    deadline = time.monotonic() + deadline_s
    while not ready():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {deadline_s} s waiting for {what}")
        time.sleep(0.02)


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, timeout=DEADLINE_S, check=False)


class Child:
    """A process we started; ``stop`` signals it by PID and reaps it with a deadline."""

    def __init__(self, argv: list[str], stderr: IO[bytes] | int = subprocess.DEVNULL) -> None:
        self.process = subprocess.Popen(argv, stdin=subprocess.DEVNULL,
                                        stdout=subprocess.DEVNULL, stderr=stderr)  # fmt: skip

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def wait(self, deadline_s: float = DEADLINE_S) -> int | None:
        """Wait up to ``deadline_s`` for it to exit on its own: its exit code, or None."""
        try:
            return self.process.wait(deadline_s)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, signum: int = signal.SIGTERM, deadline_s: float = DEADLINE_S) -> int | None:
        """Send ``signum``, wait up to ``deadline_s``; SIGKILL if it is still there. Exit code."""
        if self.running():
            self.process.send_signal(signum)
            try:
                return self.process.wait(deadline_s)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(deadline_s)
                return None
        return self.process.returncode


class Namespace:
    """A network namespace holding the veth pair ``tx`` -> ``rx`` and an up loopback."""

    tx, rx = "sf-tx", "sf-rx"

    def __init__(self, name: str) -> None:
        self.name = name

    def argv(self, *command: str | Path) -> list[str]:
        """``command`` run inside the namespace (``ip netns exec`` execs it: same PID)."""
        return ["ip", "netns", "exec", self.name, *map(str, command)]

    def check(self, *command: str) -> str:
        done = run(self.argv(*command))
        assert done.returncode == 0, f"{' '.join(command)}: {done.stderr.strip()}"
        return done.stdout

    def ifindex(self, interface: str) -> int:
        links = json.loads(self.check("ip", "-j", "link", "show", "dev", interface))
        return int(links[0]["ifindex"])

    def udp_listening(self, pid: int, port: int) -> bool:
        """Whether a UDP socket is bound to ``port`` in the namespace of process ``pid``."""
        try:
            table = Path(f"/proc/{pid}/net/udp").read_text()
        except OSError:
            return False
        wanted = f":{port:04X} "
        return any(wanted in line for line in table.splitlines()[1:])


@contextmanager
def namespace() -> Iterator[Namespace]:
    """A fresh namespace with an up veth pair and loopback and no IPv6; deleted on exit.

    IPv6 is disabled before the links come up, so the kernel sends nothing of
    its own (no DAD, router or MLD solicitations) onto the captured link.
    """
    if os.geteuid() != 0:
        pytest.skip("live capture test needs root to create a network namespace")
    name = f"spanflow-test-{os.getpid()}-{secrets.token_hex(3)}"
    added = run(["ip", "netns", "add", name])
    if added.returncode != 0:
        pytest.skip(f"cannot create a network namespace: {added.stderr.strip()}")
    ns = Namespace(name)
    try:
        if Path("/proc/sys/net/ipv6").exists():  # absent when the kernel has no IPv6
            ns.check("sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1",
                     "net.ipv6.conf.default.disable_ipv6=1")  # fmt: skip
        ns.check("ip", "link", "add", ns.tx, "type", "veth", "peer", "name", ns.rx)
        for link in (ns.tx, ns.rx, "lo"):
            ns.check("ip", "link", "set", link, "up")
        yield ns
    finally:
        run(["ip", "netns", "del", name])


def rewrite_macs(source: Path, target: Path, dst_mac: bytes, src_mac: bytes) -> None:
    """Copy a classic Ethernet pcap, replacing every frame's MAC addresses and nothing else.

    Not tcprewrite: tcpreplay 4.4.1-4.4.4 rewrites the IPv4 total length of
    padded frames to include the Ethernet padding (appneta/tcpreplay#844, #845).
    """
    data = bytearray(source.read_bytes())
    magic = data[:4]
    order = {b"\xd4\xc3\xb2\xa1": "<", b"\x4d\x3c\xb2\xa1": "<",
             b"\xa1\xb2\xc3\xd4": ">", b"\xa1\xb2\x3c\x4d": ">"}[bytes(magic)]  # fmt: skip
    assert struct.unpack_from(order + "I", data, 20)[0] == dpkt.pcap.DLT_EN10MB
    at = 24
    while at < len(data):
        caplen = struct.unpack_from(order + "I", data, at + 8)[0]
        assert caplen >= 14
        data[at + 16 : at + 28] = dst_mac + src_mac
        at += 16 + caplen
    assert at == len(data)
    target.write_bytes(bytes(data))


def outside_sample_networks(path: Path) -> list[str]:
    """Every IP or ARP address of an Ethernet pcap that is not in 198.18.0.0/15 or 2001:db8::/32."""
    outside = []
    with path.open("rb") as stream:
        for _, frame in dpkt.pcap.Reader(stream):
            l3 = dpkt.ethernet.Ethernet(frame).data
            if isinstance(l3, dpkt.ip.IP | dpkt.ip6.IP6):
                addresses = [l3.src, l3.dst]
            elif isinstance(l3, dpkt.arp.ARP):
                addresses = [l3.spa, l3.tpa]
            else:
                outside.append(f"frame with {type(l3).__name__} payload")
                continue
            for raw in addresses:
                address = ipaddress.ip_address(bytes(raw))
                if not any(address in net for net in SAMPLE_NETWORKS):
                    outside.append(str(address))
    return outside


def write_looped_prefix(source: Path, frames: int, target: Path) -> None:
    """Write the first ``frames`` frames of ``source`` replayed over and over (tcpreplay --loop).

    Times rise by 1 µs a frame: only the order and the bytes matter to flows
    without timeouts.
    """
    with source.open("rb") as stream:
        cycle = [frame for _, frame in dpkt.pcap.Reader(stream)]
    with target.open("wb") as out:
        writer = dpkt.pcap.Writer(out)
        for i in range(frames):
            writer.writepkt(cycle[i % len(cycle)], ts=i * 1e-6)


def frame_macs(path: Path) -> set[tuple[bytes, bytes]]:
    """The distinct (destination, source) MAC pairs of an Ethernet pcap."""
    with path.open("rb") as stream:
        return {(frame[:6], frame[6:12]) for _, frame in dpkt.pcap.Reader(stream)}
