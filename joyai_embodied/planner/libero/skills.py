"""Pick and place for LIBERO's Panda, from the world model's geometry of the objects.

Every target comes from a :class:`~joyai_embodied.types.SceneObject` the world model built from the
observation (centroid, extent, top): a rim grasp for bowls, a top grasp across the narrow side for
boxes and bottles. A grasp is checked twice: by the fingers (closed fingers that met hold nothing) and
by observing again (the object must have risen).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...types import SceneObject
from .control import CLOSE, OPEN, VIA_M, Arm, fold_half_turn, yaw_rotation
from .heights import HeightMap

log = logging.getLogger(__name__)

#: The fingers close this far inside a bowl's outer radius: the middle of a ~1-2 cm rim wall.
RIM_INSET_M = 0.012
#: Fingertips reach this far below a rim to pinch the wall (a LIBERO bowl is ~5 cm tall).
RIM_GRASP_DEPTH_M = 0.022
#: Fingertips go this far below the top of a box-like object, never more than half its height.
TOP_GRASP_DEPTH_M = 0.035
#: Hover this far above the grasp before descending (clears neighbouring rims and box tops).
APPROACH_M = 0.10
#: Carry objects with their bottom this far above the tallest thing they pass over.
CARRY_CLEARANCE_M = 0.06
#: A carry rises only over obstacles within this of its straight path: the held bowl's half width (~6 cm) plus
#: 4 cm for the hand (climbing over the tallest object in the scene, a cabinet, cost ~20 of 220 steps a carry).
ON_THE_WAY_M = 0.10
#: Release with the object's bottom this far above the support's top surface.
PLACE_CLEARANCE_M = 0.015
#: Into a container, the held object comes down vertically from over the rim to this far above the observed
#: floor under the spot before it is let go: dropped from the rim, the second can landed on the first (or the
#: rim), tipped and rolled out of the basket (libero_10 task 0, inits 0 and 8).
INTO_CLEARANCE_M = 0.02
#: An object that rose less than this after a lift was not picked.
LIFTED_M = 0.03
#: Open Panda fingers sit this far either side of the grasp point.
FINGER_HALF_SPAN_M = 0.04
#: Radius around a fingertip that must be free.
FINGER_FOOTPRINT_M = 0.015
#: Fingertips reach this far below the end-effector site.
FINGERTIP_BELOW_M = 0.01
#: Room below a fingertip beyond this counts as clear (the table itself leaves ~2 cm; ties go to the unturned wrist, then reach).
ROOM_ENOUGH_M = 0.015
#: The fingers close this far inside an observed rim's outer edge: on the wall itself (a few mm thick), so
#: closing pinches it instead of pushing the bowl (a bowl resting on a ramekin falls off when pushed).
SEEN_RIM_INSET_M = 0.007
#: A side whose rim the camera does not see is tried only when the others are blocked.
UNSEEN_RIM_PENALTY_M = 0.01
#: An observed rim farther than this from the box's radius is noise (rim bleed), not the rim.
RIM_TRUST_M = 0.02
#: The Panda hand's body reaches this far either side along the closing axis...
HAND_HALF_SPAN_M = 0.11
#: ...from this far above the end-effector site: a cabinet beside a bowl blocks the hand, not the fingers.
HAND_ABOVE_M = 0.06
#: Gripper yaws tried for a rim grasp (rad, about the start orientation).
RIM_YAWS = (0.0, np.pi / 2)
#: A top grasp may turn a quarter after a miss when the object's box is narrower than this both ways
#: (the open fingers, ~8 cm, still reach around it).
TURNABLE_M = 0.07
#: Words of categories that get a rim grasp.
RIM_GRASP_WORDS = ("bowl", "ramekin", "plate", "basket")
#: Objects taller than this (a standing book) are grasped over their observed top face's middle.
TALL_M = 0.1
#: Cups with a handle: rim grasp on the wall, centred on the observed rim ring (the box includes the handle).
MUG_WORDS = ("mug", "cup")
#: A rim side whose observed outline reaches this far past the ring is the handle's side.
HANDLE_PAST_RIM_M = 0.015
#: Score penalty of a rim point on the handle's side (the outer finger would close on the handle).
HANDLE_PENALTY = 0.05


@dataclass
class Grasp:
    """Where the end effector closed, relative to the object it holds."""

    position: np.ndarray      # end-effector position at closing (world m)
    offset: np.ndarray        # end-effector minus object centroid at closing (world m)
    below_eef_m: float        # how far the object's bottom hangs below the end effector
    kind: str                 # "rim" or "top"


def plan_grasp(arm: Arm, obj: SceneObject, obstacles: Sequence[SceneObject],
               heights: HeightMap | None = None, turn: bool = False) -> tuple[np.ndarray, float, str]:
    """Grasp point (world m), yaw of the gripper (rad, about its start) and the kind of grasp.

    For a rim grasp, four rim points are tried (two sides, two gripper yaws); the one whose outer
    fingertip lands farthest above anything observed there wins (no neighbour, no drawer wall).
    """
    name = obj.name.lower()
    centre = np.asarray(obj.centroid, dtype=np.float64)
    mug = any(word in name for word in MUG_WORDS)
    ring = heights.ring(obj.id) if mug and heights is not None else None
    if any(word in name for word in RIM_GRASP_WORDS) or mug:
        radius = float(min(obj.extent[0], obj.extent[1])) / 2.0
        if ring is not None:   # the observed rim ring: the mug's body, not its box with the handle
            centre = np.array([ring[0][0], ring[0][1], centre[2]])
            radius = ring[1]
        grasp_z = obj.top_z - RIM_GRASP_DEPTH_M
        best = None
        for yaw in RIM_YAWS:
            axis = yaw_rotation(yaw) @ arm.closing_axis
            for sign in (1.0, -1.0):
                point = centre + sign * (radius - RIM_INSET_M) * axis
                point[2] = grasp_z
                seen = heights.rim(centre, sign * axis, obj.id) if heights is not None else None
                if seen is not None and abs(seen[0] - radius) < RIM_TRUST_M:
                    # The observed rim on this side: right for tilted bowls and boxes cut by occlusion.
                    point = centre + sign * (seen[0] - SEEN_RIM_INSET_M) * axis
                    point[2] = seen[1] - RIM_GRASP_DEPTH_M
                outer = point + sign * FINGER_HALF_SPAN_M * axis
                if heights is not None:
                    room = point[2] - FINGERTIP_BELOW_M - heights.top_near(outer[:2], FINGER_FOOTPRINT_M, obj.id)
                else:
                    room = _clearance(outer, obstacles)
                # Among clear points: prefer not turning the wrist, then the side nearer the arm (reach).
                reach = float(np.linalg.norm(point[:2] - arm.home[:2]))
                score = (min(room, ROOM_ENOUGH_M) - (0.001 if yaw else 0.0) - 0.005 * reach
                         - (UNSEEN_RIM_PENALTY_M if seen is None else 0.0))
                if heights is not None and _hand_blocked(heights, point, axis, obj.id):
                    score -= 1.0
                if mug and heights is not None:
                    reach_out = heights.rim(centre, sign * axis, obj.id)
                    if reach_out is not None and reach_out[0] > radius + HANDLE_PAST_RIM_M:
                        score -= HANDLE_PENALTY
                log.debug("rim candidate yaw %.2f side %+d: room %.3f m, reach %.2f m, box radius %.3f, seen %s",
                          yaw, sign, room, reach, radius, seen)
                if best is None or score > best[0]:
                    best = (score, point, yaw)
        return best[1], best[2], "rim"
    # Box-like: fingers close across the narrower horizontal side of the object's oriented box.
    axes = np.asarray(obj.obb_rotation, dtype=np.float64)
    narrow = axes[:, 0] if obj.extent[0] <= obj.extent[1] else axes[:, 1]
    seen = heights.narrow_axis(obj.id) if heights is not None else None
    if seen is not None:   # the observed top face is more telling than a box fitted to a half-hidden object
        narrow = seen
    yaw = fold_half_turn(np.arctan2(narrow[1], narrow[0]) - np.arctan2(arm.closing_axis[1], arm.closing_axis[0]))
    if turn and float(max(obj.extent[0], obj.extent[1])) < TURNABLE_M:
        # Fingers that met missed the object across their closing axis (they sweep 8 cm along it): turned a
        # quarter, they sweep the miss's direction (a bottle's neck seen 2 cm nearer the camera than it is).
        yaw = fold_half_turn(yaw + np.pi / 2)
    point = centre.copy()
    # Only a tall object can lean off its box's centre; a flat box's top band also takes in its side face
    # toward the camera (1 cm off: the hand then met the can beside it).
    tall = float(obj.extent[2]) > TALL_M
    top = heights.top_centre(obj.id) if heights is not None and tall else None
    if top is not None and float(np.linalg.norm(top - centre[:2])) < max(obj.extent[0], obj.extent[1]) / 2:
        point[:2] = top   # a leaning object's top is off its box's centre; the fingers close there
    point[2] = obj.top_z - min(TOP_GRASP_DEPTH_M, float(obj.extent[2]) / 2.0)
    return point, yaw, "top"


def pick(arm: Arm, obj: SceneObject, obstacles: Sequence[SceneObject],
         heights: HeightMap | None = None, turn: bool = False) -> Grasp | None:
    """Grasps ``obj`` and lifts it; None when the fingers closed on nothing.

    Args:
        arm: the arm.
        obj: the object, as the world model sees it now.
        obstacles: the other objects (to pick a free rim side and a safe hover height).
        heights: the observation's surface points, to keep fingertips off neighbours.
        turn: a top grasp of an object narrower than the open fingers closes a quarter turn from its
            narrow side (after fingers that met: the miss lay across their closing axis).
    """
    point, yaw, kind = plan_grasp(arm, obj, obstacles, heights, turn)
    hover = point + np.array([0.0, 0.0, APPROACH_M])
    arm.set_gripper(OPEN)
    arm.target_rotation = yaw_rotation(yaw) @ arm.down   # the wrist turns while the arm travels
    _travel(arm, hover, obstacles)
    travelled = arm.steps
    log.debug("hover %s reached %s", np.round(hover, 3), np.round(arm.position, 3))
    arm.rotate_to_yaw(yaw)
    turned = arm.steps
    arm.move_to(point, max_steps=40)
    descended = arm.steps
    log.debug("grasp point %s reached %s", np.round(point, 3), np.round(arm.position, 3))
    arm.set_gripper(CLOSE)
    log.debug("pick %s (%s grasp, yaw %.2f): travel to step %d, turn %d, descend %d (%.3f m off), close %d",
              obj.name, kind, yaw, travelled, turned, descended, float(np.linalg.norm(point - arm.position)),
              arm.steps)
    grasp = Grasp(position=arm.position.copy(), offset=arm.position - np.asarray(obj.centroid),
                  below_eef_m=float(arm.position[2] - obj.bottom_z), kind=kind)
    if not arm.holding():
        arm.set_gripper(OPEN)
        arm.move_to(hover, max_steps=30)
        return None
    arm.move_to(hover, tolerance_m=VIA_M, max_steps=40)
    return grasp


def place_on(arm: Arm, grasp: Grasp, support: SceneObject, obstacles: Sequence[SceneObject],
             held_height_m: float | None = None, spot_xy: np.ndarray | None = None,
             watch_grip: bool = False, floor_z: float | None = None) -> np.ndarray:
    """Carries the held object over ``support`` and releases it just above the support's top.

    Args:
        held_height_m: the held object's height, when measured again after the lift (else from the grasp).
        spot_xy: where over the support to aim (default its centre), e.g. a container's free part.
        watch_grip: stop the carry where the fingers lose the object (raises GripLost).
        floor_z: the observed top of what lies under the spot inside a container (its floor, or what is in it
            already): the object is lowered from over the rim to just above it, then let go.

    Returns:
        Where the object's centroid was aimed (world m).

    Raises:
        GripLost: with ``watch_grip``, the object slipped out on the way (the fingers are still closed).
    """
    below = grasp.below_eef_m if held_height_m is None else held_height_m
    aim = np.asarray(support.centroid, dtype=np.float64).copy()
    if spot_xy is not None:
        aim[:2] = spot_xy
    release = aim + grasp.offset
    release[2] = support.top_z + below + PLACE_CLEARANCE_M
    _travel(arm, release + np.array([0.0, 0.0, APPROACH_M / 2]), obstacles, hanging_m=below, watch_grip=watch_grip)
    if floor_z is not None and np.isfinite(floor_z):
        # Down into the container, vertically from over its rim (never higher than the rim release).
        release[2] = min(release[2], float(floor_z) + below + INTO_CLEARANCE_M)
    arm.move_to(release, max_steps=40)
    log.debug("release point %s reached %s (hang %.3f m)", np.round(release, 3), np.round(arm.position, 3), below)
    arm.set_gripper(OPEN)
    arm.move_to(release + np.array([0.0, 0.0, APPROACH_M]), tolerance_m=VIA_M, max_steps=30)
    aim[2] = support.top_z
    return aim


def _travel(arm: Arm, goal: np.ndarray, obstacles: Sequence[SceneObject], hanging_m: float = 0.0,
            watch_grip: bool = False) -> None:
    """Rises to a safe height over what lies on the way, moves across, then goes to ``goal``.

    With ``watch_grip`` the rise and the move across stop where the fingers lose what they hold (GripLost);
    the descent is not watched: a held object that meets the support shifts in the fingers.
    """
    tops = [o.top_z for o in obstacles_on_the_way(obstacles, arm.position, goal)] or [float(goal[2])]
    safe = max(float(goal[2]), arm.position[2], max(tops) + CARRY_CLEARANCE_M + hanging_m)
    safe = min(safe, float(goal[2]) + 0.25)   # never climb more than needed to reach the goal's hover
    arm.watch_grip(watch_grip)
    try:
        if arm.position[2] < safe - VIA_M:
            arm.move_to(np.array([*arm.position[:2], safe]), tolerance_m=VIA_M, max_steps=30)
        arm.move_to(np.array([goal[0], goal[1], max(safe, goal[2])]), tolerance_m=VIA_M, max_steps=60)
    finally:
        arm.watch_grip(False)
    arm.move_to(goal, tolerance_m=VIA_M, max_steps=40)


def obstacles_on_the_way(obstacles: Sequence[SceneObject], start: np.ndarray, goal: np.ndarray,
                         corridor_m: float = ON_THE_WAY_M, exclude: Sequence[int] = (),
                         skip_leading_away: bool = False) -> list[SceneObject]:
    """The obstacles whose footprint comes within ``corridor_m`` of the straight path ``start`` -> ``goal`` (xy).

    Args:
        exclude: object ids never counted.
        skip_leading_away: leave out an object the path leads away from when the path starts outside it (the
            hand leaving an opened drawer does not climb over the cabinet).
    """
    a, b = np.asarray(start, dtype=np.float64)[:2], np.asarray(goal, dtype=np.float64)[:2]
    length_sq = float((b - a) @ (b - a))
    found = []
    for obj in obstacles:
        if obj.id in exclude:
            continue
        c = np.asarray(obj.centroid, dtype=np.float64)[:2]
        t = 0.0 if length_sq < 1e-12 else float(np.clip((c - a) @ (b - a) / length_sq, 0.0, 1.0))
        gap = float(np.linalg.norm(a + t * (b - a) - c)) - float(max(obj.extent[0], obj.extent[1])) / 2
        if skip_leading_away and t == 0.0 and length_sq >= 1e-12 and gap > 0.0:
            continue
        if gap < corridor_m:
            found.append(obj)
    return found


def _hand_blocked(heights: HeightMap, point: np.ndarray, axis: np.ndarray, object_id: int) -> bool:
    """Whether something observed stands as high as the hand's body (wide along the closing axis) at ``point``."""
    for distance in np.linspace(-HAND_HALF_SPAN_M, HAND_HALF_SPAN_M, 11):
        if heights.top_near((point + distance * axis)[:2], FINGER_FOOTPRINT_M, object_id) > point[2] + HAND_ABOVE_M:
            return True
    return False


def _clearance(point: np.ndarray, obstacles: Sequence[SceneObject]) -> float:
    gaps = [np.linalg.norm(point[:2] - np.asarray(o.centroid)[:2]) - max(o.extent[0], o.extent[1]) / 2
            for o in obstacles]
    return min(gaps) if gaps else np.inf
