"""The one home of the spatial vocabulary: direction words, their camera axes, the scene pivot, orbits.

Everything that says "left of" or orbits a camera imports these: the geometric backend, the
joyai-image backend, the simulator's ground truth (``sim_envs``) and the planner. Directions are
from a viewer (a camera in OpenCV axes: x right, y down, z forward); vertical relations use world z.
Point transforms (world -> camera, projection) are in :mod:`joyai_embodied.camera`.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from .camera import orbit, to_camera
from .errors import ImpossibleCameraMoveError, InvalidInputError
from .types import CameraMove, CameraPose, Scene, SceneObject

#: Direction words -> (camera axis index, sign): A is <word> B iff sign * (A - B)[axis] > margin in the
#: viewer's camera frame. Keys are the Relation field names; :data:`DIRECTION_WORDS` has the phrases.
DIRECTIONS: dict[str, tuple[int, float]] = {
    "left_of": (0, -1.0),
    "right_of": (0, 1.0),
    "in_front_of": (2, -1.0),
    "behind": (2, 1.0),
}
#: Instruction phrases -> Relation field names.
DIRECTION_WORDS: dict[str, str] = {"left of": "left_of", "right of": "right_of", "in front of": "in_front_of",
                                   "behind": "behind"}
#: Distance along the optical axis used as pivot when nothing else locates the scene (a tabletop at arm's length).
DEFAULT_PIVOT_DISTANCE_M = 0.8
#: An orbited camera must stay at least this high above the support plane (metres): at table level it sees
#: the top edge-on, and below it the camera would look through the table from underneath.
MIN_CAMERA_HEIGHT_M = 0.01


def view_axes(cam_to_world: np.ndarray) -> dict[str, np.ndarray]:
    """World horizontal unit vectors of the camera's directions: "right_of" = image right, "behind" = away."""
    pose = np.asarray(cam_to_world, dtype=np.float64)
    right, away = pose[:3, 0].copy(), pose[:3, 2].copy()
    right[2] = away[2] = 0.0
    right /= max(np.linalg.norm(right), 1e-9)
    away /= max(np.linalg.norm(away), 1e-9)
    return {"right_of": right, "left_of": -right, "behind": away, "in_front_of": -away}


def direction_offset(direction: str, lateral_m: float, depth_m: float) -> float:
    """Signed metres by which a subject lies in ``direction`` of a reference, from a Relation's offsets.

    Args:
        direction: a :data:`DIRECTIONS` key ("left_of", ...) or phrase ("left of", ...).
        lateral_m: subject minus reference along the viewer's x axis (positive = subject to the right).
        depth_m: subject minus reference along the viewer's optical axis (positive = subject farther away).

    Returns:
        The offset (NaN when the offsets are unknown); the direction holds with margin m iff it exceeds m.

    Raises:
        InvalidInputError: ``direction`` is not a direction word.
    """
    key = DIRECTION_WORDS.get(direction, direction)
    if key not in DIRECTIONS:
        raise InvalidInputError("direction", f"one of {', '.join([*DIRECTIONS, *DIRECTION_WORDS])}", repr(direction))
    axis, sign = DIRECTIONS[key]
    return float(sign * (lateral_m if axis == 0 else depth_m))


