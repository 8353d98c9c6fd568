"""Runs in the plugin's place for `profile_add.py`: times the ADD's steps, then calls the
plugin's main(), and writes the spans to $PLUGIN_BENCH_SPANS on the way out.

Only stdlib is imported before the plugin, so the import figures are its own. Steps are
timed by wrapping public functions and methods; VPP calls through `VppClient.call` and
`VppClient.dump`, each named by its message.
"""

import json
import os
import time
from collections.abc import Callable
from typing import Any

T0 = time.perf_counter()
spans: list[tuple[str, float]] = []


def timed(owner: Any, attr: str, label: str | Callable[[tuple[Any, ...]], str]) -> None:
    original = getattr(owner, attr)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        began = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            name = label(args) if callable(label) else label
            spans.append((name, time.perf_counter() - began))

    setattr(owner, attr, wrapper)


began = time.perf_counter()
import vhostuser_vpp.plugin.main as plugin_main  # noqa: E402

spans.append(("imports at start-up (vhostuser_vpp.plugin.main)", time.perf_counter() - began))
began = time.perf_counter()
import vpp_papi  # noqa: E402

spans.append(("import vpp_papi (lazy, in VppClient.connect)", time.perf_counter() - began))

from vhostuser_vpp.backends.vpp import VppBackend  # noqa: E402
from vhostuser_vpp.cni.invoke import DelegatedPlugin  # noqa: E402
from vhostuser_vpp.plugin import backend_choice, context  # noqa: E402
from vhostuser_vpp.store import node_files  # noqa: E402
from vhostuser_vpp.store.attachment import Attachment  # noqa: E402
from vhostuser_vpp.store.lock import ContainerLock  # noqa: E402
from vhostuser_vpp.vpp.client import VppClient  # noqa: E402

timed(context, "parse_netconf", "config parse (pydantic-core)")
timed(context, "load_policy", "node policy load")
timed(node_files, "ensure_cni_dir", "ensure cniDir")
timed(node_files, "ensure_get_prefix", "ensure get-prefix.sh")
timed(ContainerLock, "acquire", "container lock")
timed(Attachment, "read_record", "read existing record")
timed(Attachment, "write_record", "write record (state + pod copy)")
timed(Attachment, "write_ip4_conf", "write -ip4.conf")
timed(DelegatedPlugin, "add", "IPAM: exec host-local ADD")
timed(backend_choice, "open_for_add", "open backend (total)")
timed(VppClient, "connect", "  VppClient.connect (total)")
timed(vpp_papi.VPPApiClient, "__init__", "    VPPApiClient(): load the mode's api_json modules")
timed(vpp_papi.VPPApiClient, "connect", "    VPPApiClient.connect: socket + sockclnt_create")
timed(VppBackend, "create_port", "create_port (total)")
timed(VppBackend, "wire", "wire l3 (total)")
timed(VppClient, "call", lambda args: "  VPP " + str(args[1]))
timed(VppClient, "dump", lambda args: "  VPP " + str(args[1]))
timed(VppBackend, "close", "VPP disconnect")
began = time.perf_counter()
real_exit = os._exit


def exit_after_writing_spans(code: int) -> None:
    # main() ends in os._exit(), past any finally: the spans are written on the way out.
    spans.append(("main() total", time.perf_counter() - began))
    spans.append(("in-process total", time.perf_counter() - T0))
    with open(os.environ["PLUGIN_BENCH_SPANS"], "w") as out:
        json.dump(spans, out)
    real_exit(code)


os._exit = exit_after_writing_spans  # type: ignore[assignment]
plugin_main.main()
