"""Replay throughput over a simulator bag, and what recording costs a demo-like planner run.

    python benchmarks/replay_bench.py            # 60 frames at 640x480; 6 planner episodes x 3 rounds
    python benchmarks/replay_bench.py --small    # 12 frames at 640x480; 2 episodes x 2 rounds at 320x240 (CI)
    python benchmarks/replay_bench.py --json out/replay_bench.json

Targets (issue 14, 2-core CPU): replay >= 20 frames/s at 640x480 with segmentation for relation questions
(the whole job: read, pair, observe, ask, copy the input, write markers and answers); recording
(``--record PATH.rrd`` or ``.mcap``) <= 10% of a demo run's wall time. Recording overhead is measured by
alternating plain and recorded rounds of the same episodes and comparing the best round of each (the figure
least disturbed by other jobs on a shared machine); the median is printed too.
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


def replay_throughput(frames: int, width: int, height: int, workdir: Path) -> dict:
    """Writes a sim bag, replays it with segmentation and relation questions; frames/s of the whole job."""
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
    replay(bag, workdir / "warmup.mcap", wm, **options)  # lazy imports and caches are not replay's cost
    cpu = time.process_time()
    summary = replay(bag, workdir / "replay_out.mcap", wm, **options)
    cpu = time.process_time() - cpu
    return {"frames": summary["frames_processed"], "size": f"{width}x{height}", "questions": len(questions),
            "fps": round(summary["fps"], 1), "seconds": summary["seconds"],
            # frames per second of this process's CPU time: what a machine without other jobs would give
            "cpu_fps": round(summary["frames_processed"] / cpu, 1), "bag_write_s": round(write_s, 2),
            "bag_frames": written["frames"], "bag_mb": round(bag.stat().st_size / 1e6, 1)}


def recording_overhead(episodes: int, rounds: int, width: int, height: int, workdir: Path) -> dict:
    """Wall time of planner episodes without and with ``--record`` (.rrd and .mcap), alternating rounds."""
    import gymnasium as gym

    import sim_envs
    from joyai_embodied import WorldModel
    from joyai_embodied.planner import Planner
    from joyai_embodied.recording import open_recorder

    env = gym.make(sim_envs.ENV_ID, width=width, height=height, action_mode="primitive")
    planner = Planner(WorldModel.load("geometric"))
    planner.run_episode(env, seed=0)  # warm-up: lazy imports, renderer, caches

    def one_round(record: str | None) -> tuple[float, float]:
        start, cpu = time.perf_counter(), time.process_time()
        recorder = open_recorder(workdir / f"demo.{record}") if record else None
        step = 0
        for seed in range(episodes):
            episode = planner.run_episode(env, seed=seed)
            if recorder is not None:
                step = recorder.log_episode(episode, first_step=step)
        if recorder is not None:
            recorder.close()  # flushes: the recorder's background work is counted
        return time.perf_counter() - start, time.process_time() - cpu

    times: dict[str, list[float]] = {"none": [], "rrd": [], "mcap": []}
    cpu: dict[str, list[float]] = {kind: [] for kind in times}
    for _ in range(rounds):
        for kind in times:
            wall, used = one_round(None if kind == "none" else kind)
            times[kind].append(wall)
            cpu[kind].append(used)
    env.close()
    base_best, base_median = min(times["none"]), statistics.median(times["none"])
    result = {"episodes": episodes, "rounds": rounds, "size": f"{width}x{height}",
              "plain_best_s": round(base_best, 3), "plain_median_s": round(base_median, 3)}
    for kind in ("rrd", "mcap"):
        result[f"{kind}_best_s"] = round(min(times[kind]), 3)
        result[f"{kind}_overhead_best_pct"] = round(100 * (min(times[kind]) / base_best - 1), 1)
        result[f"{kind}_overhead_median_pct"] = round(100 * (statistics.median(times[kind]) / base_median - 1), 1)
        # CPU time of the process (all threads, the recorder's included): steadier than wall time under load
        result[f"{kind}_overhead_cpu_pct"] = round(100 * (min(cpu[kind]) / min(cpu["none"]) - 1), 1)
        result[f"{kind}_mb"] = round((workdir / f"demo.{kind}").stat().st_size / 1e6, 1)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="quick run for CI")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    frames, episodes, rounds, demo_size = (12, 2, 2, (320, 240)) if args.small else (60, 6, 3, (640, 480))
    with tempfile.TemporaryDirectory(prefix="replay_bench_") as tmp:
        workdir = Path(tmp)
        replay_result = replay_throughput(frames, 640, 480, workdir)
        print(f"replay at {replay_result['size']}, segmentation, {replay_result['questions']} relation questions: "
              f"{replay_result['fps']} frames/s wall, {replay_result['cpu_fps']} frames per CPU-second, over "
              f"{replay_result['frames']} frames (target >= 20; load average {os.getloadavg()[0]:.1f})")
        overhead = recording_overhead(episodes, rounds, *demo_size, workdir)
        print(f"demo-like run, {episodes} episodes at {overhead['size']}: plain {overhead['plain_best_s']} s (best of "
              f"{rounds}); --record .rrd {overhead['rrd_overhead_best_pct']:+}% wall (median "
              f"{overhead['rrd_overhead_median_pct']:+}%, CPU {overhead['rrd_overhead_cpu_pct']:+}%), .mcap "
              f"{overhead['mcap_overhead_best_pct']:+}% wall (median {overhead['mcap_overhead_median_pct']:+}%, CPU "
              f"{overhead['mcap_overhead_cpu_pct']:+}%) (target <= 10%)")
    results = {"replay": replay_result, "recording_overhead": overhead}
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
