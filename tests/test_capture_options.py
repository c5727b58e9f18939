"""`spanflow capture` options that need no traffic: config files, the export exclusion, --user."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from probe.cli.capturing import exclude_exports
from probe.cli.main import app

SAMPLES = Path(__file__).resolve().parent.parent / "samples"


def capture(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["capture", *args])
    assert "Traceback" not in result.output + result.stderr
    return result.exit_code, result.stderr


class TestConfigFile:
    def test_file_supplies_options(self, tmp_path: Path) -> None:
        """Keys of the TOML file act as options: the interface comes from the file."""
        config = tmp_path / "probe.toml"
        config.write_text('interface = "nosuch7"\ncollector = ["127.0.0.1:2055"]\nmax-flows = 10\n')
        code, err = capture("--config", str(config))
        assert code == 2
        assert err.strip() == "spanflow: error: nosuch7: no such network interface"

    def test_flags_win_over_the_file(self, tmp_path: Path) -> None:
        """A flag on the command line overrides the same key in the file."""
        config = tmp_path / "probe.toml"
        config.write_text('interface = "nosuch7"\ncollector = ["127.0.0.1:2055"]\n')
        code, err = capture("--config", str(config), "-i", "other9")
        assert code == 2
        assert "other9: no such network interface" in err

    def test_unknown_key_is_a_usage_error(self, tmp_path: Path) -> None:
        """A key that is no option is refused, naming the key."""
        config = tmp_path / "probe.toml"
        config.write_text('interface = "lo"\nmax_flow = 10\n')
        code, err = capture("--config", str(config))
        assert code == 2
        assert "unknown setting 'max_flow'" in err

    def test_shipped_example_is_valid(self) -> None:
        """samples/spanflow.toml uses only real option names (it fails only on its interface)."""
        code, err = capture("--config", str(SAMPLES / "spanflow.toml"), "-i", "nosuch8")
        assert code == 2
        assert err.strip() == "spanflow: error: nosuch8: no such network interface"


class TestExportExclusion:
    def test_own_datagrams_are_filtered_out(self) -> None:
        """Each collector adds a clause that drops the probe's datagrams to it."""
        assert exclude_exports("tcp", ["127.0.0.1:2055", "[::1]:9995"]) == (
            "(tcp) and not ((udp and dst host 127.0.0.1 and dst port 2055) or "
            "(udp and dst host ::1 and dst port 9995))"
        )

    def test_no_collector_keeps_the_filter(self) -> None:
        """Without collectors the user's filter is used as given."""
        assert exclude_exports("vlan", []) == "vlan"


def test_nowhere_to_send_is_a_usage_error() -> None:
    """Capturing with no collector, pcap or flow file is refused before opening anything."""
    code, err = capture("-i", "lo")
    assert code == 2
    assert "nowhere to send flows" in err


@pytest.mark.skipif(os.geteuid() != 0, reason="opening a capture on lo needs root")
def test_unknown_user_is_refused_after_open(tmp_path: Path) -> None:
    """--user with a name the system does not know stops with a usage error."""
    code, err = capture("-i", "lo", "-o", str(tmp_path / "f.csv"), "--user", "no-such-user-x", "-q")
    assert code == 2
    assert "no such user 'no-such-user-x'" in err


class TestBackendOptions:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (["--workers", "2", "--backend", "pcap"], "--workers needs --backend afpacket"),
            (["--workers", "0"], "--workers must be 1 to 64, got 0"),
            (["--workers", "65"], "--workers must be 1 to 64, got 65"),
        ],
    )
    def test_impossible_combinations_are_usage_errors(
        self, tmp_path: Path, args: list[str], message: str
    ) -> None:
        """Refused in one line (exit 2) before any socket is opened."""
        code, err = capture("-i", "lo", "-o", str(tmp_path / "f.csv"), *args)
        assert (code, err.strip()) == (2, f"spanflow: error: {message}")

    @pytest.mark.skipif(os.geteuid() != 0, reason="opening a capture on lo needs root")
    def test_a_filter_libpcap_cannot_compile_is_a_usage_error(self, tmp_path: Path) -> None:
        code, err = capture("-i", "lo", "-o", str(tmp_path / "f.csv"), "-f", "tcp port banana")
        assert code == 2
        assert err.startswith("spanflow: error: --filter 'tcp port banana': "), err
        assert len(err.strip().splitlines()) == 1

    @pytest.mark.skipif(os.geteuid() != 0, reason="opening a capture on lo needs root")
    def test_an_unusable_metrics_address_is_a_usage_error(self, tmp_path: Path) -> None:
        code, err = capture("-i", "lo", "-o", str(tmp_path / "f.csv"), "--metrics", "127.0.0.1")
        assert (code, err.strip()) == (2, "spanflow: error: 127.0.0.1: expected HOST:PORT")


def test_pcap_batches_have_the_buffer_type_the_warmed_kernels_take() -> None:
    """A read-only buffer is another numba type: compiled on the first live batch, frames dropped."""
    from probe.live.pcap import LiveCapture, LiveConfig

    class Handle:
        def readpkts(self) -> list[tuple[int, bytes]]:
            return [(1, bytes(60)), (2, bytes(64))]

    capture = LiveCapture.__new__(LiveCapture)
    capture.config, capture.handle = LiveConfig("lo"), Handle()
    capture.linktype, capture.ifindex = 1, 1
    batch = capture.read()
    assert batch is not None
    assert batch.buf.flags.writeable
    assert batch.caplen.tolist() == [60, 64]
