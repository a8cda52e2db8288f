"""Python side of the ``sim_bridge`` node: a blocking client, and the env the planner acts through.

:class:`SimBridgeClient` calls ``/joyai/sim/reset|pick|place`` and assembles complete frames from the
camera topics (all five messages with one stamp, no older than the last action's)::

    client = SimBridgeClient()
    client.wait_until_ready(timeout_s=10)
    reset = client.reset(seed=3)                       # .instruction, .target_pick_id, .objects, .stamp
    obs = client.observation(after=reset.stamp)        # rgb, depth, segmentation, intrinsics, cam_to_world
    client.pick(reset.target_pick_id); client.place([x, y, z])

:class:`RosSimEnv` wraps it in the reset/step interface of ``joyai/TabletopSpatial-v0`` with
``action_mode="primitive"``, so :class:`joyai_embodied.planner.Planner` runs unchanged with its
simulator behind ROS (``joyai-embodied demo --via ros``). Nothing here imports ``sim_envs`` or MuJoCo:
the cameras' calibration comes with every ``SimReset`` response.
"""

from __future__ import annotations

import math
import os
import subprocess
import time
from typing import Any, Mapping, Sequence

import numpy as np
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node

from joyai_embodied.errors import BackendUnavailableError, InvalidInputError, RequestTimeoutError

from .. import conversions
from ..child_process import close_client, start_node
from ..topics import (ACTION_ERROR, FRAME_QOS, FRAME_TYPES, SIM_PICK_SERVICE, SIM_PLACE_SERVICE, SIM_RESET_SERVICE,
                      TOPIC_DEFAULTS)
from .world_model_client import error_from_result

#: The env's primitive codes (``action["primitive"]`` of ``joyai/TabletopSpatial-v0``, primitive mode);
#: the same numbers as ``sim_envs.tabletop.NOOP, PICK, PLACE`` (a test checks), written here so that a
#: ROS client needs no simulator installed.
NOOP, PICK, PLACE = 0, 1, 2


def _nanoseconds(stamp: Any) -> int:
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


class SimBridgeClient(Node):
    """Calls the sim_bridge services and receives its camera topics.

    Args:
        node_name: name of this client node.
        namespace: namespace of the camera topics (the service names are absolute).
    """

    def __init__(self, node_name: str = "joyai_sim_bridge_client", namespace: str = ""):
        super().__init__(node_name, namespace=namespace)
        from joyai_interfaces.srv import SimPick, SimPlace, SimReset

        self._srv_types = {"reset": SimReset, "pick": SimPick, "place": SimPlace}
        self._service_clients = {"reset": self.create_client(SimReset, SIM_RESET_SERVICE),
                         "pick": self.create_client(SimPick, SIM_PICK_SERVICE),
                         "place": self.create_client(SimPlace, SIM_PLACE_SERVICE)}
        self._latest: dict[str, Any] = {}
        for key, msg_type in FRAME_TYPES.items():
            self.create_subscription(msg_type, TOPIC_DEFAULTS[f"{key}_topic"], self._store(key),
                                     FRAME_QOS)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self)

    def _store(self, key: str):
        def callback(msg: Any) -> None:
            self._latest[key] = msg
        return callback

    def wait_until_ready(self, timeout_s: float = 10.0) -> None:
        """Blocks until the three services are available.

        Raises:
            RequestTimeoutError: they did not appear within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        for client in self._service_clients.values():
            if not client.wait_for_service(timeout_sec=max(0.0, deadline - time.monotonic())):
                raise RequestTimeoutError(f"{client.srv_name} not available after {timeout_s} s")

    # -- services ---------------------------------------------------------------------------------
    def reset(self, seed: int | None = None, timeout_s: float = 30.0) -> Any:
        """Starts a new episode; returns the raw ``SimReset`` response (check ``success``)."""
        return self._call("reset", self._srv_types["reset"].Request(seed=-1 if seed is None else int(seed)), timeout_s)

    def pick(self, object_id: int, timeout_s: float = 30.0) -> Any:
        """Picks the object with this segmentation id; returns the raw ``SimPick`` response."""
        return self._call("pick", self._srv_types["pick"].Request(object_id=int(object_id)), timeout_s)

    def place(self, position: Sequence[float], timeout_s: float = 30.0) -> Any:
        """Places the held object's bottom centre at ``position`` (world, m); returns the ``SimPlace`` response."""
        request = self._srv_types["place"].Request()
        request.position.x, request.position.y, request.position.z = (float(v) for v in position)
        return self._call("place", request, timeout_s)

    def _call(self, name: str, request: Any, timeout_s: float) -> Any:
        future = self._service_clients[name].call_async(request)
        self._executor.spin_until_future_complete(future, timeout_sec=timeout_s)
        if not future.done():
            self._service_clients[name].remove_pending_request(future)
            raise RequestTimeoutError(f"no answer from {self._service_clients[name].srv_name} within {timeout_s} s")
        return future.result()

    # -- camera -----------------------------------------------------------------------------------
    def frame_messages(self, after: Any = None, timeout_s: float = 10.0) -> dict[str, Any]:
        """The five messages of one frame stamped at or after ``after`` (a ``builtin_interfaces/Time``).

        Raises:
            RequestTimeoutError: no complete frame that new within ``timeout_s``.
        """
        wanted = 0 if after is None else _nanoseconds(after)
        deadline = time.monotonic() + timeout_s
        while True:
            latest = dict(self._latest)
            if len(latest) == len(FRAME_TYPES):
                stamps = {_nanoseconds(msg.header.stamp) for msg in latest.values()}
                if len(stamps) == 1 and stamps.pop() >= wanted:
                    return latest
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise RequestTimeoutError(f"no complete camera frame from the sim bridge within {timeout_s} s "
                                          f"(received: {sorted(latest)})")
            self._executor.spin_once(timeout_sec=min(0.05, remaining))

    def observation(self, after: Any = None, timeout_s: float = 10.0) -> dict[str, np.ndarray]:
        """A frame as the env's observation dict: rgb, depth, segmentation, intrinsics, cam_to_world.

        The arrays are views of the received messages (zero-copy) except the int32 segmentation.
        """
        msgs = self.frame_messages(after, timeout_s)
        rgb = conversions.rgb_from_image(msgs["rgb"])
        height, width = rgb.shape[:2]
        return {"rgb": rgb, "depth": conversions.depth_from_image(msgs["depth"]),
                "segmentation": conversions.segmentation_from_image(msgs["segmentation"]),
                "intrinsics": conversions.intrinsics_from_camera_info(msgs["camera_info"], width, height),
                "cam_to_world": conversions.pose_to_matrix(msgs["camera_pose"].pose)}

    def destroy_node(self) -> None:
        self._executor.remove_node(self)
        self._executor.shutdown()
        super().destroy_node()


