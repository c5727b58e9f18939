"""The flow cache: each docs/design.md rule by hand, then the fast engine against the reference."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cache import hashing
from cache.config import CacheConfig
from cache.flow_cache import FlowCache
from core.packets import PacketTable
from core.records import EndedRecords, RecordTable
from tests.reference_engine import (
    ACTIVE,
    CACHE_FULL,
    END_OF_FLOW,
    FORCED,
    IDLE,
    PacketRow,
    Record,
    ReferenceCache,
    record_rows,
    reference_records,
)

V4 = 0xFFFF_0000_0000  # IPv4-mapped prefix in the low address half
A, B, C, D, E = 1001, 1002, 1003, 1004, 1005  # unit tests name their flows by source port
DEFAULTS = {
    "ts_ns": 0, "version": 4, "src_hi": 0, "src_lo": V4 | 0x0A00_0001, "dst_hi": 0,
    "dst_lo": V4 | 0x0A00_0002, "sport": A, "dport": 80, "proto": 6, "tos": 0,
    "tcp_flags": 0x10, "ip_len": 100, "ifindex": 1, "vlan": 0, "reason": 0,
}  # fmt: skip
KEY_FIELDS = ("version", "src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "dport", "proto", "tos", "ifindex", "vlan")  # fmt: skip


def pkt(ts_ns: int, **fields: int) -> dict[str, int]:
    return {"ts_ns": ts_ns, **fields}


def table(rows: Sequence[dict[str, int]]) -> PacketTable:
    """A PacketTable of ``rows``; fields not given take ``DEFAULTS``."""
    full = [{**DEFAULTS, **row} for row in rows]
    width = max((len(row.get("attrs", ())) for row in full), default=0)
    attrs = np.array([row.get("attrs", (0,) * width) for row in full], np.uint64)
    return PacketTable(
        **{
            name: np.array([row[name] for row in full], dtype)
            for name, dtype in PacketTable.DTYPES.items()
            if name != "attrs"
        },
        attrs=attrs.reshape(len(full), width),
    )


def config_ns(
    inactive_ns: int = 10, active_ns: int = 1000, max_flows: int = 16, key_vlan: bool = False
) -> CacheConfig:
    """A CacheConfig with timeouts given in nanoseconds."""
    config = CacheConfig(inactive_ns / 1e9, active_ns / 1e9, max_flows, key_vlan)
    assert (config.inactive_ns, config.active_ns) == (inactive_ns, active_ns)
    return config


def as_records(records: RecordTable) -> list[Record]:
    return record_rows(records)


class Engine(Protocol):
    exported: list[tuple[Record, int]]

    def update(self, packets: PacketTable) -> list[Record]: ...
    def expire(self, clock_ns: int) -> list[Record]: ...
    def flush(self) -> list[Record]: ...


class FastEngine:
    """FlowCache with its record tables turned into Record tuples (``exported`` as the reference)."""

    def __init__(self, config: CacheConfig) -> None:
        self.cache = FlowCache(config)
        self.exported: list[tuple[Record, int]] = []

    def _log(self, records: EndedRecords) -> list[Record]:
        ended = as_records(records)
        self.exported += zip(ended, records.export_ns.tolist(), strict=True)
        return ended

    def update(self, packets: PacketTable) -> list[Record]:
        return self._log(self.cache.update(packets))

    def expire(self, clock_ns: int) -> list[Record]:
        return self._log(self.cache.expire(clock_ns))

    def flush(self) -> list[Record]:
        return self._log(self.cache.flush())


MakeEngine = Callable[[CacheConfig], Engine]


@pytest.fixture(params=[FastEngine, ReferenceCache], ids=["fast", "reference"])
def make(request: pytest.FixtureRequest) -> MakeEngine:
    """Each hand-worked rule test runs on both engines, so it also checks the oracle."""
    engine: MakeEngine = request.param
    return engine


def brief(records: list[Record]) -> list[tuple[int, int, int, int, int]]:
    """(sport, first_ns, last_ns, packets, end_reason) of each record, sorted."""
    return sorted((r.sport, r.first_ns, r.last_ns, r.packets, r.end_reason) for r in records)


class TestRules:
    def test_new_key_opens_record_ended_by_flush(self, make: MakeEngine) -> None:
        """Rule 1: a first packet opens a record holding exactly that packet; flush ends it forced."""
        engine = make(config_ns())
        assert engine.update(table([pkt(7, tcp_flags=0x02, ip_len=60, vlan=5)])) == []
        assert engine.flush() == [
            Record(
                version=4,
                src_hi=0,
                src_lo=V4 | 0x0A00_0001,
                dst_hi=0,
                dst_lo=V4 | 0x0A00_0002,
                sport=A,
                dport=80,
                proto=6,
                tos=0,
                ifindex=1,
                vlan=5,
                first_ns=7,
                last_ns=7,
                packets=1,
                octets=60,
                tcp_flags=0x02,
                end_reason=FORCED,
            )
        ]
        assert engine.flush() == []

    def test_join_sums_octets_and_ors_flags(self, make: MakeEngine) -> None:
        """Rule 4: joining packets add packets and octets, OR flags and extend last."""
        engine = make(config_ns())
        rows = [
            pkt(0, ip_len=60, tcp_flags=0x02),
            pkt(3, ip_len=52, tcp_flags=0x10),
            pkt(5, ip_len=1500, tcp_flags=0x18),
        ]
        assert engine.update(table(rows)) == []
        [record] = engine.flush()
        assert (record.first_ns, record.last_ns, record.packets, record.octets) == (0, 5, 3, 1612)
        assert (record.tcp_flags, record.end_reason) == (0x1A, FORCED)

    def test_gap_equal_to_inactive_joins(self, make: MakeEngine) -> None:
        """Rule 2 needs a gap over the inactive timeout: a gap of exactly 10 ns joins."""
        engine = make(config_ns(inactive_ns=10))
        assert engine.update(table([pkt(0), pkt(10), pkt(20)])) == []
        assert brief(engine.flush()) == [(A, 0, 20, 3, FORCED)]

    def test_gap_one_ns_over_inactive_ends_idle(self, make: MakeEngine) -> None:
        """Rule 2: a gap of inactive + 1 ns ends the record (idle) and opens a new one."""
        engine = make(config_ns(inactive_ns=10))
        assert brief(engine.update(table([pkt(0), pkt(10), pkt(21)]))) == [(A, 0, 10, 2, IDLE)]
        assert brief(engine.flush()) == [(A, 21, 21, 1, FORCED)]

    def test_idle_rule_on_record_behind_live_lru_head(self, make: MakeEngine) -> None:
        """The idle scan stops at a live head; rule 2 still ends the stale record behind it."""
        engine = make(config_ns(inactive_ns=10))
        rows = [pkt(100, sport=B), pkt(0, sport=A), pkt(11, sport=A)]
        assert brief(engine.update(table(rows))) == [(A, 0, 0, 1, IDLE)]
        assert brief(engine.flush()) == [(A, 11, 11, 1, FORCED), (B, 100, 100, 1, FORCED)]

    def test_idle_takes_precedence_over_active(self, make: MakeEngine) -> None:
        """When both rule 2 and rule 3 apply to a packet, the record ends idle."""
        engine = make(config_ns(inactive_ns=10, active_ns=5))
        rows = [pkt(100, sport=B), pkt(0, sport=A), pkt(11, sport=A)]
        assert brief(engine.update(table(rows))) == [(A, 0, 0, 1, IDLE)]

    def test_active_timeout_boundary(self, make: MakeEngine) -> None:
        """Rule 3: age exactly active joins; age active + 1 ns ends the record (active)."""
        engine = make(config_ns(inactive_ns=10, active_ns=25))
        rows = [pkt(0), pkt(10), pkt(20), pkt(25), pkt(26)]
        assert brief(engine.update(table(rows))) == [(A, 0, 25, 4, ACTIVE)]
        assert brief(engine.flush()) == [(A, 26, 26, 1, FORCED)]

    @pytest.mark.parametrize(
        "flag", [0x01, 0x04, 0x11, 0x14], ids=["fin", "rst", "fin-ack", "rst-ack"]
    )
    def test_fin_or_rst_ends_record_with_packet(self, make: MakeEngine, flag: int) -> None:
        """Rule 5: a TCP FIN or RST joins the record and ends it (end of flow)."""
        engine = make(config_ns())
        ended = engine.update(table([pkt(0, tcp_flags=0x02), pkt(1, tcp_flags=flag)]))
        assert brief(ended) == [(A, 0, 1, 2, END_OF_FLOW)]
        assert ended[0].tcp_flags == 0x02 | flag
        assert engine.update(table([pkt(2)])) == []
        assert brief(engine.flush()) == [(A, 2, 2, 1, FORCED)]

    def test_fin_on_first_packet(self, make: MakeEngine) -> None:
        """Rule 5 after rule 1: a lone FIN is a one-packet record ended at once."""
        engine = make(config_ns())
        assert brief(engine.update(table([pkt(5, tcp_flags=0x11)]))) == [(A, 5, 5, 1, END_OF_FLOW)]
        assert engine.flush() == []

    def test_fin_bits_outside_tcp_do_not_end(self, make: MakeEngine) -> None:
        """Rule 5 is for TCP only: a UDP row carrying FIN/RST bits joins as usual."""
        engine = make(config_ns())
        assert engine.update(table([pkt(0, proto=17, tcp_flags=0x05)] * 2)) == []
        assert brief(engine.flush()) == [(A, 0, 0, 2, FORCED)]

    def test_cache_full_evicts_least_recently_updated(self, make: MakeEngine) -> None:
        """A new record in a full cache ends the least recently updated, not the oldest created."""
        engine = make(config_ns(inactive_ns=1000, max_flows=2))
        rows = [pkt(0, sport=A), pkt(1, sport=B), pkt(2, sport=A), pkt(3, sport=C)]
        assert brief(engine.update(table(rows))) == [(B, 1, 1, 1, CACHE_FULL)]
        assert brief(engine.flush()) == [(A, 0, 2, 2, FORCED), (C, 3, 3, 1, FORCED)]

    @pytest.mark.parametrize(("t_new", "reason"), [(10, CACHE_FULL), (11, IDLE)])
    def test_idle_records_leave_before_cache_full(
        self, make: MakeEngine, t_new: int, reason: int
    ) -> None:
        """An idle head leaves as idle and frees room; one not yet idle is evicted as cache full."""
        engine = make(config_ns(inactive_ns=10, max_flows=2))
        rows = [pkt(0, sport=A), pkt(5, sport=B), pkt(t_new, sport=C)]
        assert brief(engine.update(table(rows))) == [(A, 0, 0, 1, reason)]
        assert brief(engine.flush()) == [(B, 5, 5, 1, FORCED), (C, t_new, t_new, 1, FORCED)]

    def test_vlan_outside_key_keeps_opening_vlan(self, make: MakeEngine) -> None:
        """Without key_vlan, VLANs 10 and 20 share a record that keeps the first VLAN."""
        engine = make(config_ns(key_vlan=False))
        engine.update(table([pkt(0, vlan=10), pkt(1, vlan=20)]))
        assert [(r.vlan, r.packets) for r in engine.flush()] == [(10, 2)]

    def test_vlan_in_key_splits(self, make: MakeEngine) -> None:
        """With key_vlan, VLANs 10 and 20 make two records."""
        engine = make(config_ns(key_vlan=True))
        engine.update(table([pkt(0, vlan=10), pkt(1, vlan=20), pkt(2, vlan=10)]))
        assert sorted((r.vlan, r.packets) for r in engine.flush()) == [(10, 2), (20, 1)]

    def test_keys_differing_in_one_field_stay_apart(self, make: MakeEngine) -> None:
        """Eleven keys each one field away from a base key give twelve records of two packets."""
        changed = {
            "version": 6,
            "src_hi": 1 << 63,
            "src_lo": V4 | 0x0A00_0003,
            "dst_hi": 1,
            "dst_lo": V4 | 0x0A00_0001,
            "sport": A + 1,
            "dport": 81,
            "proto": 17,
            "tos": 4,
            "ifindex": 2,
            "vlan": 7,
        }
        keys: list[dict[str, int]] = [{}, *({name: value} for name, value in changed.items())]
        rows = [pkt(t, **key) for t in (0, 1) for key in keys]
        engine = make(config_ns(max_flows=12, key_vlan=True))
        assert engine.update(table(rows)) == []
        records = engine.flush()
        expected = sorted((*({**DEFAULTS, **key}[f] for f in KEY_FIELDS), 2) for key in keys)
        assert sorted((*r[:11], r.packets) for r in records) == expected

    def test_keys_in_one_hash_bucket_stay_apart(self, make: MakeEngine) -> None:
        """Keys sharing a home bucket keep their own records through joins and deletions."""
        config = config_ns(max_flows=4)
        mask = len(FlowCache(config).table) - 1
        assert mask == 7, "the cache no longer has an 8-slot table for 4 flows"
        addresses = (
            np.uint64(0),
            np.uint64(V4 | 0x0A00_0001),
            np.uint64(0),
            np.uint64(V4 | 0x0A00_0002),
        )
        rest = (np.uint16(80), np.uint8(6), np.uint8(0), np.uint32(1), np.uint16(0))
        ports = [
            port
            for port in range(A, A + 1000)
            if int(hashing.key_hash(np.uint8(4), *addresses, np.uint16(port), *rest)) & mask == 0
        ]
        p, q, r, s = ports[:4]
        engine = make(config)
        rows = [
            pkt(0, sport=p),
            pkt(1, sport=q),
            pkt(2, sport=r),
            pkt(3, sport=s),
            pkt(4, sport=p, tcp_flags=0x01),
            pkt(5, sport=s),
            pkt(6, sport=r),
            pkt(7, sport=q, tcp_flags=0x04),
            pkt(8, sport=s),
            pkt(9, sport=r),
        ]
        assert brief(engine.update(table(rows))) == [
            (p, 0, 4, 2, END_OF_FLOW), (q, 1, 7, 2, END_OF_FLOW)
        ]  # fmt: skip
        assert brief(engine.flush()) == sorted([(r, 2, 9, 3, FORCED), (s, 3, 8, 3, FORCED)])

    def test_many_keys_in_a_large_cache(self, make: MakeEngine) -> None:
        """5,000 random keys, three packets each in shuffled order, give 5,000 three-packet records."""
        rng = np.random.default_rng(11)
        fields = {
            name: rng.integers(0, 2**64 if name.endswith(("hi", "lo")) else 4, 5000, np.uint64)
            for name in ("src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "tos")
        }
        keys = sorted(set(zip(*(fields[name].tolist() for name in fields), strict=True)))
        order = rng.permutation(np.repeat(np.arange(len(keys)), 3))
        rows = [
            pkt(t, **dict(zip(fields, keys[k], strict=True))) for t, k in enumerate(order.tolist())
        ]
        engine = make(config_ns(inactive_ns=10**9, active_ns=10**9, max_flows=8192))
        assert engine.update(table(rows)) == []
        records = engine.flush()
        got = Counter((r.src_hi, r.src_lo, r.dst_hi, r.dst_lo, r.sport, r.tos) for r in records)
        assert len(records) == len(keys)
        assert got == Counter(dict.fromkeys(keys, 1))
        assert {r.packets for r in records} == {3}

    def test_out_of_order_times_keep_first_before_last(self, make: MakeEngine) -> None:
        """A late packet lowers first; last stays the largest time."""
        engine = make(config_ns(inactive_ns=1000))
        engine.update(table([pkt(100), pkt(50), pkt(120), pkt(30)]))
        assert brief(engine.flush()) == [(A, 30, 120, 4, FORCED)]

    def test_undecodable_rows_advance_clock(self, make: MakeEngine) -> None:
        """A version-0 row makes no record but its time ends idle records."""
        engine = make(config_ns(inactive_ns=10))
        assert engine.update(table([pkt(0)])) == []
        undecodable = dict.fromkeys(KEY_FIELDS, 0)
        assert brief(engine.update(table([pkt(10, **undecodable, reason=3)]))) == []
        assert brief(engine.update(table([pkt(11, **undecodable, reason=3)]))) == [
            (A, 0, 0, 1, IDLE)
        ]
        assert engine.flush() == []

    def test_each_record_leaves_at_the_clock_it_ended_at(self, make: MakeEngine) -> None:
        """Idle: when it went idle, however late the clock learns it; any other end: the clock."""
        engine = make(config_ns(inactive_ns=10, active_ns=1000, max_flows=2))
        rows = [
            pkt(0, sport=A),
            pkt(5, sport=B, tcp_flags=0x01),  # FIN: ends at 5
            pkt(50, sport=C),  # clock 50: A went idle at 0 + 10 + 1
            pkt(51, sport=D),
            pkt(52, sport=E),  # cache full: C ends at 52
            pkt(60, sport=D),
            pkt(1062, sport=D),  # a gap of 1002: E left at 52 + 10 + 1, D at 60 + 10 + 1
        ]
        engine.update(table(rows))
        engine.expire(10**9)  # D's new record went idle at 1062 + 10 + 1
        engine.update(table([pkt(2 * 10**9, sport=A)]))
        engine.flush()  # forced: at the clock
        left = sorted((r.sport, r.first_ns, r.end_reason, at) for r, at in engine.exported)
        assert left == [
            (A, 0, IDLE, 11), (A, 2 * 10**9, FORCED, 2 * 10**9), (B, 5, END_OF_FLOW, 5),
            (C, 50, CACHE_FULL, 52), (D, 51, IDLE, 71), (D, 1062, IDLE, 1073), (E, 52, IDLE, 63),
        ]  # fmt: skip

    def test_expire_ends_idle_records(self, make: MakeEngine) -> None:
        """expire(clock) ends records whose last + inactive is behind it; the clock never goes back."""
        engine = make(config_ns(inactive_ns=10))
        engine.update(table([pkt(0, sport=A), pkt(5, sport=B)]))
        assert engine.expire(10) == []
        assert brief(engine.expire(11)) == [(A, 0, 0, 1, IDLE)]
        assert engine.expire(3) == []
        assert engine.expire(15) == []
        assert brief(engine.expire(16)) == [(B, 5, 5, 1, IDLE)]
        assert engine.expire(100) == []
        ended = engine.update(table([pkt(20, sport=A), pkt(21, sport=B)]))
        assert brief(ended) == [(A, 20, 20, 1, IDLE)]
        assert brief(engine.flush()) == [(B, 21, 21, 1, FORCED)]


class TestPeakOpenFlows:
    def test_peak_counts_packet_by_packet_within_a_batch(self) -> None:
        """Four records open at once, then two FINs and a fifth flow, in one batch: the peak
        is 4 though the batch ends with 3 open."""
        cache = FlowCache(config_ns())
        ports = [A, B, C, 1004]
        packets = [pkt(i, sport=port) for i, port in enumerate(ports)]
        packets += [pkt(4, sport=A, tcp_flags=0x11), pkt(5, sport=B, tcp_flags=0x11)]
        packets.append(pkt(6, sport=1005))
        cache.update(table(packets))
        assert (cache.open_flows, cache.peak_open_flows) == (3, 4)
        cache.flush()
        assert (cache.open_flows, cache.peak_open_flows) == (0, 4)


class TestLayout:
    @pytest.mark.parametrize("max_flows", [1, 2, 1000, 65536])
    def test_state_bytes_per_flow(self, max_flows: int) -> None:
        """The cache holds at most 200 bytes of state per record it can hold."""
        assert FlowCache(CacheConfig(max_flows=max_flows)).state_bytes_per_flow <= 200

    def test_reference_field_order(self) -> None:
        """The oracle's record and packet tuples name RecordTable's and PacketTable's fields."""
        assert Record._fields == tuple(RecordTable.DTYPES)
        assert set(PacketRow._fields) == set(PacketTable.DTYPES) - {"reason"}

    def test_timeouts_round_to_exact_ns(self) -> None:
        """Timeouts of k ns or k µs written in seconds give exactly k or 1000k ns."""
        for k in range(0, 100_001, 7):
            assert CacheConfig(k / 1e9, k * 1e-6).inactive_ns == k
            assert CacheConfig(k / 1e9, k * 1e-6).active_ns == 1000 * k


