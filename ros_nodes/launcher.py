"""``joyai-embodied ros``: both world-model nodes in one process, no ``ros2 launch`` needed.

The model loads once and both nodes share it; a MultiThreadedExecutor serves them. ROS 2 discovery
stays on this machine (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``) unless ``--discovery subnet``.

    joyai-embodied ros --preset geometric --domain-id 42
    joyai-embodied ros --preset joyai-image --device cuda
    joyai-embodied ros --preset remote --address tcp://127.0.0.1:5555
    joyai-embodied ros --with-sim-bridge --sim-width 320 --sim-height 240   # + the simulator as a ROS camera
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any, Callable, Sequence

DISCOVERY_RANGES = {"localhost": "LOCALHOST", "subnet": "SUBNET"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Adds the ``ros`` subcommand's options."""
    parser.add_argument("--preset", "--backend", dest="preset", default="geometric",
                        help="model preset name or YAML path, a backend name, or 'package.module:BackendClass' "
                             "for a backend of your own (default: geometric)")
    parser.add_argument("--device", default=None, help="device for learned backends (cuda, cpu)")
    parser.add_argument("--address", default=None, help="model server address for the remote backend")
    parser.add_argument("--domain-id", type=int, default=None,
                        help="ROS_DOMAIN_ID (0-232; default: the environment's, else 0)")
    parser.add_argument("--discovery", choices=sorted(DISCOVERY_RANGES), default="localhost",
                        help="ROS 2 discovery range; 'subnet' lets other machines see the nodes (default: localhost)")
    parser.add_argument("--namespace", default="", help="ROS namespace for both nodes and their camera topics")
    parser.add_argument("--params-file", default=None,
                        help="ROS parameters YAML (see ros_nodes/config/joyai.yaml) for topics and camera pose")
    parser.add_argument("--threads", type=int, default=4, help="executor threads (default: 4)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="OpenBLAS threads of this process (default 1: idle BLAS threads spin and take CPU "
                             "from the executor and from clients on the same machine; 0 keeps OpenBLAS's own)")
    sim = parser.add_argument_group("simulator bridge (ros_nodes/sim_bridge_node.py)")
    sim.add_argument("--with-sim-bridge", action="store_true",
                     help="also run sim_bridge_node: a joyai/TabletopSpatial-v0 env publishing the camera topics "
                          "the nodes subscribe to, with /joyai/sim/reset, /joyai/sim/pick, /joyai/sim/place")
    sim.add_argument("--sim-seed", type=int, default=0, help="seed of the bridge's first episode (default 0)")
    sim.add_argument("--sim-width", type=int, default=640, help="bridge camera width (default 640)")
    sim.add_argument("--sim-height", type=int, default=480, help="bridge camera height (default 480)")
    sim.add_argument("--sim-camera", default="front", help="bridge camera: front, side or top (default front)")
    sim.add_argument("--sim-rate", type=float, default=5.0,
                     help="republish rate of the last frame in Hz; 0 = only after changes (default 5)")


def configure_environment(discovery: str = "localhost", domain_id: int | None = None) -> None:
    """Sets the discovery range and domain id; must run before rclpy initialises its context."""
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = DISCOVERY_RANGES[discovery]
    if domain_id is not None:
        if not 0 <= domain_id <= 232:
            raise SystemExit(f"--domain-id: expected 0..232, got {domain_id}")
        os.environ["ROS_DOMAIN_ID"] = str(domain_id)


def register_plugin(preset: str) -> str:
    """Registers ``"package.module:Class"`` as a backend (named by the string itself); returns the name."""
    if ":" in preset and not preset.endswith((".yaml", ".yml")) and "/" not in preset:
        from joyai_embodied.backends.base import available_backends, register_backend

        if preset not in available_backends():
            register_backend(preset, preset)
    return preset


def limit_blas_threads(threads: int) -> bool:
    """Sets the OpenBLAS thread count of this process at run time (numpy is already imported by now).

    OpenBLAS workers busy-wait after each call; on a small machine they take the CPU that the
    executor threads and a client process need. Measured on 2 cores, 640x480 spatial query: in-process
    37 -> 22 ms and over ROS 49-55 -> 31 ms with one thread (the nodes' own matrices are small).

    Returns:
        True when an OpenBLAS library was found in this process and set.
    """
    import ctypes

    with open("/proc/self/maps") as maps:
        libraries = {line.split()[-1] for line in maps if "openblas" in line.lower() and ".so" in line}
    done = False
    for path in sorted(libraries):
        library = ctypes.CDLL(path)
        for symbol in ("scipy_openblas_set_num_threads64_", "openblas_set_num_threads64_", "openblas_set_num_threads"):
            if hasattr(library, symbol):
                getattr(library, symbol)(ctypes.c_int(threads))
                done = True
                break
    return done


def spin_nodes(nodes: Sequence, threads: int = 4) -> int:
    """Spins ``nodes`` on one MultiThreadedExecutor until Ctrl-C or shutdown; destroys them after."""
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    executor = MultiThreadedExecutor(num_threads=threads)
    for node in nodes:
        executor.add_node(node)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        for node in nodes:
            node.destroy_node()
    return 0


def run_node_alone(make_node: Callable[[], Any], argv: Sequence[str] | None = None, threads: int = 4) -> int:
    """``python -m ros_nodes.<node> --ros-args ...``: one node, on localhost discovery unless the environment opts out.

    Sets up the large-frame transport before ``rclpy.init`` (requests and frames are several MB).
    """
    import rclpy

    from .fastdds_profile import use_large_frame_transport

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    use_large_frame_transport()
    rclpy.init(args=list(argv) if argv is not None else sys.argv)
    try:
        return spin_nodes([make_node()], threads=threads)
    finally:
        rclpy.try_shutdown()


def run(args: argparse.Namespace) -> int:
    """Loads the model once and serves ``/joyai/spatial_query`` and ``/joyai/imagine``."""
    configure_environment(args.discovery, args.domain_id)
    from .fastdds_profile import use_large_frame_transport

    use_large_frame_transport()  # multi-MB requests and frames over shared memory (localhost discovery only)
    import rclpy
    from rclpy.parameter import Parameter

    from joyai_embodied import WorldModel

    from .common import SharedModel
    from .imagination_node import ImaginationNode
    from .spatial_reasoning_node import SpatialReasoningNode

    if getattr(args, "blas_threads", 0) > 0 and sys.platform.startswith("linux"):
        limit_blas_threads(args.blas_threads)
    ros_args = ["--ros-args", "--params-file", args.params_file] if args.params_file else []
    rclpy.init(args=[sys.argv[0], *ros_args])
    try:
        model = SharedModel(WorldModel.load(register_plugin(args.preset), device=args.device, address=args.address))
        overrides = [Parameter("preset", value=str(args.preset)),
                     Parameter("device", value=args.device or ""),
                     Parameter("address", value=args.address or "")]
        nodes = [SpatialReasoningNode(model, namespace=args.namespace, parameter_overrides=overrides),
                 ImaginationNode(model, namespace=args.namespace, parameter_overrides=overrides)]
        if getattr(args, "with_sim_bridge", False):
            nodes.append(_sim_bridge(args))
        bridge = " + sim bridge (/joyai/sim/reset|pick|place, camera topics)" if len(nodes) > 2 else ""
        print(f"joyai-embodied ros: serving /joyai/spatial_query and /joyai/imagine{bridge} "
              f"(backend {model.world_model.backend.name}, domain {os.environ.get('ROS_DOMAIN_ID', '0')}, "
              f"discovery {args.discovery})", flush=True)
        return spin_nodes(nodes, threads=args.threads)
    finally:
        rclpy.try_shutdown()


def _sim_bridge(args: argparse.Namespace):
    """The sim_bridge node configured from the ``--sim-*`` options (same namespace as the world-model nodes)."""
    from rclpy.parameter import Parameter

    from .sim_bridge_node import SimBridgeNode

    overrides = [Parameter("seed", value=int(args.sim_seed)), Parameter("width", value=int(args.sim_width)),
                 Parameter("height", value=int(args.sim_height)), Parameter("camera", value=str(args.sim_camera)),
                 Parameter("publish_rate_hz", value=float(args.sim_rate))]
    return SimBridgeNode(namespace=args.namespace, parameter_overrides=overrides)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="joyai-embodied ros", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
