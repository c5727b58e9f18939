"""What the wire formats share: export settings, uptime arithmetic, datagrams read back.

No wire layout lives here (v5.py, v9.py and ipfix.py hold theirs), and nothing
here knows about expiry. Times follow docs/design.md, Export:

- sysUptime is milliseconds since ``boot_ns`` modulo 2^32, counted on whole
  milliseconds of the epoch: a FIRST/LAST_SWITCHED is
  ``(t_ns // 10**6 - boot_ns // 10**6) mod 2^32``. A collector adds it to the
  boot it derives (header unix ms - header uptime), which is then exactly
  ``boot_ns // 10**6``, so it gets ``t_ns // 10**6`` back even when the boot
  (offline the first packet, live the start) is not on a whole millisecond.
- A datagram's clock is ``max(export_ns, latest last_ns in it)`` (v9 rounds it
  up to a whole second, as its header has whole seconds only): its header
  uptime and unix time both come from that clock, so the uptime is never
  behind a LAST_SWITCHED in the same datagram and the boot time a collector
  derives (unix time - uptime) stays the same in every datagram.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from core.attributes import FieldGroup
from core.errors import ConfigError
from core.records import RecordTable

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000
UPTIME_MODULUS = 1 << 32
MAX_UDP_PAYLOAD = 65_507  # 65535 - 20 (IPv4 header) - 8 (UDP header)
V4_MAPPED = 0xFFFF_0000_0000  # the low half of ::ffff:0.0.0.0
MASK32 = 0xFFFF_FFFF

WireArray = npt.NDArray[np.void]
U64Array = npt.NDArray[np.uint64]
I64Array = npt.NDArray[np.int64]


class SamplingAlgorithm(IntEnum):
    """How the packets behind the records were selected.

    The values are NetFlow v9 SAMPLING_ALGORITHM (35) where v9 has one;
    PROBABILISTIC is spanflow's own value, sent as "random" (2) in v5 and v9.
    """

    DETERMINISTIC = 1  # frame i when i % N == 0 (also: no sampling, N = 1)
    RANDOM = 2  # one frame uniformly in each window of N
    PROBABILISTIC = 3  # each frame independently with probability 1/N

    @property
    def v9_value(self) -> int:
        """SAMPLING_ALGORITHM (35): 1 deterministic, 2 random (RFC 3954 section 8)."""
        return 1 if self is SamplingAlgorithm.DETERMINISTIC else 2

    @property
    def v5_mode(self) -> int:
        """The two mode bits of the v5 header sampling field: 1 deterministic, 2 random."""
        return self.v9_value

    @property
    def selector_algorithm(self) -> int:
        """IPFIX selectorAlgorithm (304, RFC 5477 / IANA): 1 systematic count-based,
        3 random n-out-of-N, 4 uniform probabilistic."""
        return {1: 1, 2: 3, 3: 4}[int(self)]

    @classmethod
    def for_mode(cls, mode: str) -> SamplingAlgorithm:
        """The algorithm of a probe.meter.sampling.SamplingMode value ("full" -> DETERMINISTIC)."""
        table = {
            "full": cls.DETERMINISTIC,
            "deterministic": cls.DETERMINISTIC,
            "random": cls.RANDOM,
            "probabilistic": cls.PROBABILISTIC,
        }
        if mode not in table:
            raise ConfigError(f"unknown sampling mode {mode!r}")
        return table[mode]


@dataclass(frozen=True, slots=True)
class ExportConfig:
    """Settings every exporter takes; validated here, raising ConfigError.

    ``boot_ns`` is uptime zero (ns since the epoch), fixed here for the
    exporter's life: live, the probe's start; offline, ``offline_boot_ns`` of
    the first packet. 0 (the default, for tests) counts uptime from the epoch.
    """

    source_id: int = 0  # v9 Source ID / IPFIX Observation Domain ID
    engine_type: int = 0  # v5 header
    engine_id: int = 0  # v5 header
    mtu: int = 1472  # largest UDP payload, bytes
    template_refresh_packets: int = 20  # v9/IPFIX: templates every K datagrams
    template_refresh_seconds: float = 1800.0  # ... and every T seconds of export clock
    sampling_interval: int = 1  # 1-in-N; 1 = not sampling
    sampling_algorithm: SamplingAlgorithm = SamplingAlgorithm.DETERMINISTIC
    boot_ns: int = 0
    fields: frozenset[FieldGroup] = frozenset()  # v9/IPFIX: what --fields adds to records

    def __post_init__(self) -> None:
        _check_range("source id", self.source_id, 0, MASK32)
        _check_range("engine type", self.engine_type, 0, 255)
        _check_range("engine id", self.engine_id, 0, 255)
        _check_range("MTU", self.mtu, 1, MAX_UDP_PAYLOAD)
        _check_range("template refresh (datagrams)", self.template_refresh_packets, 1, MASK32)
        _check_range("sampling interval", self.sampling_interval, 1, MASK32)
        if not self.template_refresh_seconds > 0:
            raise ConfigError(
                f"template refresh must be a positive number of seconds, "
                f"got {self.template_refresh_seconds}"
            )
        if not isinstance(self.sampling_algorithm, SamplingAlgorithm):
            try:
                algorithm = SamplingAlgorithm(self.sampling_algorithm)
            except ValueError as exc:
                raise ConfigError(
                    f"unknown sampling algorithm {self.sampling_algorithm!r}"
                ) from exc
            object.__setattr__(self, "sampling_algorithm", algorithm)

    @property
    def template_refresh_ns(self) -> int:
        return int(self.template_refresh_seconds * NS_PER_S)


def _check_range(what: str, value: int, low: int, high: int) -> None:
    if not low <= value <= high:
        raise ConfigError(f"{what} must be between {low} and {high}, got {value}")


@dataclass(frozen=True, slots=True)
class SamplingInfo:
    """Sampling announced in a datagram: the algorithm as that version encodes it, and 1-in-N."""

    algorithm: int  # v5 mode bits, v9 SAMPLING_ALGORITHM, or IPFIX selectorAlgorithm
    interval: int


@dataclass(frozen=True, slots=True)
class Decoded:
    """One export datagram read back.

    ``header`` is a row of the version's header dtype (fields named as in the
    spec). ``records`` are the flow records in wire order; fields the format
    does not carry are 0 (v5 has no end reason and no VLAN). Times come
    from the collector formula: v5 to the millisecond, v9 to the millisecond
    when the exporter's clock sits on a whole second (spanflow's does; others
    may date records up to a second early), IPFIX absolute milliseconds.
    ``template_ids`` lists the templates and options templates the datagram
    defines; ``skipped_sets`` counts data sets whose template is unknown;
    ``data_records`` counts every data record decoded, options data included
    (what an IPFIX Sequence Number advances by, RFC 7011 section 3.1).
    """

    version: int
    header: np.void
    records: RecordTable
    template_ids: tuple[int, ...] = ()
    sampling: SamplingInfo | None = None
    skipped_sets: int = 0
    data_records: int = 0


class Exporter(Protocol):
    """An encoder keeping all its state (sequence, template refresh, boot time) on itself."""

    config: ExportConfig
    datagrams_sent: int
    boot_ns: int  # uptime zero, fixed when the exporter is built

    @property
    def version(self) -> int: ...

    def encode(self, records: RecordTable, export_ns: int) -> list[bytes]:
        """The datagrams carrying ``records``, exported at clock ``export_ns``."""
        ...


OFFLINE_BOOT_LEAD_NS = NS_PER_S  # offline uptime zero: this long before the first packet


def offline_boot_ns(first_ns: int | None) -> int:
    """Uptime zero of a converted capture: one second before its first packet.

    The lead keeps every LAST_SWITCHED above 0, which nfdump reads as "no
    time" (a flow of the capture's first millisecond would be dated 1970).
    """
    return 0 if first_ns is None else first_ns - OFFLINE_BOOT_LEAD_NS


def uptime_ms(t_ns: npt.NDArray[np.int64] | int, boot_ns: int) -> Any:
    """Whole epoch milliseconds since boot's, modulo 2^32 (times before boot wrap)."""
    boot_ms = np.int64(boot_ns // NS_PER_MS)
    return (np.asarray(t_ns, np.int64) // NS_PER_MS - boot_ms) % UPTIME_MODULUS


def chunk_clocks(last_ns: I64Array, bounds: npt.NDArray[np.intp], export_ns: int) -> I64Array:
    """Each datagram's clock: export_ns, or its latest LAST if that is later.

    ``bounds`` are the start indices of the datagrams' records in ``last_ns``.
    """
    latest = np.maximum.reduceat(last_ns, bounds) if len(last_ns) else last_ns
    return np.maximum(latest, np.int64(export_ns))


def switched_to_ns(export_ms: Any, sys_uptime_ms: Any, switched_ms: Any) -> I64Array:
    """Collector formula: an uptime stamp as ns since the epoch, wrap-safe within 2^32 ms."""
    behind_ms = (
        np.asarray(sys_uptime_ms, np.int64) - np.asarray(switched_ms, np.int64)
    ) % UPTIME_MODULUS
    return (np.asarray(export_ms, np.int64) - behind_ms) * NS_PER_MS


def ipv4_of(lo: U64Array) -> npt.NDArray[np.uint32]:
    """The IPv4 address inside an IPv4-mapped low half."""
    return (lo & np.uint64(MASK32)).astype(np.uint32)


def mapped(ipv4: npt.NDArray[Any]) -> U64Array:
    """The low address half of ::ffff:a.b.c.d for each IPv4 address."""
    return ipv4.astype(np.uint64) | np.uint64(V4_MAPPED)