# ---- differential tests: hypothesis streams through both engines ----

BASE_NS = 1_700_000_000 * 10**9
FIELD_VALUES: dict[str, list[int]] = {
    "version": [4, 6],
    "src_hi": [0, 1, 0x2001_0DB8_0000_0000, 2**64 - 1],
    "src_lo": [V4 | 0x0A00_0001, V4 | 0x0A00_0002, 0, 2**64 - 1],
    "dst_hi": [0, 2**63],
    "dst_lo": [V4 | 0xC0A8_0001, V4 | 0x0A00_0001, 1],
    "sport": [0, 1, 443, 65535],
    "dport": [0, 80, 65535],
    "proto": [6, 6, 17, 1, 58],
    "tos": [0, 0xB8, 255],
    "ifindex": [0, 1, 2**32 - 1],
    "vlan": [0, 10, 4095],
}
FLAGS = [0x00, 0x02, 0x10, 0x12, 0x18, 0x10, 0x18, 0x10, 0x11, 0x04]  # 1 in 5 FIN or RST
INACTIVE_NS = [0, 1, 2, 3, 5, 10, 100, 15 * 10**9]
ACTIVE_NS = [0, 1, 3, 7, 10, 20, 50, 1800 * 10**9]
ONE_FIELD_CHANGES = [(i, v) for i, name in enumerate(KEY_FIELDS) for v in FIELD_VALUES[name]]


