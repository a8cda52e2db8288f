"""Ground-truth spatial relations, with the semantics the world model uses.

Left/right compare object centres along the camera's x axis, in front of/behind along its optical axis
(depth), each with a margin (the direction table is :data:`joyai_embodied.spatial.DIRECTIONS`, the one the
world model and the planner use); above/below use world z (A's bottom at or above B's top, 1 cm tolerance);
on top of is above plus A's centre inside B's footprint.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from joyai_embodied.errors import InvalidInputError
from joyai_embodied.spatial import DIRECTION_WORDS, direction_offset, offsets_in_view

#: Stacking tolerance (metres): a resting object's bottom touches its support's top, within contact noise.
STACK_TOLERANCE_M = 0.01
#: The vertical relations, beside the directional ones of :data:`joyai_embodied.spatial.DIRECTION_WORDS`.
VERTICAL = ("above", "below", "on top of")


def directional_offset(relation: str, a_world: Sequence[float], b_world: Sequence[float],
                       cam_to_world: np.ndarray) -> float:
    """Signed distance (m) by which A is on the ``relation`` side of B as seen from the camera.

    ``relation`` is a phrase of :data:`~joyai_embodied.spatial.DIRECTION_WORDS` ("left of", ...) or a
    :data:`~joyai_embodied.spatial.DIRECTIONS` key; it holds with margin m iff the offset is greater than m.
    """
    lateral, depth, _ = offsets_in_view(np.asarray(a_world, dtype=np.float64),
                                        np.asarray(b_world, dtype=np.float64), cam_to_world)
    return direction_offset(relation, lateral, depth)


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
    if relation in DIRECTION_WORDS:
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
    raise InvalidInputError("relation", f"one of {[*DIRECTION_WORDS, *VERTICAL]}", repr(relation))


def inside_footprint(point: Sequence[float], obj: Mapping) -> bool:
    """Whether a world point's xy lies inside an object's footprint (a rotated square for cubes)."""
    offset = np.asarray(point[:2], dtype=np.float64) - np.asarray(obj["position"][:2], dtype=np.float64)
    half = obj["size"][0] / 2
    if obj["shape"] != "cube":
        return bool(np.hypot(*offset) <= half)
    c, s = np.cos(obj["yaw"]), np.sin(obj["yaw"])
    local = np.array([c * offset[0] + s * offset[1], -s * offset[0] + c * offset[1]])
    return bool(np.all(np.abs(local) <= half))
