"""Does a perception speed-up keep the world model's answers? Same frames, two code trees, compared exactly.

    # 1. capture the frames once (replay bag, LIBERO's four suites, tabletop sim; exact and noisy depth)
    python benchmarks/perception_equality.py capture --out /tmp/frames.pkl            # --small: a few of each
    # 2. observe them with each tree and dump every SceneObject and every pairwise relation
    PYTHONPATH=/work/main python benchmarks/perception_equality.py dump /tmp/frames.pkl /tmp/before.pkl
    PYTHONPATH=.          python benchmarks/perception_equality.py dump /tmp/frames.pkl /tmp/after.pkl
    # 3. compare: names, shapes, colours, pixel counts, supports (on_top_of) and every relation must be equal;
    #    box centre/size/rotation and float relation fields within 1e-6 (metres)
    python benchmarks/perception_equality.py compare /tmp/before.pkl /tmp/after.pkl

The frames are captured once so both trees see the very same arrays (the simulators are not part of the
comparison). ``dump`` also prints observe's median ms per frame set.
"""

from __future__ import annotations

import argparse
import math
import os
import pickle
import statistics
import sys
import tempfile
import time
from itertools import permutations
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")

#: Largest difference (metres, or unitless for rotations and fractions) allowed between two float answers.
TOLERANCE = 1e-6
LIBERO_SUITES = ("libero_spatial", "libero_object", "libero_goal", "libero_10")


def _replay_frames(count: int) -> list[dict]:
    """The observations ``replay`` builds from a 640x480 simulator bag (segmentation, pose topic)."""
    from joyai_embodied import WorldModel
    from joyai_embodied.recording.replay import replay
    from joyai_embodied.recording.sim_bag import (CAMERA_INFO_TOPIC, DEPTH_TOPIC, POSE_TOPIC, RGB_TOPIC,
                                                  SEGMENTATION_TOPIC, write_sim_episode_bag)

    captured: list[dict] = []
    wm = WorldModel.load("geometric")

    class Capture:  # what replay hands the world model, kept
        def observe(self, observation):
            captured.append({"set": "replay", "obs": observation, "labels": None})
            return wm.observe(observation)

        def ask(self, scene, question):
            return wm.ask(scene, question)

    with tempfile.TemporaryDirectory() as tmp:
        bag = Path(tmp) / "sim.mcap"
        write_sim_episode_bag(bag, seed=0, width=640, height=480, max_frames=count)
        replay(bag, Path(tmp) / "out.mcap", Capture(), rgb_topic=RGB_TOPIC, depth_topic=DEPTH_TOPIC,
               camera_info_topic=CAMERA_INFO_TOPIC, pose_topic=POSE_TOPIC, segmentation_topic=SEGMENTATION_TOPIC)
    return captured


def _tabletop_frames(seeds: int) -> list[dict]:
    """Tabletop frames: default and 640x480, exact and stereo-noise depth, with and without segmentation."""
    import gymnasium as gym

    import sim_envs

    frames = []
    for width, height, noise, camera in ((640, 480, "none", "front"), (320, 240, "none", "side"),
                                         (640, 480, "stereo", "front"), (320, 240, "structured_light", "top")):
        env = gym.make(sim_envs.ENV_ID, width=width, height=height, depth_noise=noise, camera=camera)
        for seed in range(seeds):
            obs, _ = env.reset(seed=seed)
            frames.append({"set": f"tabletop_{width}x{height}_{noise}_{camera}", "obs": dict(obs), "labels": None})
            if seed % 2 == 0:  # no segmentation: the unlabelled path (support RANSAC, DBSCAN)
                bare = {k: v for k, v in obs.items() if k != "segmentation"}
                frames.append({"set": f"tabletop_{width}x{height}_{noise}_noseg", "obs": bare, "labels": None})
        env.close()
    return frames


def _libero_frames(tasks: range, states: range) -> list[dict]:
    import gymnasium as gym

    import sim_envs  # noqa: F401  (registers the envs)
    from joyai_embodied.planner.libero import numbered_labels

    frames = []
    for suite in LIBERO_SUITES:
        for task_id in tasks:
            env = gym.make("joyai/LIBERO-v0", suite=suite, task_id=task_id, init_state=states[0],
                           render_on_step=False)
            try:
                for state in states:
                    obs, info = env.reset(seed=state, options={"init_state": state})
                    frames.append({"set": f"libero_{suite}", "obs": dict(obs),
                                   "labels": numbered_labels(obs["segmentation"], info["labels"])})
            finally:
                env.close()
    return frames


def capture(out: Path, small: bool) -> None:
    frames = _replay_frames(4 if small else 24)
    frames += _tabletop_frames(2 if small else 8)
    frames += _libero_frames(range(2) if small else range(10), range(1) if small else range(3))
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "wb") as f:
        pickle.dump(frames, f, protocol=pickle.HIGHEST_PROTOCOL)
    counts: dict[str, int] = {}
    for frame in frames:
        counts[frame["set"]] = counts.get(frame["set"], 0) + 1
    print(f"captured {len(frames)} frames -> {out}: {counts}")


