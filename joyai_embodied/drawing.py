"""What a viewer draws for a scene, independent of any message library: boxes, labels, frusta, the cloud.

One definition of the markers' look, filled into messages by two converters: the recorders' rosbags
classes (:func:`joyai_embodied.recording.ros_messages.scene_markers`, for MCAP files) and the ROS nodes'
rclpy classes (:mod:`ros_nodes.nodes.scene_publisher`, for RViz). Both draw exactly :func:`scene_shapes`:

- each object as a box (``namespace`` "objects", id ``2 i``: the oriented box, centre = the object's
  centroid) and a label above it (``"objects/labels"``, id ``2 i + 1``, text ``"<name> #<id>"``);
- each camera as a frustum (``"cameras"``, id ``2 k``: line segments) and its label (``"cameras/labels"``,
  id ``2 k + 1``): k = 0 is the observing camera, 1, 2... the imagined ones;
- the lifted point cloud (:func:`lift_point_cloud`) packed as x, y, z float32 and the ``rgb`` float32
  field RViz expects (:func:`pack_cloud`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from .camera import unproject
from .types import Observation, Scene, SceneObject

#: Frustum depth drawn for a camera (metres): long enough to see its direction, short enough not to clutter.
FRUSTUM_DEPTH_M = 0.15
#: Frustum line width (metres).
FRUSTUM_LINE_M = 0.004
#: Text labels float this far above an object's box top (metres) so they do not hide the box.
LABEL_LIFT_M = 0.03
#: Label text height in RViz/Foxglove (metres).
LABEL_HEIGHT_M = 0.025
#: Box opacity: see-through enough to show the points inside.
BOX_ALPHA = 0.6
OBSERVER_RGB = (1.0, 0.8, 0.1)
IMAGINED_RGB = (0.3, 0.8, 1.0)
LABEL_RGB = (1.0, 1.0, 1.0)

#: Colour words -> RGB in [0, 1] for boxes (the simulator's palette words; unknown words get grey).
COLOR_WORDS = {
    "red": (0.9, 0.15, 0.15), "green": (0.2, 0.75, 0.25), "blue": (0.2, 0.35, 0.9), "yellow": (0.95, 0.85, 0.2),
    "orange": (1.0, 0.55, 0.1), "purple": (0.6, 0.3, 0.8), "white": (0.95, 0.95, 0.95), "black": (0.15, 0.15, 0.15),
    "gray": (0.55, 0.55, 0.55), "grey": (0.55, 0.55, 0.55), "pink": (1.0, 0.5, 0.7), "brown": (0.55, 0.35, 0.2),
    "cyan": (0.2, 0.8, 0.85),
}
DEFAULT_COLOR = (0.6, 0.6, 0.6)

#: Every CLOUD_STRIDE-th pixel each way is lifted: 640x480 -> 19k points, enough to see the scene in 3D while
#: keeping a recording or a topic small.
CLOUD_STRIDE = 4
#: Depth beyond this is background (the simulator reads 20 m for empty space): not drawn in the cloud.
CLOUD_MAX_DEPTH_M = 5.0
#: PointCloud2 fields ``(name, byte offset, datatype)``: datatype 7 is FLOAT32; ``rgb`` is the 0x00RRGGBB
#: integer's bits read as a float, the packing RViz and Foxglove decode.
CLOUD_FIELDS = (("x", 0, 7), ("y", 4, 7), ("z", 8, 7), ("rgb", 12, 7))
CLOUD_POINT_STEP = 16

BOX, TEXT, LINES = "box", "text", "lines"


@dataclass(frozen=True)
class Shape:
    """One marker, library-neutral.

    Attributes:
        kind: ``"box"`` (pose = centre and orientation, scale = full extent), ``"text"`` (pose = position,
            scale[2] = text height) or ``"lines"`` (``points`` pairs are segments, scale[0] = line width).
        namespace, id: the marker's identity; re-drawing the same pair replaces it.
        pose: 4x4 world transform.
        scale: three sizes (metres), meaning by kind as above.
        rgb, alpha: colour in [0, 1].
        points: (N, 3) world points of a ``"lines"`` shape; empty otherwise.
        text: the label of a ``"text"`` shape.
    """

    kind: str
    namespace: str
    id: int
    pose: np.ndarray
    scale: tuple[float, float, float]
    rgb: tuple[float, float, float]
    alpha: float = 1.0
    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 3)))
    text: str = ""


def object_color(obj: SceneObject) -> tuple[float, float, float]:
    """RGB in [0, 1] for an object, from its colour word (or the first word of its name)."""
    word = obj.color or obj.name.split(" ")[0]
    return COLOR_WORDS.get(word.lower(), DEFAULT_COLOR)


def object_label(obj: SceneObject) -> str:
    """The text drawn above an object: its name and id, e.g. ``"red cube #3"``."""
    return f"{obj.name} #{obj.id}"


def _translation(xyz: Sequence[float]) -> np.ndarray:
    matrix = np.eye(4)
    matrix[:3, 3] = xyz
    return matrix


def has_geometry(obj: SceneObject) -> bool:
    """True when an object's box is finite (a backend without usable depth knows names only: NaN boxes)."""
    return bool(np.all(np.isfinite(obj.centroid)) and np.all(np.isfinite(obj.extent))
                and np.all(np.isfinite(obj.obb_rotation)))


