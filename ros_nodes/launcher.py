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
from typing import Any

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
    parser.add_argument("--threads", type=int, default=4, help=f"executor threads, 1..{MAX_THREADS} (default: 4)")
    parser.add_argument("--max-scenes", type=int, default=None,
                        help="scenes kept for scene_id requests, least recently used evicted first (default: 32)")
    parser.add_argument("--blas-threads", type=int, default=1,
                        help="OpenBLAS threads of this process (default 1: idle BLAS threads spin and take CPU "
                             "from the executor and from clients on the same machine; 0 keeps OpenBLAS's own)")
    sim = parser.add_argument_group("simulator bridge (ros_nodes/nodes/sim_bridge.py)")
    sim.add_argument("--with-sim-bridge", action="store_true",
                     help="also run the sim_bridge node: a joyai/TabletopSpatial-v0 env publishing the camera topics "
                          "the nodes subscribe to, with /joyai/sim/reset, /joyai/sim/pick, /joyai/sim/place")
    sim.add_argument("--sim-seed", type=int, default=0, help="seed of the bridge's first episode (default 0)")
    sim.add_argument("--sim-width", type=int, default=640, help="bridge camera width (default 640)")
    sim.add_argument("--sim-height", type=int, default=480, help="bridge camera height (default 480)")
    sim.add_argument("--sim-camera", default="front", help="bridge camera: front, side or top (default front)")
    sim.add_argument("--sim-rate", type=float, default=5.0,
                     help="republish rate of the last frame in Hz; 0 = only after changes (default 5)")


#: Executor threads accepted by ``--threads`` (more only adds contention on the one model lock).
MAX_THREADS = 64
#: ROS_DOMAIN_ID range (DDS port arithmetic allows 0-232 on Linux).
MAX_DOMAIN_ID = 232


def check_arguments(args: argparse.Namespace) -> None:
    """Refuses bad options before anything starts (the CLI prints one line and exits 2).

    Raises:
        InvalidInputError: ``--threads`` out of range, ``--params-file`` not a readable YAML mapping,
            ``--domain-id`` out of range, ``--max-scenes`` below 1.
    """
    from joyai_embodied.errors import InvalidInputError

    if not 1 <= args.threads <= MAX_THREADS:
        raise InvalidInputError("--threads", f"an executor thread count in [1, {MAX_THREADS}]", args.threads)
    if args.domain_id is not None and not 0 <= args.domain_id <= MAX_DOMAIN_ID:
        raise InvalidInputError("--domain-id", f"a ROS_DOMAIN_ID in [0, {MAX_DOMAIN_ID}]", args.domain_id)
    if args.max_scenes is not None and args.max_scenes < 1:
        raise InvalidInputError("--max-scenes", "at least 1 scene", args.max_scenes)
    if args.params_file is not None:
        import yaml

        try:
            with open(args.params_file, encoding="utf-8") as handle:
                content = yaml.safe_load(handle)
        except OSError as exc:
            raise InvalidInputError("--params-file", "a readable ROS parameters YAML file",
                                    f"{args.params_file!r} ({exc.strerror or exc})") from None
        except yaml.YAMLError as exc:
            raise InvalidInputError("--params-file", "valid YAML",
                                    f"{args.params_file!r}: {str(exc).splitlines()[0]}") from None
        if not isinstance(content, dict):
            raise InvalidInputError("--params-file", "a YAML mapping (node name: ros__parameters: ...)",
                                    f"{args.params_file!r} holds {type(content).__name__}")


def configure_environment(discovery: str = "localhost", domain_id: int | None = None) -> None:
    """Sets the discovery range and domain id; must run before rclpy initialises its context.

    Raises:
        InvalidInputError: ``domain_id`` outside 0..232.
    """
    from joyai_embodied.errors import InvalidInputError

    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = DISCOVERY_RANGES[discovery]
    if domain_id is not None:
        if not 0 <= domain_id <= MAX_DOMAIN_ID:
            raise InvalidInputError("--domain-id", f"a ROS_DOMAIN_ID in [0, {MAX_DOMAIN_ID}]", domain_id)
        os.environ["ROS_DOMAIN_ID"] = str(domain_id)


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


