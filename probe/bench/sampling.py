"""How much each sampling mode distorts what a collector sees (``spanflow bench-sampling``).

Ground truth is the full-mode records of the same captures. Each trial meters
the captures again with one mode, rate and seed, scales the sampled counters
by N as a collector would, and compares. Detectors for the seed scenarios use
fixed, documented thresholds on the scaled estimates.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

from cache.config import CacheConfig
from core.choices import SamplingMode
from core.records import RecordTable
from probe.meter.offline import meter_files
from probe.meter.sampling import SamplingConfig

TOP_N = 10
TCP, SYN, ACK = 6, 0x02, 0x10

# Detector thresholds, applied to scaled estimates (distinct items seen x N).
FLOOD_MIN_SOURCES = 1000  # spoofed-source flood: SYN-only sources towards one destination port
SCAN_MIN_PORTS = 100  # fast port scan: SYN-only destination ports from one source to one target
SCAN_MAX_SPAN_S = 60  # ... within this time
SLOW_SCAN_MIN_PORTS = 20  # slow scan: SYN-only ports from one source to one target ...
SLOW_SCAN_MIN_SPAN_S = 300  # ... spread over at least this long
MIN_SAMPLED_EVIDENCE = 2  # never call a scenario on a single sampled packet


@dataclass(slots=True)
class TrialResult:
    mode: str
    rate: int
    trial: int
    packets_error: float  # relative error of the scaled total packets
    octets_error: float
    flows_seen: float  # share of true flow keys that appear at all
    flow_count_error: float  # relative error of the number of flows seen (unscaled)
    top_sources_recall: float  # of the true top-10 sources by octets
    top_destinations_recall: float
    top_sources_rank: float  # Spearman correlation of ranks over the recalled sources
    top_flows_octets_error: float  # mean relative error of the 10 largest flows' octets
    detected: dict[str, bool] = field(default_factory=dict)


def collect_records(
    paths: Sequence[str | Path], cache: CacheConfig, sampling: SamplingConfig
) -> RecordTable:
    tables: list[RecordTable] = []
    meter_files(paths, cache, tables.append, sampling=sampling)
    return RecordTable.concat(tables)


def _key_ids(records: RecordTable, fields: tuple[str, ...]) -> npt.NDArray[np.void]:
    """One opaque value per distinct combination of ``fields``, for set operations."""
    columns = [(name, getattr(records, name).dtype) for name in fields]
    packed = np.empty(len(records), columns)
    for name in fields:
        packed[name] = getattr(records, name)
    return packed.view(np.dtype((np.void, packed.dtype.itemsize)))


FLOW_KEY = ("version", "src_hi", "src_lo", "dst_hi", "dst_lo", "sport", "dport", "proto", "tos",
            "ifindex")  # fmt: skip
SOURCE = ("version", "src_hi", "src_lo")
DESTINATION = ("dst_hi", "dst_lo")  # IPv4-mapped halves tell the version apart


def _top_octets(
    records: RecordTable, fields: tuple[str, ...]
) -> tuple[list[bytes], npt.NDArray[np.float64]]:
    """The ``TOP_N`` keys with the most octets (as bytes), largest first, and their octets."""
    if len(records) == 0:
        return [], np.zeros(0, np.float64)
    unique, inverse = np.unique(_key_ids(records, fields), return_inverse=True)
    octets = np.bincount(inverse.ravel(), weights=records.octets.astype(np.float64))
    order = np.argsort(-octets, kind="stable")[:TOP_N]
    top: npt.NDArray[np.float64] = octets[order].astype(np.float64)
    return [unique[i].tobytes() for i in order], top


def _recall_and_rank(true_top: list[bytes], seen_top: list[bytes]) -> tuple[float, float]:
    """Share of the true top keys seen in the sampled top; rank correlation over those."""
    if not true_top:
        return 1.0, 1.0
    common = [key for key in true_top if key in seen_top]
    recall = len(common) / len(true_top)
    if len(common) < 2:
        return recall, float("nan")
    true_rank = np.array([true_top.index(key) for key in common], np.float64)
    seen_rank = np.array([seen_top.index(key) for key in common], np.float64)
    return recall, float(np.corrcoef(true_rank, seen_rank)[0, 1])


def _relative_error(estimate: float, truth: float) -> float:
    return (estimate - truth) / truth if truth else 0.0


def _syn_only(records: RecordTable) -> npt.NDArray[np.bool_]:
    flags = records.tcp_flags
    syn_only: npt.NDArray[np.bool_] = (
        (records.proto == TCP) & ((flags & SYN) != 0) & ((flags & ACK) == 0)
    )
    return syn_only


def _distinct_per_group(
    records: RecordTable, group: tuple[str, ...], item: tuple[str, ...]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """Per ``group``: how many distinct ``item`` values it has, and its time span in seconds."""
    if len(records) == 0:
        return np.zeros(0, np.int64), np.zeros(0)
    groups = np.unique(_key_ids(records, group), return_inverse=True)[1].ravel()
    items = np.unique(_key_ids(records, item), return_inverse=True)[1].ravel()
    pairs = np.unique(np.stack([groups, items]), axis=1)
    counts = np.bincount(pairs[0])
    first = np.full(len(counts), np.iinfo(np.int64).max)
    last = np.full(len(counts), np.iinfo(np.int64).min)
    np.minimum.at(first, groups, records.first_ns)
    np.maximum.at(last, groups, records.last_ns)
    return counts.astype(np.int64), (last - first) / 1e9


def detect_scenarios(records: RecordTable, scale: int) -> dict[str, bool]:
    """Flood, fast scan and slow scan calls on (sampled) records, with counts scaled by N.

    Only SYN-without-ACK TCP records count as probes. A flood is a destination
    port reached by many sources; a scan is one source reaching many ports of one
    target, fast (short span) or slow (long span).
    """
    probes = records.take(_syn_only(records))
    sources, _ = _distinct_per_group(probes, (*DESTINATION, "dport"), SOURCE)
    ports, span_s = _distinct_per_group(probes, (*SOURCE, *DESTINATION), ("dport",))
    flood = (sources >= MIN_SAMPLED_EVIDENCE) & (sources * scale >= FLOOD_MIN_SOURCES)
    scanning = ports >= MIN_SAMPLED_EVIDENCE
    fast = scanning & (ports * scale >= SCAN_MIN_PORTS) & (span_s <= SCAN_MAX_SPAN_S)
    slow = scanning & (ports * scale >= SLOW_SCAN_MIN_PORTS) & (span_s >= SLOW_SCAN_MIN_SPAN_S)
    return {
        "flood": bool(flood.any()),
        "fast_scan": bool(fast.any()),
        "slow_scan": bool(slow.any()),
    }


def compare(truth: RecordTable, sampled: RecordTable, rate: int) -> dict[str, float]:
    """Error measures of ``sampled`` (raw counters, scaled here by ``rate``) against ``truth``."""
    true_keys = np.unique(_key_ids(truth, FLOW_KEY))
    seen_keys = np.unique(_key_ids(sampled, FLOW_KEY))
    src_true, _ = _top_octets(truth, SOURCE)
    src_seen, _ = _top_octets(sampled, SOURCE)
    dst_true, _ = _top_octets(truth, DESTINATION)
    dst_seen, _ = _top_octets(sampled, DESTINATION)
    src_recall, src_rank = _recall_and_rank(src_true, src_seen)
    dst_recall, _ = _recall_and_rank(dst_true, dst_seen)
    flows_true, octets_true = _top_octets(truth, FLOW_KEY)
    seen_ids = _key_ids(sampled, FLOW_KEY).ravel()
    largest_errors = []
    for key, octets in zip(flows_true, octets_true, strict=True):
        same_flow = seen_ids == np.frombuffer(key, seen_ids.dtype)[0]
        estimate = float(sampled.octets[same_flow].sum()) * rate
        largest_errors.append(abs(_relative_error(estimate, float(octets))))
    return {
        "packets_error": _relative_error(
            float(sampled.packets.sum()) * rate, float(truth.packets.sum())
        ),
        "octets_error": _relative_error(
            float(sampled.octets.sum()) * rate, float(truth.octets.sum())
        ),
        "flows_seen": float(np.isin(true_keys, seen_keys).mean()) if len(true_keys) else 1.0,
        "flow_count_error": _relative_error(len(seen_keys), len(true_keys)),
        "top_sources_recall": src_recall,
        "top_destinations_recall": dst_recall,
        "top_sources_rank": src_rank,
        "top_flows_octets_error": float(np.mean(largest_errors)) if largest_errors else 0.0,
    }


def run_trials(
    paths: Sequence[str | Path],
    cache: CacheConfig,
    modes: Sequence[SamplingMode],
    rates: Sequence[int],
    trials: int,
    on_trial: Callable[[TrialResult], None] | None = None,
) -> tuple[dict[str, bool], list[TrialResult]]:
    """Ground-truth detections, then one result per mode x rate x trial (seeds 0..trials-1)."""
    truth = collect_records(paths, cache, SamplingConfig())
    truth_detected = detect_scenarios(truth, 1)
    results = []
    for mode in modes:
        for rate in rates:
            # Deterministic sampling has no seed: every trial would be the same run.
            for trial in range(1 if mode is SamplingMode.DETERMINISTIC else trials):
                sampled = collect_records(paths, cache, SamplingConfig(mode, rate, trial))
                result = TrialResult(str(mode), rate, trial, **compare(truth, sampled, rate),
                                     detected=detect_scenarios(sampled, rate))  # fmt: skip
                results.append(result)
                if on_trial is not None:
                    on_trial(result)
    return truth_detected, results


SUMMARY_MEASURES = (
    "packets_error",
    "octets_error",
    "flows_seen",
    "flow_count_error",
    "top_sources_recall",
    "top_destinations_recall",
    "top_flows_octets_error",
)


def summarize(results: list[TrialResult]) -> list[dict[str, object]]:
    """Mean and spread per mode x rate, for the table and report.json."""
    rows: list[dict[str, object]] = []
    keys = sorted({(r.mode, r.rate) for r in results}, key=lambda k: (k[0], k[1]))
    for mode, rate in keys:
        group = [r for r in results if (r.mode, r.rate) == (mode, rate)]
        row: dict[str, object] = {"mode": mode, "rate": rate, "trials": len(group)}
        for name in SUMMARY_MEASURES:
            values = np.array([getattr(r, name) for r in group], np.float64)
            row[name] = float(np.mean(values))
            row[name + "_sd"] = float(np.std(values))
        for scenario in group[0].detected:
            row["detect_" + scenario] = float(np.mean([r.detected[scenario] for r in group]))
        rows.append(row)
    return rows


def as_json(truth_detected: dict[str, bool], results: list[TrialResult]) -> dict[str, object]:
    return {
        "thresholds": {
            "flood_min_sources": FLOOD_MIN_SOURCES,
            "scan_min_ports": SCAN_MIN_PORTS,
            "scan_max_span_s": SCAN_MAX_SPAN_S,
            "slow_scan_min_ports": SLOW_SCAN_MIN_PORTS,
            "slow_scan_min_span_s": SLOW_SCAN_MIN_SPAN_S,
            "min_sampled_evidence": MIN_SAMPLED_EVIDENCE,
        },
        "full_mode_detections": truth_detected,
        "summary": summarize(results),
        "trials": [asdict(r) for r in results],
    }
