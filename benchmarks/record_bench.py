"""What ``--record`` costs a demo run: whole processes without / with ``.rrd`` / with ``.mcap``, and per episode.

    python benchmarks/record_bench.py                    # tabletop demo --episodes 5 x 5 rounds, LIBERO demo x 3
    python benchmarks/record_bench.py --small            # tabletop demo --episodes 2 at 320x240, 1 round (CI)
    python benchmarks/record_bench.py --no-libero --rounds 7 --json out/record_bench.json
    python benchmarks/record_bench.py --episode-only      # the in-process per-episode figures only
    git archive 26e27c4 | tar -x -C /tmp/before            # then, interleaved with that tree's recorder:
    python benchmarks/record_bench.py --no-libero --baseline /tmp/before

Target (issue 14): recording costs <= 10% of a demo run's wall time. Each round runs the three arms as separate
processes (``python -m joyai_embodied.commands demo ...``), in an order rotated every round so that a drift of
the machine's load does not favour one arm; the figures are medians over rounds. Beside each wall time: the
CPU time of the demo and its children (user + sys: the writer process included), the demo process's own CPU
(what competes with the planner for its core when the writer process has a core of its own: on a quiet
machine that, not the writer's, is what recording adds to the wall) and the 1-minute load average when it
started (the machine is shared). Per episode: the median of the episodes' own
wall times from the demo's ``report.json`` (the planner's thread; start-up and closing excluded).

Per episode, in one process (``episode_cost``): the same LIBERO episode (libero_spatial task 0, init state 0:
deterministic) is run repeatedly through a ``RecordingWorldModel`` without a recorder, with a background .rrd
and with a background .mcap recorder, arms alternating; the figures are the CPU time the process spends per
episode (every thread of the caller; the writer process's CPU is its own) and the writer's CPU time
(``Recorder.write_cpu_s``, in the writer process), medians over repeats.

``--baseline DIR``: a source tree of an earlier revision; its ``--record`` arms (``rrd@base``, ``mcap@base``)
run in the same rounds, with the same rotation, from ``DIR`` (``python -m`` imports the tree it runs in), so
that before and after are measured under the same load.
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
#: Runs ``python -m joyai_embodied.commands ARGS`` and, at its exit (after every other exit handler: a writer
#: process has ended by then), writes the process's own CPU time (its threads, not its children) to a file:
#: the part of the work that shares the demo's cores with the planner when the writer has a core of its own.
OWN_CPU_RUNNER = ("import atexit, os, resource, runpy, sys\n"
                  "def _own():\n"
                  "    u = resource.getrusage(resource.RUSAGE_SELF)\n"
                  "    open(os.environ['RECORD_BENCH_OWN_CPU'], 'w').write(repr(u.ru_utime + u.ru_stime))\n"
                  "atexit.register(_own)\n"
                  "sys.argv[0] = 'joyai_embodied.commands'\n"
                  "runpy.run_module('joyai_embodied.commands', run_name='__main__', alter_sys=True)\n")
BASE_ARMS = ("rrd@base", "mcap@base")  # with --baseline: the same recordings made by the baseline tree


def one_run(demo_args: list[str], arm: str, workdir: Path, index: int, baseline: Path | None = None) -> dict:
    """One demo process; wall, CPU (the process and its children: a writer process included), load average
    at start, and the episodes' wall times from its report. ``arm`` ending in ``@base`` runs from ``baseline``."""
    out = workdir / f"{arm}_{index}"
    command = [sys.executable, "-c", OWN_CPU_RUNNER, "demo", *demo_args, "--out", str(out)]
    own_cpu = workdir / f"{arm}_{index}.cpu"
    suffix = arm.split("@")[0]
    if arm != "none":
        command += ["--record", str(workdir / f"{arm}_{index}.{suffix}")]
    cwd = baseline if arm.endswith("@base") else Path(__file__).resolve().parents[1]
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, cwd=cwd,
                            env={**os.environ, "RECORD_BENCH_OWN_CPU": str(own_cpu)})
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed:\n{result.stderr[-2000:]}")
    report = json.loads((out / "report.json").read_text())
    episodes = [e.get("wall_s", e.get("seconds")) for e in report["episodes_detail"]]
    size = (workdir / f"{arm}_{index}.{suffix}").stat().st_size if arm != "none" else 0
    return {"arm": arm, "wall_s": wall, "cpu_s": (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime),
            "own_cpu_s": float(own_cpu.read_text()),
            "load": load, "episode_s": episodes, "file_mb": size / 1e6}


