"""The kernels compiled ahead of time (aot/): used when fresh, equal to numba's, never stale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import aot
from aot.build import kernel_sources

REPO = Path(__file__).resolve().parent.parent
SAMPLES = sorted(p for p in (REPO / "samples").iterdir() if p.suffix in (".pcap", ".pcapng"))

# Every command path over every sample, in one process: flow files into argv[1];
# prints whether numba was imported and which kernel mode ran.
PATHS_SCRIPT = """
import socket, sys
from pathlib import Path
import typer.main
from probe.cli.main import app
import spanflow
out = Path(sys.argv[1])
command = typer.main.get_command(app)
sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sink.bind(("127.0.0.1", 0))
port = sink.getsockname()[1]

def run(*args):
    try:
        command.main(list(map(str, args)), standalone_mode=False)
    except SystemExit as end:
        assert not end.code, (args, end.code)

for n, sample in enumerate(sys.argv[2:]):
    for fmt in ("5", "9", "ipfix"):
        run("convert", sample, "-c", f"127.0.0.1:{port}", "--format", fmt, "--pace", "0", "-q")
    run("convert", sample, "-c", f"127.0.0.1:{port}", "--format", "ipfix", "--pace", "0", "-q",
        "--fields", "vlan,mac,mpls")
    for ext in ("csv", "jsonl", "parquet", "arrows"):
        run("convert", sample, "-o", out / f"{n}.{ext}", "-q")
    run("convert", sample, "-o", out / f"{n}.fields.csv", "-q", "--tunnels", "inner",
        "--fields", "vlan,mac,mpls,tunnel", "--key-mac", "--key-vlan")
    run("convert", sample, "-o", out / f"{n}.fields.parquet", "-q", "--tunnels", "inner",
        "--fields", "vlan,mac,mpls,tunnel")
    for mode in ("deterministic", "random"):
        run("convert", sample, "-o", out / f"{n}.{mode}.csv", "-q", "--sampling", mode,
            "--sampling-rate", "7")
    run("convert", sample, "-o", out / f"{n}.jobs2.csv", "-q", "--jobs", "2")
    (out / f"{n}.stream").write_text(repr([len(b) for b in spanflow.stream(sample)]))
    flows = spanflow.convert(sample, jobs=2, fields="vlan,mac", key_mac=True)
    (out / f"{n}.library").write_text(repr(flows.to_arrow().to_pylist()))