def _answers(wm, frame: dict) -> tuple[dict, float]:
    obs = frame["obs"]
    start = time.perf_counter()
    scene = wm.observe(obs, labels=frame["labels"]) if frame["labels"] is not None else wm.observe(obs)
    ms = 1000 * (time.perf_counter() - start)
    objects = [{"id": o.id, "name": o.name, "centroid": np.asarray(o.centroid, dtype=np.float64),
                "extent": np.asarray(o.extent, dtype=np.float64),
                "rotation": np.asarray(o.obb_rotation, dtype=np.float64), "pixel_count": o.pixel_count,
                "visible_fraction": float(o.visible_fraction), "color": o.color, "shape": o.shape}
               for o in scene.objects]
    relations = {}
    for a, b in permutations(scene.objects, 2):
        rel = wm.relation(scene, a, b)
        relations[(a.id, b.id)] = dict(vars(rel))
    return {"objects": objects, "relations": relations}, ms


def dump(frames_path: Path, out: Path) -> None:
    import joyai_embodied
    from joyai_embodied import WorldModel

    with open(frames_path, "rb") as f:
        frames = pickle.load(f)
    wm = WorldModel.load("geometric")
    results, times = [], {}
    for frame in frames:
        answers, ms = _answers(wm, frame)
        results.append(answers)
        times.setdefault(frame["set"], []).append(ms)
    with open(out, "wb") as f:
        pickle.dump(results, f, protocol=pickle.HIGHEST_PROTOCOL)
    print(f"{joyai_embodied.__file__}: {len(results)} frames -> {out}")
    for name, values in times.items():
        print(f"  {name:<40} {len(values):>4} frames, observe median {statistics.median(values):6.1f} ms")


def _same(a, b) -> tuple[bool, float]:
    """(equal, largest float difference) of two answer values."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
        if a.shape != b.shape:
            return False, math.inf
        both_nan = np.isnan(a) & np.isnan(b)
        diff = float(np.max(np.where(both_nan, 0.0, np.abs(a - b)), initial=0.0))
        return bool(diff <= TOLERANCE) and not np.isnan(diff), diff
    if isinstance(a, float) and isinstance(b, float):
        if math.isnan(a) and math.isnan(b):
            return True, 0.0
        diff = abs(a - b)
        return diff <= TOLERANCE, diff
    return a == b, 0.0


def compare(before_path: Path, after_path: Path) -> int:
    with open(before_path, "rb") as f:
        before = pickle.load(f)
    with open(after_path, "rb") as f:
        after = pickle.load(f)
    if len(before) != len(after):
        print(f"DIFFERENT: {len(before)} vs {len(after)} frames")
        return 1
    problems, worst, objects, relations = [], 0.0, 0, 0
    for index, (x, y) in enumerate(zip(before, after)):
        if [o["id"] for o in x["objects"]] != [o["id"] for o in y["objects"]]:
            problems.append(f"frame {index}: objects {[o['id'] for o in x['objects']]} vs "
                            f"{[o['id'] for o in y['objects']]}")
            continue
        for ox, oy in zip(x["objects"], y["objects"]):
            objects += 1
            for key in ox:
                ok, diff = _same(ox[key], oy[key])
                worst = max(worst, diff)
                if not ok:
                    problems.append(f"frame {index} object {ox['id']} {key}: {ox[key]!r} vs {oy[key]!r}")
        if set(x["relations"]) != set(y["relations"]):
            problems.append(f"frame {index}: relation pairs differ")
            continue
        for pair, rx in x["relations"].items():
            relations += 1
            ry = y["relations"][pair]
            for key in rx:
                ok, diff = _same(rx[key], ry[key])
                worst = max(worst, diff)
                if not ok:
                    problems.append(f"frame {index} relation {pair} {key}: {rx[key]!r} vs {ry[key]!r}")
    verdict = "IDENTICAL" if not problems else f"DIFFERENT ({len(problems)} differences)"
    print(f"{verdict}: {len(before)} frames, {objects} objects, {relations} relations, largest float "
          f"difference {worst:.3g} (tolerance {TOLERANCE:g})")
    for line in problems[:30]:
        print("  " + line)
    return 0 if not problems else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    cap = commands.add_parser("capture")
    cap.add_argument("--out", required=True)
    cap.add_argument("--small", action="store_true")
    dmp = commands.add_parser("dump")
    dmp.add_argument("frames")
    dmp.add_argument("out")
    cmp_ = commands.add_parser("compare")
    cmp_.add_argument("before")
    cmp_.add_argument("after")
    args = parser.parse_args(argv)
    if args.command == "capture":
        capture(Path(args.out), args.small)
        return 0
    if args.command == "dump":
        dump(Path(args.frames), Path(args.out))
        return 0
    return compare(Path(args.before), Path(args.after))


if __name__ == "__main__":
    sys.exit(main())