def measure(name: str, demo_args: list[str], rounds: int, workdir: Path, baseline: Path | None = None) -> dict:
    """``rounds`` rounds of the arms, order rotated each round; medians and overheads vs no recording."""
    runs: list[dict] = []
    all_arms = ARMS + (BASE_ARMS if baseline is not None else ())
    for r in range(rounds):
        order = all_arms[r % len(all_arms):] + all_arms[:r % len(all_arms)]
        for arm in order:
            run = one_run(demo_args, arm, workdir, len(runs), baseline)
            runs.append(run)
            print(f"  {name} round {r + 1}/{rounds} {arm:<9}: wall {run['wall_s']:6.2f} s, cpu {run['cpu_s']:6.2f} s "
                  f"(demo's own {run['own_cpu_s']:5.2f} s), "
                  f"load {run['load']:.1f}, episodes {', '.join(f'{e:.2f}' for e in run['episode_s'])} s", flush=True)
    arms = {}
    for arm in all_arms:
        mine = [run for run in runs if run["arm"] == arm]
        arms[arm] = {"wall_s": statistics.median(r["wall_s"] for r in mine),
                     "wall_min_s": min(r["wall_s"] for r in mine),
                     "cpu_s": statistics.median(r["cpu_s"] for r in mine),
                     "own_cpu_s": statistics.median(r["own_cpu_s"] for r in mine),
                     "episode_s": statistics.median(e for r in mine for e in r["episode_s"]),
                     "load": statistics.median(r["load"] for r in mine),
                     "file_mb": statistics.median(r["file_mb"] for r in mine)}
    base = arms["none"]
    for arm in all_arms[1:]:
        figures = arms[arm]
        for key in ("wall_s", "wall_min_s", "cpu_s", "own_cpu_s", "episode_s"):
            figures[f"{key}_overhead_pct"] = 100.0 * (figures[key] / base[key] - 1.0)
    return {"demo": name, "args": demo_args, "rounds": rounds, "arms": arms, "runs": runs}