import aot
print("numba" in sys.modules, aot.mode())
"""


def _run_paths(mode: str, out: Path, captures: list[Path]) -> list[str]:
    out.mkdir()
    env = {**os.environ, "SPANFLOW_KERNELS": mode}
    result = subprocess.run(
        [sys.executable, "-c", PATHS_SCRIPT, str(out), *map(str, captures)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.split()


def _bench_capture(tmp_path: Path) -> Path:
    capture = tmp_path / "bench.pcap"
    subprocess.run(
        [sys.executable, "tests/bench/make_capture.py", str(capture), "--packets", "300000",
         "--seed", "3"],
        cwd=REPO, check=True, capture_output=True, timeout=300,
    )  # fmt: skip
    return capture


def test_the_module_is_built_from_these_sources() -> None:
    """make test builds it first (make kernels): a stale or missing module is a failure here."""
    assert aot.why_not_compiled() is None, aot.why_not_compiled()


def test_every_command_path_runs_compiled_and_equals_numba(tmp_path: Path) -> None:
    """All outputs byte-identical; the compiled run never imports numba (no call fell back)."""
    captures = [*SAMPLES, _bench_capture(tmp_path)]
    compiled = _run_paths("aot", tmp_path / "aot", captures)
    assert compiled == ["False", "aot"], (
        "a call fell back to numba: add its types to aot/signatures.py"
    )
    assert _run_paths("jit", tmp_path / "jit", captures) == ["True", "jit"]
    files = sorted(p.name for p in (tmp_path / "aot").iterdir())
    assert files == sorted(p.name for p in (tmp_path / "jit").iterdir())
    assert len(files) == 11 * len(captures)
    differ = [
        f
        for f in files
        if (tmp_path / "aot" / f).read_bytes() != (tmp_path / "jit" / f).read_bytes()
    ]
    assert not differ


FALLBACK_SCRIPT = """
import sys
import numpy as np
import spanflow
from probe.meter import slice_task
before = spanflow.convert("samples/web.pcap").records
assert "numba" not in sys.modules
first = slice_task.first_of_chain(np.array([0, 1, 0, 2], np.int32), 3)  # built for int64 only
assert "numba" in sys.modules
assert type(slice_task.first_of_chain).__name__ == "CPUDispatcher"
after = spanflow.convert("samples/web.pcap").records
b, a = before.columns(), after.columns()
print(first.tolist(), len(before), all(np.array_equal(b[c], a[c]) for c in b))
"""


def test_a_call_with_other_types_switches_the_process_to_numba() -> None:
    result = subprocess.run(
        [sys.executable, "-c", FALLBACK_SCRIPT], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "SPANFLOW_KERNELS": "aot"}, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split("]")[0] == "[True, True, False, True"
    assert result.stdout.split()[-2:] == ["48", "True"]


def test_a_changed_source_or_another_cpu_is_not_used(tmp_path: Path) -> None:
    files = ["one.py", "two/three.py"]
    (tmp_path / "two").mkdir()
    for name in files:
        (tmp_path / name).write_text(f"# {name}\n")
    stamp = tmp_path / "stamp.json"
    assert "not built" in (aot.why_not_compiled(stamp, tmp_path) or "")
    record = {
        "digest": aot.source_digest(files, tmp_path),
        "files": files,
        "cpu": aot.cpu_identity(),
    }
    stamp.write_text(json.dumps(record))
    assert aot.why_not_compiled(stamp, tmp_path) is None
    (tmp_path / "two/three.py").write_text("# edited\n")
    assert "changed" in (aot.why_not_compiled(stamp, tmp_path) or "")
    (tmp_path / "two/three.py").write_text("# two/three.py\n")
    stamp.write_text(json.dumps({**record, "cpu": "another"}))
    assert aot.why_not_compiled(stamp, tmp_path) == "built for another CPU"
    (tmp_path / "one.py").unlink()
    assert "missing" in (aot.why_not_compiled(stamp, tmp_path) or "")


def test_the_stamp_covers_every_kernel_module_and_what_it_imports() -> None:
    sources = set(kernel_sources())
    for qualified in json.loads((REPO / "aot/_kernels.json").read_text())["files"]:
        assert qualified in sources
    for module in ("probe/decode/kernel.py", "cache/kernel.py", "core/attributes.py",
                   "exporter/text_kernel.py", "cache/prefetch.py", "aot/signatures.py"):  # fmt: skip
        assert module in sources


GIL_SCRIPT = """
import threading, time
import numpy as np
from cache.hashing import hash_keys
n = 4_000_000
cols = [np.ones(n, t) for t in (np.uint8, np.uint64, np.uint64, np.uint64, np.uint64, np.uint16,
                                 np.uint16, np.uint8, np.uint8, np.uint32, np.uint16)]
hash_keys(*[c[:10] for c in cols], False)
window = []
def work():
    start = time.perf_counter()
    for _ in range(5):
        hash_keys(*cols, False)
    window.extend([start, time.perf_counter()])
thread = threading.Thread(target=work)
ticks = []
thread.start()
while thread.is_alive():
    ticks.append(time.perf_counter())
thread.join()
start, end = window
inside = [t for t in ticks if start + 0.01 < t < end - 0.01]
print(end - start, len(inside))
"""


@pytest.mark.parametrize("mode", ["aot", "jit"])
def test_kernels_release_the_gil(mode: str) -> None:
    """The read-ahead thread walks the next batch while the cache meters this one."""
    result = subprocess.run(
        [sys.executable, "-c", GIL_SCRIPT], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "SPANFLOW_KERNELS": mode}, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    seconds, ticks = result.stdout.split()
    assert float(seconds) > 0.05, "the kernel ran too briefly to tell"
    assert int(ticks) > 1000, f"the main thread ran {ticks} times while the kernel ran"


BORROWS_SCRIPT = """
import numpy as np
import aot

def fill(out, value):
    for i in range(len(out)):
        out[i] = value

def ir_of(**options):
    kernel = aot.njit(**options)(fill)
    kernel(np.zeros(4, np.int64), 1)
    return next(iter(kernel.inspect_llvm().values()))

counted, borrowed = ir_of(), ir_of(borrows=True)
print("@NRT_" in counted, "@NRT_" in borrowed)
"""


def test_borrowing_kernels_count_no_references() -> None:
    """``borrows=True`` compiles a helper without the reference counting numba adds per array
    argument (what the per-packet cache helpers save); without it the counting is there."""
    result = subprocess.run(
        [sys.executable, "-c", BORROWS_SCRIPT], cwd=REPO, capture_output=True, text=True,
        env={**os.environ, "SPANFLOW_KERNELS": "jit"}, timeout=600, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split() == ["True", "False"]
