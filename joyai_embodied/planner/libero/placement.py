"""Where a LIBERO goal puts its object: the target the instruction names, from the world model's geometry.

"the left plate" is the plate the camera sees left of the other (``Relation.lateral_m``); "to the right of
the plate" is a spot on the table beside the plate, as far out as the two objects' widths need along the
camera's right; "the back compartment of the caddy" is the part of the caddy's box away from the camera.
Only the observation, its calibration, the category labels and the instruction are read.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable

import numpy as np

from ...spatial import direction_offset, view_axes
from ...types import Scene, SceneObject
from .grounding import by_id, category_of, find_category, find_one

#: Side words of a target phrase ("the left plate") and the direction each selects among candidates.
SIDE_WORDS = {"left": "left_of", "right": "right_of", "front": "in_front_of", "back": "behind", "near": "in_front_of",
              "far": "behind"}
#: Prepositions that put the object on the table beside a reference, as the Relation directions.
BESIDE = {"left_of", "right_of", "in_front_of", "behind"}
#: Gap between the reference's edge and the placed object's edge: next to it, clear of the rim by about what a
#: release lands off its aim (with 2 cm the pudding stood 13.5 cm from the plate's centre, past what LIBERO
#: counts as right of the plate: libero_10 task 6 init 7).
BESIDE_GAP_M = 0.008
#: A placement beside a reference holds when the object is at least this far out on that side...
BESIDE_MIN_M = 0.03
#: ...and within this of the aimed spot.
BESIDE_TOLERANCE_M = 0.06
#: A compartment is this fraction of the container's depth along the camera axis (a caddy has two rows).
COMPARTMENT_FRACTION = 0.5
_COMPARTMENT = re.compile(r"^(?P<side>front|back|left|right) compartment of the (?P<container>.+)$")
_SIDE = re.compile(r"^(?P<side>left|right|front|back|near|far) (?P<rest>.+)$")


def find_target(wm: Any, scene: Scene, phrase: str) -> SceneObject:
    """The object a target phrase names; a side word ("the left plate") decides between several of a category.

    Raises:
        GroundingError: nothing matches ("perception") or the phrase cannot decide ("grounding").
    """
    side = _SIDE.match(phrase)
    named = [o for o in scene.objects if category_of(o.name).lower() == phrase]   # a label with the side word
    if side and not named and len(find_category(scene, side["rest"])) > 1:
        candidates = find_category(scene, side["rest"])
        direction = SIDE_WORDS[side["side"]]

        def outwards(candidate: SceneObject) -> float:
            # How far the candidate lies in the direction from the others, as the world model relates them.
            total = 0.0
            for other in candidates:
                if other.id != candidate.id:
                    relation = wm.relation(scene, candidate.name, other.name)
                    total += direction_offset(direction, relation.lateral_m, relation.depth_m)
            return total

        return max(candidates, key=outwards)
    return find_one(scene, phrase)


def _pseudo(like: SceneObject, centre: np.ndarray, extent: np.ndarray, name: str) -> SceneObject:
    """A support the scene has no object for (a spot on the table, a compartment), shaped like a SceneObject."""
    return dataclasses.replace(like, id=-1, name=name, centroid=np.asarray(centre, dtype=np.float64),
                               extent=np.asarray(extent, dtype=np.float64), obb_rotation=np.eye(3))


def _half_along(obj: SceneObject, direction: np.ndarray) -> float:
    """Half the object's box width along a horizontal world direction."""
    axes = np.asarray(obj.obb_rotation, dtype=np.float64)
    return float(sum(abs(axes[:, i] @ direction) * obj.extent[i] / 2 for i in range(3)))


def beside_spot(scene: Scene, cam_to_world: np.ndarray, subject: SceneObject, reference: SceneObject,
                direction: str) -> SceneObject:
    """The table spot ``direction`` of ``reference`` (camera's view) where ``subject`` fits, as a support.

    Its top is the table under the reference (the reference's bottom), its centre one gap past both halves.
    """
    axis = view_axes(cam_to_world)[direction]
    out = _half_along(reference, axis) + _half_along(subject, axis) + BESIDE_GAP_M
    centre = np.asarray(reference.centroid, dtype=np.float64) + out * axis
    centre[2] = reference.bottom_z
    return _pseudo(reference, centre, np.array([0.02, 0.02, 0.0]), f"{direction} {reference.name}")


