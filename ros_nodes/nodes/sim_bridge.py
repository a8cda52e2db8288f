"""``sim_bridge`` node: the ``joyai/TabletopSpatial-v0`` simulator as a ROS 2 camera and robot.

The node owns one env (``action_mode="primitive"``) and

- publishes its observation camera on the topics the world-model nodes subscribe to by default
  (see ``ros_nodes.topics.TOPIC_DEFAULTS``), so their ``use_latest`` requests answer about the live simulation.
  The writers are reliable (keep last 2), which sensor-data (best-effort) subscribers also match:

  ==================================  ==============================  ==================================
  topic                               type                            content
  ==================================  ==============================  ==================================
  ``camera/color/image_raw``          ``sensor_msgs/Image``           rgb8
  ``camera/depth/image_raw``          ``sensor_msgs/Image``           32FC1, metric z-depth in metres
  ``camera/segmentation/image_raw``   ``sensor_msgs/Image``           16UC1 instance ids (0 = background)
  ``camera/color/camera_info``        ``sensor_msgs/CameraInfo``      K of the ideal pinhole, no distortion
  ``camera/pose``                     ``geometry_msgs/PoseStamped``   cam_to_world of the optical frame
  ==================================  ==============================  ==================================

  All five messages of one frame carry the same stamp. A frame is published right after every
  reset and action, then republished (same pixels, new stamp) at ``publish_rate_hz`` so that late
  subscribers and lost best-effort samples catch up; the scene is at rest between actions, so
  nothing is re-rendered. With localhost discovery the process uses shared memory only, with a
  segment big enough for whole frames (``config/large_frames_fastdds.xml``, see
  :func:`ros_nodes.fastdds_profile.use_large_frame_transport`).

- exposes the env's primitive actions as services (``joyai_interfaces/srv``):
  ``/joyai/sim/reset`` (``SimReset``: seed -> instruction, ground-truth target), ``/joyai/sim/pick``
  (``SimPick``: segmentation id) and ``/joyai/sim/place`` (``SimPlace``: world position of the held
  object's bottom centre). Every response carries the stamp from which the camera topics show the
  new state, and the simulator's ground-truth objects; ``SimReset`` also the calibration (K and
  exact cam_to_world) of every named camera, so a client needs no simulator installed. A request
  that cannot run (unknown id, nothing held, a NaN position) answers ``success=false`` with an
  ``error`` naming the field; the node keeps serving.

Threading: MuJoCo's GL context is current only in the thread that created it, so one physics
thread creates the env and runs every reset, action, render and publish; service callbacks only
hand it a small function and wait for the result.

Run alone (loopback discovery, your own domain)::

    ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST ROS_DOMAIN_ID=42 \\
        python -m ros_nodes.nodes.sim_bridge --ros-args -p width:=640 -p height:=480 -p seed:=3

or in one process with the world-model nodes: ``joyai-embodied ros --with-sim-bridge``.
"""

from __future__ import annotations

import concurrent.futures
import math
import queue
import sys
import threading
from typing import Any, Callable

import numpy as np
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.node import Node

from joyai_embodied.errors import InvalidInputError, JoyAIError, RequestTimeoutError

from .. import conversions, results
from ..topics import (ACTION_ERROR, FRAME_QOS, FRAME_TYPES, SIM_PICK_SERVICE, SIM_PLACE_SERVICE, SIM_RESET_SERVICE,
                      TOPIC_DEFAULTS)
from .runtime import Serving

ENV_ID = "joyai/TabletopSpatial-v0"
#: How long stopping waits for the physics thread to close the env (the process ends within 2 s).
STOP_WAIT_S = 1.0
#: How long a service waits for the physics thread (a pick or place takes well under a second).
CALL_TIMEOUT_S = 30.0


