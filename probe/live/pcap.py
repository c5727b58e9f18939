"""Live capture with pypcap: non-blocking reads joined into frame batches.

The loop never blocks in libpcap: it waits on the capture descriptor with
select() (a blocking dispatch would hold the interpreter lock on an idle link
and delay signals), reads what the kernel buffer holds, and joins it into one
``FrameBatch``. Per-packet work here is C-level only (zip, join, map(len)).

An interface that goes away is not signalled by pypcap: ``readpkts`` drops
libpcap's error and returns nothing, and the descriptor reports POLLERR once,
while the device is still being unregistered. ``vanished`` asks the kernel by
ifIndex, so the caller can poll it on empty reads and on idle ticks.
"""

from __future__ import annotations

import select
import socket
from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ConfigError, InputError
from core.packets import FrameBatch
from probe.decode.linktypes import is_supported, linktype_name
from probe.live.source import CaptureStats, interface_gone

__all__ = ["READ_TIMEOUT_MS", "CaptureStats", "LiveCapture", "LiveConfig"]

READ_TIMEOUT_MS = 50  # never 0: libpcap would never deliver a partly filled buffer block


@dataclass(frozen=True, slots=True)
class LiveConfig:
    interface: str
    bpf_filter: str = ""
    snaplen: int = 128  # headers only
    promiscuous: bool = True
    buffer_mib: int = 64

    def __post_init__(self) -> None:
        if not 64 <= self.snaplen <= 262_144:
            raise ConfigError(f"snaplen must be between 64 and 262144, got {self.snaplen}")
        if not 1 <= self.buffer_mib <= 4096:
            raise ConfigError(f"capture buffer must be 1 to 4096 MiB, got {self.buffer_mib}")


def interface_index(name: str) -> int:
    """The kernel's ifIndex of an interface; ConfigError when there is no such interface."""
    try:
        return socket.if_nametoindex(name)
    except OSError as exc:
        raise ConfigError(f"{name}: no such network interface") from exc


class LiveCapture:
    """An open pypcap capture on one interface: a ``LiveSource``."""

    drain_wait_s = 4 * READ_TIMEOUT_MS / 1000

    def __init__(self, config: LiveConfig) -> None:
        import pcap  # optional dependency: only live capture needs libpcap

        self.config = config
        # pypcap opens a file of that name if one exists: insist on a real interface.
        self.ifindex = interface_index(config.interface)
        try:
            self.handle: Any = pcap.pcap(
                name=config.interface, snaplen=config.snaplen, promisc=config.promiscuous,
                timeout_ms=READ_TIMEOUT_MS, immediate=False, timestamp_in_ns=True,
                buffer_size=config.buffer_mib << 20,
            )  # fmt: skip
            if config.bpf_filter:
                self.handle.setfilter(config.bpf_filter)
            self.handle.setnonblock(True)
        except OSError as exc:
            raise InputError(f"{config.interface}: cannot capture: {exc}") from exc
        self.linktype = int(self.handle.datalink())
        if not is_supported(self.linktype):
            raise InputError(
                f"{config.interface}: unsupported link type {linktype_name(self.linktype)}"
            )

    def fileno(self) -> int:
        return int(self.handle.fileno())

    def wait(self, timeout_s: float) -> bool:
        """Wait until frames may be ready or ``timeout_s`` passes; True if readable."""
        try:
            readable, _, _ = select.select([self.fileno()], [], [], timeout_s)
        except InterruptedError:
            return False
        return bool(readable)

    def read(self) -> FrameBatch | None:
        """Every frame the kernel holds now, as one batch (None when there is none)."""
        try:
            packets = self.handle.readpkts()
        except OSError as exc:
            raise InputError(f"{self.config.interface}: capture failed: {exc}") from exc
        if not packets:
            return None
        stamps, frames = zip(*packets, strict=True)
        # A writable buffer, as every other source gives: a read-only one is another
        # type to numba, compiled on the first live batch while frames are dropped.
        caplen = np.fromiter(map(len, frames), np.uint32, len(frames))
        offset = np.zeros(len(frames), np.int64)
        np.cumsum(caplen[:-1], out=offset[1:])
        return FrameBatch(
            np.frombuffer(bytearray(b"".join(frames)), np.uint8), offset, caplen, caplen.copy(),
            np.array(stamps, np.int64), np.full(len(frames), self.linktype, np.uint16),
            np.full(len(frames), self.ifindex, np.uint32),
        )  # fmt: skip

    def vanished(self) -> str | None:
        return interface_gone(self.config.interface, self.ifindex)

    def stats(self) -> CaptureStats:
        try:
            received, dropped, if_dropped = self.handle.stats()
        except OSError as exc:
            raise InputError(f"{self.config.interface}: capture statistics failed: {exc}") from exc
        return CaptureStats(int(received), int(dropped), int(if_dropped))

    def close(self) -> None:
        self.handle.close()
