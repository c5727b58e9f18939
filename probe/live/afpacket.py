"""Live capture from a TPACKET_V3 ring of an AF_PACKET socket: a ``LiveSource`` with no libpcap.

The kernel writes frames into memory-mapped blocks and hands a block over
when it is full or ``BLOCK_TIMEOUT_MS`` after its first frame, so a quiet
port still delivers at once (the timeout is the kernel's; no read ever waits
for a block to fill). ``read`` runs the compiled walk (ring_kernel.py), which
copies what the handed-over blocks hold into one ``FrameBatch`` and gives the
blocks straight back.

Several rings can form one ``PACKET_FANOUT`` group (``FanoutGroup``): the
kernel then spreads frames over them by the steering program of bpf.py.
"""

from __future__ import annotations

import contextlib
import mmap
import select
import socket
import struct
import sys
from dataclasses import dataclass

import numpy as np

from core.errors import ConfigError, InputError
from core.packets import FrameBatch
from probe.live.bpf import SockFprog, accept_none, compile_filter, fanout_program
from probe.live.pcap import LiveConfig, interface_index
from probe.live.ring_kernel import VLAN_TAG_BYTES, walk_ring
from probe.live.source import CaptureStats, interface_gone

SOL_PACKET = 263
PACKET_ADD_MEMBERSHIP, PACKET_RX_RING, PACKET_STATISTICS = 1, 5, 6
PACKET_VERSION, PACKET_FANOUT, PACKET_FANOUT_DATA = 10, 18, 22
PACKET_MR_PROMISC = 1
TPACKET_V3 = 2
PACKET_FANOUT_CBPF = 6
PACKET_FANOUT_FLAG_UNIQUEID = 0x2000
SO_ATTACH_FILTER = 26
ETH_P_ALL = 0x0003
LINKTYPE_ETHERNET = 1
ARPHRD_ETHER, ARPHRD_LOOPBACK = 1, 772  # loopback frames carry an Ethernet header too

BLOCK_TIMEOUT_MS = 50  # the kernel hands over a partly filled block after this
FRAME_SIZE = 2048  # TPACKET_V3 frames are variable; the kernel still checks this size
BLOCKS_PER_READ = 8
MIN_FRAME_BYTES = 64  # a frame header and the shortest frame, aligned: bounds frames per block

__all__ = ["BLOCK_TIMEOUT_MS", "FanoutGroup", "RingCapture", "open_fanout"]


