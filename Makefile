# Set-up and checks for vhostuser-vpp. Run as root on Debian/Ubuntu:
#   make demo   one ADD and DEL against a stand-in VPP, showing what a pod gets
#   make test   lint and the whole test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
CNI_BIN_DIR ?= /usr/lib/cni
STAMP := $(VENV)/.installed

.PHONY: install cni-plugins runtime dataplane demo test unit integration container-vpp lint bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
		{ echo "Python 3.11 or later is needed (found $$($(PYTHON) --version))" >&2; exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { apt-get update -qq && apt-get install -y -qq python3-venv; }
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[test]'
	touch $@

install: $(STAMP)

# The real IPAM plugins (host-local) from the distribution, as a node would have them.
cni-plugins:
	@test -x $(CNI_BIN_DIR)/host-local || { apt-get update -qq && apt-get install -y -qq containernetworking-plugins; }

# Real CNI runtimes: podman (tests/integration/test_podman.py) and containerd 1.6 driven over
# CRI (test_containerd.py), both with runc; a static busybox makes their containers.
runtime:
	@{ command -v podman && command -v containerd && command -v runc && dpkg -s busybox-static; } >/dev/null 2>&1 || \
		{ apt-get update -qq && apt-get install -y -qq podman containerd runc busybox-static; }

# DPDK's testpmd (Debian's dpdk-dev) stands in for a pod in tests/integration/test_dataplane.py.
dataplane:
	@command -v dpdk-testpmd >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq dpdk-dev; }

demo: install cni-plugins
	$(PY) examples/demo.py --cni-bin-dir $(CNI_BIN_DIR)

lint: install
	$(VENV)/bin/ruff check vhostuser_vpp tests examples bench
	$(VENV)/bin/ruff format --check vhostuser_vpp tests examples bench
	$(VENV)/bin/mypy

# Integration tests run against the emulator and against a real VPP when one is found
# (README: Testing against a real VPP); the run ends with a line per VPP.
# Then the integration tests again, every request through the `vhostuser` shim and a node
# agent (README: Fast path). Then the lifecycle, dataplane and container tests against that
# VPP in a podman container, as deploy/ci/compose.yaml runs it (README: VPP in a container).
test: install cni-plugins runtime dataplane lint
	CNI_BIN_DIR=$(CNI_BIN_DIR) $(PY) -m pytest -q
	CNI_BIN_DIR=$(CNI_BIN_DIR) VHOSTUSER_TEST_VIA_AGENT=1 $(PY) -m pytest -q tests/integration
	$(MAKE) --no-print-directory container-vpp

# The real VPP in a podman container (tests/vpp_container.py): ~1 min.
container-vpp: install cni-plugins runtime dataplane
	CNI_BIN_DIR=$(CNI_BIN_DIR) VHOSTUSER_TEST_VPP_CONTAINER=1 $(PY) -m pytest -q \
		-m 'lifecycle or dataplane or container' tests/integration

unit: install
	$(PY) -m pytest -q tests/unit

integration: install cni-plugins runtime dataplane
	CNI_BIN_DIR=$(CNI_BIN_DIR) $(PY) -m pytest -q tests/integration
	CNI_BIN_DIR=$(CNI_BIN_DIR) VHOSTUSER_TEST_VIA_AGENT=1 $(PY) -m pytest -q tests/integration

# Cold-process ADD/DEL timings against the in-process emulator (table; JSON to $BENCH_OUT,
# default bench-results.json), the emulator's own round-trip rate, then the node agent's
# restore times and memory, then the fast path (shim + agent against cold runs and
# host-local), both against a real VPP when found. See docs/benchmarks.md.
bench: install cni-plugins
	CNI_BIN_DIR=$(CNI_BIN_DIR) $(PY) bench/plugin_bench.py
	$(PY) bench/sim_bench.py
	CNI_BIN_DIR=$(CNI_BIN_DIR) $(PY) bench/agent_bench.py
	CNI_BIN_DIR=$(CNI_BIN_DIR) $(PY) bench/fastpath_bench.py

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis bench-results.json bench-sim.json bench-agent.json
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
