"""Latency of the world model over ROS 2 vs. in-process, and what ROS adds.

Starts ``joyai-embodied ros`` in a child process (loopback discovery, a domain id of its own), then
times, on one simulator frame:
  - a spatial query (relation of two objects) in-process: ``wm.observe`` + ``wm.relation``;
  - the same request over ``/joyai/spatial_query`` carrying the frame (message packing, DDS, node, response);
  - the frame sent once (an observe request returns a ``scene_id``), then queries naming that scene_id
    (no images in the request) vs. in-process ``wm.relation`` on an already observed Scene;
  - the planner-loop path: the frame published once on the node's camera topics (as the sim bridge
    does), then ``use_latest`` queries (no images in the request; the node observes the frame once
    and answers from its cached Scene) vs. in-process ``wm.relation`` on an already observed Scene;
  - the ``/joyai/imagine`` action (30 degree orbit) end to end, and in-process.
In-process and ROS calls alternate, so both see the same load on a shared machine; each run prints
p50/p99 and the ROS overhead (p50 difference and ratio), and the verdict uses the best run (lowest
ROS overhead at p50), the medians of all runs printed beside it. Target: ROS adds <= 5 ms at p50.

Both processes use the shared-memory transport of ``ros_nodes/fastdds_profile.py`` unless
``--default-transport`` (Fast DDS defaults, for comparison), and one OpenBLAS thread each.

    .venv/bin/python benchmarks/ros_bench.py          # 640x480, 3 runs of 100 (+100 +100) queries + 10 imagines
    .venv/bin/python benchmarks/ros_bench.py --small  # 160x120, 1 run of 30 (+30 +30) queries + 5 imagines (CI)
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


def publish_frame(client, observation, subject: str, reference: str, timeout_s: float = 20.0) -> dict:
    """Publishes ``observation`` on the nodes' default camera topics, as the sim bridge does (one stamp).

    The topics are best-effort (sensor-data QoS), so the frame is re-sent until a ``use_latest`` query
    answers; after that nothing is published, and the node's cached Scene stays valid.

    Returns:
        The publishers by topic key (destroy them when done).
    """
    from geometry_msgs.msg import PoseStamped
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import CameraInfo, Image

    from ros_nodes import conversions
    from ros_nodes.topics import TOPIC_DEFAULTS

    stamp = client.get_clock().now().to_msg()
    seg = observation.segmentation
    frame = {"rgb": conversions.numpy_to_image(observation.rgb, "rgb8"),
             "depth": conversions.numpy_to_image(observation.depth.astype(np.float32), "32FC1"),
             "segmentation": conversions.Image() if seg is None else
             conversions.numpy_to_image(seg.astype(np.uint16), "16UC1") if int(seg.max()) < 65536 else
             conversions.numpy_to_image(seg.astype(np.int32), "32SC1"),
             "camera_info": conversions.camera_info_from_intrinsics(observation.intrinsics, observation.width,
                                                                    observation.height),
             "camera_pose": PoseStamped(pose=conversions.matrix_to_pose(observation.cam_to_world))}
    types = {"rgb": Image, "depth": Image, "segmentation": Image, "camera_info": CameraInfo,
             "camera_pose": PoseStamped}
    publishers = {key: client.create_publisher(types[key], TOPIC_DEFAULTS[f"{key}_topic"], qos_profile_sensor_data)
                  for key in frame}
    for msg in frame.values():
        msg.header.stamp = stamp
    deadline = time.monotonic() + timeout_s
    while True:
        for key, msg in frame.items():
            publishers[key].publish(msg)
        time.sleep(0.05)
        result = client.spatial_query(None, subject=subject, reference=reference, labels=observation.labels)
        if result.success:
            return publishers
        if time.monotonic() > deadline:
            raise RuntimeError(f"the node did not take the published frame: {result.error}")


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

    from ros_nodes.fastdds_profile import use_large_frame_transport

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
    from ros_nodes.child_process import start_launcher, stop_process
    from ros_nodes.clients.world_model_client import WorldModelClient

    env = gym.make("joyai/TabletopSpatial-v0", width=width, height=height)
    obs, info = env.reset(seed=args.seed)
    env.close()
    observation = Observation.from_dict(obs, labels={o["id"]: o["name"] for o in info["objects"]})
    subject, reference = info["objects"][0]["name"], info["objects"][1]["name"]
    wm = WorldModel.load(args.preset)

    def local_query():
        wm.relation(wm.observe(observation), subject, reference)

    observed = wm.observe(observation)

    def local_relation():  # the planner loop in-process: many questions about one observed Scene
        wm.relation(observed, subject, reference)

    def local_imagine():
        wm.imagine(wm.observe(observation), CameraMove(yaw_deg=30))

    node = start_launcher(["--preset", args.preset], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    rclpy.init()
    client = WorldModelClient("ros_bench_client")
    # per run: (local query, ROS query, local imagine, ROS imagine, local relation, ROS use_latest,
    #           local relation, ROS scene_id query)
    results = []
    camera = None
    try:
        client.wait_until_ready(timeout_s=60)

        def ros_query():
            result = client.spatial_query(observation, subject=subject, reference=reference, timeout_s=30)
            assert result.success, result.error

        def ros_imagine():
            result = client.imagine(observation, yaw_deg=30.0, timeout_s=60)
            assert result.success, result.error

        def ros_latest():
            result = client.spatial_query(None, subject=subject, reference=reference, labels=observation.labels,
                                          timeout_s=30)
            assert result.success, result.error

        scene_id = client.observe(observation).scene_id  # the frame travels once

        def ros_by_id():
            result = client.spatial_query(scene_id=scene_id, subject=subject, reference=reference, timeout_s=30)
            assert result.success, result.error

        camera = publish_frame(client, observation, subject, reference)
        for _ in range(runs):
            results.append(interleaved(local_query, ros_query, queries) + interleaved(local_imagine, ros_imagine,
                                                                                       imagines)
                           + interleaved(local_relation, ros_latest, queries)
                           + interleaved(local_relation, ros_by_id, queries))
    finally:
        for publisher in camera.values() if camera else ():
            client.destroy_publisher(publisher)
        client.destroy_node()
        rclpy.try_shutdown()
        stop_process(node)

    print(f"ros_bench: {width}x{height}, preset {args.preset}, transport: {transport}; "
          f"{runs} run(s) of {queries} queries (+ {queries} use_latest, + {queries} by scene_id) + {imagines} "
          f"imagines, in-process and ROS calls alternating")
    for index, (lq, rq, li, ri, lr, rl, lr2, rh) in enumerate(results, 1):
        print(f" run {index}:")
        for name, samples in (("spatial query, in-process", lq), ("spatial query, over ROS", rq),
                              ("relation on observed Scene", lr), ("use_latest query, over ROS", rl),
                              ("relation on observed Scene", lr2), ("scene_id query, over ROS", rh),
                              ("imagine, in-process", li), ("imagine action, over ROS", ri)):
            p50, p99 = p50_p99(samples)
            print(f"  {name:28s} p50 {p50:8.2f} ms   p99 {p99:8.2f} ms")
        for what, local, remote in (("spatial query", lq, rq), ("use_latest query", lr, rl),
                                    ("scene_id query", lr2, rh), ("imagine action", li, ri)):
            added, ratio = overhead(local, remote)
            print(f"  ROS adds to the {what:16s} {added:+7.2f} ms at p50 (ratio {ratio:.2f}x)")
        added, ratio = overhead(lq, rl)
        print(f"  use_latest over ROS vs in-process observe+relation: {added:+7.2f} ms at p50 (ratio {ratio:.2f}x)")

    print(f" summary over {runs} run(s) (best, median of runs):")
    summary = {}
    for what, local_at, remote_at in (("spatial query", 0, 1), ("use_latest query", 4, 5),
                                      ("scene_id query", 6, 7), ("imagine action", 2, 3)):
        added = [overhead(run[local_at], run[remote_at]) for run in results]
        summary[what] = min(added)
        print(f"  {what:16s}: ROS adds {min(added)[0]:+.2f} ms at p50 (ratio {min(added)[1]:.2f}x); "
              f"median {np.median([a for a, _ in added]):+.2f} ms")
    if not args.small:
        for what in ("spatial query", "use_latest query", "scene_id query"):
            verdict = "met" if summary[what][0] <= TARGET_MS else "NOT met"
            print(f"  target (ROS adds <= {TARGET_MS:.0f} ms at p50, 640x480 {what}): {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
