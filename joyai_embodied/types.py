"""Core value types shared by every backend and transport.

Conventions (see README "Conventions"): cameras follow OpenCV (x right, y down, z forward), ``intrinsics``
is a 3x3 K, ``cam_to_world`` a 4x4 rigid transform, world z is up. Depth is metric z-depth in metres,
float32, where 0 or NaN marks an invalid pixel. Images are HxWx3 uint8 RGB; segmentation is HxW int32
instance ids with 0 = background.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import InvalidInputError

#: Largest image accepted anywhere (pixels per side; every Observation, CameraPose and so every transport):
#: larger frames are refused with this limit in the message, not resized silently. The geometric backend's
#: cost grows with the pixel count (see README "Measured": observe time at 640x480 and at this side).
MAX_IMAGE_SIDE = 4096
#: Depth beyond this many metres is taken as a unit mistake (millimetres passed as metres).
MAX_DEPTH_M = 50.0


def _depth_median(depth: np.ndarray, valid: np.ndarray) -> float:
    """Median of the valid depth, from every 4th pixel each way (a unit check needs no exact median).

    A full-frame median costs ~3 ms at 640x480; the subsample gives the same answer to a few millimetres.
    Sparse depth with no valid pixel on the subsampling grid falls back to every valid pixel.
    """
    sample = depth[::4, ::4][valid[::4, ::4]]
    if sample.size == 0:
        sample = depth[valid]
    return float(np.median(sample))


def _describe(array: Any) -> str:
    if isinstance(array, np.ndarray):
        return f"array of shape {array.shape} and dtype {array.dtype}"
    return type(array).__name__


def _as_array(name: str, value: Any) -> np.ndarray:
    if isinstance(value, np.ndarray):
        return value
    try:
        return np.asarray(value)
    except Exception as exc:  # ragged lists and the like
        raise InvalidInputError(name, "an array", type(value).__name__) from exc


def _finite_matrix(name: str, value: Any, size: int) -> np.ndarray:
    """``value`` as a finite float64 ``size`` x ``size`` matrix, or InvalidInputError naming ``name``."""
    matrix = _as_array(name, value)
    if matrix.shape != (size, size) or not np.issubdtype(matrix.dtype, np.number):
        raise InvalidInputError(name, f"a {size}x{size} numeric matrix", _describe(matrix))
    matrix = matrix.astype(np.float64)
    if not np.all(np.isfinite(matrix)):
        raise InvalidInputError(name, "finite values", "NaN or inf")
    return matrix


def validate_intrinsics(value: Any, name: str = "intrinsics") -> np.ndarray:
    """Returns ``value`` as a float64 3x3 pinhole K, or raises InvalidInputError naming ``name``."""
    k = _finite_matrix(name, value, 3)
    if k[0, 0] <= 0 or k[1, 1] <= 0:
        raise InvalidInputError(name, "positive focal lengths fx, fy", f"fx={k[0, 0]}, fy={k[1, 1]}")
    if not np.allclose(k[2], [0.0, 0.0, 1.0]):
        raise InvalidInputError(name, "last row [0, 0, 1]", k[2].tolist())
    return k


def validate_pose(value: Any, name: str = "cam_to_world") -> np.ndarray:
    """Returns ``value`` as a float64 4x4 rigid transform, or raises InvalidInputError naming ``name``."""
    t = _finite_matrix(name, value, 4)
    if not np.allclose(t[3], [0.0, 0.0, 0.0, 1.0], atol=1e-6):
        raise InvalidInputError(name, "last row [0, 0, 0, 1]", t[3].tolist())
    rotation = t[:3, :3]
    if not np.allclose(rotation @ rotation.T, np.eye(3), atol=1e-4) or np.linalg.det(rotation) < 0:
        raise InvalidInputError(name, "a rigid transform (orthonormal rotation with det +1)", "a non-rigid matrix")
    return t


def _validate_image_size(name: str, height: int, width: int) -> None:
    if height < 2 or width < 2:
        raise InvalidInputError(name, "an image at least 2x2 pixels", f"{height}x{width}")
    if height > MAX_IMAGE_SIDE or width > MAX_IMAGE_SIDE:
        raise InvalidInputError(name, f"at most {MAX_IMAGE_SIDE} pixels per side", f"{height}x{width}")


@dataclass(frozen=True)
class CameraPose:
    """A pinhole camera: where it is (``cam_to_world``) and how it images (``intrinsics``, size)."""

    cam_to_world: np.ndarray
    intrinsics: np.ndarray
    width: int
    height: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "cam_to_world", validate_pose(self.cam_to_world, "camera.cam_to_world"))
        object.__setattr__(self, "intrinsics", validate_intrinsics(self.intrinsics, "camera.intrinsics"))
        _validate_image_size("camera", int(self.height), int(self.width))
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))

    @property
    def position(self) -> np.ndarray:
        return self.cam_to_world[:3, 3].copy()

    @property
    def world_to_cam(self) -> np.ndarray:
        """The inverse of ``cam_to_world``; point transforms live in :mod:`joyai_embodied.camera`."""
        return np.linalg.inv(self.cam_to_world)


def _label_id(key: Any) -> int:
    """A labels key as an instance id: an integer, or a string of one (wire formats stringify map keys)."""
    if isinstance(key, (bool, np.bool_)):
        raise InvalidInputError("labels", "integer instance ids as keys", f"key {key!r}")
    if isinstance(key, (int, np.integer)):
        return int(key)
    if isinstance(key, str) and key.strip().lstrip("+-").isdigit():
        return int(key)
    raise InvalidInputError("labels", "integer instance ids as keys", f"key {key!r}")


def _label_name(key: Any, name: Any) -> str:
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(f"labels[{key}]", "a non-empty name", repr(name))
    return name.strip()


@dataclass(frozen=True)
class Observation:
    """One validated RGB-D frame with its camera; the only way sensor data enters a backend.

    Build it with ``Observation(rgb=..., depth=..., intrinsics=..., cam_to_world=...)`` or
    ``Observation.from_dict(env_obs)``. Every field is checked; a bad one raises
    :class:`~joyai_embodied.errors.InvalidInputError` naming it.

    Args:
        rgb: HxWx3 uint8.
        depth: HxW metric z-depth in metres (float32; float64 is converted). 0 or NaN = invalid.
            Optional for backends that do not need it (``joyai-image``); required by ``geometric``.
        intrinsics: 3x3 K.
        cam_to_world: 4x4 rigid camera-to-world transform, OpenCV optical frame.
        segmentation: optional HxW integer instance ids, 0 = background.
        labels: optional ``{instance id: name}``; ids absent from the image are ignored.
    """

    rgb: np.ndarray
    intrinsics: np.ndarray
    cam_to_world: np.ndarray
    depth: np.ndarray | None = None
    segmentation: np.ndarray | None = None
    labels: Mapping[int, str] | None = None

    def __post_init__(self) -> None:
        rgb = _as_array("rgb", self.rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise InvalidInputError("rgb", "an HxWx3 image", _describe(rgb))
        if rgb.dtype != np.uint8:
            raise InvalidInputError("rgb", "dtype uint8 (0-255 RGB)", _describe(rgb))
        height, width = rgb.shape[:2]
        _validate_image_size("rgb", height, width)
        object.__setattr__(self, "rgb", rgb)
        object.__setattr__(self, "intrinsics", validate_intrinsics(self.intrinsics))
        object.__setattr__(self, "cam_to_world", validate_pose(self.cam_to_world))

        if self.depth is not None:
            depth = _as_array("depth", self.depth)
            if depth.shape != (height, width):
                raise InvalidInputError("depth", f"shape {(height, width)} matching rgb", _describe(depth))
            if not np.issubdtype(depth.dtype, np.floating):
                raise InvalidInputError("depth", "float metres (convert uint16 millimetres with / 1000)",
                                        _describe(depth))
            depth = depth.astype(np.float32, copy=False)
            valid = np.isfinite(depth) & (depth > 0)
            if not valid.any():
                raise InvalidInputError("depth", "at least one valid (finite, > 0) pixel", "none valid")
            median = _depth_median(depth, valid)
            if median > MAX_DEPTH_M:
                raise InvalidInputError("depth", f"metres (median under {MAX_DEPTH_M} m)",
                                        f"median {median:.1f}; millimetres?")
            # NaN < 0 is False; only -inf needs telling apart from a negative number (it is "invalid").
            if np.any(depth < 0) and np.any(np.isfinite(depth) & (depth < 0)):
                raise InvalidInputError("depth", "non-negative values", "negative depth")
            object.__setattr__(self, "depth", depth)

        if self.segmentation is not None:
            seg = _as_array("segmentation", self.segmentation)
            if seg.shape != (height, width):
                raise InvalidInputError("segmentation", f"shape {(height, width)} matching rgb", _describe(seg))
            if not np.issubdtype(seg.dtype, np.integer):
                raise InvalidInputError("segmentation", "integer instance ids", _describe(seg))
            object.__setattr__(self, "segmentation", seg.astype(np.int32, copy=False))

        if self.labels is not None:
            if not isinstance(self.labels, Mapping):
                raise InvalidInputError("labels", "a mapping {instance id: name}", type(self.labels).__name__)
            labels = {}
            for key, name in self.labels.items():
                labels[_label_id(key)] = _label_name(key, name)
            object.__setattr__(self, "labels", labels)

    @property
    def width(self) -> int:
        return int(self.rgb.shape[1])

    @property
    def height(self) -> int:
        return int(self.rgb.shape[0])

    @property
    def camera(self) -> CameraPose:
        return CameraPose(self.cam_to_world, self.intrinsics, self.width, self.height)

    @classmethod
    def from_dict(cls, obs: Mapping[str, Any], labels: Mapping[int, str] | None = None) -> "Observation":
        """Builds an Observation from a ``TabletopSpatial`` observation dict (extra keys are ignored)."""
        if not isinstance(obs, Mapping):
            raise InvalidInputError("observation", "a mapping with rgb, depth, intrinsics, cam_to_world",
                                    type(obs).__name__)
        for key in ("rgb", "intrinsics", "cam_to_world"):
            if key not in obs:
                raise InvalidInputError(key, "a value (missing from the observation)")
        return cls(rgb=obs["rgb"], depth=obs.get("depth"), intrinsics=obs["intrinsics"],
                   cam_to_world=obs["cam_to_world"], segmentation=obs.get("segmentation"),
                   labels=labels if labels is not None else obs.get("labels"))


@dataclass(frozen=True)
class SceneObject:
    """An object the backend found in a scene. Geometry is in the world frame (metres).

    Attributes:
        id: instance id (the segmentation id when one was given).
        name: unique name within the scene, e.g. ``"red cube"``.
        centroid: (3,) centre of the object's estimated 3D box.
        extent: (3,) size of its oriented box along the box axes (x, y, z; z is world-up).
        obb_rotation: (3, 3) rotation of the box (columns = box axes in world).
        pixel_count: pixels of the object seen in the source image.
        visible_fraction: estimate in [0, 1] of how much of the object the camera sees.
        color: colour word, or "" when unknown.
        shape: shape word ("cube", "cylinder", "sphere", "plate", ...), or "" when unknown.
    """

    id: int
    name: str
    centroid: np.ndarray
    extent: np.ndarray
    obb_rotation: np.ndarray = field(default_factory=lambda: np.eye(3))
    pixel_count: int = 0
    visible_fraction: float = 1.0
    color: str = ""
    shape: str = ""

    @property
    def bottom_z(self) -> float:
        return float(self.centroid[2] - self.extent[2] / 2)

    @property
    def top_z(self) -> float:
        return float(self.centroid[2] + self.extent[2] / 2)


@dataclass
class Scene:
    """What a backend understood from an observation: its objects plus backend-private state.

    ``data`` belongs to the backend that built the scene (a point cloud, a server handle, images);
    callers use ``objects``, ``observation`` and the WorldModel methods. ``edits`` lists the edits
    applied since the observation, oldest first.
    """

    observation: Observation
    objects: list[SceneObject]
    pivot: np.ndarray
    backend: str
    data: Any = None
    edits: tuple = ()

    def object_names(self) -> list[str]:
        return [o.name for o in self.objects]

    def find(self, name: str) -> SceneObject:
        """Returns the object called ``name`` (exact, then unique partial match such as ``"cube"``).

        Raises:
            UnknownObjectError: no object matches; the message lists the known names.
            AmbiguousObjectError: a partial name matches several objects.
        """
        from .errors import AmbiguousObjectError, UnknownObjectError

        wanted = " ".join(str(name).lower().split())
        for obj in self.objects:
            if obj.name.lower() == wanted:
                return obj
        words = set(wanted.split())
        matches = [o for o in self.objects if words and words <= set(o.name.lower().split())]
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise AmbiguousObjectError(name, [m.name for m in matches])
        raise UnknownObjectError(name, self.object_names())

    def resolve(self, ref: "str | int | SceneObject", field: str = "object") -> SceneObject:
        """The object ``ref`` means: a name (as :meth:`find`), an instance id, or a SceneObject of this scene.

        Two objects of one category ("black bowl 1", "black bowl 2") can always be told apart by id or by
        the SceneObject itself, whatever their names say.

        Raises:
            UnknownObjectError: no object has that name or id (the message lists the scene's names).
            InvalidInputError: ``ref`` is neither a string, an integer nor a SceneObject (named ``field``).
        """
        from .errors import UnknownObjectError

        if isinstance(ref, SceneObject):
            ref = ref.id
        if isinstance(ref, (int, np.integer)) and not isinstance(ref, bool):
            for obj in self.objects:
                if obj.id == int(ref):
                    return obj
            raise UnknownObjectError(f"id {int(ref)}", [f"{o.name} (id {o.id})" for o in self.objects])
        if isinstance(ref, str) and ref.strip():
            return self.find(ref)
        raise InvalidInputError(field, "an object name, an instance id or a SceneObject", repr(ref)[:80])


#: What names an object in ``relation`` and edits: its name, its instance id, or the SceneObject itself.
ObjectRef = str | int | SceneObject


@dataclass(frozen=True)
class Relation:
    """Spatial relation of ``subject`` to ``reference`` (``subject`` is left_of ``reference``...).

    ``frame`` says which frame the directions use: ``"camera"`` (left/right along the camera's x,
    in front/behind by distance from the camera, above/below along world z), ``"world"``
    (left/right along world -y/+y... see the backend docs), or ``"camera:<name>"`` for another viewpoint.

    The signed offsets are subject minus reference between the two objects' centres, in metres, in the
    same frame as the booleans; NaN when the backend does not know them (no depth):

    - ``lateral_m``: along the viewer's x axis, positive = subject to the right of the reference;
    - ``depth_m``: along the viewer's optical axis, positive = subject farther from the viewer;
    - ``vertical_m``: along world z, positive = subject higher.

    :func:`joyai_embodied.spatial.direction_offset` turns them into "how far left of" and the like.
    """

    subject: str
    reference: str
    left_of: bool
    right_of: bool
    in_front_of: bool
    behind: bool
    above: bool
    below: bool
    distance_m: float
    frame: str
    confidence: float = 1.0
    on_top_of: bool = False
    raw_text: str | None = None
    lateral_m: float = float("nan")
    depth_m: float = float("nan")
    vertical_m: float = float("nan")


@dataclass(frozen=True)
class Answer:
    """An answer to a question.

    Attributes:
        text: the answer in words.
        value: the number, boolean or list of names the answer is about (None when it has none).
        unit: unit of ``value`` ("m", "count", "bool", "names", ""...).
        confidence: in [0, 1]; 0 when the question could not be answered.
        supported: False when the question was outside what the backend can answer.
        frame: frame of any directions in the answer.
        views: imagined views used as evidence (``answer_with_imagination``).
        raw_text: the model's raw output, for learned backends.
    """

    text: str
    value: Any = None
    unit: str = ""
    confidence: float = 1.0
    supported: bool = True
    frame: str = "camera"
    views: tuple = ()
    raw_text: str | None = None


@dataclass(frozen=True)
class CameraMove:
    """Orbit the camera about the scene's pivot (the centre of the objects on the table).

    Args:
        yaw_deg: rotation about the world z axis through the pivot; positive turns the camera
            counter-clockwise seen from above (the camera moves to its right... see README figure).
        pitch_deg: rotation about the camera's x axis through the pivot; positive looks more from
            above (the camera rises), negative from lower down.
        zoom: > 1 moves the camera closer to the pivot (distance / zoom), < 1 further away.
    """

    yaw_deg: float = 0.0
    pitch_deg: float = 0.0
    zoom: float = 1.0

    def __post_init__(self) -> None:
        for name in ("yaw_deg", "pitch_deg", "zoom"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
                raise InvalidInputError(f"move.{name}", "a number", type(value).__name__)
            if not np.isfinite(value):
                raise InvalidInputError(f"move.{name}", "a finite number", value)
            object.__setattr__(self, name, float(value))
        if not 0.1 <= self.zoom <= 10.0:
            raise InvalidInputError("move.zoom", "a factor in [0.1, 10]", self.zoom)
        if not -89.0 <= self.pitch_deg <= 89.0:
            raise InvalidInputError("move.pitch_deg", "an angle in [-89, 89] degrees", self.pitch_deg)


def _name_field(name: Any, field_name: str) -> "ObjectRef":
    """An object reference: a non-empty name (stripped), an instance id, or a SceneObject."""
    if isinstance(name, SceneObject) or (isinstance(name, (int, np.integer)) and not isinstance(name, bool)):
        return name if isinstance(name, SceneObject) else int(name)
    if not isinstance(name, str) or not name.strip():
        raise InvalidInputError(field_name, "a non-empty object name, an instance id or a SceneObject", repr(name))
    return name.strip()


@dataclass(frozen=True)
class MoveObject:
    """Move ``object`` so that the centre of its base sits at world point ``to`` (x, y, z)."""

    object: "ObjectRef"
    to: Sequence[float]

    def __post_init__(self) -> None:
        object.__setattr__(self, "object", _name_field(self.object, "edit.object"))
        target = np.asarray(self.to, dtype=np.float64) if not isinstance(self.to, str) else np.zeros(0)
        if target.shape != (3,) or not np.all(np.isfinite(target)):
            raise InvalidInputError("edit.to", "three finite world coordinates [x, y, z]", self.to)
        object.__setattr__(self, "to", tuple(float(v) for v in target))


@dataclass(frozen=True)
class RotateObject:
    """Rotate ``object`` about the world z axis through its centre by ``yaw_deg`` degrees."""

    object: "ObjectRef"
    yaw_deg: float

    def __post_init__(self) -> None:
        object.__setattr__(self, "object", _name_field(self.object, "edit.object"))
        if isinstance(self.yaw_deg, bool) or not isinstance(self.yaw_deg, (int, float, np.number)) \
                or not np.isfinite(self.yaw_deg):
            raise InvalidInputError("edit.yaw_deg", "a finite angle in degrees", self.yaw_deg)
        object.__setattr__(self, "yaw_deg", float(self.yaw_deg))


Edit = MoveObject | RotateObject


@dataclass(frozen=True)
class ImaginedView:
    """A view the world model imagined.

    Attributes:
        rgb: HxWx3 uint8.
        depth: HxW float32 metres, NaN where unknown; None when the backend has no depth source.
        segmentation: HxW int32 instance ids (0 = background or unknown); None when unavailable.
        intrinsics: 3x3 K of the imagined camera.
        cam_to_world: 4x4 pose of the imagined camera.
        valid_mask: HxW bool, True where the content is supported by evidence rather than filled in.
        source: what produced it ("geometric", "joyai-image", ...) and ``prompt`` for learned backends.
    """

    rgb: np.ndarray
    depth: np.ndarray | None
    segmentation: np.ndarray | None
    intrinsics: np.ndarray
    cam_to_world: np.ndarray
    valid_mask: np.ndarray
    source: str = ""
    prompt: str | None = None

    @property
    def camera(self) -> CameraPose:
        return CameraPose(self.cam_to_world, self.intrinsics, self.rgb.shape[1], self.rgb.shape[0])

    def as_observation(self, labels: Mapping[int, str] | None = None) -> Observation:
        """The view as an Observation, so it can be observed again (the imagine -> understand loop)."""
        depth = None
        if self.depth is not None:
            depth = np.where(self.valid_mask, self.depth, np.nan).astype(np.float32)
        return Observation(rgb=self.rgb, depth=depth, intrinsics=self.intrinsics,
                           cam_to_world=self.cam_to_world, segmentation=self.segmentation, labels=labels)
