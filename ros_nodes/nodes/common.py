"""What the world-model nodes share: the one service behind them, model parameters, the latest-frame cache.

The nodes are thin: a request names a scene (``scene_id``), points at the latest camera frames
(``use_latest``) or carries a frame; :class:`SharedModel` hands it to
:class:`joyai_embodied.service.ModelService`, which keeps the scenes by handle (bounded, least recently
used evicted), applies edits and raises ``SceneExpiredError`` for a handle it no longer holds; the
result goes back into the response. Both nodes of one process share one service, so a scene_id from
the spatial query works for the imagine action and back.

A planner asks many questions about one camera frame, so the handle of the scene observed from the
latest frames is kept until a new message arrives on a camera topic (:meth:`LatestFrames.scene`):
``use_latest`` requests on an unchanged frame skip ``observe``.
"""

from __future__ import annotations

import collections
import threading
from dataclasses import dataclass, field
from typing import Any

from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.node import Node
from rclpy.qos import qos_profile_sensor_data
from sensor_msgs.msg import CameraInfo, Image

from joyai_embodied import WorldModel
from joyai_embodied.errors import InvalidInputError, SceneExpiredError
from joyai_embodied.service import ModelService
from joyai_embodied.types import Observation, Scene

from .. import conversions
from ..topics import TOPIC_DEFAULTS
from .runtime import Serving

#: Scenes the nodes keep by default. A 640x480 geometric scene holds ~10 MB (frame + point cloud), so
#: the default bounds the store near 300 MB; ``--max-scenes`` / the ``max_scenes`` parameter change it.
DEFAULT_MAX_SCENES = 32
#: Scenes of the latest frames kept per node: the current one and the one before, so that a request still
#: answering about the previous frame when a new one is observed keeps its scene; older ones are released.
LATEST_SCENES_KEPT = 2


@dataclass
class SharedModel:
    """The service every node of one process calls, and that process's requests in flight.

    The service locks itself (the executor runs callbacks concurrently; backends are not thread-safe).

    Attributes:
        service: the one service layer (scene handles, edits, expiry).
        serving: requests in flight in this process, and the refusal of new ones at shutdown.
        scene_publisher: the process's one :class:`~ros_nodes.nodes.scene_publisher.ScenePublisher` (made by the
            first node that asks, so that both nodes draw one current scene on one topic).
    """

    service: ModelService
    serving: Serving = field(default_factory=Serving)
    scene_publisher: Any = None

    @property
    def world_model(self) -> WorldModel:
        return self.service.world_model

    def observe(self, observation: Observation) -> str:
        """Observes a frame and keeps its scene; returns the scene's handle."""
        return self.service.observe(observation)[0]

    def scene(self, handle: str) -> Scene:
        """The scene kept under ``handle``.

        Raises:
            SceneExpiredError: the service no longer holds it (evicted or from another process).
        """
        return self.service.scene(handle)

    def holds(self, handle: str) -> bool:
        try:
            self.scene(handle)
            return True
        except SceneExpiredError:
            return False


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
    node.declare_parameter("max_scenes", DEFAULT_MAX_SCENES, ParameterDescriptor(
        type=ParameterType.PARAMETER_INTEGER, read_only=True,
        description="scenes kept for scene_id requests (least recently used evicted first)"))


def register_plugin(preset: str) -> str:
    """Registers ``"package.module:Class"`` as a backend (named by the string itself); returns the name."""
    if ":" in preset and not preset.endswith((".yaml", ".yml")) and "/" not in preset:
        from joyai_embodied.backends.base import available_backends, register_backend

        if preset not in available_backends():
            register_backend(preset, preset)
    return preset