def ring_geometry(buffer_mib: int) -> tuple[int, int]:
    """(block size, block count): 1 MiB blocks, smaller ones for small buffers (at least 4)."""
    total = buffer_mib << 20
    block_size = 1 << 20 if total >= 8 << 20 else max(total // 4, mmap.PAGESIZE)
    return block_size, total // block_size


@dataclass(frozen=True, slots=True)
class FanoutGroup:
    """A fanout group this probe created; ``group_id`` came from the kernel (unique)."""

    group_id: int

    def join_argument(self) -> int:
        return self.group_id | (PACKET_FANOUT_CBPF << 16)


class RingCapture:
    """An AF_PACKET socket with a TPACKET_V3 receive ring on one interface.

    Opened holding every frame out (``hold=True``) when it is to join a fanout
    group: ``start`` attaches the real filter once the group is whole, so no
    flow is split while members join.
    """

    drain_wait_s = 4 * BLOCK_TIMEOUT_MS / 1000

    def __init__(
        self, config: LiveConfig, hold: bool = False, program: bytes | None = None
    ) -> None:
        """``program``: ``config.bpf_filter`` compiled already (once for a whole fanout group)."""
        if sys.byteorder != "little":
            raise ConfigError("--backend afpacket reads the ring as little-endian: use pcap")
        self.config = config
        self.ifindex = interface_index(config.interface)
        self.linktype = LINKTYPE_ETHERNET
        self._totals = CaptureStats(0, 0, 0)
        self.block = 0
        self.block_size, self.block_nr = ring_geometry(config.buffer_mib)
        self._filter = program or compile_filter(
            config.interface, config.bpf_filter, config.snaplen
        )
        try:
            self.socket = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(ETH_P_ALL))
        except OSError as exc:
            raise InputError(f"{config.interface}: cannot capture: {exc}") from exc
        try:
            self._open(hold)
        except OSError as exc:
            self.socket.close()
            raise InputError(f"{config.interface}: cannot capture: {exc}") from exc
        capacity = BLOCKS_PER_READ * (self.block_size // MIN_FRAME_BYTES)
        self._out_buf = np.empty(
            BLOCKS_PER_READ * (self.block_size + capacity * VLAN_TAG_BYTES), np.uint8
        )
        self._out_offset = np.empty(capacity, np.int64)
        self._out_caplen = np.empty(capacity, np.uint32)
        self._out_wirelen = np.empty(capacity, np.uint32)
        self._out_ts = np.empty(capacity, np.int64)
        self._poll = select.poll()
        self._poll.register(self.socket.fileno(), select.POLLIN | select.POLLERR)

    def _open(self, hold: bool) -> None:
        sock = self.socket
        hardware = _hardware_type(self.config.interface)
        if hardware not in (ARPHRD_ETHER, ARPHRD_LOOPBACK):
            raise ConfigError(
                f"{self.config.interface}: --backend afpacket captures Ethernet only "
                f"(ARPHRD {hardware}); use --backend pcap"
            )
        self._attach(accept_none() if hold else self._filter)
        sock.setsockopt(SOL_PACKET, PACKET_VERSION, TPACKET_V3)
        frames = self.block_size // FRAME_SIZE * self.block_nr
        request = struct.pack("7I", self.block_size, self.block_nr, FRAME_SIZE, frames,
                              BLOCK_TIMEOUT_MS, 0, 0)  # fmt: skip
        sock.setsockopt(SOL_PACKET, PACKET_RX_RING, request)
        self._map = mmap.mmap(sock.fileno(), self.block_size * self.block_nr,
                              mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)  # fmt: skip
        self.ring = np.frombuffer(self._map, np.uint8)
        sock.bind((self.config.interface, ETH_P_ALL))
        if self.config.promiscuous:
            membership = struct.pack("iHH8s", self.ifindex, PACKET_MR_PROMISC, 0, b"")
            sock.setsockopt(SOL_PACKET, PACKET_ADD_MEMBERSHIP, membership)

    def _attach(self, program: bytes) -> None:
        fprog = SockFprog(program)
        self.socket.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog.struct)

    def join(self, group: FanoutGroup | None) -> FanoutGroup:
        """Join ``group``, or create a new one (the kernel picks a unique id) and steer it."""
        if group is None:
            argument = PACKET_FANOUT_FLAG_UNIQUEID << 16 | PACKET_FANOUT_CBPF << 16
            self.socket.setsockopt(SOL_PACKET, PACKET_FANOUT, argument)
            created = self.socket.getsockopt(SOL_PACKET, PACKET_FANOUT)
            group = FanoutGroup(created & 0xFFFF)
            fprog = SockFprog(fanout_program())
            self.socket.setsockopt(SOL_PACKET, PACKET_FANOUT_DATA, fprog.struct)
        else:
            self.socket.setsockopt(SOL_PACKET, PACKET_FANOUT, group.join_argument())
        return group

    def start(self) -> None:
        """Let frames in: the real filter replaces the one that held them out."""
        self._attach(self._filter)

    def fileno(self) -> int:
        return self.socket.fileno()

    def _ready(self) -> bool:
        return bool(self.ring[self.block * self.block_size + 8] & 1)

    def wait(self, timeout_s: float) -> bool:
        if self._ready():
            return True
        try:
            events = self._poll.poll(max(0, int(timeout_s * 1000)))
        except InterruptedError:
            return False
        return bool(events)

    def read(self) -> FrameBatch | None:
        if not self._ready():
            return None
        frames, self.block = walk_ring(
            self.ring, self.block_size, self.block_nr, self.block, self.config.snaplen,
            self._out_buf, self._out_offset, self._out_caplen, self._out_wirelen, self._out_ts,
        )  # fmt: skip
        if frames == 0:
            return None
        return FrameBatch(
            self._out_buf, self._out_offset[:frames], self._out_caplen[:frames],
            self._out_wirelen[:frames], self._out_ts[:frames],
            np.full(frames, self.linktype, np.uint16), np.full(frames, self.ifindex, np.uint32),
        )  # fmt: skip

    def vanished(self) -> str | None:
        return interface_gone(self.config.interface, self.ifindex)

    def stats(self) -> CaptureStats:
        """Totals since opening; the kernel's counters reset on each read, so they are added up.

        As libpcap counts: received includes what the kernel dropped.
        """
        if self.socket.fileno() < 0:
            return self._totals
        try:
            raw = self.socket.getsockopt(SOL_PACKET, PACKET_STATISTICS, 12)
        except OSError as exc:
            raise InputError(f"{self.config.interface}: capture statistics failed: {exc}") from exc
        packets, drops, freezes = struct.unpack("3I", raw)
        total = self._totals
        self._totals = CaptureStats(
            total.received + packets, total.dropped_kernel + drops, 0, total.ring_freezes + freezes
        )
        return self._totals

    def close(self) -> None:
        """Unmap the ring and close the socket (a batch from ``read`` must not be used after).

        Reads no statistics: a forked worker may share this socket, and a read resets them.
        """
        if self.socket.fileno() < 0:
            return
        self._poll.unregister(self.socket.fileno())
        del self.ring
        with contextlib.suppress(BufferError):  # a view still referenced: unmapped when collected
            self._map.close()
        self.socket.close()


def open_fanout(config: LiveConfig, members: int) -> list[RingCapture]:
    """One ring per member, joined in a fanout group of their own, holding frames out for now.

    ``RingCapture.start`` on each lets frames in once every member is in place.
    """
    rings: list[RingCapture] = []
    group: FanoutGroup | None = None
    program = compile_filter(config.interface, config.bpf_filter, config.snaplen)
    try:
        for _ in range(members):
            rings.append(RingCapture(config, hold=True, program=program))
            group = rings[-1].join(group)
    except BaseException as exc:
        for ring in rings:
            ring.close()
        if isinstance(exc, OSError):
            raise InputError(f"{config.interface}: cannot form a fanout group: {exc}") from exc
        raise
    return rings


def _hardware_type(interface: str) -> int:
    try:
        with open(f"/sys/class/net/{interface}/type") as file:
            return int(file.read())
    except (OSError, ValueError):
        return ARPHRD_ETHER  # no sysfs here: let the kernel's bind decide
