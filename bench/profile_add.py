"""Where one cold ADD's time goes (`python bench/profile_add.py DIR`), against the in-process
emulator: `-X importtime`, a timed breakdown of the ADD steps (config parse, IPAM exec, VPP
connect, each VPP call; `children/timed_add.py` runs in the plugin's place), a step-by-step
import attribution (`children/import_steps.py`), whole-process floors and a cProfile dump,
all written to DIR. The numbers `make bench` checks are `plugin_bench.py`'s.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

from benchnode import (
    IMPORT_FLOOR,
    PLUGIN,
    PYTHON,
    BenchEmulator,
    BenchNode,
    Run,
    median,
    new_container_id,
    plugin,
    preflight,
    run_timed,
    started_emulator,
)

CHILDREN = Path(__file__).resolve().parent / "children"
TIMED_ADD_CHILD = str(CHILDREN / "timed_add.py")
IMPORT_STEPS_CHILD = str(CHILDREN / "import_steps.py")


def _spans(argv: list[str], stdin: bytes, env: dict[str, str], out: Path) -> tuple[Run, list[Any]]:
    env = {**env, "PLUGIN_BENCH_SPANS": str(out)}
    run = run_timed(argv, stdin, env).check(" ".join(argv[:2]))
    spans: list[Any] = json.loads(out.read_text())
    return run, spans


def _summed(spans: list[Any]) -> dict[str, float]:
    totals: dict[str, float] = {}
    for name, seconds in spans:
        totals[name] = totals.get(name, 0.0) + seconds
    return totals


def importtime_tree(stderr: str, min_ms: float, max_depth: int) -> list[str]:
    """`-X importtime` lines with cumulative >= min_ms, nesting kept (what imports what)."""
    lines = []
    pattern = re.compile(r"^import time:\s+(\d+) \|\s+(\d+) \| (\s*)(\S+)")
    for line in stderr.splitlines():
        m = pattern.match(line)
        if not m:
            continue
        self_us, cumulative_us, indent, name = int(m[1]), int(m[2]), len(m[3]), m[4]
        depth = indent // 2
        if cumulative_us >= min_ms * 1000 and depth <= max_depth:
            lines.append(
                f"{cumulative_us / 1000:7.1f} ms cum {self_us / 1000:6.1f} ms self  {'  ' * depth}{name}"
            )
    # importtime prints children before their parent; reverse to read top-down.
    return lines[::-1]


def _profile_importtime(node: BenchNode, outdir: Path) -> None:
    config = node.vpp_config()
    cid = new_container_id()
    run = run_timed([PYTHON, "-X", "importtime", PLUGIN], config, node.env("ADD", cid))
    run.check("ADD under -X importtime")
    plugin(node, "DEL", cid, config)
    raw = run.stderr.decode(errors="replace")
    (outdir / "importtime-add.txt").write_text(raw)
    print("-X importtime of one ADD (cumulative >= 3 ms, depth <= 4), top-down:")
    for line in importtime_tree(raw, 3.0, 4):
        print("  " + line)


def _profile_steps(node: BenchNode, emu: BenchEmulator, repeats: int, scratch: Path) -> dict[str, Any]:
    config = node.vpp_config()
    walls: list[float] = []
    breakdown: dict[str, list[float]] = {}
    requests: list[float] = []
    emu_cpu: list[float] = []
    per_message: Counter[str] = Counter()
    for _ in range(repeats):
        cid = new_container_id()
        cpu0, before = emu.cpu_seconds(), Counter(emu.faults.counts)
        run, spans = _spans([PYTHON, TIMED_ADD_CHILD], config, node.env("ADD", cid), scratch)
        emu_cpu.append(emu.cpu_seconds() - cpu0)
        per_message = emu.faults.counts - before
        requests.append(per_message.total())
        plugin(node, "DEL", cid, config)
        walls.append(run.seconds)
        for name, seconds in _summed(spans).items():
            breakdown.setdefault(name, []).append(seconds)
    wall = median(walls)
    print(f"\none ADD, timed steps (median of {repeats}; wall {wall * 1000:.1f} ms):")
    for name, values in breakdown.items():
        print(f"  {median(values) * 1000:7.1f} ms {median(values) / wall:6.1%}  {name}")
    outside = wall - median(breakdown["in-process total"])
    print(
        f"  {outside * 1000:7.1f} ms {outside / wall:6.1%}  "
        "interpreter start-up + site + exit (wall - in-process)"
    )
    messages = ", ".join(f"{k} {v}" for k, v in sorted(per_message.items()))
    print(
        f"  emulator: {median(requests):.0f} requests per ADD ({messages}), "
        f"{median(emu_cpu) * 1000:.1f} ms CPU of its thread"
    )
    return {
        "add_wall_median_s": wall,
        "steps_median_s": {k: median(v) for k, v in breakdown.items()},
        "startup_and_exit_s": outside,
        "emulator_requests_per_add": median(requests),
        "emulator_requests_by_message": dict(per_message),
        "emulator_cpu_per_add_s": median(emu_cpu),
    }


def _profile_imports(repeats: int, scratch: Path) -> dict[str, float]:
    steps: dict[str, list[float]] = {}
    for _ in range(repeats):
        _, spans = _spans([PYTHON, IMPORT_STEPS_CHILD], b"", {"PATH": os.environ["PATH"]}, scratch)
        for name, seconds in spans:
            steps.setdefault(name, []).append(seconds)
    print(f"\nimport attribution, step by step in one process (median of {repeats}):")
    for name, values in steps.items():
        print(f"  {median(values) * 1000:7.1f} ms  {name}")
    return {k: median(v) for k, v in steps.items()}


# Whole-process variants (wall time of a fresh interpreter) that isolate start-up and exit costs.
PROCESS_VARIANTS: tuple[tuple[str, list[str], dict[str, str]], ...] = (
    ("python -S -c pass (no site)", ["-S", "-c", "pass"], {}),
    ("python -c pass", ["-c", "pass"], {}),
    (f"python -c '{IMPORT_FLOOR}'", ["-c", IMPORT_FLOOR], {}),
    (
        "python -c 'import vpp_papi; from pydantic import BaseModel'",
        ["-c", "import vpp_papi, pydantic.main"],
        {},
    ),
    ("import the ADD path (plugin.main, vpp_papi)", ["-c", "import vhostuser_vpp.plugin.main, vpp_papi"], {}),
    (
        "  the same, ending with os._exit(0)",
        ["-c", "import vhostuser_vpp.plugin.main, vpp_papi, os; os._exit(0)"],
        {},
    ),
)


def _profile_processes(repeats: int) -> dict[str, float]:
    samples: dict[str, list[float]] = {name: [] for name, _, _ in PROCESS_VARIANTS}
    for _ in range(repeats):
        for name, args, extra in PROCESS_VARIANTS:
            env = {"PATH": os.environ["PATH"], **extra}
            samples[name].append(run_timed([PYTHON, *args], b"", env).check(name).seconds)
    print(f"\nwhole processes, wall time (median of {repeats}, interleaved):")
    for name, values in samples.items():
        print(f"  {median(values) * 1000:7.1f} ms  {name}")
    return {k: median(v) for k, v in samples.items()}


def profile(outdir: Path, repeats: int) -> int:
    outdir.mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix="pb", dir="/tmp"))
    try:
        node = BenchNode(workdir / "a", str(workdir / "a.sock"))
        config = node.vpp_config()
        with started_emulator(node.api_socket) as emu:
            cid = new_container_id()
            plugin(node, "ADD", cid, config)  # warm-up: pyc files, loop0
            plugin(node, "DEL", cid, config)
            _profile_importtime(node, outdir)
            summary = _profile_steps(node, emu, repeats, workdir / "spans.json")
            summary["import_steps_median_s"] = _profile_imports(repeats, workdir / "steps.json")
            summary["processes_median_s"] = _profile_processes(3 * repeats)
            cid = new_container_id()
            prof = outdir / "add.prof"
            argv = [PYTHON, "-m", "cProfile", "-o", str(prof), PLUGIN]
            run_timed(argv, config, node.env("ADD", cid)).check("ADD under cProfile")
            plugin(node, "DEL", cid, config)
            print(f"\ncProfile of one ADD written to {prof} (python -m pstats {prof})")
        (outdir / "profile.json").write_text(json.dumps(summary, indent=2) + "\n")
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("outdir", metavar="DIR", help="where the profiles are written")
    parser.add_argument("--repeats", type=int, default=7, help="ADDs per breakdown (default 7)")
    args = parser.parse_args(argv)
    preflight()
    return profile(Path(args.outdir), args.repeats)


if __name__ == "__main__":
    sys.exit(main())
