"""Core types <-> ROS 2-typed messages (kilted definitions), built with the ``rosbags`` type system.

No serializer is written here: message classes come from ``rosbags.typesys`` (the ROS 2 kilted store) and
``TYPESTORE.serialize_cdr`` / ``deserialize_cdr`` turn them into CDR bytes. The functions build
``sensor_msgs/Image``, ``CameraInfo``, ``PointCloud2``, ``visualization_msgs/MarkerArray`` (scene boxes,
names, camera frusta), ``geometry_msgs/PoseStamped``, ``tf2_msgs/TFMessage`` and ``std_msgs/String``, and
read images back into numpy for replay.

``scene_markers(scene, stamp, frame_id)`` is the function a ROS node publishes for RViz (issue 14 item 3).
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np

from ..errors import InvalidInputError
from ..types import Scene, SceneObject

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

#: Frustum depth drawn for a camera (metres): long enough to see its direction, short enough not to clutter.
FRUSTUM_DEPTH_M = 0.15
#: Text labels float this far above an object's box top (metres) so they do not hide the box.
LABEL_LIFT_M = 0.03
#: Label text height in RViz/Foxglove (metres).
LABEL_HEIGHT_M = 0.025

#: Colour words -> RGB in [0, 1] for boxes (the simulator's palette words; unknown words get grey).
COLOR_WORDS = {
    "red": (0.9, 0.15, 0.15), "green": (0.2, 0.75, 0.25), "blue": (0.2, 0.35, 0.9), "yellow": (0.95, 0.85, 0.2),
    "orange": (1.0, 0.55, 0.1), "purple": (0.6, 0.3, 0.8), "white": (0.95, 0.95, 0.95), "black": (0.15, 0.15, 0.15),
    "gray": (0.55, 0.55, 0.55), "grey": (0.55, 0.55, 0.55), "pink": (1.0, 0.5, 0.7), "brown": (0.55, 0.35, 0.2),
    "cyan": (0.2, 0.8, 0.85),
}
DEFAULT_COLOR = (0.6, 0.6, 0.6)

#: Image encodings replay understands, and the numpy dtype / channels of each.
ENCODINGS = {
    "rgb8": (np.uint8, 3), "bgr8": (np.uint8, 3), "rgba8": (np.uint8, 4), "bgra8": (np.uint8, 4),
    "mono8": (np.uint8, 1), "32FC1": (np.float32, 1), "16UC1": (np.uint16, 1), "mono16": (np.uint16, 1),
    "32SC1": (np.int32, 1), "8UC1": (np.uint8, 1),
}


def object_color(obj: SceneObject) -> tuple[float, float, float]:
    """RGB in [0, 1] for an object, from its colour word (or the first word of its name)."""
    word = obj.color or obj.name.split(" ")[0]
    return COLOR_WORDS.get(word.lower(), DEFAULT_COLOR)


# ----------------------------------------------------------------------------------- basic pieces
def stamp(ns: int) -> Any:
    """builtin_interfaces/Time from integer nanoseconds."""
    return T["builtin_interfaces/msg/Time"](sec=int(ns) // 1_000_000_000, nanosec=int(ns) % 1_000_000_000)


def stamp_ns(msg_stamp: Any) -> int:
    """Integer nanoseconds from a builtin_interfaces/Time."""
    return int(msg_stamp.sec) * 1_000_000_000 + int(msg_stamp.nanosec)


def header(ns: int, frame_id: str) -> Any:
    return T["std_msgs/msg/Header"](stamp=stamp(ns), frame_id=frame_id)


def quaternion_from_matrix(rotation: np.ndarray) -> np.ndarray:
    """(x, y, z, w) unit quaternion of a 3x3 rotation matrix (Shepperd's method: stable for every angle)."""
    m = np.asarray(rotation, dtype=np.float64)
    trace = np.trace(m)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    q = np.asarray(q)
    return q / np.linalg.norm(q)


def matrix_from_quaternion(q: Sequence[float]) -> np.ndarray:
    """3x3 rotation matrix of an (x, y, z, w) quaternion (normalised first)."""
    x, y, z, w = np.asarray(q, dtype=np.float64) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


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
    points = np.asarray(points, dtype="<f4").reshape(-1, 3)
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    packed = np.zeros(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")])
    packed["x"], packed["y"], packed["z"] = points[:, 0], points[:, 1], points[:, 2]
    packed["rgb"] = (colors[:, 0].astype(np.uint32) << 16) | (colors[:, 1].astype(np.uint32) << 8) | colors[:, 2]
    field = T["sensor_msgs/msg/PointField"]
    fields = [field(name=name, offset=4 * i, datatype=7, count=1) for i, name in enumerate(("x", "y", "z", "rgb"))]
    return T[POINT_CLOUD](header=header(ns, frame_id), height=1, width=len(points), fields=fields,
                          is_bigendian=False, point_step=16, row_step=16 * len(points),
                          data=packed.view(np.uint8).reshape(-1), is_dense=True)


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


def object_markers(objects: Sequence[SceneObject], ns: int, frame_id: str = "world", namespace: str = "objects",
                   alpha: float = 0.6, first_id: int = 0) -> list[Any]:
    """A CUBE (the object's oriented box) and a TEXT_VIEW_FACING (its name and id) per object."""
    markers = []
    for index, obj in enumerate(objects):
        matrix = np.eye(4)
        matrix[:3, :3], matrix[:3, 3] = obj.obb_rotation, obj.centroid
        rgb = object_color(obj)
        markers.append(marker(ns, frame_id, namespace, first_id + 2 * index, 1, matrix, obj.extent, rgb, alpha))
        above = np.eye(4)
        above[:3, 3] = [obj.centroid[0], obj.centroid[1], obj.top_z + LABEL_LIFT_M]
        markers.append(marker(ns, frame_id, namespace + "/labels", first_id + 2 * index + 1, 9, above,
                              (0.0, 0.0, LABEL_HEIGHT_M), (1.0, 1.0, 1.0), 1.0, text=f"{obj.name} #{obj.id}"))
    return markers


def frustum_lines(intrinsics: np.ndarray, cam_to_world: np.ndarray, width: int, height: int,
                  depth: float = FRUSTUM_DEPTH_M) -> list[np.ndarray]:
    """World-frame line segments (pairs of points) of a pinhole frustum: 4 rays and the far rectangle."""
    k_inv = np.linalg.inv(np.asarray(intrinsics, dtype=np.float64))
    corners_px = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], dtype=np.float64)
    corners = (corners_px @ k_inv.T) * depth
    world = corners @ cam_to_world[:3, :3].T + cam_to_world[:3, 3]
    origin = cam_to_world[:3, 3]
    lines = []
    for i in range(4):
        lines += [origin, world[i], world[i], world[(i + 1) % 4]]
    return lines


