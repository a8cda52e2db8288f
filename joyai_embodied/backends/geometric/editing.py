"""Object edits on a :class:`SceneCloud`: move or rotate one object's points, fill what it uncovered.

What an edit does to the cloud:

- The object's points (``ids == object.id``) are translated (``MoveObject``: the centre of its base lands
  on ``to``) or rotated about the world z axis through its centroid (``RotateObject``). Their colours, ids
  and source pixels are kept, so the renderer still counts them as observed.
- The region the object hid from the source camera is *uncovered*: every source pixel that showed the
  object gets a new point where its ray meets the support plane, coloured with the median colour of the
  support pixels around the object, with id 0 and ``pixels == -1`` (the renderer marks those pixels as
  filled, ``valid_mask == False``). Rays that would land inside another object's footprint, or farther
  than :data:`FILL_REACH_M` from the object, are left empty: what is there was never seen.
- Nothing else changes: objects standing on a moved object (a cube on a plate) stay where they were.

The scene's :class:`SceneObject` list is updated with :func:`edit_object`.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ...camera import pixel_rays
from ...errors import InvalidInputError
from ...types import Edit, MoveObject, RotateObject, Scene, SceneObject
from .cloud import SceneCloud

#: Largest distance (metres) between an edit target and the scene pivot.
MAX_TARGET_DISTANCE_M = 1.0
#: A target this far (metres) under the support plane is refused.
BELOW_PLANE_TOLERANCE_M = 0.01
#: Uncovered plane points farther than this from the object's original footprint are not invented.
FILL_REACH_M = 0.25
#: Width (source pixels) of the ring around the object whose support pixels give the fill colour.
COLOR_RING_PX = 12
#: Fallback fill colour when no support pixel surrounds the object (a neutral grey).
DEFAULT_FILL_RGB = (128, 128, 128)


def find_object(objects: list[SceneObject], name: str) -> SceneObject:
    """The object called ``name`` (exact name, then a unique partial match such as ``"cube"``).

    Raises:
        UnknownObjectError: no object matches (the message lists the known names).
        AmbiguousObjectError: a partial name matches several objects.
    """
    # Scene.find holds the one name-matching rule of the package; only its object list is used.
    return Scene(observation=None, objects=list(objects), pivot=np.zeros(3), backend="geometric").find(name)


def default_pivot(objects: list[SceneObject]) -> np.ndarray:
    """Centre of the objects' centroids (the scene pivot when the caller has none)."""
    if not objects:
        return np.zeros(3)
    return np.mean([np.asarray(o.centroid, dtype=np.float64) for o in objects], axis=0)


def apply_edit(cloud: SceneCloud, objects: list[SceneObject], edit: Edit,
               pivot: np.ndarray | None = None) -> SceneCloud:
    """Returns a new cloud with ``edit`` applied; ``cloud`` is left unchanged.

    Args:
        cloud: the scene's point cloud (world frame).
        objects: the scene's objects; ``edit.object`` is looked up among their names.
        edit: ``MoveObject(name, to=[x, y, z])`` (``to`` = new centre of the object's base) or
            ``RotateObject(name, yaw_deg)`` (about world z through the object's centroid).
        pivot: scene pivot used to refuse far-away targets; defaults to the centre of ``objects``.

    Returns:
        The edited SceneCloud (points moved, uncovered support plane added as filled points).

    Raises:
        InvalidInputError: ``edit`` is not a MoveObject/RotateObject, or ``edit.to`` is not finite, lies
            under the support plane, or is more than 1 m from the pivot.
        UnknownObjectError, AmbiguousObjectError: ``edit.object`` names no object / several objects.
    """
    if not isinstance(edit, (MoveObject, RotateObject)):
        raise InvalidInputError("edit", "a MoveObject or RotateObject", type(edit).__name__)
    obj = find_object(objects, edit.object)
    if isinstance(edit, MoveObject):
        check_target(cloud, edit.to, default_pivot(objects) if pivot is None else pivot)
    transform = edit_transform(obj, edit)

    mine = cloud.ids == obj.id
    points = cloud.points.copy()
    moved = points[mine].astype(np.float64) @ transform[:3, :3].T + transform[:3, 3]
    points[mine] = moved.astype(np.float32)
    edited = replace(cloud, points=points)
    return _add_points(edited, *_uncovered_plane(cloud, obj, objects))


def edit_object(obj: SceneObject, edit: Edit) -> SceneObject:
    """``obj`` after ``edit``: centroid moved/rotated, box axes turned by a rotation's yaw.

    Args:
        obj: the object the edit names.
        edit: a MoveObject or RotateObject.

    Returns:
        A new SceneObject; extent, id, name, colour and shape are unchanged.
    """
    transform = edit_transform(obj, edit)
    centroid = transform[:3, :3] @ np.asarray(obj.centroid, dtype=np.float64) + transform[:3, 3]
    rotation = transform[:3, :3] @ np.asarray(obj.obb_rotation, dtype=np.float64)
    return replace(obj, centroid=centroid, obb_rotation=rotation)


