"""Replay throughput over a simulator bag, and what recording costs a demo-like planner run.

    python benchmarks/replay_bench.py            # 60 frames at 640x480; demo --episodes 5 x 3 rounds at 640x480
    python benchmarks/replay_bench.py --small    # 12 frames at 640x480; demo --episodes 2 x 1 round at 320x240 (CI)
    python benchmarks/replay_bench.py --json out/replay_bench.json
    python benchmarks/replay_bench.py --replay-only  # the replay figure only (recording costs: record_bench.py)

Targets (issue 14, 2-core CPU): replay >= 20 frames/s at 640x480 with segmentation for relation questions
(the whole job: read, pair, observe, ask, copy the input, write markers and answers); recording
(``--record PATH.rrd`` or ``.mcap``) <= 10% of a demo run's wall time: ``joyai-embodied demo`` is run as a
process without and with ``--record``, rounds alternating, best and median wall time compared, and the
process's CPU time beside them (steady when other jobs share the machine). The steady-state cost of logging
one episode is measured in-process too.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from itertools import permutations
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")


def replay_throughput(frames: int, width: int, height: int, workdir: Path, jobs_list: tuple = (1, 2)) -> dict:
    """Writes a sim bag, replays it with segmentation and relation questions; frames/s of the whole job.

    Returns ``{jobs: figures}``: each ``replay(..., jobs=N)`` once as a warm-up, then timed. The job's CPU
    time counts the worker processes too (their rusage, once they are joined at the end of the replay).
    """
    import resource
    from joyai_embodied import WorldModel
    from joyai_embodied.recording.replay import replay
    from joyai_embodied.recording.sim_bag import (CAMERA_INFO_TOPIC, DEPTH_TOPIC, POSE_TOPIC, RGB_TOPIC,
                                                  SEGMENTATION_TOPIC, write_sim_episode_bag)

    bag = workdir / f"sim_{width}x{height}.mcap"
    start = time.perf_counter()
    written = write_sim_episode_bag(bag, seed=0, width=width, height=height, max_frames=frames)
    write_s = time.perf_counter() - start
    wm = WorldModel.load("geometric")
    # relation questions about objects of the first frame (the names the backend gives them)
    import gymnasium as gym

    import sim_envs

    env = gym.make(sim_envs.ENV_ID, width=width, height=height)
    obs, _ = env.reset(seed=0)
    env.close()
    names = wm.observe(obs).object_names()
    pairs = list(permutations(names, 2))[:2]
    questions = [f"Is the {a} left of the {b}?" for a, b in pairs] + [f"Is the {a} behind the {b}?" for a, b in pairs]
    options = dict(rgb_topic=RGB_TOPIC, depth_topic=DEPTH_TOPIC, camera_info_topic=CAMERA_INFO_TOPIC,
                   pose_topic=POSE_TOPIC, segmentation_topic=SEGMENTATION_TOPIC, questions=questions)
    def cpu_s() -> float:
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    results = {}
    for jobs in jobs_list:
        replay(bag, workdir / "warmup.mcap", wm, jobs=jobs, **options)  # lazy imports, caches: not replay's cost
        cpu = cpu_s()
        summary = replay(bag, workdir / f"replay_out_{jobs}.mcap", wm, jobs=jobs, **options)
        cpu = cpu_s() - cpu
        results[jobs] = {"jobs": jobs, "frames": summary["frames_processed"], "size": f"{width}x{height}",
                         "questions": len(questions), "fps": round(summary["fps"], 1), "seconds": summary["seconds"],
                         # frames per CPU-second of the job (workers included): steady under other jobs' load
                         "cpu_fps": round(summary["frames_processed"] / cpu, 1), "bag_write_s": round(write_s, 2),
                         "bag_frames": written["frames"], "bag_mb": round(bag.stat().st_size / 1e6, 1),
                         "load_average": round(os.getloadavg()[0], 1)}
    return results


def demo_overhead(episodes: int, rounds: int, width: int, height: int, workdir: Path) -> dict:
    """``joyai-embodied demo`` run as a process without and with ``--record`` (.rrd, .mcap), rounds alternating.

    Wall time is what the target is about; the process's CPU time (user + sys, every thread, the recorder's
    background threads included) is printed beside it because it stays steady when other jobs share the CPU.
    """
    import resource
    import subprocess

    def one_run(record: str | None, index: int) -> tuple[float, float]:
        command = [sys.executable, "-m", "joyai_embodied.commands", "demo", "--episodes", str(episodes),
                   "--width", str(width), "--height", str(height), "--out", str(workdir / f"demo_{index}")]
        if record:
            command += ["--record", str(workdir / f"demo_{index}.{record}")]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True, timeout=1800)
        wall = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    kinds = ("none", "rrd", "mcap")
    one_run(None, -1)  # warm-up: file caches, compiled shaders; not counted
    wall: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    for round_ in range(rounds):
        for kind in kinds:
            seconds, used = one_run(None if kind == "none" else kind, round_ * len(kinds) + len(wall[kind]))
            wall[kind].append(seconds)
            cpu[kind].append(used)
    result = {"episodes": episodes, "rounds": rounds, "size": f"{width}x{height}",
              "plain_wall_best_s": round(min(wall["none"]), 2), "plain_cpu_best_s": round(min(cpu["none"]), 2)}
    for kind in ("rrd", "mcap"):
        result[f"{kind}_wall_best_pct"] = round(100 * (min(wall[kind]) / min(wall["none"]) - 1), 1)
        result[f"{kind}_wall_median_pct"] = round(
            100 * (statistics.median(wall[kind]) / statistics.median(wall["none"]) - 1), 1)
        result[f"{kind}_cpu_pct"] = round(100 * (min(cpu[kind]) / min(cpu["none"]) - 1), 1)
    return result


def per_episode_cost(episodes: int, width: int, height: int, workdir: Path) -> dict:
    """In one process, after warm-up: CPU ms to log one planner episode, against the episode's own CPU ms."""
    import gymnasium as gym

    import sim_envs
    from joyai_embodied import WorldModel
    from joyai_embodied.planner import Planner
    from joyai_embodied.recording import open_recorder

    env = gym.make(sim_envs.ENV_ID, width=width, height=height, action_mode="primitive")
    planner = Planner(WorldModel.load("geometric"))
    planner.run_episode(env, seed=0)  # warm-up
    start = time.process_time()
    runs = [planner.run_episode(env, seed=seed) for seed in range(episodes)]
    plan_ms = 1000 * (time.process_time() - start) / episodes
    env.close()
    result = {"episode_cpu_ms": round(plan_ms, 1)}
    for kind in ("rrd", "mcap"):
        with open_recorder(workdir / f"warm.{kind}") as recorder:  # imports and per-type set-up
            recorder.log_episode(runs[0])
        start = time.process_time()
        with open_recorder(workdir / f"episodes.{kind}") as recorder:
            for episode in runs:
                recorder.log_episode(episode)
        result[f"{kind}_cpu_ms"] = round(1000 * (time.process_time() - start) / episodes, 1)
        result[f"{kind}_pct"] = round(100 * result[f"{kind}_cpu_ms"] / plan_ms, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="quick run for CI")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    parser.add_argument("--replay-only", action="store_true",
                        help="only the replay throughput (recording costs: benchmarks/record_bench.py)")
    args = parser.parse_args(argv)
    frames, episodes, rounds, demo_size = (12, 2, 1, (320, 240)) if args.small else (60, 5, 3, (640, 480))
    with tempfile.TemporaryDirectory(prefix="replay_bench_") as tmp:
        workdir = Path(tmp)
        from joyai_embodied import WorldModel
        from joyai_embodied.recording.replay_jobs import default_jobs

        default = default_jobs(WorldModel.load("geometric"))
        by_jobs = replay_throughput(frames, 640, 480, workdir, tuple(sorted({1, 2, default})))
        for jobs, figures in by_jobs.items():
            print(f"replay --jobs {jobs}{' (the default)' if jobs == default else ''} at {figures['size']}, "
                  f"segmentation, {figures['questions']} relation questions: {figures['fps']} frames/s wall, "
                  f"{figures['cpu_fps']} frames per CPU-second, over {figures['frames']} frames (load average "
                  f"{figures['load_average']})")
        replay_result = {**by_jobs[default], "by_jobs": {str(j): f for j, f in by_jobs.items()}}
        print(f"target: replay >= 20 frames/s at 640x480 (the default, --jobs {default}): {replay_result['fps']} "
              f"frames/s, {'met' if replay_result['fps'] >= 20 else 'NOT met'} (load average "
              f"{replay_result['load_average']})")
        if args.replay_only:
            print(json.dumps({"replay": replay_result}))
            return 0
        cost = per_episode_cost(episodes, *demo_size, workdir)
        print(f"logging one planner episode at {demo_size[0]}x{demo_size[1]}: .rrd {cost['rrd_cpu_ms']} ms, "
              f".mcap {cost['mcap_cpu_ms']} ms CPU (the episode itself: {cost['episode_cpu_ms']} ms; "
              f"{cost['rrd_pct']}% / {cost['mcap_pct']}%)")
        overhead = demo_overhead(episodes, rounds, *demo_size, workdir)
        print(f"joyai-embodied demo --episodes {episodes} at {overhead['size']}: plain {overhead['plain_wall_best_s']} s "
              f"wall (best of {rounds}); --record .rrd {overhead['rrd_wall_best_pct']:+}% wall (median "
              f"{overhead['rrd_wall_median_pct']:+}%, CPU {overhead['rrd_cpu_pct']:+}%), .mcap "
              f"{overhead['mcap_wall_best_pct']:+}% wall (median {overhead['mcap_wall_median_pct']:+}%, CPU "
              f"{overhead['mcap_cpu_pct']:+}%) (target <= 10%; load average {os.getloadavg()[0]:.1f})")
    results = {"replay": replay_result, "per_episode": cost, "demo": overhead}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