def camera_marker(intrinsics: np.ndarray, cam_to_world: np.ndarray, width: int, height: int, ns: int,
                  marker_id: int, label: str, frame_id: str = "world",
                  rgb: Sequence[float] = (1.0, 0.8, 0.1)) -> list[Any]:
    """A LINE_LIST frustum plus a text label for one (observing or imagined) camera."""
    lines = frustum_lines(intrinsics, cam_to_world, width, height)
    text_pose = np.eye(4)
    text_pose[:3, 3] = cam_to_world[:3, 3] + [0.0, 0.0, LABEL_LIFT_M]
    return [marker(ns, frame_id, "cameras", 2 * marker_id, 5, scale=(0.004, 0.0, 0.0), rgb=rgb, points=lines),
            marker(ns, frame_id, "cameras/labels", 2 * marker_id + 1, 9, text_pose, (0.0, 0.0, LABEL_HEIGHT_M),
                   rgb, 1.0, text=label)]


def scene_markers(scene: Scene, stamp_ns_: int, frame_id: str = "world",
                  imagined_cameras: Sequence[tuple[str, Any]] = ()) -> Any:
    """visualization_msgs/MarkerArray of a scene: a DELETEALL, each object's box and name, the cameras.

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
    markers += object_markers(scene.objects, stamp_ns_, frame_id)
    obs = scene.observation
    markers += camera_marker(obs.intrinsics, obs.cam_to_world, obs.width, obs.height, stamp_ns_, 0, "observer",
                             frame_id)
    for index, (label, camera) in enumerate(imagined_cameras, start=1):
        width = camera.rgb.shape[1] if hasattr(camera, "rgb") else camera.width
        height = camera.rgb.shape[0] if hasattr(camera, "rgb") else camera.height
        markers += camera_marker(camera.intrinsics, camera.cam_to_world, width, height, stamp_ns_, index, label,
                                 frame_id, rgb=(0.3, 0.8, 1.0))
    return T[MARKER_ARRAY](markers=markers)
