# spanflow: `make demo` and `make test` do all set-up on a fresh Debian machine.
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEBS := libpcap-dev softflowd nfdump tshark tcpreplay pmacct iproute2

.PHONY: demo test lint kernels bench bench-live bench-parallel same-records flood soak corpus fuzz setup debs clean-kernels clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@$(MAKE) --no-print-directory debs
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,live,plots,dask,arrow]'
	touch $(STAMP)

# Debian packages: libpcap for live capture, the peers for interop tests and benchmarks.
debs:
	@missing=""; for p in $(DEBS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
		else \
			echo "spanflow needs Debian packages:$$missing"; \
			echo "run: sudo apt-get install -y$$missing"; exit 1; \
		fi; \
	fi

demo: setup
	$(VENV)/bin/spanflow convert samples/web.pcap --format ipfix

# The kernels compiled ahead of time (pip install builds them): again if a kernel source changed.
kernels: setup
	$(PY) -m aot.build

lint: setup
	$(VENV)/bin/ruff check aot core probe cache exporter spanflow tests samples hatch_build.py
	$(VENV)/bin/ruff format --check aot core probe cache exporter spanflow tests samples hatch_build.py
	$(VENV)/bin/mypy

test: lint kernels
	$(PY) -m pytest -q

bench: setup
	$(PY) tests/bench/run_bench.py

bench-live: setup
	$(PY) tests/bench/run_bench_live.py

# convert --jobs 1 against --jobs 2 on a 10,000,000-frame capture, one file and split in 10.
bench-parallel: setup
	$(PY) tests/bench/run_bench_parallel.py

# Records byte-identical to another revision's (default: the last one before the stage layout), samples and bench capture.
SAME_AS ?= 961e76b
same-records: setup
	$(PY) tests/bench/same_records.py --against $(SAME_AS) --bench

FUZZ_SECONDS ?= 600

# Coverage-guided fuzzing (atheris) of the decoder and the capture readers, kernels uncompiled and compiled.
fuzz: setup
	$(PY) -m pip install --quiet -e '.[fuzz]'
	$(PY) tests/fuzz/run_campaign.py --seconds $(FUZZ_SECONDS) --work-dir fuzz-out

# 10,000,000 spoofed-source SYNs through convert: RSS at 1 M / 5 M / 10 M frames, every frame in one record.
flood: setup
	$(PY) tests/bench/run_flood.py

# An hour of synthetic traffic compressed in time: RSS flat, open flows within --max-flows, totals exact.
soak: setup
	$(PY) tests/bench/run_soak.py

# spanflow's packet and octet totals against tshark's on every capture under CORPUS (e.g. tcpdump's tests/).
CORPUS ?=
corpus: setup
	$(PY) tests/bench/run_corpus.py $(CORPUS)

# numba keys a cached kernel on its own source file: after editing a helper another file's kernel uses.
# Also drops the ahead-of-time module (make kernels builds it again).
clean-kernels:
	find . -path ./$(VENV) -prune -o \( -name '*.nbi' -o -name '*.nbc' \) -print | xargs -r rm -f
	rm -f aot/_kernels*.so aot/_kernels.json

clean: clean-kernels
	rm -rf $(VENV) build dist .mypy_cache .pytest_cache .ruff_cache