def episode_cost(repeats: int, workdir: Path) -> dict:
    """CPU per LIBERO episode without / with a background .rrd / .mcap recorder (one process, arms alternating)."""
    import gymnasium as gym

    import sim_envs  # noqa: F401  (registers the envs)
    from joyai_embodied import WorldModel
    from joyai_embodied.planner.libero import LiberoPlanner
    from joyai_embodied.recording import EpisodeRecorder, RecordingWorldModel, open_recorder

    env = gym.make("joyai/LIBERO-v0", suite="libero_spatial", task_id=0, init_state=0, width=256, height=256,
                   render_on_step=False)
    base = WorldModel.load("geometric")
    samples: dict[str, list[dict]] = {arm: [] for arm in ARMS}
    recorders = {arm: open_recorder(workdir / f"episodes.{arm}", background=True) for arm in ("rrd", "mcap")}
    try:
        for index in range(repeats + 1):  # the first round warms caches and lazy imports: not counted
            for arm in ARMS[index % 3:] + ARMS[:index % 3]:
                recorder = recorders.get(arm)
                wm = RecordingWorldModel(base, recorder, imagine_edits=True)
                if recorder is not None:
                    wm.step = recorder.step  # one timeline across the repeats
                hooks = EpisodeRecorder(wm)
                _, info = env.reset(seed=0, options={"init_state": 0})
                written = recorder.write_cpu_s if recorder is not None else 0.0
                cpu, wall = _process_cpu(), time.perf_counter()
                hooks.start(0, 0, info)
                episode = LiberoPlanner(wm).run_episode(env, info["labels"], info["instruction"], 220)
                hooks.finish({"task_id": 0, "init_state": 0, "success": episode.success, "failure": episode.failure,
                              "steps": episode.steps, "chosen": episode.chosen_name}, env)
                if recorder is not None:
                    recorder.flush()  # the episode's writes are part of its cost
                cpu, wall = _process_cpu() - cpu, time.perf_counter() - wall
                if index:
                    samples[arm].append({"cpu_s": cpu, "wall_s": wall, "load": os.getloadavg()[0],
                                         "writer_cpu_s": (recorder.write_cpu_s - written) if recorder else 0.0,
                                         "observations": wm.trace.observations, "steps": episode.steps})
                print(f"  episode {index}/{repeats} {arm:<4}: cpu {cpu:5.2f} s, wall {wall:5.2f} s, "
                      f"{wm.trace.observations} observations, {episode.steps} steps", flush=True)
    finally:
        for recorder in recorders.values():
            recorder.close()
        env.close()
    arms = {arm: {key: statistics.median(s[key] for s in runs) for key in runs[0]} for arm, runs in samples.items()}
    for arm in ("rrd", "mcap"):
        arms[arm]["cpu_overhead_pct"] = 100.0 * (arms[arm]["cpu_s"] / arms["none"]["cpu_s"] - 1.0)
        arms[arm]["writer_pct"] = 100.0 * arms[arm]["writer_cpu_s"] / arms["none"]["cpu_s"]
        arms[arm]["wall_overhead_pct"] = 100.0 * (arms[arm]["wall_s"] / arms["none"]["wall_s"] - 1.0)
    return {"episode": "libero_spatial task 0 init 0 (256x256)", "repeats": repeats, "arms": arms}


def tabletop_episode_cost(episodes: int, width: int, height: int, workdir: Path) -> dict:
    """Logging tabletop planner episodes (``log_episode``), inline and with the writer process: CPU of the
    planner's thread per episode (validating and sending, with the writer process), and the encode+write CPU
    (``Recorder.write_cpu_s``; in the writer process), beside the episode's own planner-thread CPU."""
    import gymnasium as gym

    import sim_envs
    from joyai_embodied import WorldModel
    from joyai_embodied.planner import Planner
    from joyai_embodied.recording import open_recorder

    env = gym.make(sim_envs.ENV_ID, width=width, height=height, action_mode="primitive")
    planner = Planner(WorldModel.load("geometric"))
    runs, cpu = [], []
    try:
        for seed in range(episodes + 1):
            start = time.thread_time()
            runs.append(planner.run_episode(env, seed=seed))
            cpu.append(time.thread_time() - start)
    finally:
        env.close()
    result = {"size": f"{width}x{height}", "episodes": episodes, "episode_cpu_ms": 1000 * statistics.median(cpu[1:])}
    for arm in ("rrd", "mcap"):
        for background in (False, True):
            recorder = open_recorder(workdir / f"tabletop_{background}.{arm}", background=background)
            recorder.log_episode(runs[0])  # warms lazy imports and caches: not counted
            recorder.flush()
            written, start = recorder.write_cpu_s, time.thread_time()
            for episode in runs[1:]:
                recorder.log_episode(episode)
            caller = time.thread_time() - start
            recorder.flush()
            key = f"{arm}_{'process' if background else 'inline'}"
            result[f"{key}_planner_thread_ms"] = 1000 * caller / episodes
            result[f"{key}_write_ms"] = 1000 * (recorder.write_cpu_s - written) / episodes
            recorder.close()
    return result


def print_tabletop_episode(result: dict) -> None:
    print(f"\nlogging one tabletop planner episode at {result['size']} (median episode: "
          f"{result['episode_cpu_ms']:.0f} ms of planner-thread CPU), per episode over {result['episodes']}:")
    for arm in ("rrd", "mcap"):
        for mode in ("inline", "process"):
            thread, write = result[f"{arm}_{mode}_planner_thread_ms"], result[f"{arm}_{mode}_write_ms"]
            print(f"  .{arm} {mode:<10}: planner thread {thread:5.1f} ms ({100 * thread / result['episode_cpu_ms']:.1f}%), "
                  f"encode+write {write:5.1f} ms; together {100 * (thread + (write if mode == 'process' else 0)) / result['episode_cpu_ms']:.1f}% of the episode's CPU")


