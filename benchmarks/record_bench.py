"""What ``--record`` costs a demo run: whole processes without / with ``.rrd`` / with ``.mcap``, and per episode.

    python benchmarks/record_bench.py                    # tabletop demo --episodes 5 x 5 rounds, LIBERO demo x 3
    python benchmarks/record_bench.py --small            # tabletop demo --episodes 2 at 320x240, 1 round (CI)
    python benchmarks/record_bench.py --no-libero --rounds 7 --json out/record_bench.json

Target (issue 14): recording costs <= 10% of a demo run's wall time. Each round runs the three arms as separate
processes (``python -m joyai_embodied.commands demo ...``), in an order rotated every round so that a drift of
the machine's load does not favour one arm; the figures are medians over rounds. Beside each wall time: the
process's CPU time (user + sys, every thread: the recorder's writer and preload threads included) and the
1-minute load average when it started (the machine is shared). Per episode: the median of the episodes' own
wall times from the demo's ``report.json`` (the planner's thread; start-up and closing excluded).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")
ARMS = ("none", "rrd", "mcap")


def one_run(demo_args: list[str], arm: str, workdir: Path, index: int) -> dict:
    """One demo process; wall, CPU, load average at start, and the episodes' wall times from its report."""
    out = workdir / f"{arm}_{index}"
    command = [sys.executable, "-m", "joyai_embodied.commands", "demo", *demo_args, "--out", str(out)]
    if arm != "none":
        command += ["--record", str(workdir / f"{arm}_{index}.{arm}")]
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    episodes = [e.get("wall_s", e.get("seconds")) for e in report["episodes_detail"]]
    size = (workdir / f"{arm}_{index}.{arm}").stat().st_size if arm != "none" else 0
    return {"arm": arm, "wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "load": load, "episode_s": episodes, "file_mb": size / 1e6}


def measure(name: str, demo_args: list[str], rounds: int, workdir: Path) -> dict:
    """``rounds`` rounds of the three arms, order rotated each round; medians and overheads vs no recording."""
    runs: list[dict] = []
    for r in range(rounds):
        order = ARMS[r % 3:] + ARMS[:r % 3]
        for arm in order:
            run = one_run(demo_args, arm, workdir, len(runs))
            runs.append(run)
            print(f"  {name} round {r + 1}/{rounds} {arm:<4}: wall {run['wall_s']:6.2f} s, cpu {run['cpu_s']:6.2f} s, "
                  f"load {run['load']:.1f}, episodes {', '.join(f'{e:.2f}' for e in run['episode_s'])} s", flush=True)
    arms = {}
    for arm in ARMS:
        mine = [run for run in runs if run["arm"] == arm]
        arms[arm] = {"wall_s": statistics.median(r["wall_s"] for r in mine),
                     "wall_min_s": min(r["wall_s"] for r in mine),
                     "cpu_s": statistics.median(r["cpu_s"] for r in mine),
                     "episode_s": statistics.median(e for r in mine for e in r["episode_s"]),
                     "load": statistics.median(r["load"] for r in mine),
                     "file_mb": statistics.median(r["file_mb"] for r in mine)}
    base = arms["none"]
    for arm in ("rrd", "mcap"):
        figures = arms[arm]
        for key in ("wall_s", "wall_min_s", "cpu_s", "episode_s"):
            figures[f"{key}_overhead_pct"] = 100.0 * (figures[key] / base[key] - 1.0)
    return {"demo": name, "args": demo_args, "rounds": rounds, "arms": arms, "runs": runs}


def print_table(result: dict) -> None:
    print(f"\n{result['demo']} ({' '.join(result['args'])}), medians of {result['rounds']} rounds")
    print("| arm | process wall (s) | overhead | best wall (s) | overhead | process CPU (s) | overhead | "
          "episode wall (s) | overhead | load avg | file (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for arm, f in result["arms"].items():
        pct = (lambda key: "-" if arm == "none" else f"{f[key + '_overhead_pct']:+.1f}%")
        print(f"| {arm} | {f['wall_s']:.2f} | {pct('wall_s')} | {f['wall_min_s']:.2f} | {pct('wall_min_s')} | "
              f"{f['cpu_s']:.2f} | {pct('cpu_s')} | {f['episode_s']:.2f} | {pct('episode_s')} | {f['load']:.1f} | "
              f"{f['file_mb']:.1f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tabletop only, 2 episodes at 320x240, 1 round")
    parser.add_argument("--rounds", type=int, default=5, help="tabletop rounds (default 5)")
    parser.add_argument("--libero-rounds", type=int, default=3, help="LIBERO demo rounds (default 3)")
    parser.add_argument("--no-libero", action="store_true", help="skip the LIBERO demo")
    parser.add_argument("--no-tabletop", action="store_true", help="skip the tabletop demo")
    parser.add_argument("--json", default=None, help="also write the figures here")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="record_bench_") as tmp:
        workdir = Path(tmp)
        if args.small:
            results.append(measure("tabletop demo", ["--episodes", "2", "--width", "320", "--height", "240"], 1,
                                   workdir))
        else:
            if not args.no_tabletop:
                results.append(measure("tabletop demo", ["--episodes", "5"], args.rounds, workdir))
            if not args.no_libero:
                results.append(measure("LIBERO demo", ["--libero", "libero_spatial"], args.libero_rounds, workdir))
    for result in results:
        print_table(result)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