class SimThread:
    """Runs every env call in one thread, the one that created the env (and its GL context).

    Args:
        make_env: builds the env; called in the thread.
        idle_period_s: when positive, ``on_idle(env)`` runs after this long without a job.
        on_idle: the idle work (republishing the last frame).
    """

    def __init__(self, make_env: Callable[[], Any], idle_period_s: float = 0.0,
                 on_idle: Callable[[Any], None] | None = None):
        self._make_env, self._on_idle = make_env, on_idle
        self._period = idle_period_s if idle_period_s > 0 else None
        self._jobs: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="sim_bridge_physics", daemon=True)
        self._started = concurrent.futures.Future()
        self._thread.start()
        self._started.result()  # re-raises an env that failed to build (bad width, no GL...)

    def call(self, job: Callable[[Any], Any], timeout_s: float = CALL_TIMEOUT_S) -> Any:
        """Runs ``job(env)`` in the physics thread and returns its result (or raises its exception)."""
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._jobs.put((job, future))
        return future.result(timeout=timeout_s)

    def stop(self) -> None:
        """Finishes the queued jobs, closes the env and ends the thread."""
        self._jobs.put(None)
        self._thread.join(timeout=STOP_WAIT_S)

    def _run(self) -> None:
        try:
            env = self._make_env()
        except BaseException as exc:
            self._started.set_exception(exc)
            return
        self._started.set_result(None)
        try:
            while True:
                try:
                    item = self._jobs.get(timeout=self._period)
                except queue.Empty:
                    if self._on_idle is not None:
                        self._on_idle(env)
                    continue
                if item is None:
                    break
                job, future = item
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(job(env))
                    except BaseException as exc:  # handed to the caller, who reports it
                        future.set_exception(exc)
        finally:
            env.close()