@st.composite
def key_pools(draw: st.DrawFn) -> list[tuple[int, ...]]:
    """Distinct keys, each after the first one field away from an earlier one."""
    pool = [tuple(draw(st.sampled_from(values)) for values in FIELD_VALUES.values())]
    for _ in range(draw(st.one_of(st.integers(0, 2), st.integers(3, 30)))):
        key = list(pool[draw(st.integers(0, len(pool) - 1))])
        field, value = draw(st.sampled_from(ONE_FIELD_CHANGES))
        key[field] = value
        if tuple(key) not in pool:
            pool.append(tuple(key))
    return pool


@st.composite
def configs(draw: st.DrawFn) -> CacheConfig:
    """Timeouts of a few ns (to hit their edges) or the defaults; tiny or roomy caches."""
    return config_ns(
        draw(st.sampled_from(INACTIVE_NS)),
        draw(st.sampled_from(ACTIVE_NS)),
        draw(st.one_of(st.integers(1, 5), st.sampled_from([8, 64, 4096]))),
        draw(st.booleans()),
    )


def time_steps(config: CacheConfig) -> st.SearchStrategy[int]:
    """Gaps between packets, bunched at the timeout boundaries, some going backwards."""
    inactive, active = config.inactive_ns, config.active_ns
    edges = [0, 1, 2, inactive - 1, inactive, inactive + 1, active - 1, active, active + 1]
    backwards = [-1, -inactive - 1, -active]
    return st.one_of(
        st.sampled_from(edges * 3 + backwards * 2),
        st.integers(0, 2 * max(inactive, active) + 2),
    )


