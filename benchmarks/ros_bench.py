"""Latency of the world model over ROS 2 vs. in-process.

Starts ``joyai-embodied ros`` in a child process (loopback discovery, a domain id of its own), then
times, on one simulator frame:
  - a spatial query (relation of two objects) in-process: ``wm.observe`` + ``wm.relation``;
  - the same request over ``/joyai/spatial_query`` (message packing, DDS, node, response);
  - the ``/joyai/imagine`` action (30 degree orbit) end to end, and in-process.
Prints p50/p99 and the ROS overhead (p50 difference and ratio). Target: ROS adds <= 5 ms at p50.

    .venv/bin/python benchmarks/ros_bench.py             # 640x480, 200 queries, 20 imagines
    .venv/bin/python benchmarks/ros_bench.py --small     # 160x120, 30 queries, 5 imagines (CI)
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


def percentiles(samples_s: list[float]) -> tuple[float, float]:
    ms = np.asarray(samples_s) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def timed(fn, repeats: int) -> list[float]:
    fn()  # warm-up (first-call allocations, discovery of the response path)
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="160x120 and few repeats (CI)")
    parser.add_argument("--preset", default="geometric")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    width, height, queries, imagines = (160, 120, 30, 5) if args.small else (640, 480, 200, 20)

    import gymnasium as gym
    import rclpy

    import sim_envs  # noqa: F401  (registers the env)
    from joyai_embodied import CameraMove, Observation, WorldModel
    from ros_nodes.client import WorldModelClient

    env = gym.make("joyai/TabletopSpatial-v0", width=width, height=height)
    obs, info = env.reset(seed=args.seed)
    env.close()
    observation = Observation.from_dict(obs, labels={o["id"]: o["name"] for o in info["objects"]})
    subject, reference = info["objects"][0]["name"], info["objects"][1]["name"]

    wm = WorldModel.load(args.preset)
    local_query = timed(lambda: wm.relation(wm.observe(observation), subject, reference), queries)
    local_imagine = timed(lambda: wm.imagine(wm.observe(observation), CameraMove(yaw_deg=30)), imagines)

    node = subprocess.Popen([sys.executable, "-m", "joyai_embodied.cli", "ros", "--preset", args.preset],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    rclpy.init()
    client = WorldModelClient("ros_bench_client")
    try:
        client.wait_until_ready(timeout_s=60)

        def ros_query():
            result = client.spatial_query(observation, subject=subject, reference=reference, timeout_s=30)
            assert result.success, result.error

        def ros_imagine():
            result = client.imagine(observation, yaw_deg=30.0, timeout_s=60)
            assert result.success, result.error

        remote_query = timed(ros_query, queries)
        remote_imagine = timed(ros_imagine, imagines)
    finally:
        client.destroy_node()
        rclpy.try_shutdown()
        node.terminate()
        node.wait(timeout=10)

    print(f"ros_bench: {width}x{height}, preset {args.preset}, {queries} queries, {imagines} imagines")
    rows = [("spatial query, in-process", local_query), ("spatial query, over ROS", remote_query),
            ("imagine, in-process", local_imagine), ("imagine action, over ROS", remote_imagine)]
    for name, samples in rows:
        p50, p99 = percentiles(samples)
        print(f"  {name:28s} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms")
    for what, local, remote in (("query", local_query, remote_query), ("imagine", local_imagine, remote_imagine)):
        (l50, _), (r50, _) = percentiles(local), percentiles(remote)
        print(f"  ROS overhead ({what}): +{r50 - l50:.2f} ms at p50 (ratio {r50 / l50:.2f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