class SimBridgeNode(Node):
    """Publishes the simulator's camera and serves its reset / pick / place primitives.

    Parameters (read-only, declared with descriptors): ``seed`` (first episode; -1 = unseeded),
    ``width``, ``height``, ``camera`` ("front", "side" or "top"), ``publish_rate_hz`` (republish
    rate of the last frame; 0 = only after changes), ``camera_frame_id``, ``world_frame_id``, and
    the five topic names (``rgb_topic``... as in ``ros_nodes.topics.TOPIC_DEFAULTS``).

    Args:
        serving: the process's request counter (refuses requests once the process stops).
        **node_kwargs: passed to :class:`rclpy.node.Node` (``namespace``, ``parameter_overrides``...).

    Raises:
        InvalidInputError: a parameter the env refuses (size out of range, unknown camera).
    """

    def __init__(self, serving: Serving | None = None, **node_kwargs: Any):
        super().__init__("sim_bridge_node", **node_kwargs)
        self.serving = serving or Serving()
        self._declare_parameters()
        value = lambda name: self.get_parameter(name).value  # noqa: E731
        self.width, self.height, self.camera = int(value("width")), int(value("height")), str(value("camera"))
        self.camera_frame_id, self.world_frame_id = value("camera_frame_id"), value("world_frame_id")
        self.topics = {key: value(f"{key}_topic") for key in FRAME_TYPES}
        self._camera_publishers = {key: self.create_publisher(FRAME_TYPES[key], topic, FRAME_QOS)
                                   for key, topic in self.topics.items()}
        self._frame: dict[str, Any] = {}  # the last frame's messages, touched only by the physics thread
        rate = float(value("publish_rate_hz"))
        self.sim = SimThread(self._make_env, 1.0 / rate if rate > 0 else 0.0, self._republish)
        self.sim.call(lambda env: self._reset(env, int(value("seed"))))

        from joyai_interfaces.srv import SimPick, SimPlace, SimReset

        group = ReentrantCallbackGroup()  # callbacks only wait on the physics thread: let them overlap
        self.sim_services = [
            self.create_service(SimReset, SIM_RESET_SERVICE, self.on_reset, callback_group=group),
            self.create_service(SimPick, SIM_PICK_SERVICE, self.on_pick, callback_group=group),
            self.create_service(SimPlace, SIM_PLACE_SERVICE, self.on_place, callback_group=group)]
        self.get_logger().info(f"{ENV_ID} {self.width}x{self.height} '{self.camera}' camera on "
                               f"{self.resolve_topic_name(self.topics['rgb'])}; serving {SIM_RESET_SERVICE}, "
                               f"{SIM_PICK_SERVICE}, {SIM_PLACE_SERVICE}")

    def _declare_parameters(self) -> None:
        kinds = {int: ParameterType.PARAMETER_INTEGER, float: ParameterType.PARAMETER_DOUBLE,
                 str: ParameterType.PARAMETER_STRING}
        declared = {
            "seed": (0, "reset seed of the first episode (-1: unseeded); later episodes: /joyai/sim/reset"),
            "width": (640, "image width in pixels"),
            "height": (480, "image height in pixels"),
            "camera": ("front", "observation camera: front, side or top"),
            "publish_rate_hz": (5.0, "republish the last frame this often (new stamp); 0 = only after changes"),
            "camera_frame_id": ("camera_color_optical_frame", "frame_id of the images and camera_info"),
            "world_frame_id": ("world", "frame_id of the camera pose (the simulator's world, z up)"),
            **{name: (topic, f"topic of the {name.removesuffix('_topic')} messages")
               for name, topic in TOPIC_DEFAULTS.items()},
        }
        for name, (default, text) in declared.items():
            # A float may be given as an integer on the command line (-p publish_rate_hz:=5): accept both.
            descriptor = (ParameterDescriptor(dynamic_typing=True, read_only=True, description=text)
                          if isinstance(default, float) else
                          ParameterDescriptor(type=kinds[type(default)], read_only=True, description=text))
            self.declare_parameter(name, default, descriptor)
        rate = self.get_parameter("publish_rate_hz").value
        if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate <= 100:
            raise InvalidInputError("publish_rate_hz", "a rate in [0, 100] Hz (0 = only after changes)", repr(rate))

    # -- physics thread ----------------------------------------------------------------------------
    def _make_env(self) -> Any:
        import gymnasium as gym

        import sim_envs  # noqa: F401  (registers the env; picks a headless GL backend)

        return gym.make(ENV_ID, width=self.width, height=self.height, camera=self.camera,
                        action_mode="primitive").unwrapped  # no TimeLimit: a robot has no episode length

    def _reset(self, env: Any, seed: int) -> tuple[dict, Any]:
        obs, info = env.reset(seed=None if seed == -1 else seed)
        return info, self._publish(obs)

    def _step(self, env: Any, action: dict) -> tuple[dict, Any, bool]:
        obs, _, _, _, info = env.step(action)
        holding = bool(obs["robot_state"][4])  # robot_state: tip xyz, gripper closed, holding, held id
        return info, self._publish(obs), holding

    def _publish(self, obs: dict) -> Any:
        """Converts one observation into the five messages, publishes them, and returns their stamp."""
        stamp = self.get_clock().now().to_msg()
        seg = obs["segmentation"]
        frame = {"rgb": conversions.numpy_to_image(obs["rgb"], "rgb8"),
                 "depth": conversions.numpy_to_image(obs["depth"], "32FC1"),
                 "segmentation": conversions.numpy_to_image(seg, "16UC1" if int(seg.max()) < 65536 else "32SC1"),
                 "camera_info": conversions.camera_info_from_intrinsics(obs["intrinsics"], self.width, self.height),
                 "camera_pose": PoseStamped(pose=conversions.matrix_to_pose(obs["cam_to_world"]))}
        for key, msg in frame.items():
            msg.header.frame_id = self.world_frame_id if key == "camera_pose" else self.camera_frame_id
        self._frame = frame
        self._send(stamp)
        return stamp

    def _republish(self, env: Any) -> None:
        if self._frame:
            self._send(self.get_clock().now().to_msg())

    def _send(self, stamp: Any) -> None:
        for key, msg in self._frame.items():
            msg.header.stamp = stamp
            self._camera_publishers[key].publish(msg)

    # -- services ----------------------------------------------------------------------------------
    def on_reset(self, request: Any, response: Any) -> Any:
        """``SimReset``: a new episode from ``seed`` (-1 = unseeded)."""
        def run() -> None:
            seed = int(request.seed)
            if seed < -1:
                raise InvalidInputError("seed", "a seed >= 0, or -1 for no reseed", seed)
            info, response.stamp = self.sim.call(lambda env: self._reset(env, seed))
            target = info["target"]
            response.instruction = info["instruction"]
            response.target_pick_id, response.target_pick_name = int(target["pick_id"]), target["pick_name"]
            response.target_place_id, response.target_place_name = int(target["place_id"]), target["place_name"]
            response.target_template = int(target["template"])
            response.target_relation, response.target_reference = target["relation"] or "", target["reference"] or ""
            response.target_viewpoint = target["viewpoint"]
            response.objects = ground_truth_objects(info["objects"])
            self._fill_calibration(response)
        return self._serve("reset", run, response)

    def _fill_calibration(self, response: Any) -> None:
        from sim_envs.cameras import CAMERAS

        poses = self.sim.call(lambda env: {name: env.camera_pose(name) for name in CAMERAS})
        response.camera_names = list(poses)
        response.camera_infos = [conversions.camera_info_from_intrinsics(k, self.width, self.height)
                                 for _, k in poses.values()]
        response.cam_to_world = [v for pose, _ in poses.values() for v in conversions.matrix_values(pose)]

    def on_pick(self, request: Any, response: Any) -> Any:
        """``SimPick``: pick the object with segmentation id ``object_id``."""
        from sim_envs.constants import MAX_OBJECTS
        from sim_envs.tabletop import PICK

        def run() -> None:
            object_id = int(request.object_id)
            if not 1 <= object_id <= MAX_OBJECTS:
                raise InvalidInputError("object_id", f"a segmentation id in [1, {MAX_OBJECTS}] "
                                                     "(0 is the background)", object_id)
            action = {"primitive": PICK, "object_id": object_id, "position": np.zeros(3)}
            self._fill_action(response, *self.sim.call(lambda env: self._step(env, action)))
        return self._serve("pick", run, response)

    def on_place(self, request: Any, response: Any) -> Any:
        """``SimPlace``: put the held object down with its bottom centre at ``position`` (world, m)."""
        from sim_envs.tabletop import PLACE

        def run() -> None:
            position = np.array([request.position.x, request.position.y, request.position.z])
            if not np.all(np.isfinite(position)):
                raise InvalidInputError("position", "finite world coordinates (m)",
                                        np.array2string(position, precision=3))
            action = {"primitive": PLACE, "object_id": 0, "position": position}
            self._fill_action(response, *self.sim.call(lambda env: self._step(env, action)))
        return self._serve("place", run, response)

    @staticmethod
    def _fill_action(response: Any, info: dict, stamp: Any, holding: bool) -> None:
        response.stamp, response.holding = stamp, holding
        response.objects = ground_truth_objects(info["objects"])
        response.task_success = bool(info["success"])
        if info["action_error"]:  # the env refused the primitive and moved nothing: the caller's to fix
            response.error, response.error_type = info["action_error"], ACTION_ERROR

    def _serve(self, what: str, run: Callable[[], None], response: Any) -> Any:
        try:
            with self.serving.request():
                run()
            response.success = not response.error
        except concurrent.futures.TimeoutError:
            results.fill_error(response, RequestTimeoutError(f"{what}: the simulator did not finish within "
                                                             f"{CALL_TIMEOUT_S} s"))
        except Exception as exc:  # bad input, or a simulator bug: the services keep serving either way
            if not isinstance(exc, JoyAIError):
                self.get_logger().error(f"{what} failed: {exc!r}")
            results.fill_error(response, exc)
        return response

    def destroy_node(self) -> None:
        sim = getattr(self, "sim", None)  # absent when __init__ failed (rclpy shutdown still destroys us)
        if sim is not None:
            sim.stop()
        super().destroy_node()


