"""The node's current scene for RViz: a ``visualization_msgs/MarkerArray`` and, optionally, the lifted cloud.

After a request is answered about a scene the node had not drawn yet (an observe, a new ``use_latest``
frame, an edit, a ``scene_id`` other than the last one) the node publishes a MarkerArray: a DELETEALL
(so stale boxes vanish), then :func:`joyai_embodied.drawing.scene_shapes` (each object's oriented box and a
``"<name> #<id>"`` label, the observing camera's frustum) filled into rclpy messages; every imagined view
of that scene adds its camera's frustum (``imagined 1``, ``imagined 2``... the last
:data:`MAX_IMAGINED_CAMERAS`). With ``publish_cloud`` it also publishes ``sensor_msgs/PointCloud2`` of the
observation's lifted cloud (x, y, z + packed rgb, world frame; every 4th pixel each way) when the
observed frame changes. The recorders' MCAP markers come from the same shapes, so both look alike.

Messages are built and published by one worker thread, off the request path, and only the newest pending
state is drawn: a camera streaming frames never queues a backlog, and a ``use_latest`` query on an
unchanged frame costs one comparison here. Publishers are reliable and transient-local with depth 1, so
RViz (or any subscriber) that starts later still gets the current scene.

Parameters (read-only, declared by every world-model node): ``publish_markers`` (true), ``publish_cloud``
(false), ``markers_topic`` (``joyai/scene_markers``), ``cloud_topic`` (``joyai/scene_cloud``), ``world_frame``
(``world``: the frame id of every message; RViz's Fixed Frame). In ``joyai-embodied ros`` both nodes share
one publisher, made with the first node's (``spatial_reasoning_node``) parameters.
"""

from __future__ import annotations

import threading
from array import array
from typing import Any, Sequence

from geometry_msgs.msg import Point, Vector3
from rcl_interfaces.msg import ParameterDescriptor, ParameterType
from rclpy.node import Node
from sensor_msgs.msg import PointCloud2, PointField
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from joyai_embodied import drawing
from joyai_embodied.types import Scene

from .. import conversions
from ..topics import SCENE_CLOUD_TOPIC, SCENE_MARKERS_TOPIC, SCENE_QOS

#: Imagined cameras drawn per scene (the newest): as many views as one ``with_imagination`` reply may hold.
MAX_IMAGINED_CAMERAS = 16
#: drawing.Shape kinds -> Marker types.
MARKER_TYPES = {drawing.BOX: Marker.CUBE, drawing.TEXT: Marker.TEXT_VIEW_FACING, drawing.LINES: Marker.LINE_LIST}
PARAMETER_DEFAULTS = {"publish_markers": True, "publish_cloud": False, "markers_topic": SCENE_MARKERS_TOPIC,
                      "cloud_topic": SCENE_CLOUD_TOPIC, "world_frame": "world"}
_DESCRIPTIONS = {
    "publish_markers": "publish a visualization_msgs/MarkerArray of the current scene (boxes, names, cameras)",
    "publish_cloud": "publish the current observation's lifted cloud as sensor_msgs/PointCloud2 (xyz + rgb)",
    "markers_topic": "topic of the scene MarkerArray", "cloud_topic": "topic of the lifted PointCloud2",
    "world_frame": "frame_id of the markers and the cloud (RViz's Fixed Frame)",
}


def declare_parameters(node: Node) -> dict[str, Any]:
    """Declares the publishing parameters (read-only) on ``node``; returns their values."""
    for name, default in PARAMETER_DEFAULTS.items():
        kind = ParameterType.PARAMETER_BOOL if isinstance(default, bool) else ParameterType.PARAMETER_STRING
        node.declare_parameter(name, default, ParameterDescriptor(type=kind, read_only=True,
                                                                  description=_DESCRIPTIONS[name]))
    return {name: node.get_parameter(name).value for name in PARAMETER_DEFAULTS}


def shape_to_marker(shape: drawing.Shape, header: Header) -> Marker:
    """The rclpy Marker of one :class:`joyai_embodied.drawing.Shape`."""
    msg = Marker(header=header, ns=shape.namespace, id=int(shape.id), type=MARKER_TYPES[shape.kind],
                 action=Marker.ADD, text=shape.text)
    msg.pose = conversions.matrix_to_pose(shape.pose)
    msg.scale = Vector3(x=float(shape.scale[0]), y=float(shape.scale[1]), z=float(shape.scale[2]))
    msg.color = ColorRGBA(r=float(shape.rgb[0]), g=float(shape.rgb[1]), b=float(shape.rgb[2]), a=float(shape.alpha))
    msg.points = [Point(x=float(p[0]), y=float(p[1]), z=float(p[2])) for p in shape.points]
    return msg


