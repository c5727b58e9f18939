"""The compiled-kernel cache still works when the installed package is read-only."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("probe", "cache", "exporter", "aot")
SAMPLE_SCRIPT = """
import sys
sys.argv = ["spanflow", "convert", sys.argv[1], "-q", "-o", sys.argv[2]]
from probe.cli.main import main
main()
"""


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("unshare") is None,
                    reason="needs root and unshare to mount the package read-only")  # fmt: skip
def test_read_only_package_caches_in_user_dir(tmp_path: Path) -> None:
    """With the package on a read-only mount, kernels are cached under ~/.cache/numba."""
    packages, home = tmp_path / "site", tmp_path / "home"
    for name in PACKAGES:
        shutil.copytree(REPO / name, packages / name, ignore=shutil.ignore_patterns("__pycache__"))
    home.mkdir()
    capture = tmp_path / "one.pcap"
    # One Ethernet/IPv4/UDP frame, libpcap µs little-endian file.
    frame = bytes.fromhex(
        "020000000002020000000001080045000020000100004011000"
        "0c6120001c6120002"
        "d43100350008000000000000"
    )
    header = bytes.fromhex("d4c3b2a1020004000000000000000000ffff000001000000")
    record = (1).to_bytes(4, "little") + bytes(4) + len(frame).to_bytes(4, "little") * 2
    capture.write_bytes(header + record + frame)
    out = tmp_path / "flows.csv"
    script = (
        f"mount --bind {packages} {packages} && mount -o remount,bind,ro {packages} && "
        f'exec {sys.executable} -c "$0" "$@"'
    )
    env = {**os.environ, "HOME": str(home), "PYTHONPATH": str(packages), "SPANFLOW_KERNELS": "jit"}
    env.pop("NUMBA_CACHE_DIR", None)
    result = subprocess.run(
        ["unshare", "-m", "sh", "-c", script, SAMPLE_SCRIPT, str(capture), str(out)],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert out.read_text().splitlines()[1].split(",")[2:6] == [
        "198.18.0.1", "198.18.0.2", "54321", "53",
    ]  # fmt: skip
    assert list(home.glob(".cache/numba/*/*.nbi")), "no kernel cached in the user cache dir"
    assert not list(packages.glob("**/__pycache__/*.nbi"))