@st.composite
def cases(draw: st.DrawFn, max_rows: int = 40) -> tuple[CacheConfig, PacketTable]:
    """A config and a packet stream over a small key pool, one row in ten undecodable."""
    config = draw(configs())
    pool = draw(key_pools())
    kinds: list[tuple[int, int] | None] = [(k, flags) for k in range(len(pool)) for flags in FLAGS]
    kinds += [None] * (len(kinds) // 9)  # None: an undecodable frame
    row = st.tuples(time_steps(config), st.sampled_from(kinds), st.integers(20, 65535))
    t, rows = BASE_NS, []
    for _ in range(draw(st.integers(0, max_rows))):
        step, kind, ip_len = draw(row)
        t += step
        if kind is None:
            rows.append(pkt(t, **dict.fromkeys(KEY_FIELDS, 0), tcp_flags=0, ip_len=0, reason=1))
        else:
            key = dict(zip(KEY_FIELDS, pool[kind[0]], strict=True))
            rows.append(pkt(t, **key, tcp_flags=kind[1], ip_len=ip_len))
    return config, table(rows)


def fast_records(packets: PacketTable, config: CacheConfig, batch_rows: int | None) -> list[Record]:
    """Records of the fast engine fed ``batch_rows`` rows per update (all at once for None)."""
    cache = FlowCache(config)
    step = batch_rows or max(len(packets), 1)
    tables = [cache.update(packets.take(slice(i, i + step))) for i in range(0, len(packets), step)]
    return as_records(RecordTable.concat([*tables, cache.flush()]))


def check_invariants(records: list[Record], packets: PacketTable) -> None:
    decoded = packets.version != 0
    assert sum(r.packets for r in records) == int(decoded.sum())
    assert sum(r.octets for r in records) == int(packets.ip_len[decoded].astype(np.uint64).sum())
    assert all(r.first_ns <= r.last_ns and r.packets >= 1 for r in records)


class TestDifferential:
    @pytest.mark.parametrize(
        "batch_rows", [1, 2, 3, 7, 64, None], ids=lambda b: f"batch-{b or 'all'}"
    )
    @settings(max_examples=300, deadline=None)
    @given(case=cases())
    def test_fast_matches_reference(self, batch_rows: int | None, case: Any) -> None:
        """Whatever the batch size, the fast engine ends the same records as the reference."""
        config, packets = case
        expected = reference_records(packets, config)
        assert sorted(fast_records(packets, config, batch_rows)) == sorted(expected)

    @settings(max_examples=200, deadline=None)
    @given(case=cases(), data=st.data())
    def test_same_records_per_call_with_ticks(self, case: Any, data: st.DataObject) -> None:
        """Cut anywhere and with expire ticks between batches, each call ends the same records."""
        config, packets = case
        cuts = sorted(data.draw(st.lists(st.integers(0, len(packets)), max_size=6)))
        fast, reference = FastEngine(config), ReferenceCache(config)
        start, t = 0, BASE_NS
        for stop in [*cuts, len(packets)]:
            batch = packets.take(slice(start, stop))
            assert sorted(fast.update(batch)) == sorted(reference.update(batch))
            if stop > 0:
                t = int(packets.ts_ns[stop - 1])
            if data.draw(st.booleans()):
                tick = t + data.draw(time_steps(config))
                assert sorted(fast.expire(tick)) == sorted(reference.expire(tick))
            start = stop
        assert sorted(fast.flush()) == sorted(reference.flush())
        assert sorted(fast.exported) == sorted(reference.exported)

    @settings(max_examples=100, deadline=None)
    @given(case=cases(max_rows=100))
    def test_invariants(self, case: Any) -> None:
        """Both engines conserve decoded packets and octets, and keep first <= last."""
        config, packets = case
        check_invariants(reference_records(packets, config), packets)
        check_invariants(fast_records(packets, config, 5), packets)