def scene_marker_array(scene: Scene, header: Header, imagined_cameras: Sequence[tuple[str, Any]] = ()) -> MarkerArray:
    """MarkerArray of a scene: a DELETEALL first (RViz keeps old ids otherwise), then its shapes."""
    markers = [Marker(header=header, action=Marker.DELETEALL)]
    markers += [shape_to_marker(shape, header) for shape in drawing.scene_shapes(scene, imagined_cameras)]
    return MarkerArray(markers=markers)


def cloud_message(scene: Scene, header: Header) -> PointCloud2:
    """PointCloud2 of the scene's observation lifted to world points (x, y, z float32 + packed rgb)."""
    points, colors = drawing.lift_point_cloud(scene.observation)
    data = array("B")
    data.frombytes(drawing.pack_cloud(points, colors).tobytes())
    fields = [PointField(name=name, offset=offset, datatype=kind, count=1) for name, offset, kind in drawing.CLOUD_FIELDS]
    return PointCloud2(header=header, height=1, width=len(points), fields=fields, is_bigendian=False,
                       point_step=drawing.CLOUD_POINT_STEP, row_step=drawing.CLOUD_POINT_STEP * len(points),
                       data=data, is_dense=True)


class ScenePublisher:
    """Publishes the scene a node last answered about (see the module docstring).

    Args:
        node: the node that owns the publishers; its publishing parameters are declared here.
    """

    def __init__(self, node: Node):
        self._node = node
        values = declare_parameters(node)
        self.frame_id = str(values["world_frame"])
        self._markers = node.create_publisher(MarkerArray, values["markers_topic"], SCENE_QOS) \
            if values["publish_markers"] else None
        self._cloud = node.create_publisher(PointCloud2, values["cloud_topic"], SCENE_QOS) \
            if values["publish_cloud"] else None
        self._condition = threading.Condition()
        self._handle: str | None = None
        self._scene: Scene | None = None
        self._cameras: list[tuple[str, Any]] = []
        self._imagined = 0  # imagined views of the current scene so far (their labels' numbers)
        self._pending: tuple[Scene, tuple, Any] | None = None
        self._closed = False
        self._worker = None
        if self.enabled:
            self._worker = threading.Thread(target=self._run, name="scene-publisher", daemon=True)
            self._worker.start()

    @classmethod
    def shared(cls, holder: Any, node: Node) -> "ScenePublisher":
        """The publisher kept on ``holder.scene_publisher`` (the process's SharedModel), made on ``node`` if none.

        Every node still declares the publishing parameters (so ``ros2 param list`` is the same on each);
        only the first node's values take effect.
        """
        if holder.scene_publisher is None:
            holder.scene_publisher = cls(node)
        else:
            declare_parameters(node)
        return holder.scene_publisher

    @property
    def enabled(self) -> bool:
        return self._markers is not None or self._cloud is not None

    @property
    def topics(self) -> list[str]:
        """The resolved names of the topics published (markers first), e.g. ``["/joyai/scene_markers"]``."""
        return [publisher.topic_name for publisher in (self._markers, self._cloud) if publisher is not None]

    def show(self, handle: str, scene: Scene, imagined: Sequence[Any] = ()) -> None:
        """Draws ``scene`` (and the cameras of ``imagined`` views) unless it is what was drawn last.

        Args:
            handle: the scene's handle (a new handle starts a new drawing: its imagined cameras reset).
            scene: the scene answered about.
            imagined: ImaginedViews (or CameraPoses) imagined from it in this request.
        """
        if not self.enabled:
            return
        with self._condition:
            if handle == self._handle and scene is self._scene and not imagined:
                return  # unchanged: the use_latest / scene_id fast path ends here
            if handle != self._handle:
                self._handle, self._cameras, self._imagined = handle, [], 0
            for camera in imagined:
                self._imagined += 1
                self._cameras.append((f"imagined {self._imagined}", camera))
            del self._cameras[:-MAX_IMAGINED_CAMERAS]
            self._scene = scene
            header = Header(stamp=self._node.get_clock().now().to_msg(), frame_id=self.frame_id)
            self._pending = (scene, tuple(self._cameras), header)
            self._condition.notify()

    def _run(self) -> None:
        clouded = None  # the observation whose cloud went out last: edits and imagines keep the observed frame
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._pending is not None or self._closed)
                if self._closed:
                    return
                (scene, cameras, header), self._pending = self._pending, None
            try:
                if self._markers is not None:
                    self._markers.publish(scene_marker_array(scene, header, cameras))
                if self._cloud is not None and scene.observation is not None and scene.observation is not clouded:
                    self._cloud.publish(cloud_message(scene, header))
                    clouded = scene.observation
            except Exception as exc:  # a drawing bug must not stop the node answering; say so and go on
                self._node.get_logger().error(f"publishing the scene failed: {exc!r}")

    def close(self, timeout_s: float = 1.0) -> None:
        """Stops the worker (a message being published finishes first)."""
        with self._condition:
            self._closed = True
            self._condition.notify()
        if self._worker is not None and self._worker is not threading.current_thread():
            self._worker.join(timeout_s)
