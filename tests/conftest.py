"""The run's closing lines: how many tests passed, failed and skipped against each VPP.

A test's target is its `vpp` parameter (tests/vpp_targets.py); a test without one touches
no VPP (unit tests, the CNI protocol, the tool backend's stand-in). With
`VHOSTUSER_TEST_REQUIRE_VPP=1` a run in which no test passed on the real VPP fails, unless
that VPP was to run in a container and podman cannot run one here (the line says why).
"""

from __future__ import annotations

from collections import Counter, defaultdict

import pytest

from tests import vpp_targets

NO_VPP = "no VPP"
_outcomes: dict[str, dict[str, str]] = defaultdict(dict)  # target -> nodeid -> worst outcome
_RANK = {"passed": 0, "skipped": 1, "xfailed": 1, "failed": 2}
OUTCOMES = ("passed", "failed", "skipped", "xfailed")


def _target(nodeid: str) -> str:
    params = nodeid[nodeid.rindex("[") + 1 : -1] if nodeid.endswith("]") else ""
    for label in (vpp_targets.old_label(), vpp_targets.primary_label(), "emulator"):
        if label in params:
            return label
    return NO_VPP


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A test counts once, with its worst phase: an error at teardown (a leak) fails it."""
    outcome: str = "failed" if report.failed else report.outcome
    if report.skipped and hasattr(report, "wasxfail"):
        outcome = "xfailed"  # a known failure on that target, not a skip
    per_test = _outcomes[_target(report.nodeid)]
    if _RANK[outcome] >= _RANK[per_test.get(report.nodeid, "passed")]:
        per_test[report.nodeid] = outcome


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    terminalreporter.section("tests by VPP")
    for target in ("emulator", vpp_targets.primary_label(), vpp_targets.old_label(), NO_VPP):
        counts = Counter(_outcomes[target].values())
        if not counts:
            continue
        name = NO_VPP if target == NO_VPP else vpp_targets.describe(target)
        figures = ", ".join(f"{counts[k]} {k}" for k in OUTCOMES if counts[k])
        terminalreporter.write_line(f"{name}: {figures}")
    for why in vpp_targets.unusable.values():
        terminalreporter.write_line(why, yellow=True)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not vpp_targets.REQUIRED or session.config.option.collectonly:
        return
    passed = Counter(_outcomes[vpp_targets.primary_label()].values())["passed"]
    if passed == 0 and vpp_targets.primary_label() not in vpp_targets.unusable:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line("VHOSTUSER_TEST_REQUIRE_VPP=1: no test passed on a real VPP", red=True)