def lateral_and_depth(points: np.ndarray, cam_to_world: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    """(rightward, away-from-viewer) coordinates of world points (N, 3) for a viewer.

    ``cam_to_world`` is the viewer's camera (its x and optical axis); ``None`` is the world frame's viewer,
    standing at -x and looking toward +x with z up (right = -y, away = +x).
    """
    points = np.asarray(points, dtype=np.float64).reshape(-1, 3)
    if cam_to_world is None:
        return -points[:, 1], points[:, 0]
    cam = to_camera(points, cam_to_world)
    return cam[:, 0], cam[:, 2]


def offsets_in_view(subject: np.ndarray, reference: np.ndarray, cam_to_world: np.ndarray | None
                    ) -> tuple[float, float, float]:
    """``(lateral_m, depth_m, vertical_m)`` of ``subject`` minus ``reference`` (world points) for a viewer.

    Args:
        subject: (3,) world point (an object's centre).
        reference: (3,) world point.
        cam_to_world: the viewer's camera; ``None`` is the world frame's viewer (standing at -x, looking
            toward +x with z up: right = -y, farther = +x).

    Returns:
        Signed metres as in :class:`~joyai_embodied.types.Relation`; NaN where a point is not finite.
    """
    points = np.stack([np.asarray(subject, dtype=np.float64), np.asarray(reference, dtype=np.float64)])
    lateral, depth = lateral_and_depth(points, cam_to_world)
    return float(lateral[0] - lateral[1]), float(depth[0] - depth[1]), float(points[0, 2] - points[1, 2])


def direction_holds(direction: str, lateral_m: float, depth_m: float, margin_m: float) -> bool:
    """Whether a subject lies in ``direction`` of its reference by more than ``margin_m`` (False on NaN)."""
    return bool(direction_offset(direction, lateral_m, depth_m) > margin_m)


def scene_pivot(objects: Iterable[SceneObject], cam_to_world: np.ndarray, plane: np.ndarray | None = None,
                depth: np.ndarray | None = None) -> np.ndarray:
    """The point camera moves orbit: the centre of the union of the objects' boxes.

    Objects without a finite centroid (a backend without depth) are ignored. Without any located object
    the pivot is where the optical axis meets the support ``plane`` (``[a, b, c, d]``, ``a x + b y + c z
    + d = 0``), else at the median valid ``depth`` along the optical axis, else
    :data:`DEFAULT_PIVOT_DISTANCE_M` in front of the camera.
    """
    located = [o for o in objects if np.all(np.isfinite(o.centroid)) and np.all(np.isfinite(o.extent))]
    if located:
        corners = np.concatenate([[o.centroid - o.extent / 2, o.centroid + o.extent / 2] for o in located])
        return (corners.min(axis=0) + corners.max(axis=0)) / 2
    pose = np.asarray(cam_to_world, dtype=np.float64)
    origin, axis = pose[:3, 3], pose[:3, 2]
    if plane is not None and abs(plane[:3] @ axis) > 1e-6:
        t = -(plane[:3] @ origin + plane[3]) / (plane[:3] @ axis)
        if t > 0:
            return origin + t * axis
    if depth is not None:
        valid = depth[np.isfinite(depth) & (depth > 0)]
        if valid.size:
            return origin + float(np.median(valid)) * axis
    return origin + DEFAULT_PIVOT_DISTANCE_M * axis


def support_plane(objects: Sequence[SceneObject]) -> np.ndarray | None:
    """A level plane ``[0, 0, 1, -z]`` at the lowest located object's bottom (what they stand on), or None."""
    bottoms = [o.bottom_z for o in objects if np.all(np.isfinite(o.centroid)) and np.all(np.isfinite(o.extent))]
    return np.array([0.0, 0.0, 1.0, -min(bottoms)]) if bottoms else None


def orbit_scene(scene: Scene, move: CameraMove, plane: np.ndarray | None = None,
                start: CameraPose | None = None) -> CameraPose:
    """The scene's camera (or ``start``) orbited by ``move`` about ``scene.pivot``, same intrinsics and size.

    Every backend's ``imagine`` takes its camera from here, so a move means the same everywhere and an
    impossible one is refused the same way. A camera that the move takes below the support plane (or to
    within :data:`MIN_CAMERA_HEIGHT_M` of it) or inside an object's box is refused: there is nothing such
    a camera could see. An explicit CameraPose given to ``imagine`` is not checked (the caller chose it).

    Args:
        scene: the observed (or edited) scene; its located objects are the obstacles.
        move: the orbit.
        plane: the support plane ``[a, b, c, d]`` with the source camera on its positive side, when the
            backend estimated one; otherwise a level plane under the lowest object (:func:`support_plane`),
            and no height check when no object is located.
        start: the camera to orbit (a rollout's current camera); the scene's observing camera by default.

    Raises:
        ImpossibleCameraMoveError: field ``move.pitch_deg`` when the camera would end up below the support
            plane (the message gives the height), ``move`` when inside an object, or the flips
            :func:`~joyai_embodied.camera.orbit` refuses.
    """
    camera = scene.observation.camera if start is None else start
    pose = orbit(camera.cam_to_world, scene.pivot, move)
    position = pose[:3, 3]
    plane = support_plane(scene.objects) if plane is None else np.asarray(plane, dtype=np.float64)
    if plane is not None:
        height = float(plane[:3] @ position + plane[3])
        before = float(plane[:3] @ camera.position + plane[3])
        if height < MIN_CAMERA_HEIGHT_M and height < before:  # only a move that lowers the camera is refused
            where = f"{-height:.3f} m below" if height < 0 else f"{height:.3f} m above"
            raise ImpossibleCameraMoveError(
                "move.pitch_deg", f"a pitch that keeps the camera at least {MIN_CAMERA_HEIGHT_M} m above the "
                "support plane (the table top)",
                f"pitch {move.pitch_deg:g} (yaw {move.yaw_deg:g}, zoom {move.zoom:g}) puts it {where} the plane")
    for obj in scene.objects:
        if not (np.all(np.isfinite(obj.centroid)) and np.all(np.isfinite(obj.extent))):
            continue
        local = np.asarray(obj.obb_rotation, dtype=np.float64).T @ (position - obj.centroid)
        if np.all(np.abs(local) <= obj.extent / 2):
            raise ImpossibleCameraMoveError(
                "move", "a camera outside every object",
                f"yaw {move.yaw_deg:g}, pitch {move.pitch_deg:g}, zoom {move.zoom:g} puts it inside the {obj.name}")
    return CameraPose(pose, camera.intrinsics, camera.width, camera.height)