def objects_from_response(response: Any) -> list[dict[str, Any]]:
    """A service response's ground-truth objects in the env's ``info["objects"]`` form."""
    return [{"id": int(o.id), "name": o.name, "color": o.color, "shape": o.shape,
             "position": [o.centroid.x, o.centroid.y, o.centroid.z], "size": [o.extent.x, o.extent.y, o.extent.z],
             "yaw": math.atan2(o.obb_rotation[3], o.obb_rotation[0])}
            for o in response.objects]


def calibration_from_response(response: Any) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{camera name: (cam_to_world 4x4, intrinsics 3x3)}`` from a ``SimReset`` response.

    Raises:
        InvalidInputError: the response's camera arrays do not line up.
    """
    names, infos, values = list(response.camera_names), list(response.camera_infos), list(response.cam_to_world)
    if len(infos) != len(names) or len(values) != 16 * len(names):
        raise InvalidInputError("camera_infos/cam_to_world", f"one CameraInfo and 16 values per camera "
                                f"({len(names)} names)", f"{len(infos)} infos, {len(values)} values")
    return {name: (np.array(values[16 * i:16 * (i + 1)], dtype=np.float64).reshape(4, 4),
                   np.asarray(info.k, dtype=np.float64).reshape(3, 3))
            for i, (name, info) in enumerate(zip(names, infos))}


class RosSimEnv:
    """``joyai/TabletopSpatial-v0`` (primitive actions) whose simulator runs behind the sim_bridge node.

    ``reset``/``step`` return what the in-process env returns, except that observations come from the
    camera topics (no ``robot_state``) and ``info["objects"]`` has no ``yaw``. Invalid actions raise
    :class:`InvalidInputError`; primitives the simulator refuses set ``info["action_error"]``, as in
    process. ``camera_pose(name)`` gives the calibration of the env's named cameras, as the bridge sent
    it with the last reset (a robot reads its own calibration the same way).

    Args:
        width, height: image size; a bridge this env starts uses it, a running one must match it.
        camera: observation camera of a bridge this env starts.
        start_bridge: "auto" starts ``python -m ros_nodes.nodes.sim_bridge`` when no bridge answers within
            ``wait_s``; True always starts one; False only connects.
        timeout_s: per-call timeout.

    Raises:
        InvalidInputError: the running bridge publishes another image size.
        RequestTimeoutError: no bridge answered (and none could be started) within ``timeout_s``.
    """

    metadata = {"render_modes": []}

    def __init__(self, width: int = 640, height: int = 480, camera: str = "front",
                 start_bridge: bool | str = "auto", timeout_s: float = 60.0, wait_s: float = 5.0):
        import rclpy

        os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        self._owns_context = not rclpy.ok()
        if self._owns_context:
            rclpy.init()
        self.width, self.height, self.camera, self.timeout_s = int(width), int(height), camera, timeout_s
        self.client = SimBridgeClient("joyai_ros_sim_env")
        self._process: subprocess.Popen | None = None
        if start_bridge is True or (start_bridge == "auto" and not self._ready(wait_s)):
            self._process = start_node("ros_nodes.nodes.sim_bridge", ["-p", f"width:={self.width}",
                                                                      "-p", f"height:={self.height}",
                                                                      "-p", f"camera:={camera}"])
        self._instruction, self._target, self._success, self._objects = "", {}, False, []
        self._cameras: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        try:
            if self._process is not None:
                self._wait_for_started_bridge(timeout_s)
            self._observation(None)  # a bridge that was already running must publish our image size
        except Exception:
            self.close()
            raise

    def _wait_for_started_bridge(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while not self._ready(0.5):
            if self._process.poll() is not None:
                raise BackendUnavailableError(f"the sim bridge this env started exited with code "
                                              f"{self._process.returncode}; see its output above")
            if time.monotonic() > deadline:
                raise RequestTimeoutError(f"the sim bridge did not come up within {timeout_s} s")

    def _ready(self, wait_s: float) -> bool:
        try:
            self.client.wait_until_ready(timeout_s=wait_s)
            return True
        except RequestTimeoutError:
            return False

    @property
    def unwrapped(self) -> "RosSimEnv":
        return self

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Starts a new episode on the bridge; returns (observation, info) like the in-process env.

        Raises:
            InvalidInputError: the bridge refused the seed.
            RequestTimeoutError: no answer or no frame within ``timeout_s``.
        """
        response = self.client.reset(seed, timeout_s=self.timeout_s)
        if not response.success:
            raise error_from_result(response)
        self._instruction, self._success = response.instruction, False
        self._objects = objects_from_response(response)
        self._cameras = calibration_from_response(response)
        self._target = {"pick_id": response.target_pick_id, "pick_name": response.target_pick_name,
                        "place_id": response.target_place_id, "place_name": response.target_place_name,
                        "template": response.target_template, "relation": response.target_relation or None,
                        "reference": response.target_reference or None, "viewpoint": response.target_viewpoint}
        return self._observation(response.stamp), self._info(self._objects)

    def step(self, action: Mapping[str, Any]) -> tuple[dict, float, bool, bool, dict]:
        """Runs one primitive on the bridge: 0 no-op, 1 pick ``object_id``, 2 place at ``position``.

        Raises:
            InvalidInputError: the action is malformed, or the bridge refused one of its fields.
        """
        if not isinstance(action, Mapping) or "primitive" not in action:
            raise InvalidInputError("action", "a dict with keys 'primitive', 'object_id', 'position'",
                                    type(action).__name__)
        primitive = int(action["primitive"])
        if primitive == PICK:
            response = self.client.pick(int(action["object_id"]), timeout_s=self.timeout_s)
        elif primitive == PLACE:
            response = self.client.place(np.asarray(action["position"], dtype=np.float64), timeout_s=self.timeout_s)
        elif primitive == NOOP:  # the scene rests between primitives: the latest frame is the outcome
            return self._observation(None), float(self._success), self._success, False, self._info(self._objects)
        else:
            raise InvalidInputError("action.primitive", f"{NOOP} (no-op), {PICK} (pick) or {PLACE} (place)", primitive)
        if not response.success and response.error_type != ACTION_ERROR:
            raise error_from_result(response)  # e.g. InvalidInputError("object_id: expected ...")
        self._success, self._objects = bool(response.task_success), objects_from_response(response)
        info = self._info(self._objects, response.error if response.error_type == ACTION_ERROR else None)
        return self._observation(response.stamp), float(self._success), self._success, False, info

    def _info(self, objects: list[dict], action_error: str | None = None) -> dict[str, Any]:
        return {"objects": objects, "instruction": self._instruction, "target": dict(self._target),
                "success": self._success, "action_error": action_error}

    def _observation(self, after: Any) -> dict[str, np.ndarray]:
        obs = self.client.observation(after, timeout_s=self.timeout_s)
        if obs["rgb"].shape[:2] != (self.height, self.width):
            raise InvalidInputError("width/height", f"the bridge's image size {self.width}x{self.height}",
                                    f"{obs['rgb'].shape[1]}x{obs['rgb'].shape[0]}")
        return obs

    def camera_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(cam_to_world 4x4, intrinsics 3x3) of a named camera of the simulator at this image size.

        Raises:
            InvalidInputError: no camera of that name (or no reset yet: the calibration comes with it).
        """
        if name not in self._cameras:
            raise InvalidInputError("camera", f"one of {sorted(self._cameras)} (the bridge's cameras, sent with "
                                    "each reset)", repr(name))
        cam_to_world, intrinsics = self._cameras[name]
        return cam_to_world.copy(), intrinsics.copy()

    def close(self) -> None:
        """Destroys the client; stops the bridge if this env started it."""
        close_client(self.client, self._process, self._owns_context)
        self._process = None
