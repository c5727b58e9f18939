"""--sampling and --sampling-rate: a sampling mode needs its rate; convert and capture agree."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from core.errors import ConfigError
from probe.cli.main import app
from probe.meter.sampling import SamplingConfig, SamplingMode
from tests.captures import pcap_file, traffic
from tests.cli_runs import convert, stderr_lines

SAMPLED = ["deterministic", "random", "probabilistic"]


def capture_file(tmp_path: Path) -> Path:
    path = tmp_path / "traffic.pcap"
    path.write_bytes(pcap_file([p.frame for p in traffic()], nanos=True))
    return path


@pytest.mark.parametrize("mode", SAMPLED)
def test_config_mode_without_rate_is_refused(mode: str) -> None:
    """A sampling mode other than full with no rate given raises ConfigError naming both options."""
    with pytest.raises(ConfigError, match=f"^--sampling {mode} needs --sampling-rate N"):
        SamplingConfig(SamplingMode(mode), None)


@pytest.mark.parametrize(
    ("mode", "rate", "interval"),
    [
        (SamplingMode.FULL, None, 1),
        (SamplingMode.FULL, 1, 1),
        (SamplingMode.RANDOM, 1, 1),
        (SamplingMode.PROBABILISTIC, 7, 7),
    ],
)
def test_config_interval_is_the_rate_asked_for(
    mode: SamplingMode, rate: int | None, interval: int
) -> None:
    """Full mode samples 1 in 1 with no rate or rate 1; an explicit rate, even 1, is kept."""
    assert SamplingConfig(mode, rate).interval == interval


@pytest.mark.parametrize("mode", SAMPLED)
def test_convert_mode_without_rate_is_a_usage_error(tmp_path: Path, mode: str) -> None:
    """convert --sampling MODE without --sampling-rate exits 2 with one error line, no output."""
    result = convert(capture_file(tmp_path), "--sampling", mode, "-o", "-")
    assert result.exit_code == 2
    assert stderr_lines(result) == [
        f"spanflow: error: --sampling {mode} needs --sampling-rate N (1-in-N)"
    ]
    assert result.stdout == ""


def test_convert_rate_without_mode_is_a_usage_error(tmp_path: Path) -> None:
    """convert --sampling-rate 10 with full sampling exits 2 with one error line."""
    result = convert(capture_file(tmp_path), "--sampling-rate", "10")
    assert result.exit_code == 2
    assert stderr_lines(result) == [
        "spanflow: error: --sampling-rate needs a sampling mode other than full"
    ]


def test_convert_explicit_rate_1_is_allowed(tmp_path: Path) -> None:
    """--sampling random --sampling-rate 1 is what was asked for: it runs and keeps every frame."""
    result = convert(capture_file(tmp_path), "--sampling", "random", "--sampling-rate", "1",
                     "-o", "-")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    assert not any("sampling kept" in line for line in stderr_lines(result))


def test_convert_mode_with_rate_samples(tmp_path: Path) -> None:
    """--sampling deterministic --sampling-rate 2 keeps every other frame."""
    frames = len(traffic())
    result = convert(capture_file(tmp_path), "--sampling", "deterministic", "--sampling-rate", "2",
                     "-o", "-")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    kept = f"spanflow: sampling kept {(frames + 1) // 2} of {frames} frames"
    assert kept in stderr_lines(result)


@pytest.mark.parametrize("mode", SAMPLED)
def test_capture_mode_without_rate_is_a_usage_error(mode: str) -> None:
    """capture --sampling MODE without --sampling-rate exits 2 with one line, before any capture."""
    result = CliRunner().invoke(
        app, ["capture", "-i", "nosuch5", "-c", "127.0.0.1:2055", "--sampling", mode]
    )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        f"spanflow: error: --sampling {mode} needs --sampling-rate N (1-in-N)"
    ]


def test_capture_mode_with_rate_goes_on_to_the_interface() -> None:
    """capture with both sampling options passes them and fails only on the missing interface."""
    result = CliRunner().invoke(
        app, ["capture", "-i", "nosuch5", "-c", "127.0.0.1:2055", "--sampling", "random",
              "--sampling-rate", "10"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert result.stderr.strip() == "spanflow: error: nosuch5: no such network interface"