def _process_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def print_episode_table(result: dict) -> None:
    print(f"\nper episode, {result['episode']}, medians of {result['repeats']} repeats (one process)")
    print("| arm | process CPU per episode (s) | overhead | writer CPU (s) | of the episode | episode wall (s) | "
          "overhead | load avg |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for arm, f in result["arms"].items():
        pct = (lambda key: "-" if arm == "none" else f"{f[key]:+.1f}%")
        print(f"| {arm} | {f['cpu_s']:.2f} | {pct('cpu_overhead_pct')} | {f['writer_cpu_s']:.3f} | "
              f"{'-' if arm == 'none' else format(f['writer_pct'], '.1f') + '%'} | {f['wall_s']:.2f} | "
              f"{pct('wall_overhead_pct')} | {f['load']:.1f} |")


def print_table(result: dict) -> None:
    print(f"\n{result['demo']} ({' '.join(result['args'])}), medians of {result['rounds']} rounds")
    print("| arm | process wall (s) | overhead | best wall (s) | overhead | CPU, with children (s) | overhead | "
          "demo's own CPU (s) | overhead | episode wall (s) | overhead | load avg | file (MB) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for arm, f in result["arms"].items():
        pct = (lambda key: "-" if arm == "none" else f"{f[key + '_overhead_pct']:+.1f}%")
        print(f"| {arm} | {f['wall_s']:.2f} | {pct('wall_s')} | {f['wall_min_s']:.2f} | {pct('wall_min_s')} | "
              f"{f['cpu_s']:.2f} | {pct('cpu_s')} | {f['own_cpu_s']:.2f} | {pct('own_cpu_s')} | {f['episode_s']:.2f} | {pct('episode_s')} | {f['load']:.1f} | "
              f"{f['file_mb']:.1f} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="tabletop only, 2 episodes at 320x240, 1 round")
    parser.add_argument("--rounds", type=int, default=5, help="tabletop rounds (default 5)")
    parser.add_argument("--libero-rounds", type=int, default=3, help="LIBERO demo rounds (default 3)")
    parser.add_argument("--no-libero", action="store_true", help="skip the LIBERO demo")
    parser.add_argument("--no-tabletop", action="store_true", help="skip the tabletop demo")
    parser.add_argument("--episode-repeats", type=int, default=5, help="in-process LIBERO episode repeats (default 5)")
    parser.add_argument("--episode-only", action="store_true", help="only the in-process per-episode figures")
    parser.add_argument("--json", default=None, help="also write the figures here")
    parser.add_argument("--baseline", type=Path, default=None,
                        help="a source tree of an earlier revision: its .rrd/.mcap arms run interleaved (@base)")
    args = parser.parse_args(argv)
    results = []
    episode = None
    with tempfile.TemporaryDirectory(prefix="record_bench_") as tmp:
        workdir = Path(tmp)
        tabletop_episode = tabletop_episode_cost(2 if args.small else 5, *((320, 240) if args.small else (640, 480)),
                                                 workdir)
        if args.episode_only or not (args.small or args.no_libero):
            episode = episode_cost(args.episode_repeats, workdir)
        if args.episode_only:
            pass
        elif args.small:
            results.append(measure("tabletop demo", ["--episodes", "2", "--width", "320", "--height", "240"], 1,
                                   workdir, args.baseline))
        else:
            if not args.no_tabletop:
                results.append(measure("tabletop demo", ["--episodes", "5"], args.rounds, workdir, args.baseline))
            if not args.no_libero:
                results.append(measure("LIBERO demo", ["--libero", "libero_spatial"], args.libero_rounds, workdir))
    for result in results:
        print_table(result)
    print_tabletop_episode(tabletop_episode)
    if episode is not None:
        print_episode_table(episode)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"processes": results, "episode": episode,
                                                    "tabletop_episode": tabletop_episode}, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
