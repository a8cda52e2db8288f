"""Core types <-> ROS 2-typed messages (kilted definitions), built with the ``rosbags`` type system.

No serializer is written here: message classes come from ``rosbags.typesys`` (the ROS 2 kilted store) and
``TYPESTORE.serialize_cdr`` / ``deserialize_cdr`` turn them into CDR bytes. The functions build
``sensor_msgs/Image``, ``CameraInfo``, ``PointCloud2``, ``visualization_msgs/MarkerArray`` (scene boxes,
names, camera frusta), ``geometry_msgs/PoseStamped``, ``tf2_msgs/TFMessage`` and ``std_msgs/String``, and
read images back into numpy for replay.

The markers' look (boxes, labels, frusta, cloud layout) is defined once in :mod:`joyai_embodied.drawing`;
``scene_markers(scene, stamp, frame_id)`` fills it into rosbags classes, as ``ros_nodes/nodes/scene_publisher.py``
fills the same shapes into rclpy classes for RViz (issue 14 item 3).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from .. import drawing
from ..drawing import (COLOR_WORDS, DEFAULT_COLOR, FRUSTUM_DEPTH_M, LABEL_HEIGHT_M, LABEL_LIFT_M,  # noqa: F401
                       frustum_lines, object_color)
from ..errors import InvalidInputError
from ..types import Scene, SceneObject
from .rotations import matrix_from_quaternion, quaternion_from_matrix  # noqa: F401  (re-exported)

try:
    from rosbags.typesys import Stores, get_typestore
except ImportError as exc:  # pragma: no cover - the `record` extra is missing
    raise ImportError("recording to MCAP needs the 'record' extra: pip install -e .[record]") from exc

#: The ROS 2 distribution whose message definitions are written (the project's ROS wheels are kilted).
TYPESTORE = get_typestore(Stores.ROS2_KILTED)
T = TYPESTORE.types

IMAGE = "sensor_msgs/msg/Image"
CAMERA_INFO = "sensor_msgs/msg/CameraInfo"
POINT_CLOUD = "sensor_msgs/msg/PointCloud2"
MARKER_ARRAY = "visualization_msgs/msg/MarkerArray"
POSE_STAMPED = "geometry_msgs/msg/PoseStamped"
TF_MESSAGE = "tf2_msgs/msg/TFMessage"
STRING = "std_msgs/msg/String"

#: What the markers look like (boxes, labels, frusta, colours, the cloud layout) is defined once, in
#: joyai_embodied/drawing.py; the functions below fill its shapes into rosbags message classes, as
#: ros_nodes/nodes/scene_publisher.py fills them into rclpy classes for RViz.

#: Image encodings replay understands, and the numpy dtype / channels of each.
ENCODINGS = {
    "rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "rgba8": (np.uint8, 4), "bgra8": (np.uint8, 4),
    "mono8": (np.uint8, 1), "32FC1": (np.float32, 1), "16UC1": (np.uint16, 1), "mono16": (np.uint16, 1),
    "32SC1": (np.int32, 1), "8UC1": (np.uint8, 1),
}


# ----------------------------------------------------------------------------------- basic pieces
def stamp(ns: int) -> Any:
    """builtin_interfaces/Time from integer nanoseconds."""
    return T["builtin_interfaces/msg/Time"](sec=int(ns) // 1_000_000_000, nanosec=int(ns) % 1_000_000_000)


def stamp_ns(msg_stamp: Any) -> int:
    """Integer nanoseconds from a builtin_interfaces/Time."""
    return int(msg_stamp.sec) * 1_000_000_000 + int(msg_stamp.nanosec)


def header(ns: int, frame_id: str) -> Any:
    return T["std_msgs/msg/Header"](stamp=stamp(ns), frame_id=frame_id)


def pose(matrix: np.ndarray) -> Any:
    """geometry_msgs/Pose of a 4x4 transform."""
    q = quaternion_from_matrix(matrix[:3, :3])
    position = T["geometry_msgs/msg/Point"](x=float(matrix[0, 3]), y=float(matrix[1, 3]), z=float(matrix[2, 3]))
    return T["geometry_msgs/msg/Pose"](position=position, orientation=T["geometry_msgs/msg/Quaternion"](
        x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])))


def pose_matrix(msg_pose: Any) -> np.ndarray:
    """4x4 transform of a geometry_msgs/Pose."""
    o, p = msg_pose.orientation, msg_pose.position
    matrix = np.eye(4)
    matrix[:3, :3] = matrix_from_quaternion([o.x, o.y, o.z, o.w])
    matrix[:3, 3] = [p.x, p.y, p.z]
    return matrix


def pose_stamped(matrix: np.ndarray, ns: int, frame_id: str = "world") -> Any:
    """geometry_msgs/PoseStamped of a 4x4 pose in ``frame_id``."""
    return T[POSE_STAMPED](header=header(ns, frame_id), pose=pose(matrix))


def transform_message(matrix: np.ndarray, ns: int, parent: str, child: str) -> Any:
    """tf2_msgs/TFMessage with one transform ``parent`` -> ``child`` (Foxglove places frames from /tf)."""
    q = quaternion_from_matrix(matrix[:3, :3])
    transform = T["geometry_msgs/msg/Transform"](
        translation=T["geometry_msgs/msg/Vector3"](x=float(matrix[0, 3]), y=float(matrix[1, 3]), z=float(matrix[2, 3])),
        rotation=T["geometry_msgs/msg/Quaternion"](x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3])))
    stamped = T["geometry_msgs/msg/TransformStamped"](header=header(ns, parent), child_frame_id=child,
                                                      transform=transform)
    return T[TF_MESSAGE](transforms=[stamped])


def string(text: str) -> Any:
    return T[STRING](data=str(text))


# ----------------------------------------------------------------------------------- images
def image(array: np.ndarray, ns: int, frame_id: str, encoding: str | None = None) -> Any:
    """sensor_msgs/Image of an HxWx3 uint8 RGB, HxW float32 depth (32FC1) or HxW int32 ids (32SC1)."""
    array = np.ascontiguousarray(array)
    if encoding is None:
        if array.ndim == 3 and array.shape[2] == 3 and array.dtype == np.uint8:
            encoding = "rgb8"
        elif array.ndim == 2 and np.issubdtype(array.dtype, np.floating):
            encoding, array = "32FC1", np.ascontiguousarray(array, dtype="<f4")
        elif array.ndim == 2 and np.issubdtype(array.dtype, np.integer):
            encoding, array = "32SC1", np.ascontiguousarray(array, dtype="<i4")
        else:
            raise InvalidInputError("image", "HxWx3 uint8, HxW float or HxW integer", f"{array.shape} {array.dtype}")
    height, width = array.shape[:2]
    return T[IMAGE](header=header(ns, frame_id), height=height, width=width, encoding=encoding, is_bigendian=0,
                    step=int(array.strides[0]), data=array.reshape(-1).view(np.uint8))


def image_to_array(msg: Any, topic: str, millimetres: bool = True) -> np.ndarray:
    """numpy array of a sensor_msgs/Image: HxWx3 uint8 RGB for colour encodings, HxW for single channels.

    With ``millimetres``, 16-bit images (``16UC1``/``mono16``) are depth in millimetres, as ROS drivers write
    it, and come back as float32 metres; without, they are returned as they are (instance ids).

    Raises:
        InvalidInputError: an unknown encoding, big-endian data or a data size that does not match
            height x step; the field is the topic.
    """
    encoding = str(msg.encoding)
    if encoding not in ENCODINGS:
        raise InvalidInputError(topic, f"an image encoding in {sorted(ENCODINGS)}", repr(encoding))
    if msg.is_bigendian:
        raise InvalidInputError(topic, "little-endian image data", "is_bigendian=1")
    dtype, channels = ENCODINGS[encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row = width * channels * np.dtype(dtype).itemsize
    data = np.asarray(msg.data, dtype=np.uint8)
    if height < 1 or step < row or data.size < height * step:
        raise InvalidInputError(topic, f"{height} rows of {step} bytes ({encoding}, width {width})",
                                f"{data.size} bytes")
    rows = data[:height * step].reshape(height, step)[:, :row]
    array = np.ascontiguousarray(rows).view(dtype).reshape(height, width, channels) if channels > 1 else \
        np.ascontiguousarray(rows).view(dtype).reshape(height, width)
    if encoding in ("bgr8", "bgra8"):
        array = array[..., 2::-1]
    elif encoding == "rgba8":
        array = array[..., :3]
    if millimetres and encoding in ("16UC1", "mono16"):
        array = array.astype(np.float32) / 1000.0
    return np.ascontiguousarray(array)


def camera_info(intrinsics: np.ndarray, width: int, height: int, ns: int, frame_id: str) -> Any:
    """sensor_msgs/CameraInfo of a pinhole camera without distortion."""
    k = np.asarray(intrinsics, dtype=np.float64)
    p = np.zeros((3, 4))
    p[:, :3] = k
    roi = T["sensor_msgs/msg/RegionOfInterest"](x_offset=0, y_offset=0, height=0, width=0, do_rectify=False)
    return T[CAMERA_INFO](header=header(ns, frame_id), height=int(height), width=int(width),
                          distortion_model="plumb_bob", d=np.zeros(5), k=k.reshape(-1).copy(),
                          r=np.eye(3).reshape(-1), p=p.reshape(-1), binning_x=0, binning_y=0, roi=roi)


def point_cloud(points: np.ndarray, colors: np.ndarray, ns: int, frame_id: str = "world") -> Any:
    """sensor_msgs/PointCloud2 with x, y, z float32 and the packed ``rgb`` float32 field RViz expects."""
    data = drawing.pack_cloud(points, colors)
    count = len(data) // drawing.CLOUD_POINT_STEP
    field = T["sensor_msgs/msg/PointField"]
    fields = [field(name=name, offset=offset, datatype=kind, count=1) for name, offset, kind in drawing.CLOUD_FIELDS]
    return T[POINT_CLOUD](header=header(ns, frame_id), height=1, width=count, fields=fields,
                          is_bigendian=False, point_step=drawing.CLOUD_POINT_STEP,
                          row_step=drawing.CLOUD_POINT_STEP * count, data=data, is_dense=True)


# ----------------------------------------------------------------------------------- markers
def _color(rgb: Sequence[float], alpha: float = 1.0) -> Any:
    return T["std_msgs/msg/ColorRGBA"](r=float(rgb[0]), g=float(rgb[1]), b=float(rgb[2]), a=float(alpha))


def _point(xyz: Sequence[float]) -> Any:
    return T["geometry_msgs/msg/Point"](x=float(xyz[0]), y=float(xyz[1]), z=float(xyz[2]))


def marker(ns: int, frame_id: str, namespace: str, marker_id: int, kind: int, matrix: np.ndarray | None = None,
           scale: Sequence[float] = (1.0, 1.0, 1.0), rgb: Sequence[float] = DEFAULT_COLOR, alpha: float = 1.0,
           points: Iterable[Sequence[float]] = (), text: str = "") -> Any:
    """One visualization_msgs/Marker (every field filled, as the CDR layout needs them all)."""
    marker_cls = T["visualization_msgs/msg/Marker"]
    return marker_cls(
        header=header(ns, frame_id), ns=namespace, id=int(marker_id), type=int(kind), action=marker_cls.ADD,
        pose=pose(np.eye(4) if matrix is None else matrix),
        scale=T["geometry_msgs/msg/Vector3"](x=float(scale[0]), y=float(scale[1]), z=float(scale[2])),
        color=_color(rgb, alpha), lifetime=T["builtin_interfaces/msg/Duration"](sec=0, nanosec=0),
        frame_locked=False, points=[_point(p) for p in points], colors=[], texture_resource="",
        texture=T["sensor_msgs/msg/CompressedImage"](header=header(0, ""), format="", data=np.zeros(0, np.uint8)),
        uv_coordinates=[], text=text, mesh_resource="",
        mesh_file=T["visualization_msgs/msg/MeshFile"](filename="", data=np.zeros(0, np.uint8)),
        mesh_use_embedded_materials=False)


def delete_all(ns: int, frame_id: str) -> Any:
    msg = marker(ns, frame_id, "", 0, 0)
    msg.action = T["visualization_msgs/msg/Marker"].DELETEALL
    return msg


#: drawing.Shape kinds -> visualization_msgs/Marker types (CUBE, TEXT_VIEW_FACING, LINE_LIST).
MARKER_TYPES = {drawing.BOX: 1, drawing.TEXT: 9, drawing.LINES: 5}


def shape_marker(shape: drawing.Shape, ns: int, frame_id: str) -> Any:
    """The visualization_msgs/Marker of one library-neutral :class:`~joyai_embodied.drawing.Shape`."""
    return marker(ns, frame_id, shape.namespace, shape.id, MARKER_TYPES[shape.kind], shape.pose, shape.scale,
                  shape.rgb, shape.alpha, points=shape.points, text=shape.text)


def object_markers(objects: Sequence[SceneObject], ns: int, frame_id: str = "world", namespace: str = "objects",
                   alpha: float = drawing.BOX_ALPHA, first_id: int = 0) -> list[Any]:
    """A CUBE (the object's oriented box) and a TEXT_VIEW_FACING (its name and id) per object."""
    return [shape_marker(shape, ns, frame_id)
            for shape in drawing.object_shapes(objects, namespace, alpha, first_id)]


def camera_marker(intrinsics: np.ndarray, cam_to_world: np.ndarray, width: int, height: int, ns: int,
                  marker_id: int, label: str, frame_id: str = "world",
                  rgb: Sequence[float] = drawing.OBSERVER_RGB) -> list[Any]:
    """A LINE_LIST frustum plus a text label for one (observing or imagined) camera."""
    return [shape_marker(shape, ns, frame_id)
            for shape in drawing.camera_shapes(intrinsics, cam_to_world, width, height, marker_id, label, rgb)]


def scene_markers(scene: Scene, stamp_ns_: int, frame_id: str = "world",
                  imagined_cameras: Sequence[tuple[str, Any]] = ()) -> Any:
    """visualization_msgs/MarkerArray of a scene: a DELETEALL, then :func:`joyai_embodied.drawing.scene_shapes`.

    Args:
        scene: the scene whose objects are drawn (world frame).
        stamp_ns_: header stamp, integer nanoseconds.
        frame_id: the world frame's name in the receiver's TF tree.
        imagined_cameras: ``(label, CameraPose or ImaginedView)`` pairs to draw as frusta beside the
            observing camera.

    Returns:
        A ``visualization_msgs/msg/MarkerArray`` (rosbags class; ``TYPESTORE.serialize_cdr`` makes bytes).
    """
    markers = [delete_all(stamp_ns_, frame_id)]  # RViz keeps old ids otherwise
    markers += [shape_marker(shape, stamp_ns_, frame_id) for shape in drawing.scene_shapes(scene, imagined_cameras)]
    return T[MARKER_ARRAY](markers=markers)