def compartment(scene: Scene, cam_to_world: np.ndarray, container: SceneObject, side: str) -> SceneObject:
    """The ``side`` compartment of a container (a caddy): that part of its box along the camera's view.

    The floor is taken a third of the way up from the container's bottom (the caddy's floor sits above its
    feet; a book stands in it).
    """
    direction = SIDE_WORDS[side]
    axis = view_axes(cam_to_world)[direction]
    half = _half_along(container, axis)
    centre = np.asarray(container.centroid, dtype=np.float64) + half * (1 - COMPARTMENT_FRACTION) * axis
    centre[2] = container.bottom_z + float(container.extent[2]) / 3
    extent = np.asarray(container.extent, dtype=np.float64).copy()
    extent[:2] = np.minimum(extent[:2], 2 * half * COMPARTMENT_FRACTION)
    extent[2] = 0.0
    return _pseudo(container, centre, extent, f"{side} compartment of {container.name}")


def resolve_target(wm: Any, scene: Scene, cam_to_world: np.ndarray, subject: SceneObject, target_phrase: str,
                   preposition: str) -> tuple[SceneObject, Callable[[Scene], bool] | None]:
    """The support to release over and, for supports the scene has no object for, the check of the outcome.

    Returns:
        (support, check): ``check(scene)`` tells from a new observation whether the goal holds; None for a
        support that is an object of the scene (the planner then asks the world model whether it rests on it).
    """
    part = _COMPARTMENT.match(target_phrase)
    if part:
        container = find_target(wm, scene, part["container"])
        spot = compartment(scene, cam_to_world, container, part["side"])
        return spot, lambda seen: _inside(seen, subject.id, spot, container.id)
    reference = find_target(wm, scene, target_phrase)
    if preposition not in BESIDE:
        return reference, None
    spot = beside_spot(scene, cam_to_world, subject, reference, preposition)
    return spot, lambda seen: _beside(wm, seen, subject.id, reference.id, spot, preposition)


def _beside(wm: Any, scene: Scene, subject_id: int, reference_id: int, spot: SceneObject, direction: str) -> bool:
    subject, reference = by_id(scene, subject_id), by_id(scene, reference_id)
    if subject is None or reference is None:
        return False
    relation = wm.relation(scene, subject.name, reference.name)
    offset = direction_offset(direction, relation.lateral_m, relation.depth_m)
    near = float(np.hypot(*(np.asarray(subject.centroid)[:2] - np.asarray(spot.centroid)[:2])))
    low = subject.bottom_z < spot.top_z + 0.02   # resting on the table, not held or on the reference
    return bool(math.isfinite(offset) and offset > BESIDE_MIN_M and near < BESIDE_TOLERANCE_M and low)


def _inside(scene: Scene, subject_id: int, spot: SceneObject, container_id: int) -> bool:
    subject = by_id(scene, subject_id)
    if subject is None:   # hidden by the compartment's walls
        return by_id(scene, container_id) is not None
    near = np.abs(np.asarray(subject.centroid)[:2] - np.asarray(spot.centroid)[:2])
    inside = bool(np.all(near < np.maximum(np.asarray(spot.extent[:2]) / 2, 0.03)))
    return inside and subject.bottom_z < spot.top_z + 0.03


# -- several objects "on" one support ("put both moka pots on the stove") -----------------------------------
#: Bin of point heights whose fullest bin is a support's flat top (a stove's burner plate, not its higher knob).
FACE_BIN_M = 0.005
#: Points within this of that height form the flat top.
FACE_BAND_M = 0.008
#: Fewer of the support's points than this and its top is not measured (a support hidden by what is on it).
MIN_FACE_POINTS = 20
#: Percentiles of the flat top's points that bound it (robust to rim bleed).
FACE_PERCENTILES = (2.0, 98.0)
#: Slices of the flat top along each axis, and the fraction of the median slice's points a slice of the top
#: holds (the stove knob's base, level with the plate, is a strip with a third to half of a plate slice's points).
FACE_SLICE_M = 0.01
FACE_SLICE_FILL = 0.6
#: Objects that share a support stand this far apart, body to body.
SHARE_GAP_M = 0.012
#: The usable part of a shared flat top is the top less this on every side: an object whose body stands
#: nearer the edge counts as beside the support (LIBERO's cook region is the stove's plate less about 2 cm).
USABLE_MARGIN_M = 0.02
#: A body offset (box centre to observed top's middle) shorter than this says nothing about a handle's side.
MIN_HANDLE_OFFSET_M = 0.01


@dataclasses.dataclass(frozen=True)
class FlatTop:
    """A support's observed flat top: centre (xy, world m), half extent along the world axes, height."""

    centre: np.ndarray
    half: np.ndarray
    z: float


