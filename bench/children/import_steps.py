"""For `profile_add.py`: imports the ADD path's heavy parts one after the other in one
process, so that each step pays only what is new; writes the spans to $PLUGIN_BENCH_SPANS."""

import json
import os
import time

began = time.perf_counter()
import pydantic_core.core_schema  # noqa: E402, F401

steps = [("import pydantic_core (core_schema)", time.perf_counter() - began)]
began = time.perf_counter()
import vpp_papi  # noqa: E402

steps.append(("import vpp_papi", time.perf_counter() - began))
began = time.perf_counter()
import vhostuser_vpp.config  # noqa: E402

steps.append(("import vhostuser_vpp.config (schemas, validator)", time.perf_counter() - began))
began = time.perf_counter()
import vhostuser_vpp.plugin.main  # noqa: E402

steps.append(("import vhostuser_vpp.plugin.main (the rest)", time.perf_counter() - began))
began = time.perf_counter()
import vhostuser_vpp.backends.vpp  # noqa: E402, F401

steps.append(("import vhostuser_vpp.backends.vpp (lazy, on connect)", time.perf_counter() - began))
began = time.perf_counter()
from vhostuser_vpp.vpp import ops  # noqa: E402
from vhostuser_vpp.vpp.api_files import api_json_paths  # noqa: E402

vpp_papi.VPPApiClient(
    apifiles=api_json_paths(ops.COMMON_API_MODULES + ops.API_MODULES_BY_MODE["l3"]),
    server_address="/nonexistent",
)
steps.append(("VPPApiClient(): the l3 mode's API modules", time.perf_counter() - began))
with open(os.environ["PLUGIN_BENCH_SPANS"], "w") as f:
    json.dump(steps, f)
