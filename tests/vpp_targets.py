"""Which VPPs a test run uses, and the rule that every test leaves a real VPP as it found it.

Targets, as test ids name them: `emulator`; the real VPP the suite is judged on (its
label, e.g. `vpp-26.06`; `vpp-26.06-container` when `VHOSTUSER_TEST_VPP_CONTAINER=1` runs
that build in a podman container as deploy/ci/compose.yaml does, tests/vpp_container.py;
or `vpp-external` when `VPP_API_SOCKET` names a VPP someone else runs); an older release
(`vpp-24.10`) for tests marked `lifecycle`. A real VPP this suite starts is one process
(or container) per session; after each test its whole state is compared with the state
before, a test that leaked fails with the difference, and VPP is restarted so the next
test starts clean.

`VHOSTUSER_TEST_REQUIRE_VPP=1` (CI sets it) turns "no real VPP found" from a skip into
a failure, except where podman cannot run a container at all: that is said, with
podman's error, and the containerised run has nothing to judge.
"""

from __future__ import annotations

import contextlib
import os
import pprint
from collections.abc import Iterator
from typing import Any

import pytest

from tests import vpp_container
from tests.integration.vpp_probe import VppProbe
from tests.vpp_instance import VppBuild, VppInstance, find_build, find_old_build

EXTERNAL_SOCKET = os.environ.get("VPP_API_SOCKET", "")
EXTERNAL_LABEL = "vpp-external"
MISSING_LABEL = "vpp-none"
CONTAINER_SUFFIX = "-container"
# Takes precedence over VPP_API_SOCKET: it asks for a VPP of the suite's own.
CONTAINER = os.environ.get("VHOSTUSER_TEST_VPP_CONTAINER", "") == "1"
REQUIRED = os.environ.get("VHOSTUSER_TEST_REQUIRE_VPP", "") == "1"
_BUILD = find_build()
_OLD_BUILD = find_old_build()
# Why the containerised VPP could not run at all (podman cannot run containers), once known.
unusable: dict[str, str] = {}


def primary_label() -> str:
    if _BUILD is not None and CONTAINER:
        return _BUILD.label + CONTAINER_SUFFIX
    if EXTERNAL_SOCKET:
        return EXTERNAL_LABEL
    return _BUILD.label if _BUILD is not None else MISSING_LABEL


def old_label() -> str:
    return _OLD_BUILD.label if _OLD_BUILD is not None else f"{MISSING_LABEL}-old"


def describe(label: str) -> str:
    """How the run's summary names a target."""
    if label == "emulator":
        return "emulator"
    if label == EXTERNAL_LABEL:
        return f"real VPP at {EXTERNAL_SOCKET}"
    if label == MISSING_LABEL:
        return "real VPP (none found, so not tested)"
    if label == f"{MISSING_LABEL}-old":
        return "older real VPP (none found, so not tested)"
    if label.endswith(CONTAINER_SUFFIX):
        version = label.removeprefix("vpp-").removesuffix(CONTAINER_SUFFIX)
        return f"real VPP {version} in a podman container ({vpp_container.IMAGE}, deploy/ci/compose.yaml)"
    return "real VPP " + label.removeprefix("vpp-")


def missing_reason(label: str) -> str:
    if label == MISSING_LABEL:
        return "no real VPP found (set VPP_BIN, or put a build at ../shared/vpp): real-VPP tests skipped"
    return "no older VPP release found (VPP_OLD_BIN or ../shared/vpp-24.10): its lifecycle tests skipped"


class RealVpp:
    """A real VPP and the isolation check around each test that uses it."""

    def __init__(self, api_socket: str, instance: VppInstance | None) -> None:
        self.api_socket = api_socket
        self.instance = instance

    @contextlib.contextmanager
    def isolated(self) -> Iterator[VppProbe]:
        with VppProbe(self.api_socket) as probe:
            before = probe.snapshot()
            yield probe
            leaked = self._leaked(probe, before)
        if leaked:
            if self.instance is not None:
                self.instance.restart()
            pytest.fail(f"the test left VPP changed:\n{leaked}", pytrace=False)

    def restart(self) -> None:
        if self.instance is None:
            pytest.skip(f"needs a VPP this suite starts, not the one at {self.api_socket} (VPP_API_SOCKET)")
        self.instance.restart()

    def _leaked(self, probe: VppProbe, before: dict[str, Any]) -> str:
        if self.instance is not None and not self.instance.running:
            self.instance.start()  # the test stopped VPP: a new one is clean by definition
            return ""
        probe.reconnect()  # the test may have restarted VPP under the probe
        probe.remove_gateway_loopbacks(keep={i[0] for i in before["interfaces"]})
        after = probe.snapshot()
        lines = []
        for key, was in before.items():
            gone = [x for x in was if x not in after[key]]
            new = [x for x in after[key] if x not in was]
            if gone or new:
                lines.append(f"{key}: gone {pprint.pformat(gone)}, new {pprint.pformat(new)}")
        return "\n".join(lines)


class RealVpps:
    """The session's real VPPs, started on first use and stopped at the end."""

    def __init__(self) -> None:
        self._started: dict[str, RealVpp] = {}

    def __enter__(self) -> RealVpps:
        return self

    def __exit__(self, *exc: object) -> None:
        for real in self._started.values():
            if real.instance is not None:
                real.instance.close()

    def fresh(self, label: str) -> RealVpp:
        """That VPP just restarted: the state of a VPP that has done nothing yet."""
        real = self.get(label)
        real.restart()
        return real

    def get(self, label: str) -> RealVpp:
        if label not in self._started:
            self._started[label] = self._start(label)
        return self._started[label]

    def _start(self, label: str) -> RealVpp:
        if label == EXTERNAL_LABEL:
            return RealVpp(EXTERNAL_SOCKET, None)
        if label in unusable:
            pytest.skip(unusable[label])
        build = _build_for(label.removesuffix(CONTAINER_SUFFIX))
        if build is None:
            if REQUIRED:
                pytest.fail(f"VHOSTUSER_TEST_REQUIRE_VPP=1 but {missing_reason(label)}", pytrace=False)
            pytest.skip(missing_reason(label))
        if label.endswith(CONTAINER_SUFFIX):
            try:
                instance: VppInstance = vpp_container.start(build)
            except vpp_container.PodmanUnusable as why:
                unusable[label] = f"containerised VPP not run: {why}"
                pytest.skip(unusable[label])
        else:
            instance = VppInstance(build)
            instance.start()
        return RealVpp(instance.api_socket, instance)


def _build_for(label: str) -> VppBuild | None:
    for build in (_BUILD, _OLD_BUILD):
        if build is not None and build.label == label:
            return build
    return None