def flat_top(heights: Any, support_id: int) -> FlatTop | None:
    """The support's flat top as observed: its most common height and the extent of its points there.

    Args:
        heights: a ``HeightMap`` of the observation.
        support_id: the support's instance id.

    Returns:
        The flat top, or None when too little of the support is seen.
    """
    mine = heights.points[heights.ids == support_id]
    if len(mine) < MIN_FACE_POINTS:
        return None
    z = mine[:, 2]
    bins = np.arange(z.min(), z.max() + 2 * FACE_BIN_M, FACE_BIN_M)
    counts, edges = np.histogram(z, bins=bins)
    level = float(edges[int(np.argmax(counts))] + FACE_BIN_M / 2)
    face = mine[np.abs(z - level) < FACE_BAND_M]
    for axis in (0, 1):   # a knob's base at the plate's height is a sparser strip beside it: cut it off
        face = _densest_run(face, axis)
    low, high = np.percentile(face[:, :2], FACE_PERCENTILES, axis=0)
    return FlatTop(centre=(low + high) / 2, half=(high - low) / 2, z=float(np.median(face[:, 2])))


def _densest_run(points: np.ndarray, axis: int) -> np.ndarray:
    """The points in the longest run of 1-cm slices along ``axis`` holding at least :data:`FACE_SLICE_FILL` of the
    median slice's count."""
    values = points[:, axis]
    edges = np.arange(values.min(), values.max() + 2 * FACE_SLICE_M, FACE_SLICE_M)
    counts, edges = np.histogram(values, bins=edges)
    full = counts >= FACE_SLICE_FILL * np.median(counts[counts > 0])
    full[1:-1] |= full[:-2] & full[2:]   # one empty slice between full ones: a ring of the burner, not an edge
    best, start = (0, 0), None
    for i, ok in enumerate(np.append(full, False)):
        if ok and start is None:
            start = i
        elif not ok and start is not None:
            best, start = max(best, (i - start, start)), None
    length, first = best
    if length == 0:
        return points
    keep = (values >= edges[first]) & (values < edges[first + length])
    return points[keep]


def body_centre(heights: Any, obj: SceneObject) -> np.ndarray:
    """Where the object's body stands (xy): the middle of its observed top (a moka pot's lid, not its handle)."""
    top = heights.top_centre(obj.id)
    return np.asarray(obj.centroid, dtype=np.float64)[:2] if top is None else np.asarray(top, dtype=np.float64)


def shared_spot(top: FlatTop, subject: SceneObject, body_xy: np.ndarray, placed_points: np.ndarray) -> np.ndarray:
    """Where on a shared flat top the subject's body goes (xy): side by side with what stands there already.

    The body goes half its width plus half a gap off the top's centre. With nothing placed yet, it goes across
    its handle's side (its box centre past its body), so a second object fits beside it with the handles
    pointing the same way; else to the direction (of eight) whose footprint, the body's disc and its handle's
    line, keeps farthest from the observed points of what is placed (a handle turned towards a placed pot
    met it and tipped the second pot over).

    Args:
        top: the support's flat top, observed before anything was put on it.
        subject: the object to place, as observed before the grasp.
        body_xy: its body's centre then (``body_centre``).
        placed_points: (N, 2) observed xy of what stands on the top now (the objects placed there).
    """
    radius = float(min(subject.extent[0], subject.extent[1])) / 2
    distance = min(radius + SHARE_GAP_M / 2, max(float(np.min(top.half)) - USABLE_MARGIN_M, 0.0))
    handle = np.asarray(subject.centroid, dtype=np.float64)[:2] - body_xy
    offset = float(np.hypot(*handle))
    handle_dir = handle / offset if offset >= MIN_HANDLE_OFFSET_M else None
    if len(placed_points) == 0:
        across = np.array([0.0, 1.0]) if handle_dir is None else np.array([-handle_dir[1], handle_dir[0]])
        toward = np.asarray(subject.centroid, dtype=np.float64)[:2] - top.centre   # the nearer side: a shorter carry
        return top.centre + distance * (across if across @ toward >= 0 else -across)
    reach = float(max(subject.extent[0], subject.extent[1])) / 2 + offset   # body centre to the handle's tip
    best = None
    for angle in np.arange(8) * np.pi / 4:
        spot = top.centre + distance * np.array([np.cos(angle), np.sin(angle)])
        gaps = np.hypot(*(placed_points - spot).T)
        clearance = float(gaps.min()) - radius
        if handle_dir is not None:
            line = spot + np.linspace(radius, reach, 6)[:, None] * handle_dir
            clearance = min(clearance, float(np.min(np.hypot(*(placed_points[:, None, :] - line[None]).T))) - 0.01)
        if best is None or clearance > best[0]:
            best = (clearance, spot)
    return best[1]


def on_usable_top(top: FlatTop, body_xy: np.ndarray | None, bottom_z: float) -> bool:
    """Whether a body stands on the usable part of a flat top (within its margin, not on another object)."""
    if body_xy is None:
        return False
    inside = np.all(np.abs(np.asarray(body_xy) - top.centre) < np.maximum(top.half - USABLE_MARGIN_M, 0.01))
    return bool(inside and bottom_z < top.z + 0.03)
