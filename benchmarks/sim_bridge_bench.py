"""Latency of the simulator over ROS 2 (sim_bridge_node) vs. the same env in-process.

Starts ``python -m ros_nodes.nodes.sim_bridge`` in a child process (loopback discovery, a domain id of
its own), then times, over several seeds:
  - reset + the first complete camera frame (5 topics, one stamp) received by a client;
  - pick + the frame after it; place + the frame after it;
and the same three steps on an in-process env (``reset``/``step`` return the observation directly).
Prints p50/p90 per step and the ROS overhead (p50 difference).

    .venv/bin/python benchmarks/sim_bridge_bench.py            # 640x480, 20 episodes
    .venv/bin/python benchmarks/sim_bridge_bench.py --small    # 160x120, 4 episodes (CI)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))

STEPS = ("reset", "pick", "place")


def episode_over_ros(client, seed: int) -> dict[str, float]:
    times = {}
    start = time.perf_counter()
    reset = client.reset(seed)
    client.observation(after=reset.stamp)
    times["reset"] = time.perf_counter() - start
    plate = next(o for o in reset.objects if o.id == reset.target_place_id)
    start = time.perf_counter()
    picked = client.pick(reset.target_pick_id)
    client.observation(after=picked.stamp)
    times["pick"] = time.perf_counter() - start
    start = time.perf_counter()
    placed = client.place([plate.centroid.x, plate.centroid.y, plate.centroid.z + plate.extent.z / 2])
    client.observation(after=placed.stamp)
    times["place"] = time.perf_counter() - start
    if not (picked.success and placed.success):
        raise RuntimeError(f"seed {seed}: {picked.error or placed.error}")
    return times


def episode_in_process(env, seed: int) -> dict[str, float]:
    from sim_envs.tabletop import PICK, PLACE

    times = {}
    start = time.perf_counter()
    _, info = env.reset(seed=seed)
    times["reset"] = time.perf_counter() - start
    target = info["target"]
    plate = next(o for o in info["objects"] if o["id"] == target["place_id"])
    start = time.perf_counter()
    env.step({"primitive": PICK, "object_id": target["pick_id"], "position": np.zeros(3)})
    times["pick"] = time.perf_counter() - start
    goal = np.array(plate["position"]) + [0.0, 0.0, plate["size"][2] / 2]
    start = time.perf_counter()
    env.step({"primitive": PLACE, "object_id": 0, "position": goal})
    times["place"] = time.perf_counter() - start
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="160x120, 4 episodes (CI)")
    parser.add_argument("--episodes", type=int, default=None)
    args = parser.parse_args()
    width, height, episodes = (160, 120, 4) if args.small else (640, 480, 20)
    episodes = args.episodes or episodes

    import gymnasium as gym
    import rclpy

    import sim_envs  # noqa: F401
    from ros_nodes.child_process import start_node, stop_process
    from ros_nodes.clients.sim_client import SimBridgeClient

    bridge = start_node("ros_nodes.nodes.sim_bridge", ["-p", f"width:={width}", "-p", f"height:={height}"],
                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rclpy.init()
    client = SimBridgeClient("sim_bridge_bench")
    env = gym.make("joyai/TabletopSpatial-v0", width=width, height=height, action_mode="primitive")
    try:
        client.wait_until_ready(timeout_s=60)
        episode_over_ros(client, 0)  # warm-up: discovery, first allocations
        episode_in_process(env, 0)
        ros = [episode_over_ros(client, seed) for seed in range(1, episodes + 1)]
        local = [episode_in_process(env, seed) for seed in range(1, episodes + 1)]
    finally:
        env.close()
        client.destroy_node()
        rclpy.try_shutdown()
        stop_process(bridge)

    print(f"sim bridge vs in-process, {width}x{height}, {episodes} episodes (ms)")
    print(f"{'step':8} {'ROS p50':>8} {'ROS p90':>8} {'local p50':>10} {'local p90':>10} {'ROS adds p50':>13}")
    for step in STEPS:
        r = np.array([t[step] for t in ros]) * 1e3
        lo = np.array([t[step] for t in local]) * 1e3
        r50, r90, l50, l90 = (float(np.percentile(a, q)) for a, q in ((r, 50), (r, 90), (lo, 50), (lo, 90)))
        print(f"{step:8} {r50:8.1f} {r90:8.1f} {l50:10.1f} {l90:10.1f} {r50 - l50:13.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
