"""Drawers of LIBERO's cabinets, from the observation: find a handle, open by pulling it, close by pushing it.

A drawer's front is the side of the cabinet's box that faces the scene's centre (where the robot works);
its handle is the cabinet's foremost observed point at the drawer's height. A closed drawer's handle stands
as far out as the other closed drawers' handles: that plane, observed, is where a push must bring it.
Nothing here reads simulator poses or joint positions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ...errors import InvalidInputError
from ...types import SceneObject
from .control import CLOSE, OPEN, VIA_M, Arm, fold_half_turn, quat_to_matrix, rotation_error, yaw_rotation
from .heights import HeightMap

log = logging.getLogger(__name__)

#: A drawer's handle height as a fraction of its cabinet's height (LIBERO's three-drawer cabinets).
DRAWER_LEVELS = {"top": 0.83, "middle": 0.5, "bottom": 0.2}
#: Cabinet points within this height of the handle's level belong to that drawer's front.
HANDLE_BAND_M = 0.02
#: Points within this of the foremost one are the handle itself (it stands ~3 cm off the drawer face).
HANDLE_DEPTH_M = 0.012
#: The fingers close this far behind the handle's front surface (the middle of a ~1.6 cm bar).
HANDLE_INSET_M = 0.012
#: Approach the handle from this far in front of it, hand already turned to point into the cabinet.
HANDLE_APPROACH_M = 0.10
#: Travel this far above the handle's height before turning the hand to face it (its body reaches ~10 cm down).
TURNED_HAND_CLEARANCE_M = 0.15
#: The turned hand's lowest part is this far below its fingers, with a margin (~10 cm measured).
TURNED_HAND_REACH_M = 0.13
#: Pull the drawer this far out (LIBERO counts it open beyond 14 cm of its 16 cm travel).
PULL_M = 0.19
#: A drawer whose front is seen moved less than this toward the robot did not open (an open one: ~11 cm).
OPENED_M = 0.07
#: An opened drawer's floor lies this far below its handle.
DRAWER_FLOOR_BELOW_HANDLE_M = 0.025
#: The drawer's interior centre lies this far behind its handle (half a ~17 cm deep drawer plus the handle).
DRAWER_CENTRE_BEHIND_HANDLE_M = 0.10
#: After a pull the hand rises this much while it turns back down (its fingers swing ~10 cm down).
RETREAT_RISE_M = 0.12
#: ...and moves this much farther out, past the opened drawer's front.
RETREAT_OUT_M = 0.06
#: Closing: the fingertips start this far in front of the opened handle (4 cm: the hand landed on it)...
CLOSE_START_M = 0.06
#: ...coming down from this far above it.
CLOSE_HOVER_M = 0.10
#: Rise this much more above a just-released object before closing the fingers to push.
CLEAR_RELEASED_M = 0.03
#: ...with the fingers tilted this far from straight down toward the cabinet (the hand's body trails them).
CLOSE_TILT_RAD = 0.75
#: The closing push aims this far past the observed closed plane (the cabinet stops the drawer there).
CLOSE_PAST_M = 0.04
#: Hold a stalled push this many steps more (the drawer's last millimetres need force, not travel).
FIRM_PUSH_STEPS = 15
#: A push has stalled when the hand moved less than this over the last few steps...
STILL_M = 0.002
#: ...this many steps.
STILL_WINDOW_STEPS = 4
#: A drawer whose handle is seen within this of the closed drawers' plane is closed.
CLOSED_WITHIN_M = 0.006
#: Steps with the fingers opening before the hand leaves a released handle.
RELEASE_STEPS = 5
#: Under another drawer, the bowl goes at most this far behind the handle (when the closed plane is not seen).
OPEN_PART_CENTRE_BEHIND_HANDLE_M = 0.09
#: Half a finger's thickness: the far finger's outer face lies this far past the hand's centre.
FINGER_HALF_THICKNESS_M = 0.01
#: Keep what comes down into a drawer under another this far in front of the closed drawers' handles.
UNDER_HANDLE_ROOM_M = 0.004


# ---------------------------------------------------------------------- drawers
@dataclass
class Handle:
    """A drawer handle as observed: its centre (world m) and the drawer's outward direction (unit, horizontal)."""

    centre: np.ndarray
    front: np.ndarray