def load_model(node: Node, serving: Serving | None = None) -> SharedModel:
    """Loads the WorldModel named by the node's ``preset``/``device``/``address`` parameters, behind a service."""
    preset = register_plugin(node.get_parameter("preset").value)
    overrides = {name: node.get_parameter(name).value or None for name in ("device", "address")}
    node.get_logger().info(f"loading world model {preset!r}")
    service = ModelService(WorldModel.load(preset, **overrides),
                           max_scenes=int(node.get_parameter("max_scenes").value))
    return SharedModel(service, serving or Serving())


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
        # Bumped by every message on any camera topic: the identity of "the latest frames". A counter
        # rather than header stamps, so that a publisher that leaves stamps at zero still invalidates.
        self._generation = 0
        # (key, scene handle) of the last use_latest observe; one entry, since the frames only move forward.
        self._cached: tuple[tuple, str] | None = None
        # Held while observing a frame not yet cached, so that concurrent requests about a new frame
        # observe it once (the others wait, then hit); the model lock serialises observes anyway.
        self._observe_lock = threading.Lock()
        # Handles of the scenes observed here, oldest first: a camera streaming frames would otherwise
        # fill the bounded store and evict the scenes clients observed on purpose.
        self._own: collections.deque[str] = collections.deque()
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
                self._generation += 1
                self._cached = None  # a new frame: drop the old Scene now rather than on the next request
        return callback

    def observation(self, labels: dict[int, str] | None = None) -> Observation:
        """The Observation of the latest frames.

        Args:
            labels: ``{segmentation id: name}`` for the observation, or None.

        Returns:
            The Observation built from the last message of each camera topic.

        Raises:
            InvalidInputError: a required topic has not published yet, or rgb and depth (or
                segmentation) are from different moments.
        """
        latest, _ = self._snapshot()
        pose, _ = self._checked_pose(latest)
        return self._build(latest, pose, labels)

    def scene(self, labels: dict[int, str] | None, model: SharedModel) -> str:
        """The handle of the scene of the latest frames, observed at most once per frame and label set.

        The handle is kept until a message arrives on any camera topic (or the labels, or the
        ``camera_pose`` parameter in use, change); one scene answers concurrent requests. A handle the
        service has evicted meanwhile is observed again. Only the last :data:`LATEST_SCENES_KEPT` scenes
        observed here stay in the store (its scene_id expires two frames later).

        Args:
            labels: ``{segmentation id: name}`` of the request, or None.
            model: the service to observe with (called only on a miss, outside the frame lock, so
                subscriptions keep storing).

        Returns:
            The scene handle.

        Raises:
            InvalidInputError: as :meth:`observation`; and whatever ``observe`` raises (nothing is cached then).
        """
        latest, generation = self._snapshot()
        pose, pose_key = self._checked_pose(latest)
        key = (generation, tuple(sorted(labels.items())) if labels else None, pose_key)
        if (hit := self._lookup(key)) is not None and model.holds(hit):
            return hit
        with self._observe_lock:
            if (hit := self._lookup(key)) is not None and model.holds(hit):  # observed meanwhile by another request
                return hit
            handle = model.observe(self._build(latest, pose, labels))
            with self._lock:
                if self._generation == generation:  # no newer frame arrived while observing
                    self._cached = (key, handle)
            self._own.append(handle)
            while len(self._own) > LATEST_SCENES_KEPT:
                model.service.release([self._own.popleft()])
        return handle

    def _lookup(self, key: tuple) -> str | None:
        with self._lock:
            return self._cached[1] if self._cached is not None and self._cached[0] == key else None

    def _snapshot(self) -> tuple[dict[str, Any], int]:
        with self._lock:
            return dict(self._latest), self._generation

    def _checked_pose(self, latest: dict[str, Any]) -> tuple[Any, tuple | None]:
        """The camera pose to use, and the parameter values it came from (None: from the pose topic).

        Raises:
            InvalidInputError: rgb or camera_info missing, no pose, or the frames' stamps too far apart.
        """
        for key in ("rgb", "camera_info"):
            if key not in latest:
                raise InvalidInputError("use_latest", f"a message on {self._resolved(key)} first",
                                        "nothing received yet")
        if "camera_pose" in latest:
            pose, pose_key = latest["camera_pose"].pose, None
        else:
            pose = self._pose_parameter()
            pose_key = (pose.position.x, pose.position.y, pose.position.z, pose.orientation.x,
                        pose.orientation.y, pose.orientation.z, pose.orientation.w)
        rgb = latest["rgb"]
        skew_limit = float(self._node.get_parameter("max_frame_skew_s").value)
        for key in ("depth", "segmentation"):
            other = latest.get(key)
            if other is not None and not conversions.is_empty(other):
                skew = abs(_seconds(rgb.header.stamp) - _seconds(other.header.stamp))
                if skew > skew_limit:
                    raise InvalidInputError(f"use_latest.{key}", f"a frame stamped within {skew_limit} s of rgb",
                                            f"{skew:.3f} s apart")
        return pose, pose_key

    @staticmethod
    def _build(latest: dict[str, Any], pose: Any, labels: dict[int, str] | None) -> Observation:
        return conversions.observation_from_messages(latest["rgb"], latest.get("depth", Image()),
                                                     latest.get("segmentation", Image()), latest["camera_info"],
                                                     pose, labels)

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


def scene_for(request: Any, latest: LatestFrames, model: SharedModel) -> str:
    """The handle of the scene a SpatialQuery request or Imagine goal is about.

    ``scene_id`` wins; then ``use_latest`` (the cached scene of the subscribed frames, observed once per
    frame); else the request's own frame is observed and kept.

    Raises:
        InvalidInputError: bad or missing frames.
        SceneExpiredError: ``scene_id`` names a scene the service no longer holds.
    """
    if request.scene_id:
        model.scene(request.scene_id)  # raises SceneExpiredError now, before any other work
        return request.scene_id
    labels = conversions.labels_from_fields(request.label_ids, request.label_names)
    if request.use_latest:
        return latest.scene(labels, model)
    if conversions.is_empty(request.rgb):
        raise InvalidInputError("rgb", "a non-empty image, a scene_id, or use_latest=true to use the subscribed "
                                "frames", "an empty image")
    return model.observe(conversions.observation_from_request(request))