def run(args: argparse.Namespace) -> int:
    """Loads the model once and serves ``/joyai/spatial_query`` and ``/joyai/imagine`` until SIGINT/SIGTERM.

    Returns:
        0 after a signal (requests in flight are finished or refused first; see ``nodes/runtime.py``).

    Raises:
        InvalidInputError: a bad option (see :func:`check_arguments`); BackendUnavailableError: no such backend.
    """
    from .nodes.runtime import StopSignal

    stop = StopSignal().install()  # first: a SIGTERM during the imports and the model load still ends cleanly
    check_arguments(args)
    configure_environment(args.discovery, args.domain_id)
    from .fastdds_profile import use_large_frame_transport

    use_large_frame_transport()  # multi-MB requests and frames over shared memory (localhost discovery only)
    from rclpy.parameter import Parameter

    from joyai_embodied import WorldModel
    from joyai_embodied.service import ModelService

    from .nodes.common import DEFAULT_MAX_SCENES, SharedModel, register_plugin
    from .nodes.imagination import ImaginationNode
    from .nodes.runtime import serve
    from .nodes.spatial_reasoning import SpatialReasoningNode

    if getattr(args, "blas_threads", 0) > 0 and sys.platform.startswith("linux"):
        limit_blas_threads(args.blas_threads)

    max_scenes = args.max_scenes or DEFAULT_MAX_SCENES

    def make_nodes(serving):
        world_model = WorldModel.load(register_plugin(args.preset), device=args.device, address=args.address)
        model = SharedModel(ModelService(world_model, max_scenes=max_scenes), serving)
        overrides = [Parameter("preset", value=str(args.preset)), Parameter("device", value=args.device or ""),
                     Parameter("address", value=args.address or ""),
                     Parameter("max_scenes", value=int(max_scenes))]
        nodes = [SpatialReasoningNode(model, namespace=args.namespace, parameter_overrides=overrides),
                 ImaginationNode(model, namespace=args.namespace, parameter_overrides=overrides)]
        if getattr(args, "with_sim_bridge", False):
            nodes.append(_sim_bridge(args, serving))
        return nodes

    def banner(nodes) -> str:
        bridge = " + sim bridge (/joyai/sim/reset|pick|place, camera topics)" if len(nodes) > 2 else ""
        drawn = nodes[0].scene_publisher.topics
        bridge += f", scene for RViz on {' and '.join(drawn)}" if drawn else ""
        return (f"joyai-embodied ros: serving /joyai/spatial_query and /joyai/imagine{bridge} "
                f"(backend {nodes[0].model.world_model.backend.name}, domain {os.environ.get('ROS_DOMAIN_ID', '0')}, "
                f"discovery {args.discovery})")

    ros_args = ["--ros-args", "--params-file", args.params_file] if args.params_file else []
    return serve(make_nodes, threads=args.threads, args=[sys.argv[0], *ros_args], banner=banner, stop=stop)


def _sim_bridge(args: argparse.Namespace, serving: Any):
    """The sim_bridge node configured from the ``--sim-*`` options (same namespace as the world-model nodes)."""
    from rclpy.parameter import Parameter

    from .nodes.sim_bridge import SimBridgeNode

    overrides = [Parameter("seed", value=int(args.sim_seed)), Parameter("width", value=int(args.sim_width)),
                 Parameter("height", value=int(args.sim_height)), Parameter("camera", value=str(args.sim_camera)),
                 Parameter("publish_rate_hz", value=float(args.sim_rate))]
    return SimBridgeNode(serving, namespace=args.namespace, parameter_overrides=overrides)


def main(argv: list[str] | None = None) -> int:
    """``python -m ros_nodes.launcher``: as ``joyai-embodied ros`` (bad input: one line, exit code 2)."""
    from joyai_embodied.errors import JoyAIError

    parser = argparse.ArgumentParser(prog="joyai-embodied ros", description=__doc__.splitlines()[0])
    add_arguments(parser)
    try:
        return run(parser.parse_args(argv))
    except JoyAIError as exc:
        print(f"joyai-embodied ros: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