def drawer_front(cabinet: SceneObject, pivot: np.ndarray) -> np.ndarray:
    """The horizontal axis of the cabinet's box that points at the scene's centre (where its drawers face)."""
    toward = np.asarray(pivot, dtype=np.float64)[:2] - np.asarray(cabinet.centroid)[:2]
    axes = np.asarray(cabinet.obb_rotation, dtype=np.float64)[:2, :2].T   # rows: box x and y axes (xy part)
    best = max((sign * a for a in axes for sign in (1.0, -1.0)), key=lambda a: float(a @ toward))
    best = best / max(np.linalg.norm(best), 1e-9)
    return np.array([best[0], best[1], 0.0])


def find_handle(cabinet: SceneObject, level: str, heights: HeightMap, pivot: np.ndarray) -> Handle:
    """The handle of the cabinet's ``level`` drawer: its foremost observed points at that drawer's height.

    Raises:
        InvalidInputError: (field "level") not top/middle/bottom.
    """
    if level not in DRAWER_LEVELS:
        raise InvalidInputError("level", f"one of {sorted(DRAWER_LEVELS)}", repr(level))
    front = drawer_front(cabinet, pivot)
    z = cabinet.bottom_z + DRAWER_LEVELS[level] * float(cabinet.extent[2])
    centre = np.asarray(cabinet.centroid, dtype=np.float64)
    mine = heights.points[(heights.ids == cabinet.id) & (np.abs(heights.points[:, 2] - z) < HANDLE_BAND_M)]
    if len(mine) < 3:   # the drawer's front is hidden: fall back to the box's face
        tip = centre + front * float(max(cabinet.extent[0], cabinet.extent[1])) / 2
        return Handle(np.array([tip[0], tip[1], z]) - front * HANDLE_INSET_M, front)
    along = (mine[:, :2] - centre[:2]) @ front[:2]
    foremost = float(np.percentile(along, 98))    # robust to the segmentation pass's rim bleed
    handle = mine[along > foremost - HANDLE_DEPTH_M]
    lateral = np.array([-front[1], front[0], 0.0])
    side = float(np.median((handle[:, :2] - centre[:2]) @ lateral[:2]))
    point = centre + front * (foremost - HANDLE_INSET_M) + lateral * side
    point[2] = float(np.median(handle[:, 2]))
    return Handle(point, front)


def facing_rotation(front: np.ndarray) -> np.ndarray:
    """Hand orientation pointing along ``-front`` (into the cabinet) with the fingers closing vertically."""
    approach = -np.asarray(front, dtype=np.float64)
    closing = np.array([0.0, 0.0, 1.0])
    return np.stack([np.cross(closing, approach), closing, approach], axis=1)