def object_shapes(objects: Sequence[SceneObject], namespace: str = "objects", alpha: float = BOX_ALPHA,
                  first_id: int = 0) -> list[Shape]:
    """A box (the object's oriented box) and a label (its name and id) per object, in that order.

    Objects without a finite box are left out (viewers refuse NaN poses); the others keep the ids of
    their index in ``objects``.
    """
    shapes = []
    for index, obj in enumerate(objects):
        if not has_geometry(obj):
            continue
        box = np.eye(4)
        box[:3, :3], box[:3, 3] = obj.obb_rotation, obj.centroid
        shapes.append(Shape(BOX, namespace, first_id + 2 * index, box, tuple(float(v) for v in obj.extent),
                            object_color(obj), alpha))
        above = _translation([obj.centroid[0], obj.centroid[1], obj.top_z + LABEL_LIFT_M])
        shapes.append(Shape(TEXT, namespace + "/labels", first_id + 2 * index + 1, above, (0.0, 0.0, LABEL_HEIGHT_M),
                            LABEL_RGB, text=object_label(obj)))
    return shapes


def frustum_lines(intrinsics: np.ndarray, cam_to_world: np.ndarray, width: int, height: int,
                  depth: float = FRUSTUM_DEPTH_M) -> np.ndarray:
    """(16, 3) world points, pairs of which are the segments of a pinhole frustum: 4 rays and the far rectangle."""
    k_inv = np.linalg.inv(np.asarray(intrinsics, dtype=np.float64))
    corners_px = np.array([[0, 0, 1], [width, 0, 1], [width, height, 1], [0, height, 1]], dtype=np.float64)
    corners = (corners_px @ k_inv.T) * depth
    cam_to_world = np.asarray(cam_to_world, dtype=np.float64)
    world = corners @ cam_to_world[:3, :3].T + cam_to_world[:3, 3]
    origin = cam_to_world[:3, 3]
    lines = []
    for i in range(4):
        lines += [origin, world[i], world[i], world[(i + 1) % 4]]
    return np.asarray(lines)


