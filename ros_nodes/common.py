"""What both world-model nodes share: model parameters and loading, and the latest-frame cache.

The nodes are thin: a request becomes an :class:`~joyai_embodied.types.Observation` (from its own
fields, or from the frames last received on the camera topics when ``use_latest`` is set), the
:class:`~joyai_embodied.WorldModel` does the work, and the result goes back into the response.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from joyai_embodied import WorldModel
from joyai_embodied.errors import InvalidInputError
from joyai_embodied.types import Observation

from . import conversions

#: Topic parameters and their defaults. Relative names, so a node namespace moves them all at once.
TOPIC_DEFAULTS = {
    "rgb_topic": "camera/color/image_raw",
    "depth_topic": "camera/depth/image_raw",
    "camera_info_topic": "camera/color/camera_info",
    "segmentation_topic": "camera/segmentation/image_raw",
    "camera_pose_topic": "camera/pose",
}


@dataclass
class SharedModel:
    """A loaded WorldModel and the lock that serialises calls into it.

    Both nodes of one process share one instance: the model loads once, and backends (GPU models in
    particular) are not assumed to be thread-safe, while the executor runs callbacks concurrently.
    """

    world_model: WorldModel
    lock: threading.Lock = field(default_factory=threading.Lock)


def declare_model_parameters(node: Node) -> None:
    """Declares the parameters that choose and configure the world model (read once, at start)."""
    string = ParameterType.PARAMETER_STRING
    node.declare_parameter("preset", "geometric", ParameterDescriptor(
        type=string, read_only=True,
        description="model preset name, alias or YAML path (models/*.yaml), or a backend name"))
    node.declare_parameter("device", "", ParameterDescriptor(
        type=string, read_only=True, description="device override for learned backends ('cuda', 'cpu'); "
                                                 "empty keeps the preset's"))
    node.declare_parameter("address", "", ParameterDescriptor(
        type=string, read_only=True, description="model server address for the 'remote' backend, "
                                                 "e.g. tcp://127.0.0.1:5555; empty keeps the preset's"))


def load_model(node: Node) -> SharedModel:
    """Loads the WorldModel named by the node's ``preset``/``device``/``address`` parameters."""
    from .launcher import register_plugin

    preset = register_plugin(node.get_parameter("preset").value)
    overrides = {name: node.get_parameter(name).value or None for name in ("device", "address")}
    node.get_logger().info(f"loading world model {preset!r}")
    return SharedModel(WorldModel.load(preset, **overrides))


def answer_value(value: Any) -> tuple[float, str]:
    """``(value, unit)`` for a response's float64 ``value`` field from an Answer's value (NaN when none)."""
    if isinstance(value, (bool, np.bool_)):
        return float(value), "bool"
    if isinstance(value, (int, float, np.number)):
        return float(value), ""
    return float("nan"), ""


class LatestFrames:
    """Keeps the last message of each camera topic so that requests can say ``use_latest``.

    The camera pose comes from a ``geometry_msgs/PoseStamped`` topic (cam_to_world of the optical
    frame: x right, y down, z forward) or, for a fixed camera, from the ``camera_pose`` parameter
    ``[x, y, z, qx, qy, qz, qw]``; a received pose message wins over the parameter.
    """

    def __init__(self, node: Node, callback_group: Any = None):
        self._node = node
        self._lock = threading.Lock()
        self._latest: dict[str, Any] = {}
        string = ParameterType.PARAMETER_STRING
        for name, default in TOPIC_DEFAULTS.items():
            node.declare_parameter(name, default, ParameterDescriptor(
                type=string, read_only=True, description=f"{name.removesuffix('_topic')} topic for use_latest"))
        node.declare_parameter("camera_pose", [0.0] * 7, ParameterDescriptor(
            type=ParameterType.PARAMETER_DOUBLE_ARRAY,
            description="fixed cam_to_world [x, y, z, qx, qy, qz, qw] when no pose topic publishes; "
                        "all zeros = none"))
        node.declare_parameter("max_frame_skew_s", 0.1, ParameterDescriptor(
            type=ParameterType.PARAMETER_DOUBLE,
            description="use_latest refuses rgb/depth/segmentation whose stamps differ by more than this"))
        topics = {"rgb": Image, "depth": Image, "camera_info": CameraInfo, "segmentation": Image,
                  "camera_pose": PoseStamped}
        self.topics = {key: node.get_parameter(f"{key}_topic").value for key in topics}
        for key, msg_type in topics.items():
            node.create_subscription(msg_type, self.topics[key], self._store(key), qos_profile_sensor_data,
                                     callback_group=callback_group)

    def _store(self, key: str):
        def callback(msg: Any) -> None:
            with self._lock:
                self._latest[key] = msg
        return callback

    def observation(self, labels: dict[int, str] | None = None) -> Observation:
        """The Observation of the latest frames.

        Raises:
            InvalidInputError: a required topic has not published yet, or rgb and depth (or
                segmentation) are from different moments.
        """
        with self._lock:
            latest = dict(self._latest)
        for key in ("rgb", "camera_info"):
            if key not in latest:
                raise InvalidInputError("use_latest", f"a message on {self._resolved(key)} first",
                                        "nothing received yet")
        pose = latest["camera_pose"].pose if "camera_pose" in latest else self._pose_parameter()
        rgb = latest["rgb"]
        depth, segmentation = latest.get("depth", Image()), latest.get("segmentation", Image())
        skew_limit = float(self._node.get_parameter("max_frame_skew_s").value)
        for key, other in (("depth", depth), ("segmentation", segmentation)):
            if not conversions.is_empty(other):
                skew = abs(_seconds(rgb.header.stamp) - _seconds(other.header.stamp))
                if skew > skew_limit:
                    raise InvalidInputError(f"use_latest.{key}", f"a frame stamped within {skew_limit} s of rgb",
                                            f"{skew:.3f} s apart")
        return conversions.observation_from_messages(rgb, depth, segmentation, latest["camera_info"], pose, labels)

    def _pose_parameter(self) -> Any:
        values = list(self._node.get_parameter("camera_pose").value)
        if len(values) != 7 or not any(values):
            raise InvalidInputError("use_latest", f"a message on {self._resolved('camera_pose')} or the "
                                    "camera_pose parameter [x, y, z, qx, qy, qz, qw]", "neither is set")
        stamped = PoseStamped()
        p, q = stamped.pose.position, stamped.pose.orientation
        p.x, p.y, p.z, q.x, q.y, q.z, q.w = (float(v) for v in values)
        return stamped.pose

    def _resolved(self, key: str) -> str:
        return self._node.resolve_topic_name(self.topics[key])


def _seconds(stamp: Any) -> float:
    return stamp.sec + stamp.nanosec * 1e-9


def observation_for(request: Any, latest: LatestFrames) -> Observation:
    """The Observation a SpatialQuery request or Imagine goal is about (its own frame or the latest one)."""
    labels = conversions.labels_from_fields(request.label_ids, request.label_names)
    if request.use_latest:
        return latest.observation(labels)
    if conversions.is_empty(request.rgb):
        raise InvalidInputError("rgb", "a non-empty image, or use_latest=true to use the subscribed frames",
                                "an empty image")
    return conversions.observation_from_request(request)