def open_drawer(arm: Arm, handle: Handle, way_top_z: float | None = None) -> bool:
    """Grasps the handle with a horizontal hand and pulls it out; True when the fingers held the handle.

    Args:
        arm: the arm.
        handle: the handle as observed.
        way_top_z: the highest top (world z) of what is observed on the way to the handle; None: unknown.
    """
    before = handle.centre + handle.front * HANDLE_APPROACH_M
    # A hand turned to face the cabinet reaches ~10 cm below its fingers: travel above the handle's
    # height by that much (bowls and plates stand in front of the cabinet), turn there, then come down.
    safe = float(before[2]) + TURNED_HAND_CLEARANCE_M
    if way_top_z is not None:   # only as high as what is on the way needs (a top drawer's handle is high already)
        safe = min(safe, max(float(before[2]) + VIA_M, way_top_z + TURNED_HAND_REACH_M))
    arm.set_gripper(OPEN)
    # Back to the start orientation first: from a grasp's turned wrist the turn to face the cabinet can
    # run into the wrist's joint limit (measured: 30 steps without converging).
    arm.target_rotation = arm.down
    if arm.position[2] < safe - VIA_M:   # rise first (what the hand just released is below it), then go across
        first = arm.position + 0.3 * (np.array([before[0], before[1], safe]) - arm.position)
        arm.move_to(np.array([first[0], first[1], safe]), tolerance_m=VIA_M, max_steps=25)
    facing = facing_rotation(handle.front)
    flipped = facing @ np.diag([-1.0, -1.0, 1.0])   # the same grip with the fingers swapped (a half wrist turn)
    current = quat_to_matrix(arm.state[3:7])
    if np.linalg.norm(rotation_error(current, flipped)) < np.linalg.norm(rotation_error(current, facing)):
        facing = flipped   # the nearer of the two: the other may lie beyond the wrist's joint limit
    arm.target_rotation = facing   # turn the hand while it travels at the safe height
    arm.move_to(np.array([before[0], before[1], safe]), tolerance_m=VIA_M, max_steps=60)
    arm.rotate_to(facing, max_steps=30)
    arm.move_to(before, max_steps=30)
    arm.move_to(handle.centre, max_steps=40)
    arm.set_gripper(CLOSE)
    held = arm.holding()
    log.info("drawer handle at %s: reached %s, fingers %.4f m, hand %s off its orientation", np.round(handle.centre, 3),
             np.round(arm.position, 3), arm.finger_width,
             np.round(rotation_error(quat_to_matrix(arm.state[3:7]), arm.target_rotation), 2))
    reached = arm.steps
    if held:
        pulled = handle.centre + handle.front * PULL_M
        for fraction in (0.5, 1.0):   # two legs: the drawer's damping needs time, the fingers hold better slowly
            arm.move_to(handle.centre + (pulled - handle.centre) * fraction, max_steps=45)
    log.info("drawer: handle held at step %d, pulled to %s by step %d", reached, np.round(arm.position, 3), arm.steps)
    arm.gripper = OPEN   # release: a few steps of opening free the handle, no need to wait for full width
    arm.hold(RELEASE_STEPS)
    arm.move_to(arm.position + handle.front * 0.05, tolerance_m=VIA_M, max_steps=20)
    # Turn the hand back down while moving clear of the drawer (turning in place costs ~20 steps): out past
    # the drawer's front, rising only as far as the fingers' swing needs above what is on the way (rising
    # 12 cm from a top drawer sent the next carry over at 1.28 m).
    arm.target_rotation = arm.down
    rise = RETREAT_RISE_M if way_top_z is None else float(np.clip(
        way_top_z + TURNED_HAND_REACH_M - arm.position[2], 0.0, RETREAT_RISE_M))
    arm.move_to(arm.position + handle.front * RETREAT_OUT_M + np.array([0.0, 0.0, rise]), tolerance_m=VIA_M,
                max_steps=25)
    return held


def closed_plane(cabinet: SceneObject, level: str, heights: HeightMap, pivot: np.ndarray) -> float | None:
    """Where a closed drawer's handle stands along the cabinet's front axis (m from the cabinet's centre): the
    other drawers' observed handles (the one standing least far out is closed); None when none is seen."""
    front = drawer_front(cabinet, pivot)
    centre = np.asarray(cabinet.centroid, dtype=np.float64)
    along = [float((find_handle(cabinet, other, heights, pivot).centre - centre)[:2] @ front[:2])
             for other in DRAWER_LEVELS if other != level and _seen_at(cabinet, other, heights)]
    return min(along) if along else None