def ground_truth_objects(objects: list[dict]) -> list[Any]:
    """``joyai_interfaces/SceneObject`` messages of the simulator's ``info["objects"]`` (ground truth).

    ``centroid`` is the body position, ``extent`` the object's size, ``obb_rotation`` its yaw about world
    z; ``visible_fraction`` is NaN because the simulator does not compute visibility.
    """
    from joyai_interfaces.msg import SceneObject

    messages = []
    for obj in objects:
        msg = SceneObject(id=int(obj["id"]), name=str(obj["name"]), color=str(obj["color"]),
                          shape=str(obj["shape"]), visible_fraction=math.nan)
        msg.centroid.x, msg.centroid.y, msg.centroid.z = (float(v) for v in obj["position"])
        msg.extent.x, msg.extent.y, msg.extent.z = (float(v) for v in obj["size"])
        c, s = math.cos(float(obj.get("yaw", 0.0))), math.sin(float(obj.get("yaw", 0.0)))
        msg.obb_rotation = [c, -s, 0.0, s, c, 0.0, 0.0, 0.0, 1.0]
        messages.append(msg)
    return messages


def main(argv: list[str] | None = None) -> int:
    """Runs the node alone (``python -m ros_nodes.nodes.sim_bridge --ros-args -p width:=320 ...``)."""
    from .runtime import run_node_alone

    return run_node_alone(lambda serving: SimBridgeNode(serving=serving), argv, threads=2)


if __name__ == "__main__":
    sys.exit(main())
