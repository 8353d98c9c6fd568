"""The original plugin's README sample network config, which the suites start from.

One copy, so that what "the original sample" means cannot drift between the unit
tests, the delegation tests and the integration node; `examples/demo.py` shows it
verbatim on its own, as a user would read it.
"""

from __future__ import annotations

import copy
from typing import Any

_README_SAMPLE: dict[str, Any] = {
    "type": "vhostuser",
    "name": "vhostuser-network",
    "if0name": "net0",
    "vhost": {"vhost_tool": "/path/to/vhost-user-net-plugin/tests/vpp-config.py"},
    "ipam": {
        "type": "host-local",
        "subnet": "10.56.217.0/24",
        "rangeStart": "10.56.217.131",
        "rangeEnd": "10.56.217.190",
        "routes": [{"dst": "0.0.0.0/0"}],
        "gateway": "10.56.217.1",
    },
}


def readme_sample(**top: Any) -> dict[str, Any]:
    """A fresh copy (callers may change it), with `top` keys set or replaced."""
    config = copy.deepcopy(_README_SAMPLE)
    config.update(top)
    return config
