"""spanflow from Python: the command's engine, flows as typed numpy columns.

    import spanflow
    flows = spanflow.convert(["capture.pcap"])
    flows.to_polars().group_by("src").agg(pl.col("octets").sum())

``convert`` meters whole captures; ``stream`` hands records over in batches as
they leave the cache, for captures larger than memory; ``bench_sampling``
measures what sampling does to the flows a collector sees. Options and flow rules
are the command's (docs/design.md, Flow rules).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cache.config import CacheConfig
from core.attributes import FieldGroup, check_fields, parse_fields
from core.choices import SamplingMode
from core.errors import ConfigError
from core.records import EndedRecords, RecordTable
from exporter.arrow import arrow_table, optional
from probe.bench.sampling import as_json, run_trials
from probe.meter.counters import Counters, end_reason_counts
from probe.meter.offline import meter_files
from probe.meter.parallel_plan import ParallelPlan
from probe.meter.sampling import SamplingConfig
from probe.sources.readers import DEFAULT_BATCH_FRAMES

STREAM_DEPTH = 4  # batches metered ahead of the consumer: memory stays bounded


@dataclass(slots=True)
class Flows:
    """Flow records as numpy columns (``records``), and what the run counted (``stats``).

    Columns are those of ``core.records.RecordTable``: addresses as two uint64
    halves, times in ns since the epoch; ``to_arrow`` and the frames built on it
    give the flow file's columns (addresses as text, times as UTC timestamps).
    """

    records: RecordTable
    stats: dict[str, int] = field(default_factory=dict)
    damage: list[str] = field(default_factory=list)  # inputs that ended early, and where
    fields: frozenset[FieldGroup] = frozenset()  # the flow file columns ``fields=`` added

    def __len__(self) -> int:
        return len(self.records)

    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` (needs pyarrow: ``pip install 'spanflow[arrow]'``)."""
        return arrow_table(self.records, self.fields)

    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` (needs pyarrow and pandas)."""
        optional("pandas", "pandas")
        return self.to_arrow().to_pandas()

    def to_polars(self) -> Any:
        """A ``polars.DataFrame`` (needs pyarrow and polars)."""
        polars = optional("polars", "polars")
        return polars.from_arrow(self.to_arrow())


def _configs(
    inactive: float, active: float, max_flows: int, key_vlan: bool,
    sampling: str, sampling_rate: int | None, seed: int, tunnels: str = "outer",
    fields: frozenset[FieldGroup] = frozenset(), key_mac: bool = False,
) -> tuple[CacheConfig, SamplingConfig]:  # fmt: skip
    if tunnels not in ("outer", "inner"):
        raise ConfigError(f"tunnels must be 'outer' or 'inner', got {tunnels!r}")
    check_fields(fields, tunnels == "inner")
    return (
        CacheConfig(
            inactive, active, max_flows, key_vlan, tunnels == "inner", bool(fields), key_mac
        ),
        SamplingConfig(SamplingMode(sampling), sampling_rate, seed),
    )


def _field_groups(fields: str | Sequence[str]) -> frozenset[FieldGroup]:
    return parse_fields(fields if isinstance(fields, str) else ",".join(fields))


def _stats(counters: Counters) -> dict[str, int]:
    return {
        "frames": counters.frames,
        "selected": counters.selected,
        "decoded": counters.decoded,
        "undecodable": counters.undecodable,
        "records": counters.records,
        "packets": counters.packets,
        "octets": counters.octets,
        "peak_open_flows": counters.peak_open_flows,
        **{f"end_{name}": n for name, n in end_reason_counts(counters).items()},
    }


def convert(
    paths: str | Path | Sequence[str | Path],
    *,
    inactive: float = 15.0,
    active: float = 1800.0,
    max_flows: int = 65536,
    key_vlan: bool = False,
    key_mac: bool = False,
    tunnels: str = "outer",
    fields: str | Sequence[str] = (),
    sampling: str = "full",
    sampling_rate: int | None = None,
    seed: int = 0,
    jobs: int = 1,
) -> Flows:
    """Meter the captures (merged in time order) and return every record.

    ``jobs`` > 1 meters slices on that many processes, with the same records.
    ``fields`` (any of "vlan", "mac", "mpls", "tunnel") adds the first
    packet's L2 and tunnel attributes to each record, as ``--fields`` does.
    Raises ``core.errors.InputError`` for a capture that cannot be read and
    ``ConfigError`` for bad options; damage met later is in ``damage``, with
    every record read before it.
    """
    files = [str(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
    groups = _field_groups(fields)
    config, sampling_config = _configs(
        inactive, active, max_flows, key_vlan, sampling, sampling_rate, seed, tunnels, groups,
        key_mac,
    )  # fmt: skip
    parts: list[EndedRecords] = []
    if jobs > 1:
        if sampling_config.mode is not SamplingMode.FULL:
            raise ConfigError("jobs > 1 meters without sampling (a sampler's count spans slices)")
        from probe.meter.parallel import meter_in_parallel

        counters, _ = meter_in_parallel(files, config, parts.append, ParallelPlan(jobs))
    else:
        counters = meter_files(files, config, parts.append, sampling=sampling_config)
    records = EndedRecords.concat(parts).records()
    return Flows(records, _stats(counters), counters.damage, groups)


def stream(
    paths: str | Path | Sequence[str | Path],
    *,
    inactive: float = 15.0,
    active: float = 1800.0,
    max_flows: int = 65536,
    key_vlan: bool = False,
    key_mac: bool = False,
    tunnels: str = "outer",
    fields: str | Sequence[str] = (),
    sampling: str = "full",
    sampling_rate: int | None = None,
    seed: int = 0,
    batch_frames: int = DEFAULT_BATCH_FRAMES,
) -> Iterator[Flows]:
    """Meter the captures, yielding batches of records as they leave the cache.

    The metering runs on a thread a few batches ahead (``batch_frames`` frames
    per read); a batch's ``stats`` are empty except the last one's, which has
    no records and holds the run's counters and damage.
    Errors are raised from the iteration, as ``convert`` raises them.
    """
    files = [str(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
    groups = _field_groups(fields)
    config, sampling_config = _configs(
        inactive, active, max_flows, key_vlan, sampling, sampling_rate, seed, tunnels, groups,
        key_mac,
    )  # fmt: skip
    batches: queue.Queue[EndedRecords | Counters | BaseException] = queue.Queue(STREAM_DEPTH)

    def run() -> None:
        try:
            counters = meter_files(files, config, batches.put, batch_frames, sampling_config)
            batches.put(counters)
        except BaseException as exc:  # handed to the consumer
            batches.put(exc)

    thread = threading.Thread(target=run, name="spanflow-stream", daemon=True)
    thread.start()
    while True:
        item = batches.get()
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, Counters):
            yield Flows(RecordTable.empty(0), _stats(item), item.damage, groups)
            break
        yield Flows(item.records(), fields=groups)
    thread.join()


@dataclass(slots=True)
class SamplingReport:
    """``bench_sampling``'s result: ``report`` is the JSON ``spanflow bench-sampling`` writes."""

    report: dict[str, Any]

    def to_pandas(self) -> Any:
        """One row per trial (mode, rate, trial, each error measure, detections)."""
        pandas = optional("pandas", "pandas")
        return pandas.json_normalize(self.report["trials"])


def bench_sampling(
    paths: str | Path | Sequence[str | Path],
    *,
    rates: Sequence[int] = (10, 100, 1000),
    modes: Sequence[str] = ("deterministic", "random", "probabilistic"),
    trials: int = 10,
    inactive: float = 15.0,
    active: float = 1800.0,
    max_flows: int = 65536,
) -> SamplingReport:
    """How much each sampling mode and rate distorts what a collector sees, as data.

    The same trials as ``spanflow bench-sampling`` (seeds 0..trials-1; one
    trial for deterministic sampling, which has no seed).
    """
    files = [str(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
    cache = CacheConfig(inactive, active, max_flows)
    mode_list = [SamplingMode(mode) for mode in modes]
    truth, results = run_trials(files, cache, mode_list, list(rates), trials)
    return SamplingReport(as_json(truth, results))