def camera_shapes(intrinsics: np.ndarray, cam_to_world: np.ndarray, width: int, height: int, index: int,
                  label: str, rgb: Sequence[float] = OBSERVER_RGB) -> list[Shape]:
    """A frustum and a text label for one (observing or imagined) camera; ``index`` 0 is the observer."""
    position = np.asarray(cam_to_world, dtype=np.float64)[:3, 3]
    rgb = tuple(float(v) for v in rgb)
    return [Shape(LINES, "cameras", 2 * index, np.eye(4), (FRUSTUM_LINE_M, 0.0, 0.0), rgb,
                  points=frustum_lines(intrinsics, cam_to_world, width, height)),
            Shape(TEXT, "cameras/labels", 2 * index + 1, _translation(position + [0.0, 0.0, LABEL_LIFT_M]),
                  (0.0, 0.0, LABEL_HEIGHT_M), rgb, text=label)]


def camera_size(camera: Any) -> tuple[int, int]:
    """(width, height) of a CameraPose or an ImaginedView (whose size is its image's)."""
    if hasattr(camera, "rgb"):
        return int(camera.rgb.shape[1]), int(camera.rgb.shape[0])
    return int(camera.width), int(camera.height)


def scene_shapes(scene: Scene, imagined_cameras: Sequence[tuple[str, Any]] = ()) -> list[Shape]:
    """Everything drawn for a scene: its objects, the observing camera, then each imagined camera.

    Args:
        scene: the scene whose objects are drawn (world frame).
        imagined_cameras: ``(label, CameraPose or ImaginedView)`` pairs, drawn as frusta 1, 2...

    Returns:
        The shapes; a converter puts a delete-all marker before them so stale ids vanish.
    """
    shapes = object_shapes(scene.objects)
    obs = scene.observation
    if obs is not None:
        shapes += camera_shapes(obs.intrinsics, obs.cam_to_world, obs.width, obs.height, 0, "observer")
    for index, (label, camera) in enumerate(imagined_cameras, start=1):
        width, height = camera_size(camera)
        shapes += camera_shapes(camera.intrinsics, camera.cam_to_world, width, height, index, label, IMAGINED_RGB)
    return shapes


def lift_point_cloud(obs: Observation, stride: int = CLOUD_STRIDE) -> tuple[np.ndarray, np.ndarray]:
    """World points (N, 3) float32 and their colours (N, 3) uint8 from depth + K + pose, every ``stride`` px.

    Returns empty arrays when the observation has no depth.
    """
    if obs.depth is None:
        return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
    depth = obs.depth[::stride, ::stride]
    k = obs.intrinsics.copy()
    k[:2] /= stride  # the subsampled image's pinhole: pixel (i, j) is original pixel (stride i, stride j)
    points = unproject(depth, k, obs.cam_to_world)
    valid = np.isfinite(depth) & (depth > 0) & (depth < CLOUD_MAX_DEPTH_M)
    return points[valid].astype(np.float32), obs.rgb[::stride, ::stride][valid]


def pack_cloud(points: np.ndarray, colors: np.ndarray) -> np.ndarray:
    """The PointCloud2 ``data`` bytes (uint8, N x :data:`CLOUD_POINT_STEP`) of points and their RGB colours."""
    points = np.asarray(points, dtype="<f4").reshape(-1, 3)
    colors = np.asarray(colors, dtype=np.uint8).reshape(-1, 3)
    packed = np.zeros(len(points), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")])
    packed["x"], packed["y"], packed["z"] = points[:, 0], points[:, 1], points[:, 2]
    packed["rgb"] = (colors[:, 0].astype(np.uint32) << 16) | (colors[:, 1].astype(np.uint32) << 8) | colors[:, 2]
    return packed.view(np.uint8).reshape(-1)


def unpack_cloud(data: Any, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The inverse of :func:`pack_cloud`: (N, 3) float32 points and (N, 3) uint8 colours."""
    packed = np.frombuffer(bytes(data), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")],
                           count=int(count))
    points = np.stack([packed["x"], packed["y"], packed["z"]], axis=1)
    rgb = packed["rgb"]
    colors = np.stack([(rgb >> 16) & 255, (rgb >> 8) & 255, rgb & 255], axis=1).astype(np.uint8)
    return points, colors
