"""An hour of mixed TCP traffic, compressed in time, written as pcap bytes window by window.

The mix (all TCP, about 10 % of flows IPv6, addresses in 198.18.0.0/15 and
2001:db8::/32):

- ``long_flows`` flows that send one packet every 2-8 s from the first minute
  to the end: they never go idle and cross the 1800 s active timeout twice;
- short flows arriving at ``short_per_s`` (Poisson), 1-30 packets with gaps of
  about 0.4 s, ending with FIN (45 %), RST (10 %) or nothing (45 %, they go
  idle 15 s later); their keys never repeat;
- one burst of ``burst_frames`` one-packet SYNs from new keys over 2 s at
  ``burst_at_s``, which pushes the cache over its size for a moment.

Time is cut into windows; each window's packets are drawn, sorted by time and
laid out with the structured dtypes of tests/flood_stream.py, and packets
that fall after the window wait for the next one, so memory stays bounded by
one window. The ground truth (frames, octets, FIN/RST packets, the flows a
router's cache holds open at each window's end) comes from these columns.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, fields

import numpy as np
import numpy.typing as npt

from tests import flood_stream as fs

WINDOW_S = 20.0
INACTIVE_S = 15.0  # spanflow's default --inactive
LONG_START_S = 60.0
LONG_PERIOD_S = (2.0, 8.0)
SHORT_GAP_MEAN_S, SHORT_GAP_MAX_S = 0.4, 3.0
SHORT_SIZE_P, SHORT_SIZE_MAX = 0.4, 30  # 1 + geometric: mean 2.5 packets
SHORT_END_SHARES = (0.45, 0.10)  # FIN, RST; the rest just stop
IPV6_SHARE = 0.10
BURST_S = 2.0
IP_LENGTHS = np.array([40, 40, 52, 576, 1280, 1500], np.int64)  # a mix of ACKs and data
V6_PREFIX = np.uint64(0x20010DB8 << 32)  # 2001:db8::/32 in the high half
LONG_SERVERS, SHORT_SERVERS = 0xC6130100, 0xC6130200  # 198.19.1.0/24, 198.19.2.0/24
BURST_SERVER = 0xC613000A  # 198.19.0.10
US = 1_000_000

U64 = npt.NDArray[np.uint64]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class SoakConfig:
    span_s: float = 3720.0
    long_flows: int = 2000
    short_per_s: float = 400.0
    burst_frames: int = 20_000
    burst_at_s: float = 600.0  # inside the warm-up, so the memory after it is steady
    seed: int = 1


@dataclass(slots=True)
class Packets:
    """Packet columns: time, IP version, addresses as (hi, lo) halves, ports, flags, IP length."""

    ts_us: I64
    version: I64
    src_hi: U64
    src_lo: U64
    dst_hi: U64
    dst_lo: U64
    sport: I64
    dport: I64
    tcp_flags: I64
    ip_len: I64

    @classmethod
    def concat(cls, parts: list[Packets]) -> Packets:
        return cls(*(np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)))

    def take(self, index: npt.NDArray[np.intp] | npt.NDArray[np.bool_]) -> Packets:
        return Packets(*(getattr(self, f.name)[index] for f in fields(self)))

    def __len__(self) -> int:
        return len(self.ts_us)

    @classmethod
    def empty(cls) -> Packets:
        i, u = np.zeros(0, np.int64), np.zeros(0, np.uint64)
        return cls(i, i, u, u, u, u, i, i, i, i)


@dataclass(slots=True)
class Truth:
    """What the generator put in the stream, and the cache population a router would hold."""

    frames: int = 0
    octets: int = 0
    fin_rst_packets: int = 0
    long_flows: int = 0
    open_flows_by_window: list[int] = field(default_factory=list)


def _addresses(is_v6: npt.NDArray[np.bool_], number: U64, subnet: int) -> tuple[U64, U64]:
    """IPv4 ``number``, or 2001:db8:0:``subnet``::``number`` for IPv6 rows, as (hi, lo)."""
    hi = np.where(is_v6, V6_PREFIX | np.uint64(subnet), np.uint64(0)).astype(np.uint64)
    return hi, number.astype(np.uint64)


def _packets(ts_us: I64, v6: npt.NDArray[np.bool_], src: U64, dst: U64, sport: I64, dport: I64,
             flags: I64, ip_len: I64) -> Packets:  # fmt: skip
    """Packets from 32-bit source/destination numbers; IPv6 ones get 2001:db8:: addresses."""
    src_hi, src_lo = _addresses(v6, src, 1)
    dst_hi, dst_lo = _addresses(v6, dst, 2)
    ip_len = np.where(v6, np.maximum(ip_len, 60), ip_len)  # IPv6 + TCP is at least 60 bytes
    return Packets(ts_us, np.where(v6, 6, 4), src_hi, src_lo, dst_hi, dst_lo,
                   sport, dport, flags, ip_len)  # fmt: skip


class SoakStream:
    """Draws the stream window by window; ``chunks()`` yields its pcap bytes."""

    def __init__(self, config: SoakConfig) -> None:
        self.config = config
        self.rng = np.random.default_rng(config.seed)
        self.truth = Truth(long_flows=config.long_flows)
        n = config.long_flows
        self.long_period_s = self.rng.uniform(*LONG_PERIOD_S, n)
        self.long_start_s = self.rng.uniform(0, LONG_START_S, n)
        self.long_v6 = self.rng.random(n) < IPV6_SHARE
        self.short_keys = fs.key_permutation(config.seed + 1)
        self.burst_keys = fs.key_permutation(config.seed + 2)
        self.short_flows = 0
        self.stream_s = 0.0  # the end of the window drawn last
        self.pending = Packets.empty()
        self.open_until_us = np.zeros(0, np.int64)  # short flows a router still holds open

    def chunks(self) -> Iterator[bytes]:
        yield fs.PCAP_FILE_HEADER
        t0 = 0.0
        while t0 < self.config.span_s:
            t1 = min(t0 + WINDOW_S, self.config.span_s)
            packets = self._window(t0, t1)
            self.stream_s = t1
            if len(packets):
                yield _layout(packets)
            t0 = t1

    def _window(self, t0: float, t1: float) -> Packets:
        """Every packet with a time in [t0, t1), in time order (ties keep a flow's order)."""
        drawn = Packets.concat([self.pending, self._long(t0, t1), self._short(t0, t1),
                                self._burst(t0, t1)])  # fmt: skip
        later = drawn.ts_us >= int(t1 * US)
        self.pending = drawn.take(later)
        now = drawn.take(~later)
        now = now.take(np.argsort(now.ts_us, kind="stable"))
        self.truth.frames += len(now)
        self.truth.octets += int(now.ip_len.sum())
        self.truth.fin_rst_packets += int(np.count_nonzero(now.tcp_flags & (fs.FIN | fs.RST)))
        self.open_until_us = self.open_until_us[self.open_until_us > int(t1 * US)]
        self.truth.open_flows_by_window.append(self.config.long_flows + len(self.open_until_us))
        return now

    def _long(self, t0: float, t1: float) -> Packets:
        """The long-lived flows' packets in [t0, t1): flow f sends at start_f + k * period_f."""
        start, period = self.long_start_s, self.long_period_s
        first_k = np.maximum(0, np.ceil((t0 - start) / period)).astype(np.int64)
        end_k = np.maximum(0, np.ceil((t1 - start) / period)).astype(np.int64)
        count = np.maximum(0, end_k - first_k)
        flow = np.repeat(np.arange(len(start)), count)
        k = np.arange(int(count.sum())) - np.repeat(np.cumsum(count) - count, count) + first_k[flow]
        ts_us = np.floor((start[flow] + k * period[flow]) * US).astype(np.int64)
        ts_us = np.maximum(ts_us, int(t0 * US))  # float rounding at the window's edge
        flags = np.where(k == 0, fs.SYN, fs.ACK | fs.PSH)
        ip_len = np.where(k == 0, 40, self.rng.choice(IP_LENGTHS, len(flow)))
        src = np.uint64(fs.V4_BASE) + flow.astype(np.uint64)
        dst = np.uint64(LONG_SERVERS) + (flow % 200).astype(np.uint64)
        return _packets(ts_us, self.long_v6[flow], src, dst, 40000 + flow % 20000,
                        np.full(len(flow), 443), flags, ip_len)  # fmt: skip

    def _short(self, t0: float, t1: float) -> Packets:
        """Every packet of the short flows that start in [t0, t1), some of them later than t1."""
        n = int(self.rng.poisson(self.config.short_per_s * (t1 - t0)))
        index = np.arange(self.short_flows, self.short_flows + n, dtype=np.uint64)
        self.short_flows += n
        key = fs.permuted_keys(index, self.short_keys)
        size = np.minimum(self.rng.geometric(SHORT_SIZE_P, n), SHORT_SIZE_MAX)
        start_us = (self.rng.uniform(t0, t1, n) * US).astype(np.int64)
        end = self.rng.random(n)
        ends_fin, ends_rst = end < SHORT_END_SHARES[0], end > 1 - SHORT_END_SHARES[1]
        v6 = self.rng.random(n) < IPV6_SHARE

        flow = np.repeat(np.arange(n), size)
        first = np.cumsum(size) - size
        position = np.arange(len(flow)) - first[flow]
        gap_us = np.minimum(self.rng.exponential(SHORT_GAP_MEAN_S, len(flow)), SHORT_GAP_MAX_S)
        gap_us = np.where(position == 0, 0, np.maximum(1000, (gap_us * US).astype(np.int64)))
        elapsed_us = np.cumsum(gap_us)
        ts_us = start_us[flow] + elapsed_us - elapsed_us[first][flow]
        last = position == size[flow] - 1
        flags = np.where(position == 0, fs.SYN, fs.ACK | fs.PSH)
        flags = np.where(last & ends_fin[flow], fs.FIN | fs.ACK, flags)
        flags = np.where(last & ends_rst[flow], fs.RST, flags)
        ip_len = np.where(position == 0, 40, self.rng.choice(IP_LENGTHS, len(flow)))

        last_us = ts_us[last]  # one per flow, in flow order
        idles = ~(ends_fin | ends_rst)
        until = np.where(idles, last_us + int(INACTIVE_S * US), last_us)
        self.open_until_us = np.concatenate([self.open_until_us, until])
        src = (np.uint64(fs.V4_BASE) + (key >> np.uint64(16)))[flow]
        dst = (np.uint64(SHORT_SERVERS) + (key % np.uint64(250)))[flow]
        sport = (key & np.uint64(0xFFFF)).astype(np.int64)[flow]
        return _packets(ts_us, v6[flow], src, dst, sport, np.full(len(flow), 80), flags, ip_len)

    def _burst(self, t0: float, t1: float) -> Packets:
        """The burst's one-packet SYNs, all drawn in the window where it starts."""
        at, n = self.config.burst_at_s, self.config.burst_frames
        if not t0 <= at < t1 or n == 0:
            return Packets.empty()
        key = fs.permuted_keys(np.arange(n, dtype=np.uint64), self.burst_keys)
        ts_us = np.sort(self.rng.uniform(at, at + BURST_S, n) * US).astype(np.int64)
        self.open_until_us = np.concatenate([self.open_until_us, ts_us + int(INACTIVE_S * US)])
        src = np.uint64(fs.V4_BASE) + (key >> np.uint64(16))
        sport = (key & np.uint64(0xFFFF)).astype(np.int64)
        v4, server = np.zeros(n, np.bool_), np.full(n, BURST_SERVER, np.uint64)
        return _packets(ts_us, v4, src, server, sport, np.full(n, 80), np.full(n, fs.SYN),
                        np.full(n, 40))  # fmt: skip


def _layout(packets: Packets) -> bytes:
    """The pcap records of ``packets``: IPv4 ones padded to 60 bytes, all cut after the TCP header.

    Each record goes in a row as wide as the widest layout; the unused tail of
    the narrower rows is dropped with one boolean mask, which keeps row order.
    """
    v6 = packets.version == 6
    width = fs.V6_TCP_RECORD.itemsize
    rows = np.zeros((len(packets), width), np.uint8)
    for dtype, chosen in ((fs.V4_TCP_RECORD, ~v6), (fs.V6_TCP_RECORD, v6)):
        records = _records(packets.take(chosen), dtype)
        rows[chosen, : dtype.itemsize] = records.view(np.uint8).reshape(-1, dtype.itemsize)
    size = np.where(v6, width, fs.V4_TCP_RECORD.itemsize)
    return rows[np.arange(width) < size[:, None]].tobytes()


def _records(part: Packets, dtype: np.dtype[np.void]) -> npt.NDArray[np.void]:
    records = np.zeros(len(part), dtype)
    fs.set_times(records, part.ts_us)
    records["caplen"] = dtype.itemsize - 16
    records["wirelen"] = np.maximum(fs.MIN_FRAME, 14 + part.ip_len)
    records["eth_dst"], records["eth_src"] = fs.MAC_ROUTER, fs.MAC_HOST
    records["sport"], records["dport"] = part.sport, part.dport
    records["seq"] = part.ts_us & 0xFFFFFFFF
    records["data_offset"], records["tcp_flags"], records["window"] = 0x50, part.tcp_flags, 502
    if dtype is fs.V4_TCP_RECORD:
        records["ethertype"] = fs.ETH_IPV4
        records["ver_ihl"], records["ttl"], records["proto"] = 0x45, 64, fs.TCP
        records["ip_len"] = part.ip_len
        records["ip_src"], records["ip_dst"] = part.src_lo, part.dst_lo
        records["ip_sum"] = fs.ipv4_checksums(records)
    else:
        records["ethertype"] = fs.ETH_IPV6
        records["ver_tc_label"], records["payload_len"] = 6 << 28, part.ip_len - 40
        records["next_header"], records["hop_limit"] = fs.TCP, 64
        records["src_hi"], records["src_lo"] = part.src_hi, part.src_lo
        records["dst_hi"], records["dst_lo"] = part.dst_hi, part.dst_lo
    return records
