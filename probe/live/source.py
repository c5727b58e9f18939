"""The seam every live capture back end fits: what the live driver of the Meter calls.

A back end opens its interface when built, hands over what the kernel holds
as one ``FrameBatch`` per read (no per-packet Python objects), and says when
its interface has gone away. pypcap (``pcap.LiveCapture``) is one; the
AF_PACKET ring is the next.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass
from typing import Protocol

from core.packets import FrameBatch


@dataclass(frozen=True, slots=True)
class CaptureStats:
    """The kernel's counters, totals since the capture opened."""

    received: int
    dropped_kernel: int
    dropped_interface: int
    ring_freezes: int = 0  # AF_PACKET: times the ring was full and the kernel froze it


class LiveSource(Protocol):
    # How long the final drain waits for a read: longer than the back end's
    # own delivery timeout, after which it hands over a partly filled block.
    drain_wait_s: float

    def wait(self, timeout_s: float) -> bool:
        """True when a read may return frames (or report an error); never blocks longer."""
        ...

    def read(self) -> FrameBatch | None:
        """What the kernel holds now, as one batch; None or empty when nothing."""
        ...

    def vanished(self) -> str | None:
        """Why the interface cannot deliver any more (it went away), else None."""
        ...

    def stats(self) -> CaptureStats: ...

    def close(self) -> None: ...


def interface_gone(interface: str, ifindex: int) -> str | None:
    """Why a capture on ``interface`` cannot go on (its device is gone), or None while it can.

    By ifIndex in the probe's own network namespace: a deleted interface
    recreated under the same name is another device, not this capture's.
    """
    try:
        socket.if_indextoname(ifindex)
    except OSError:
        return f"{interface}: capture interface went away (ifindex {ifindex} no longer exists)"
    return None
