"""Extra bench lines: records/s encoded per export format, and sampled vs full conversion."""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from cache.config import CacheConfig
from core.records import RecordTable
from exporter import EXPORTERS, ExportConfig
from probe.meter.offline import meter_files

FORMATS = {5: "v5", 9: "v9", 10: "IPFIX"}


def encode_rates(pcap: Path, runs: int = 3) -> None:
    """Meter the capture once, then time each encoder over all its records (best of runs)."""
    tables: list[RecordTable] = []
    meter_files([pcap], CacheConfig(), tables.append)
    records = RecordTable.concat(tables)
    export_ns = int(records.last_ns.max())
    print()
    print(f"{'encoder':<36}{'records':>12}{'datagrams':>11}{'records/s':>14}")
    for version, name in FORMATS.items():
        best, datagrams = float("inf"), 0
        for _ in range(runs):
            exporter = EXPORTERS[version](ExportConfig(boot_ns=int(records.first_ns.min())))
            started = time.perf_counter()
            datagrams = len(exporter.encode(records, export_ns))
            best = min(best, time.perf_counter() - started)
        sent = int((records.version == 4).sum()) if version == 5 else len(records)
        print(f"{name + ' encode (in process, best of ' + str(runs) + ')':<36}{sent:>12,}"
              f"{datagrams:>11,}{sent / best:>14,.0f}")  # fmt: skip


def sampled_conversion(pcap: Path, work: Path, rate: int = 100) -> None:
    """Wall time and metering rate of convert at full and 1-in-rate random sampling."""
    spanflow = str(Path(sys.executable).parent / "spanflow")
    print()
    print(f"{'convert (-o flows.csv)':<36}{'wall s':>9}{'metering Mpps':>15}")
    for label, extra in (("full", []), (f"random 1:{rate}", ["--sampling", "random",
                                                           "--sampling-rate", str(rate)])):  # fmt: skip
        argv = [spanflow, "convert", str(pcap), "-o", str(work / "sampled.csv"), *extra]
        started = time.perf_counter()
        result = subprocess.run(argv, capture_output=True, text=True, timeout=600, check=True)
        wall = time.perf_counter() - started
        match = re.search(r"\(([\d.]+) Mpps\)", result.stderr)
        print(f"{label:<36}{wall:>9.2f}{match.group(1) if match else '?':>15}")
