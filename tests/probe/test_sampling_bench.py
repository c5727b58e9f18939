"""bench-sampling: its error measures and scenario detectors on the shipped samples."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from cache.config import CacheConfig
from probe.bench.sampling import collect_records, compare, detect_scenarios, run_trials
from probe.cli.main import app
from probe.meter.sampling import SamplingConfig, SamplingMode

SAMPLES = Path(__file__).resolve().parents[2] / "samples"
SEED_SCENARIOS = [SAMPLES / "synflood.pcap", SAMPLES / "slowscan.pcap", SAMPLES / "portscan.pcap"]
TRIALS = 10


@pytest.fixture(scope="module")
def trials_at_1000() -> tuple[dict[str, bool], list]:
    return run_trials(SEED_SCENARIOS, CacheConfig(), [SamplingMode.RANDOM], [1000], TRIALS)


def test_full_capture_shows_every_seed_scenario() -> None:
    """Unsampled, each detector fires on the sample built for it, and only there."""
    for sample, expected in [
        ("synflood.pcap", {"flood": True, "fast_scan": False, "slow_scan": False}),
        ("portscan.pcap", {"flood": False, "fast_scan": True, "slow_scan": False}),
        ("slowscan.pcap", {"flood": False, "fast_scan": False, "slow_scan": True}),
        ("web.pcap", {"flood": False, "fast_scan": False, "slow_scan": False}),
    ]:
        records = collect_records([SAMPLES / sample], CacheConfig(), SamplingConfig())
        assert detect_scenarios(records, 1) == expected, sample


def test_flood_survives_1_in_1000_but_slow_scan_does_not(trials_at_1000) -> None:
    """As the seed articles say: at 1:1000 the flood stays visible, the slow scan vanishes."""
    truth, results = trials_at_1000
    assert truth == {"flood": True, "fast_scan": True, "slow_scan": True}
    flood_rate = np.mean([r.detected["flood"] for r in results])
    slow_rate = np.mean([r.detected["slow_scan"] for r in results])
    assert flood_rate >= 0.8
    assert slow_rate == 0.0


def test_scaled_totals_bracket_the_truth(trials_at_1000) -> None:
    """Over random trials the scaled packet totals fall on both sides of the truth."""
    _, results = trials_at_1000
    errors = np.array([r.packets_error for r in results])
    assert errors.min() < 0 < errors.max() or np.all(errors == 0)
    assert abs(errors.mean()) < 3 * errors.std() / np.sqrt(len(errors)) + 1e-9


def test_deterministic_sampling_aliases_on_periodic_traffic() -> None:
    """A heartbeat every 10th frame: 1-in-10 deterministic sees only it; random does not."""
    truth = collect_records([SAMPLES / "aliasing.pcap"], CacheConfig(), SamplingConfig())
    config = SamplingConfig(SamplingMode.DETERMINISTIC, 10)
    aliased = compare(
        truth, collect_records([SAMPLES / "aliasing.pcap"], CacheConfig(), config), 10
    )
    random_errors = [
        compare(truth, collect_records([SAMPLES / "aliasing.pcap"], CacheConfig(),
                                       SamplingConfig(SamplingMode.RANDOM, 10, seed)), 10)["octets_error"]
        for seed in range(5)
    ]  # fmt: skip
    assert aliased["flows_seen"] < 0.5
    assert abs(aliased["octets_error"]) > 5 * max(abs(e) for e in random_errors)


def test_cli_writes_table_report_and_plots(tmp_path: Path) -> None:
    """The command prints one row per mode and rate and writes report.json and two PNGs."""
    result = CliRunner().invoke(
        app,
        ["bench-sampling", str(SAMPLES / "synflood.pcap"), "--rates", "10,100",
         "--modes", "random,deterministic", "--trials", "2", "--report", str(tmp_path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "report.json").read_text())
    assert [(row["mode"], row["rate"], row["trials"]) for row in report["summary"]] == [
        ("deterministic", 10, 1), ("deterministic", 100, 1), ("random", 10, 2), ("random", 100, 2),
    ]  # fmt: skip
    assert report["full_mode_detections"]["flood"] is True
    for png in ("errors.png", "detection.png"):
        assert (tmp_path / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_rejects_bad_rates() -> None:
    """A rate list that is not integers >= 2 is a usage error (exit 2)."""
    result = CliRunner().invoke(
        app, ["bench-sampling", str(SAMPLES / "web.pcap"), "--rates", "1,x"]
    )
    assert result.exit_code == 2
