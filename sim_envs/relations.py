"""Ground-truth spatial relations, with the semantics the world model uses.

Left/right compare object centres along the camera's x axis, in front of/behind along its optical axis
(depth), each with a margin; above/below use world z (A's bottom at or above B's top, 1 cm tolerance);
on top of is above plus A's centre inside B's footprint.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from joyai_embodied.errors import InvalidInputError

#: Relation words of instructions -> (camera axis index, sign): A rel B iff sign * (A - B)[axis] > margin.
DIRECTIONAL = {"left of": (0, -1.0), "right of": (0, 1.0), "in front of": (2, -1.0), "behind": (2, 1.0)}
STACK_TOLERANCE_M = 0.01


def camera_coordinates(positions: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """(N, 3) world points expressed in the camera frame (OpenCV axes)."""
    world_to_camera = np.linalg.inv(np.asarray(cam_to_world, dtype=np.float64))
    points = np.asarray(positions, dtype=np.float64).reshape(-1, 3)
    return points @ world_to_camera[:3, :3].T + world_to_camera[:3, 3]


def directional_offset(relation: str, a_world: Sequence[float], b_world: Sequence[float],
                       cam_to_world: np.ndarray) -> float:
    """Signed distance (m) by which A is on the ``relation`` side of B as seen from the camera.

    ``relation`` holds with margin m iff the offset is greater than m.
    """
    axis, sign = DIRECTIONAL[relation]
    a_cam, b_cam = camera_coordinates(np.array([a_world, b_world]), cam_to_world)
    return float(sign * (a_cam[axis] - b_cam[axis]))


def holds(relation: str, a: Mapping, b: Mapping, cam_to_world: np.ndarray, margin: float = 0.02) -> bool:
    """Whether ``a <relation> b`` for two ``info["objects"]`` entries.

    Args:
        relation: "left of", "right of", "in front of", "behind", "above", "below" or "on top of".
        a: the subject object (keys "position", "size", "shape", "yaw").
        b: the reference object.
        cam_to_world: the viewing camera (used by the directional relations).
        margin: minimum offset in metres for the directional relations.

    Returns:
        True when the relation holds.

    Raises:
        InvalidInputError: an unknown relation word.
    """
    if relation in DIRECTIONAL:
        return directional_offset(relation, a["position"], b["position"], cam_to_world) > margin
    a_bottom = a["position"][2] - a["size"][2] / 2
    a_top = a["position"][2] + a["size"][2] / 2
    b_bottom = b["position"][2] - b["size"][2] / 2
    b_top = b["position"][2] + b["size"][2] / 2
    if relation == "above":
        return a_bottom >= b_top - STACK_TOLERANCE_M
    if relation == "below":
        return b_bottom >= a_top - STACK_TOLERANCE_M
    if relation == "on top of":
        return a_bottom >= b_top - STACK_TOLERANCE_M and inside_footprint(a["position"], b)
    raise InvalidInputError("relation", f"one of {[*DIRECTIONAL, 'above', 'below', 'on top of']}", repr(relation))


def inside_footprint(point: Sequence[float], obj: Mapping) -> bool:
    """Whether a world point's xy lies inside an object's footprint (a rotated square for cubes)."""
    offset = np.asarray(point[:2], dtype=np.float64) - np.asarray(obj["position"][:2], dtype=np.float64)
    half = obj["size"][0] / 2
    if obj["shape"] != "cube":
        return bool(np.hypot(*offset) <= half)
    c, s = np.cos(obj["yaw"]), np.sin(obj["yaw"])
    local = np.array([c * offset[0] + s * offset[1], -s * offset[0] + c * offset[1]])
    return bool(np.all(np.abs(local) <= half))
