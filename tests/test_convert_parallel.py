"""``spanflow convert --jobs``: the rows of one pass, from real worker processes.

Runs the installed command as a user would; every run is bounded in time and
every process a test starts is ended by its PID.
"""

from __future__ import annotations

import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench.make_capture import write_capture
from tests.collectors import HAVE_NFDUMP, Nfcapd
from tests.processes import descendants, run_killing_one

SPANFLOW = Path(sys.executable).parent / "spanflow"
SAMPLES = Path(__file__).resolve().parent.parent / "samples"
EDITCAP = shutil.which("editcap")
RUN_TIMEOUT_S = 240


def spanflow(*args: str | Path, timeout: float = RUN_TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SPANFLOW), "convert", *map(str, args)],
        capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


def sorted_rows(path: Path) -> list[str]:
    header, *rows = path.read_text().splitlines()
    return [header, *sorted(rows)]


def one_pass_rows(tmp_path: Path, *files: Path, extra: tuple[str, ...] = ()) -> list[str]:
    out = tmp_path / "one.csv"
    result = spanflow(*files, "-o", out, "-q", *extra)
    assert result.returncode == 0, result.stderr
    return sorted_rows(out)


def test_jobs_on_one_file_cut_in_slices_gives_the_rows_of_one_pass(tmp_path: Path) -> None:
    out = tmp_path / "jobs.csv"
    result = spanflow(SAMPLES / "web.pcap", "--jobs", "2", "--slice-mib", "0.004", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "slice(s) on 2 jobs" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted_rows(out) == one_pass_rows(tmp_path, SAMPLES / "web.pcap")


@pytest.mark.skipif(EDITCAP is None, reason="editcap (Wireshark) is not installed")
def test_jobs_on_a_capture_split_by_editcap_gives_the_rows_of_the_whole(tmp_path: Path) -> None:
    assert EDITCAP is not None
    subprocess.run(
        [EDITCAP, "-F", "pcap", "-c", "60", SAMPLES / "web.pcap", tmp_path / "part.pcap"],
        check=True, timeout=60, capture_output=True,
    )  # fmt: skip
    parts = sorted(tmp_path.glob("part*.pcap"))
    assert len(parts) >= 4
    out = tmp_path / "jobs.csv"
    result = spanflow(*reversed(parts), "--jobs", "2", "-o", out, "-q")
    assert result.returncode == 0, result.stderr
    assert sorted_rows(out) == one_pass_rows(tmp_path, SAMPLES / "web.pcap")


def test_jobs_with_sampling_or_stdin_is_a_usage_error(tmp_path: Path) -> None:
    sampled = spanflow(SAMPLES / "web.pcap", "--jobs", "2", "--sampling", "random",
                       "--sampling-rate", "10", "-o", tmp_path / "x.csv")  # fmt: skip
    assert sampled.returncode == 2
    assert sampled.stderr.strip().splitlines()[-1].startswith("spanflow: error: --jobs")
    piped = subprocess.run(
        [str(SPANFLOW), "convert", "-", "--jobs", "2", "-o", str(tmp_path / "y.csv")],
        input=(SAMPLES / "web.pcap").read_bytes(), capture_output=True, timeout=60, check=False,
    )  # fmt: skip
    assert piped.returncode == 2
    assert b"not stdin" in piped.stderr


def test_a_damaged_file_among_several_is_named_and_the_others_are_written(tmp_path: Path) -> None:
    good = SAMPLES / "dnstunnel.pcap"
    damaged = tmp_path / "damaged.pcap"
    data = bytearray((SAMPLES / "web.pcap").read_bytes())
    data[24 + 8 : 24 + 12] = (10**7).to_bytes(4, "little")  # the first record's caplen
    damaged.write_bytes(bytes(data))
    out = tmp_path / "jobs.csv"
    result = spanflow(good, damaged, "--jobs", "2", "-o", out, "-q")
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("spanflow: error:")]
    assert errors == [
        f"spanflow: error: {damaged}: impossible record length 10000000 at byte offset 24"
    ]
    assert sorted_rows(out) == one_pass_rows(tmp_path, good)


def test_an_unreachable_dask_scheduler_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = spanflow(SAMPLES / "web.pcap", "--dask", "tcp://127.0.0.1:9", "-o", tmp_path / "x.csv",
                      timeout=90)  # fmt: skip
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("spanflow: error: no Dask scheduler answers at tcp://127.0.0.1:9")
    assert "Traceback" not in result.stderr


def test_a_killed_worker_costs_time_not_records(tmp_path: Path) -> None:
    """SIGKILL one worker mid-slice: its slices run again, the rows equal one pass, exit 0."""
    capture = tmp_path / "big.pcap"
    write_capture(capture, 800_000, seed=3)
    out = tmp_path / "jobs.csv"
    argv = [
        str(SPANFLOW),
        "convert",
        str(capture),
        "--jobs",
        "2",
        "--slice-mib",
        "4",
        "-o",
        str(out),
    ]
    workers = lambda pid: dict.fromkeys(descendants(pid), 0.0)  # noqa: E731
    killed, status, stderr = run_killing_one(argv, workers, 0.15, RUN_TIMEOUT_S)
    assert killed is not None, "no worker was seen working"
    assert status == 0, stderr
    assert "a worker died" in stderr
    assert sorted_rows(out) == one_pass_rows(tmp_path, capture)


def test_files_that_overlap_in_time_are_converted_merged_in_one_pass(tmp_path: Path) -> None:
    """aliasing.pcap and web.pcap share their hour: slices could not equal the time merge."""
    out = tmp_path / "jobs.csv"
    files = (SAMPLES / "aliasing.pcap", SAMPLES / "web.pcap")
    result = spanflow(*files, "--jobs", "2", "-o", out)
    assert result.returncode == 0, result.stderr
    assert "overlaps an earlier file in time" in result.stderr
    assert "parallel:" not in result.stderr
    assert sorted_rows(out) == one_pass_rows(tmp_path, *files)


@pytest.mark.interop
@pytest.mark.skipif(not HAVE_NFDUMP, reason="nfdump is not installed")
@pytest.mark.parametrize("export_format", ["9", "ipfix"])
def test_jobs_export_one_stream_that_nfcapd_stores_exactly(
    tmp_path: Path, export_format: str
) -> None:
    """One sequence space from one session: nfdump's totals equal one pass's, no sequence failure.

    (For IPFIX nfdump 1.7 flags the message after each template refresh, as in
    test_interop_convert: it counts flow records only, RFC 7011 every data record.)
    """
    capture = tmp_path / "gen.pcap"
    write_capture(capture, 200_000, seed=11)
    totals = []
    for jobs in ("1", "2"):
        with Nfcapd(tmp_path / f"nfcapd-{jobs}") as collector:
            result = spanflow(capture, "--jobs", jobs, "--slice-mib", "8", "-c",
                              f"127.0.0.1:{collector.port}", "--format", export_format)  # fmt: skip
            assert result.returncode == 0, result.stderr
            collector.finish()
            got = collector.summary()
        datagrams = int(re.search(r"in (\d+) datagrams", result.stderr).group(1))  # type: ignore[union-attr]
        refreshes_followed = math.ceil((datagrams - 1) / 20) if export_format == "ipfix" else 0
        assert got.pop("Sequence failures") == refreshes_followed
        totals.append(got)
    assert totals[1] == totals[0]
    assert totals[1]["Packets"] == 200_000
