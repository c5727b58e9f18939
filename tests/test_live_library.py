"""``spanflow.capture`` on a real interface: record batches equal to the command's totals.

The capture runs in a Python process inside the test's namespace (the API
captures in the calling process); it prints "ready", the test replays a
sample, and the process, after ``duration``, prints what it got as JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import spanflow
from tests.ground_truth import ground_truth
from tests.live_netns import DEADLINE_S, Namespace, namespace
from tests.test_live_capture import needs_tools, replay_once, replayable

pytestmark = pytest.mark.interop
CAPTURE_S = 6.0  # the replay takes well under a second

SCRIPT = """
import json, sys
import spanflow
records = packets = octets = batches = 0
macs = set()
with spanflow.capture(sys.argv[1], inactive=1e6, active=1e6, workers=int(sys.argv[2]),
                      duration=float(sys.argv[3]), fields=sys.argv[4]) as live:
    assert live.wait_ready()
    print("ready", flush=True)
    for flows in live:
        batches += 1
        frame = flows.to_pandas()
        records += len(frame)
        packets += int(frame["packets"].sum()) if len(frame) else 0
        octets += int(frame["octets"].sum()) if len(frame) else 0
        if sys.argv[4]:
            macs |= set(frame[["src", "dst", "src_mac", "dst_mac"]].itertuples(index=False, name=None))
        last = flows.stats
print(json.dumps({"records": records, "packets": packets, "octets": octets, "stats": last,
                  "macs": sorted(macs)}))
"""


@needs_tools
@pytest.mark.parametrize("workers", [1, 2])
def test_capture_yields_every_record_of_a_replay(tmp_path: Path, workers: int) -> None:
    """Every record, packet and octet of the replay, and the capture's counters in the last batch."""
    with namespace() as netns:
        run_capture(netns, tmp_path, workers)


@needs_tools
def test_capture_gives_the_fields_asked_for(tmp_path: Path) -> None:
    """``fields="mac"``: every record has the MACs its packets had on the wire, as convert says."""
    with namespace() as netns:
        got = run_capture(netns, tmp_path, 2, "mac")
    replay = replayable(tmp_path, "web.pcap")
    frame = spanflow.convert(str(replay), fields="mac").to_pandas()
    want = set(frame[["src", "dst", "src_mac", "dst_mac"]].itertuples(index=False, name=None))
    assert {tuple(row) for row in got["macs"]} == want
    assert all(mac for row in want for mac in row[2:])


def run_capture(netns: Namespace, tmp_path: Path, workers: int, fields: str = "") -> Any:
    replay = replayable(tmp_path, "web.pcap")
    truth = ground_truth(replay)
    argv = netns.argv(sys.executable, "-c", SCRIPT, netns.rx, str(workers), str(CAPTURE_S), fields)
    with subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as child:
        try:
            assert child.stdout is not None
            assert child.stdout.readline() == "ready\n", child.stderr.read() if child.stderr else ""
            replay_once(netns, replay, truth.frames)
            out, err = child.communicate(timeout=CAPTURE_S + DEADLINE_S)
        finally:
            if child.poll() is None:
                child.kill()
    assert child.returncode == 0, err
    got = json.loads(out)
    assert (got["records"], got["packets"], got["octets"]) == (
        sum(truth.records_without_timeouts), truth.ip_packets, truth.ip_octets
    )  # fmt: skip
    assert got["stats"]["received"] == truth.frames
    assert got["stats"]["dropped"] == 0
    assert got["stats"]["decoded"] == truth.ip_packets
    return got