def handle_out_m(cabinet: SceneObject, handle: Handle, plane: float | None) -> float:
    """How far ``handle`` stands out of the closed plane (m; about 0 when the drawer is closed)."""
    if plane is None:
        return float("nan")
    return float((handle.centre - np.asarray(cabinet.centroid))[:2] @ handle.front[:2]) - plane


def _seen_at(cabinet: SceneObject, level: str, heights: HeightMap) -> bool:
    z = cabinet.bottom_z + DRAWER_LEVELS[level] * float(cabinet.extent[2])
    return int(np.count_nonzero((heights.ids == cabinet.id) & (np.abs(heights.points[:, 2] - z) < HANDLE_BAND_M))) >= 3


def close_rotation(arm: Arm, front: np.ndarray) -> np.ndarray:
    """The hand for pushing a drawer shut: turned across the push, fingers tilted to point into the cabinet.

    Pointing straight down, the hand's body (~3.3 cm thick on either side of the fingers) leads the fingertips
    and meets the closed drawer above's handle ~1 cm before the pushed one is flush; tilted by
    :data:`CLOSE_TILT_RAD` the fingertips lead and the body trails behind them.
    """
    front = np.asarray(front, dtype=np.float64)
    closing = arm.closing_axis
    yaw = fold_half_turn(float(np.arctan2(front[0], -front[1]) - np.arctan2(closing[1], closing[0])))
    across = yaw_rotation(yaw) @ arm.down
    lateral = np.array([-front[1], front[0], 0.0])
    for sign in (1.0, -1.0):
        tilted = _axis_rotation(lateral, sign * CLOSE_TILT_RAD) @ across
        if float(tilted[:, 2] @ front) < 0:   # the fingers (the hand's z axis) point into the cabinet
            return tilted
    return across


def close_drawer(arm: Arm, handle: Handle, plane_point: np.ndarray | None = None) -> None:
    """Pushes an opened drawer shut with the closed fingertips on its handle, past the observed closed plane.

    Args:
        arm: the arm.
        handle: the opened drawer's handle as observed.
        plane_point: where the handle's centre is when the drawer is closed (the other drawers' handles'
            plane, observed); None: :data:`PULL_M` behind the opened handle.
    """
    front = np.asarray(handle.front, dtype=np.float64)
    start = handle.centre + front * CLOSE_START_M
    # The tilted fingertips reach ~0.7 cm below and ahead of the hand's centre: at the bar's height they push
    # its front face (1 cm higher they rode over the bar, hooked it and pulled the drawer out on the way back).
    start[2] = float(handle.centre[2])
    safe = max(float(arm.position[2]), float(start[2]) + CLOSE_HOVER_M) + CLEAR_RELEASED_M
    # Rise before the fingers close: just after a release they still straddle the bowl's rim (closing there
    # took the bowl back out of the drawer), and close while travelling.
    arm.move_to(np.array([*arm.position[:2], safe]), tolerance_m=VIA_M, max_steps=25)
    arm.gripper = CLOSE
    arm.target_rotation = close_rotation(arm, front)
    arm.move_to(np.array([start[0], start[1], safe]), tolerance_m=VIA_M, max_steps=60)
    arm.move_to(start, max_steps=40)
    closed = handle.centre - front * PULL_M if plane_point is None else np.asarray(plane_point, dtype=np.float64)
    end = closed - front * CLOSE_PAST_M   # a firm push: aimed past the closed plane, the cabinet stops it
    end[2] = start[2]
    arm.move_to(start + (end - start) * 0.5, max_steps=40)
    push_until_still(arm, end, max_steps=60)
    log.info("drawer pushed from %s to %s (closed plane at %s, step %d)", np.round(start, 3), np.round(arm.position, 3),
             np.round(closed, 3), arm.steps)
    # Up off the bar first, then back: backing off at once dragged the drawer 9 cm out again.
    arm.move_to(arm.position + np.array([0.0, 0.0, 0.04]), tolerance_m=VIA_M, max_steps=12)
    arm.target_rotation = arm.down
    arm.move_to(arm.position + front * 0.04 + np.array([0.0, 0.0, 0.04]), tolerance_m=VIA_M, max_steps=20)


