"""How many control_ping round trips per second a vpp_papi client gets through the emulator.

Prints the result and writes it as JSON to $BENCH_OUT_SIM (default bench-sim.json). The
figure is the median of several runs; a real VPP 26.06 takes about 0.5 ms per round trip
with the same client (reference README), i.e. about 2000 per second.
"""

from __future__ import annotations

import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from vpp_papi import VPPApiClient

from vhostuser_vpp.sim import Emulator
from vhostuser_vpp.vpp.api_files import api_json_paths

RUNS = 5
PINGS_PER_RUN = 2000


def one_run(client: VPPApiClient) -> float:
    began = time.perf_counter()
    for _ in range(PINGS_PER_RUN):
        client.api.control_ping()
    return PINGS_PER_RUN / (time.perf_counter() - began)


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="simbench-", dir="/tmp"))
    path = str(workdir / "api.sock")
    try:
        with Emulator.start(path):
            client = VPPApiClient(apifiles=api_json_paths(), server_address=path)
            client.connect("sim-bench")
            try:
                one_run(client)  # warm-up
                rates = [one_run(client) for _ in range(RUNS)]
            finally:
                client.disconnect()
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result = {
        "benchmark": "control_ping round trips through the VPP emulator",
        "runs": RUNS,
        "pings_per_run": PINGS_PER_RUN,
        "per_second_median": round(statistics.median(rates), 1),
        "per_second_runs": [round(rate, 1) for rate in rates],
        "round_trip_ms_median": round(1000 / statistics.median(rates), 3),
    }
    out = Path(os.environ.get("BENCH_OUT_SIM", "bench-sim.json"))
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(
        f"control_ping through the emulator: {result['per_second_median']} round trips/s "
        f"(median of {RUNS} runs, {result['round_trip_ms_median']} ms each); written to {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
