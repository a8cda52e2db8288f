"""The one home of the spatial vocabulary: direction words, their camera axes, and the scene pivot.

Everything that says "left of" or orbits a camera imports these: the geometric backend, the
joyai-image backend, the simulator's ground truth (``sim_envs``) and the planner. Directions are
from a viewer (a camera in OpenCV axes: x right, y down, z forward); vertical relations use world z.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from .types import SceneObject

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


def direction_offset(direction: str, lateral_m: float, depth_m: float) -> float:
    """Signed metres by which a subject lies in ``direction`` of a reference, from a Relation's offsets.

    Args:
        direction: a :data:`DIRECTIONS` key ("left_of", ...) or phrase ("left of", ...).
        lateral_m: subject minus reference along the viewer's x axis (positive = subject to the right).
        depth_m: subject minus reference along the viewer's optical axis (positive = subject farther away).
    """
    key = DIRECTION_WORDS.get(direction, direction)
    axis, sign = DIRECTIONS[key]
    return float(sign * (lateral_m if axis == 0 else depth_m))


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