def push_until_still(arm: Arm, target: np.ndarray, max_steps: int) -> None:
    """Servoes toward ``target`` until reached or the hand stops moving (pushed against a stop), then holds
    the push for :data:`FIRM_PUSH_STEPS` steps."""
    target = np.asarray(target, dtype=np.float64)
    recent: list[np.ndarray] = []
    for _ in range(max_steps):
        if arm.succeeded or np.linalg.norm(target - arm.position) < 0.005:
            break
        arm.step(target - arm.position)
        recent = (recent + [arm.position.copy()])[-STILL_WINDOW_STEPS:]
        if len(recent) == STILL_WINDOW_STEPS and np.linalg.norm(recent[-1] - recent[0]) < STILL_M:
            break
    for _ in range(FIRM_PUSH_STEPS):
        if arm.succeeded:
            return
        arm.step(target - arm.position)


def _axis_rotation(axis: np.ndarray, angle: float) -> np.ndarray:
    """Rotation by ``angle`` (rad) about the unit ``axis`` (Rodrigues)."""
    a = np.asarray(axis, dtype=np.float64) / max(float(np.linalg.norm(axis)), 1e-9)
    k = np.array([[0.0, -a[2], a[1]], [a[2], 0.0, -a[0]], [-a[1], a[0], 0.0]])
    return np.eye(3) + np.sin(angle) * k + (1.0 - np.cos(angle)) * (k @ k)


def drawer_target(cabinet: SceneObject, handle: Handle, level: str = "top") -> SceneObject:
    """The opened drawer as a support to place into: over its interior, its top at the drawer's floor.

    Under another drawer only the pulled-out part is open from above: aim at its middle.
    """
    behind = DRAWER_CENTRE_BEHIND_HANDLE_M if level == "top" else OPEN_PART_CENTRE_BEHIND_HANDLE_M
    centre = handle.centre - handle.front * behind
    floor = float(handle.centre[2]) - DRAWER_FLOOR_BELOW_HANDLE_M
    return SceneObject(id=cabinet.id, name=cabinet.name, centroid=np.array([centre[0], centre[1], floor - 0.005]),
                       extent=np.array([0.12, 0.12, 0.01]))


def under_drawer_target(cabinet: SceneObject, handle: Handle, plane: float, radius_m: float,
                        hand_behind_m: float) -> SceneObject:
    """A drawer under another one, opened: where an object of ``radius_m`` comes down into it.

    It must come down in front of the closed drawers' handles (the observed closed plane; a bowl 1 cm
    farther in hung on the handle above), and so must the finger on its far side: the hand holds the object
    ``hand_behind_m`` behind its centre (along the push into the cabinet, 0 for a hand beside or in front).
    The pulled-out part is ~2 cm shorter than a bowl: its near rim lands on the drawer's front wall's top
    only as the bowl reaches the floor, and the drawer carries it in as it closes.
    """
    # Along the drawer's outward axis from the cabinet's centre; find_handle puts a handle's centre an inset
    # behind its foremost point.
    handles_front = plane + HANDLE_INSET_M
    reach = max(radius_m, hand_behind_m + FINGER_HALF_THICKNESS_M) + UNDER_HANDLE_ROOM_M
    along = handles_front + reach
    opened = float((handle.centre - np.asarray(cabinet.centroid))[:2] @ handle.front[:2])
    behind = min(max(opened - along, 0.0), OPEN_PART_CENTRE_BEHIND_HANDLE_M)
    centre = handle.centre - handle.front * behind
    floor = float(handle.centre[2]) - DRAWER_FLOOR_BELOW_HANDLE_M
    return SceneObject(id=cabinet.id, name=cabinet.name, centroid=np.array([centre[0], centre[1], floor - 0.005]),
                       extent=np.array([0.12, 0.12, 0.01]))
