"""Export settings and the pieces every wire format shares: validation, algorithms, uptime."""

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ConfigError
from exporter import EXPORTERS, IpfixExporter, V5Exporter, V9Exporter
from exporter.formats import (
    ExportConfig,
    SamplingAlgorithm,
    chunk_clocks,
    switched_to_ns,
    uptime_ms,
)


class TestExportConfig:
    @pytest.mark.parametrize(
        ("values", "message"),
        [
            ({"source_id": 2**32}, "source id must be between 0 and 4294967295, got 4294967296"),
            ({"engine_type": 256}, "engine type must be between 0 and 255, got 256"),
            ({"engine_id": -1}, "engine id must be between 0 and 255, got -1"),
            ({"mtu": 65_508}, "MTU must be between 1 and 65507, got 65508"),
            ({"template_refresh_packets": 0}, r"template refresh \(datagrams\) must be between"),
            ({"template_refresh_seconds": 0}, "template refresh must be a positive number"),
            ({"sampling_interval": 0}, "sampling interval must be between 1 and"),
            ({"sampling_algorithm": 7}, "unknown sampling algorithm 7"),
        ],
    )
    def test_out_of_range_values_are_config_errors(
        self, values: dict[str, int], message: str
    ) -> None:
        """Each setting outside what the wire formats can carry raises ConfigError."""
        with pytest.raises(ConfigError, match=message):
            ExportConfig(**values)  # type: ignore[arg-type]

    def test_algorithm_given_as_its_v9_number_becomes_the_enum(self) -> None:
        """sampling_algorithm=2 is accepted and stored as SamplingAlgorithm.RANDOM."""
        config = ExportConfig(sampling_algorithm=2)  # type: ignore[arg-type]
        assert config.sampling_algorithm is SamplingAlgorithm.RANDOM


class TestSamplingAlgorithm:
    @pytest.mark.parametrize(
        ("mode", "algorithm", "v9", "selector"),
        [
            ("full", SamplingAlgorithm.DETERMINISTIC, 1, 1),
            ("deterministic", SamplingAlgorithm.DETERMINISTIC, 1, 1),
            ("random", SamplingAlgorithm.RANDOM, 2, 3),
            ("probabilistic", SamplingAlgorithm.PROBABILISTIC, 2, 4),
        ],
    )
    def test_modes_map_to_wire_values(
        self, mode: str, algorithm: SamplingAlgorithm, v9: int, selector: int
    ) -> None:
        """Each probe sampling mode has its v9/v5 value and its RFC 5477 selectorAlgorithm."""
        assert SamplingAlgorithm.for_mode(mode) is algorithm
        assert (algorithm.v9_value, algorithm.v5_mode, algorithm.selector_algorithm) == (
            v9,
            v9,
            selector,
        )

    def test_unknown_mode_is_a_config_error(self) -> None:
        """A mode name the probe does not have is refused."""
        with pytest.raises(ConfigError, match="unknown sampling mode 'sometimes'"):
            SamplingAlgorithm.for_mode("sometimes")


class TestUptime:
    def test_uptime_is_milliseconds_modulo_2_32(self) -> None:
        """2^32 ms + 5.9 ms after boot is uptime 5; 1 ns before boot wraps to 2^32 - 1."""
        boot = 1_000_000_000_000
        times = np.array([boot + (2**32 * 1_000_000) + 5_900_000, boot - 1], np.int64)
        assert uptime_ms(times, boot).tolist() == [5, 2**32 - 1]

    def test_collector_formula_undoes_the_wrap(self) -> None:
        """A LAST_SWITCHED of 2^32 - 10 seen at uptime 20 is 30 ms before the export time."""
        assert int(switched_to_ns(50_000, 20, 2**32 - 10)) == 49_970 * 1_000_000

    def test_datagram_clock_is_never_behind_its_records(self) -> None:
        """Each chunk's clock is the export clock or its latest end, whichever is later."""
        last = np.array([5, 90, 7, 3, 2], np.int64)
        assert chunk_clocks(last, np.array([0, 2, 4]), 50).tolist() == [90, 50, 50]


def test_exporters_are_picked_by_version() -> None:
    """The table maps 5, 9 and 10 (IPFIX) to their exporter classes, as softflowd's nf[]."""
    assert {5: V5Exporter, 9: V9Exporter, 10: IpfixExporter} == EXPORTERS