def edit_transform(obj: SceneObject, edit: Edit) -> np.ndarray:
    """The 4x4 world transform an edit applies to ``obj``'s points."""
    transform = np.eye(4)
    centroid = np.asarray(obj.centroid, dtype=np.float64)
    if isinstance(edit, MoveObject):
        base = np.array([centroid[0], centroid[1], obj.bottom_z])
        transform[:3, 3] = np.asarray(edit.to, dtype=np.float64) - base
    else:
        angle = np.radians(edit.yaw_deg)
        c, s = np.cos(angle), np.sin(angle)
        transform[:3, :3] = [[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]
        transform[:3, 3] = centroid - transform[:3, :3] @ centroid
    return transform


def check_target(cloud: SceneCloud, target, pivot: np.ndarray) -> np.ndarray:
    """Validates a MoveObject target; returns it as a float64 (3,) array.

    Raises:
        InvalidInputError: (field ``edit.to``) not three finite numbers, under the support plane,
            or more than :data:`MAX_TARGET_DISTANCE_M` from ``pivot``.
    """
    to = np.asarray(target, dtype=np.float64) if not isinstance(target, str) else np.zeros(0)
    if to.shape != (3,) or not np.all(np.isfinite(to)):
        raise InvalidInputError("edit.to", "three finite world coordinates [x, y, z]", target)
    if cloud.plane is not None:
        height = float(np.dot(cloud.plane[:3], to) + cloud.plane[3])
        if height < -BELOW_PLANE_TOLERANCE_M:
            raise InvalidInputError("edit.to", "a point on or above the support plane",
                                    f"{to.tolist()}, {-height:.3f} m under it")
    distance = float(np.linalg.norm(to - np.asarray(pivot, dtype=np.float64)))
    if distance > MAX_TARGET_DISTANCE_M:
        raise InvalidInputError("edit.to", f"a point within {MAX_TARGET_DISTANCE_M:g} m of the scene pivot",
                                f"{to.tolist()}, {distance:.2f} m away")
    return to


def _uncovered_plane(cloud: SceneCloud, obj: SceneObject, objects: list[SceneObject]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Plane points (and colours) behind the object's source pixels: what moving it uncovers."""
    empty = np.zeros((0, 3), np.float32), np.zeros((0, 3), np.uint8)
    if cloud.plane is None:
        return empty
    observed = (cloud.ids == obj.id) & (cloud.pixels[:, 0] >= 0)
    if not observed.any():
        return empty
    rows, cols = cloud.pixels[observed, 0], cloud.pixels[observed, 1]

    source = cloud.source
    pose = source.cam_to_world
    rays = pixel_rays(rows, cols, source.intrinsics, pose)
    normal, offset = cloud.plane[:3], cloud.plane[3]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -(normal @ pose[:3, 3] + offset) / (rays @ normal)
    hits = pose[:3, 3] + rays * np.where(t > 0, t, np.nan)[:, None]

    keep = np.isfinite(hits).all(axis=1)
    centroid = np.asarray(obj.centroid, dtype=np.float64)
    reach = FILL_REACH_M + 0.5 * float(np.linalg.norm(np.asarray(obj.extent)[:2]))
    keep &= np.linalg.norm(np.nan_to_num(hits[:, :2]) - centroid[:2], axis=1) <= reach
    for other in objects:
        if other.id != obj.id:
            keep &= ~_inside_footprint(np.nan_to_num(hits), other)
    hits = hits[keep].astype(np.float32)
    fill = np.empty((len(hits), 3), np.uint8)
    fill[:] = _support_color(cloud, obj, rows, cols)
    return hits, fill


def _inside_footprint(points: np.ndarray, obj: SceneObject) -> np.ndarray:
    local = (points - np.asarray(obj.centroid)) @ np.asarray(obj.obb_rotation)
    half = np.asarray(obj.extent) / 2
    return (np.abs(local[:, 0]) <= half[0]) & (np.abs(local[:, 1]) <= half[1])


def _support_color(cloud: SceneCloud, obj: SceneObject, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Median colour of support points seen in a ring of source pixels around the object."""
    top, bottom = rows.min() - COLOR_RING_PX, rows.max() + COLOR_RING_PX
    left, right = cols.min() - COLOR_RING_PX, cols.max() + COLOR_RING_PX
    px = cloud.pixels
    ring = (cloud.ids == 0) & (px[:, 0] >= top) & (px[:, 0] <= bottom) & (px[:, 1] >= left) & (px[:, 1] <= right)
    if cloud.plane is not None and ring.any():
        # Only points on the support plane: the floor seen past the table's edge is not the table.
        height = cloud.points[ring].astype(np.float64) @ cloud.plane[:3] + cloud.plane[3]
        ring[np.flatnonzero(ring)[np.abs(height) > 0.01]] = False
    if not ring.any():
        return np.asarray(DEFAULT_FILL_RGB, dtype=np.uint8)
    return np.median(cloud.colors[ring], axis=0).round().astype(np.uint8)


def _add_points(cloud: SceneCloud, points: np.ndarray, colors: np.ndarray) -> SceneCloud:
    """Appends filled points (id 0, pixels -1), skipping any that an earlier edit already added."""
    if len(points) == 0:
        return cloud
    earlier = cloud.points[(cloud.ids == 0) & (cloud.pixels[:, 0] < 0)]
    if len(earlier):
        known = {p.tobytes() for p in earlier.astype(np.float32)}
        new = np.array([p.tobytes() not in known for p in points], dtype=bool)
        points, colors = points[new], colors[new]
    count = len(points)
    return replace(cloud,
                   points=np.concatenate([cloud.points, points.astype(np.float32)]),
                   colors=np.concatenate([cloud.colors, colors]),
                   ids=np.concatenate([cloud.ids, np.zeros(count, np.int32)]),
                   pixels=np.concatenate([cloud.pixels, np.full((count, 2), -1, np.int32)]))
