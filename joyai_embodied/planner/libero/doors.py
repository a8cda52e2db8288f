"""Skills for a hinged appliance (LIBERO's microwave): a mug in through its side opening, then its door swung shut.

The geometry is :class:`~joyai_embodied.planner.libero.microwave.Door`, found from the observation. The cavity is
~14 cm high for a ~10 cm mug and its top is solid up to the opening's edge, so a hand pointing down (its body
reaches 12 cm above the fingers) cannot reach in: the mug is held by its handle with the hand pointing at it
nearly level, from outside the opening, and carried in upright; only the fingers and the mug pass the opening.
The door is closed by the hand's flat side pushing the panel near its free edge along the arc about the hinge.
"""

from __future__ import annotations

import logging

import numpy as np

from ...errors import InvalidInputError
from ...types import SceneObject
from .control import CLOSE, OPEN, VIA_M, Arm, fold_half_turn, rotation_error, yaw_rotation
from .heights import HeightMap
from .microwave import Door

log = logging.getLogger(__name__)

#: The microwave's floor panel stands this far above its observed bottom (a category prior: a ~2 cm wall).
FLOOR_ABOVE_BOTTOM_M = 0.02
#: Outline points this far past the rim ring are the mug's handle.
HANDLE_PAST_RING_M = 0.015
#: The hand releases this far outside the hinge's line (its body, ~1 cm ahead of it when level, stays out; the
#: fingers and the mug, ~7.5 cm past the handle, are in: LIBERO's heating region starts ~1 cm inside).
HAND_INSIDE_M = -0.005
#: ...at this fraction of the door's width from the hinge side: the hand (~21 cm wide) clears the open door's
#: panel by the hinge and the control panel on the other side.
ACROSS_FRACTION = 0.53
#: A handle needs this many observed points past the rim ring.
MIN_HANDLE_POINTS = 5
#: A drooping mug is carried at most this much higher (its near rim then still passes under the cavity's top).
MAX_DROOP_RISE_M = 0.035
#: Corrections of a level hand's steady offset, each this many steps, until it is within this of its target.
REACH_CORRECTIONS = 3
REACH_STEPS = 12
REACH_WITHIN_M = 0.005
#: The level hand comes at the handle from this far out.
HANDLE_PRE_M = 0.09
#: ...and lifts the mug this much after the pinch.
HANDLE_LIFT_M = 0.06
#: The hand's fingertips point this much below level at the handle (rad): a level hand this low met the table with
#: its wrist and stopped 2.5-6 cm high, over the bar's top; pointing down, the wrist stays higher.
HANDLE_PITCH_RAD = 0.35
#: The carry enters from this far in front of the opening, at the insertion height.
ENTRY_M = 0.14
#: The held mug's bottom passes this far above the cavity's floor (the floor's front edge).
FLOOR_CLEARANCE_M = 0.012
#: The pushing hand stays this far from the door's middle plane (its body's half thickness, 3.3 cm, plus a bit).
PUSH_OFFSET_M = 0.04
#: The hand pushes the door this far in from its free edge.
PUSH_INSET_M = 0.04
#: The push starts this far (rad) behind the door (it comes down clear of the panel) and ends this far past shut.
PUSH_BEHIND_RAD = np.radians(10.0)
PUSH_PAST_RAD = np.radians(8.0)
#: Arc waypoints this far apart (rad).
ARC_STEP_RAD = np.radians(8.0)
#: The pushing hand's fingertips this far above the appliance's bottom (the door's lower middle).
PUSH_HEIGHT_M = 0.07
#: A wrist turn larger than this from the start orientation is taken the other way round (joint 7's range).
MAX_YAW_RAD = 2.0
#: An object that rose less than this was not lifted.
LIFTED_M = 0.03


def _angle(v: np.ndarray) -> float:
    return float(np.arctan2(v[1], v[0]))


def _rot(v: np.ndarray, angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def handle_point(mug: SceneObject, heights: HeightMap) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The mug's handle as observed: (grasp point world m, unit direction from the rim centre to it, rim centre xy).

    None when no handle is seen. The point is the middle of the outline's part past the rim ring (the handle's
    outer bar), at its median height.
    """
    ring = heights.ring(mug.id)
    if ring is None:
        return None
    centre, radius = np.asarray(ring[0])[:2], float(ring[1])
    mine = heights.points[heights.ids == mug.id]
    far = mine[np.linalg.norm(mine[:, :2] - centre, axis=1) > radius + HANDLE_PAST_RING_M]
    if len(far) < MIN_HANDLE_POINTS:
        return None
    xy = far[:, :2].mean(axis=0)
    direction = (xy - centre) / max(float(np.linalg.norm(xy - centre)), 1e-9)
    return np.array([*xy, float(np.median(far[:, 2]))]), direction, centre


def level_hand(arm: Arm, pointing: np.ndarray, pitch_rad: float = 0.0) -> np.ndarray:
    """Rotation (3x3) of a hand pointing horizontally along ``pointing`` (xy), fingers closing horizontally, its
    fingertips raised by ``pitch_rad``; of the two closing senses, the one nearer the start orientation."""
    d = np.array([pointing[0], pointing[1], 0.0]) / max(float(np.linalg.norm(pointing[:2])), 1e-9)
    best = None
    for sign in (1.0, -1.0):
        closing = sign * np.array([-d[1], d[0], 0.0])
        approach = np.cos(pitch_rad) * d + np.array([0.0, 0.0, np.sin(pitch_rad)])
        rotation = np.stack([np.cross(closing, approach), closing, approach], axis=1)
        turn = float(np.linalg.norm(rotation_error(arm.down, rotation)))
        if best is None or turn < best[0]:
            best = (turn, rotation)
    return best[1]


def grasp_handle(arm: Arm, point: np.ndarray, pointing: np.ndarray) -> bool:
    """Pinches the handle's bar with the hand level, pointing at the mug; lifts it; True when the fingers hold."""
    d = np.array([pointing[0], pointing[1], 0.0])
    pre = point - d * HANDLE_PRE_M
    arm.set_gripper(OPEN)
    arm.move_to(np.array([*pre[:2], max(arm.position[2], pre[2] + 0.05)]), tolerance_m=VIA_M, max_steps=50)
    arm.rotate_to(level_hand(arm, pointing, -HANDLE_PITCH_RAD), max_steps=40)
    # The level hand settles 1-2 cm above its target (it then pinched the bar's top, and the mug drooped 27
    # degrees): the targets are shifted by what is left until the hand is within a few mm (an integral term).
    _reach(arm, pre, max_steps=60)
    _reach(arm, point, max_steps=40)
    log.info("handle approach: point %s reached %s", np.round(point, 3), np.round(arm.position, 3))
    arm.set_gripper(CLOSE)
    held = arm.holding()
    arm.move_to(arm.position + np.array([0.0, 0.0, HANDLE_LIFT_M]), tolerance_m=VIA_M, max_steps=25)
    return held


def _reach(arm: Arm, target: np.ndarray, max_steps: int) -> None:
    """Moves to ``target``, then corrects the controller's steady offset (up to 3 corrections)."""
    arm.move_to(target, max_steps=max_steps)
    aim = np.asarray(target, dtype=np.float64).copy()
    for _ in range(REACH_CORRECTIONS):
        left = target - arm.position
        if np.linalg.norm(left) < REACH_WITHIN_M:
            return
        aim = aim + left
        arm.move_to(aim, tolerance_m=REACH_WITHIN_M, max_steps=REACH_STEPS)
        log.debug("reach %s: at %s", np.round(target, 3), np.round(arm.position, 3))


def carry_in(arm: Arm, door: Door, grasp_point: np.ndarray, mug: SceneObject, pointing: np.ndarray,
            droop_m: float = 0.0) -> np.ndarray:
    """Carries the mug held by its handle into the cavity, level, through the opening; releases it and backs out.

    The hand stays outside the opening's plane (only the fingers reach in): the handle ends just inside it and
    the closing door pushes the rest of the way. ``droop_m``: how much lower than level the held mug's lowest
    points were seen (a mug pinched high on its handle tilts): the carry rises as much. Returns the release point.
    """
    d = np.array([pointing[0], pointing[1], 0.0])
    floor = door.bottom + FLOOR_ABOVE_BOTTOM_M
    below = float(grasp_point[2] - mug.bottom_z)                   # the pinch above the mug's bottom
    across = door.hinge + door.closed_dir * (door.length * ACROSS_FRACTION)
    inside_xy = across - door.outward * HAND_INSIDE_M
    z_in = floor + FLOOR_CLEARANCE_M + below + min(max(droop_m, 0.0), MAX_DROOP_RISE_M)
    inside = np.array([*inside_xy, z_in])
    entry = inside - d * ENTRY_M
    arm.target_rotation = level_hand(arm, pointing, -HANDLE_PITCH_RAD)   # as grasped: the mug stays upright
    arm.move_to(np.array([*arm.position[:2], max(arm.position[2], z_in)]), tolerance_m=VIA_M, max_steps=20)
    arm.move_to(entry, tolerance_m=VIA_M, max_steps=50)
    arm.rotate_to(arm.target_rotation, max_steps=15)
    _reach(arm, entry, max_steps=15)   # the level hand settles high: a mug 2 cm high meets the cavity's top
    for fraction in (0.5, 1.0):   # level and slow through the opening
        _reach(arm, entry + (inside - entry) * fraction, max_steps=20)
    arm.move_to(inside - np.array([0.0, 0.0, FLOOR_CLEARANCE_M]), max_steps=12)
    log.info("mug in: hand %s (wanted %s), step %d", np.round(arm.position, 3), np.round(inside, 3), arm.steps)
    arm.set_gripper(OPEN)
    arm.move_to(arm.position - d * 0.10, tolerance_m=VIA_M, max_steps=25)
    arm.target_rotation = arm.down
    return inside


def close_door(arm: Arm, door: Door) -> None:
    """Swings the door shut: the hand's flat side pushes the panel near its free edge along the arc about the hinge."""
    sign = door.closing_sign
    radius = door.length - PUSH_INSET_M
    z = door.bottom + PUSH_HEIGHT_M + 0.01   # end effector 1 cm above the fingertips
    yaw0 = fold_half_turn(_angle(door.open_dir) - _angle(arm.closing_axis))   # the palm (wide along the closing axis) along the door
    if abs(yaw0 + sign * door.open_rad) > MAX_YAW_RAD:
        yaw0 -= sign * np.pi

    def at(phi: float) -> np.ndarray:
        u = _rot(door.open_dir, sign * phi)
        t = sign * np.array([-u[1], u[0]])
        return np.array([*(door.hinge + radius * u - PUSH_OFFSET_M * t), z])

    arm.set_gripper(CLOSE)
    start = at(-PUSH_BEHIND_RAD)
    arm.target_rotation = yaw_rotation(yaw0 - sign * PUSH_BEHIND_RAD) @ arm.down
    arm.move_to(np.array([*arm.position[:2], max(arm.position[2], door.top + 0.06)]), tolerance_m=VIA_M,
                max_steps=25)
    arm.move_to(np.array([*start[:2], door.top + 0.06]), tolerance_m=VIA_M, max_steps=60)
    arm.rotate_to_yaw(yaw0 - sign * PUSH_BEHIND_RAD)
    arm.move_to(start, max_steps=40)
    log.info("door push from %s (reached %s), open %.0f deg, step %d", np.round(start, 3), np.round(arm.position, 3),
             np.degrees(door.open_rad), arm.steps)
    end = door.open_rad + PUSH_PAST_RAD
    for phi in np.append(np.arange(-PUSH_BEHIND_RAD + ARC_STEP_RAD, end, ARC_STEP_RAD), end):
        arm.target_rotation = yaw_rotation(yaw0 + sign * phi) @ arm.down
        arm.move_to(at(phi), tolerance_m=0.015, max_steps=10)
    arm.hold(6)
    log.info("door push ended at %s (step %d)", np.round(arm.position, 3), arm.steps)
    back = np.array([*(arm.position[:2] + door.outward * 0.06), arm.position[2]])
    arm.move_to(back, tolerance_m=VIA_M, max_steps=15)
    arm.move_to(back + np.array([0.0, 0.0, 0.10]), tolerance_m=VIA_M, max_steps=20)
    arm.target_rotation = arm.down


# ---------------------------------------------------------------------- the episode's two goals, verified
#: Tries of the mug's insertion (a grasp that did not lift, a mug seen outside after the release) and of the push.
MAX_TRIES = 3
#: A mug seen with its bottom this far below the cavity's floor is on the table: not inside.
BELOW_FLOOR_M = 0.015


def put_in_and_close(planner, sim, arm: Arm, labels, subject_phrase: str, appliance_phrase: str, episode,
                     close: bool = True) -> None:
    """Puts the subject into the appliance through its open door, then closes the door; each verified by looking.

    Sets ``episode.failure`` ("grasp", "place", "articulation") when the tries run out.
    """
    from .grounding import by_id, find_one   # noqa: PLC0415 (grounding imports nothing of this module)
    from .microwave import door_closed, find_door, object_points   # noqa: PLC0415

    scene = planner._observe(sim, labels)
    appliance, mug = find_one(scene, appliance_phrase), find_one(scene, subject_phrase)
    episode.chosen, episode.chosen_name = mug.id, mug.name
    door = find_door(object_points(planner._last_obs, appliance.id))
    log.info("door: hinge %s, open %.0f deg, closes along %s, width %.3f, out %s", np.round(door.hinge, 3),
             np.degrees(door.open_rad), np.round(door.closed_dir, 2), door.length, np.round(door.outward, 2))
    floor = door.bottom + FLOOR_ABOVE_BOTTOM_M
    inside = False
    for attempt in range(MAX_TRIES):
        heights = HeightMap(planner._last_obs, hand_at=arm.position)
        handle = handle_point(mug, heights)
        if handle is None:
            episode.failure, episode.message = "grasp", f"no handle seen on the {mug.name}"
            return
        point, direction, _ = handle
        pointing = -direction   # the level hand points from the handle at the mug's middle
        low_before, start_z = heights.low_z(mug.id), float(point[2])
        held = grasp_handle(arm, point, pointing)
        scene = planner._observe(sim, labels)
        low_now = HeightMap(planner._last_obs, hand_at=arm.position).low_z(mug.id)
        droop = 0.0 if low_before is None or low_now is None else (
            low_before + float(arm.position[2]) - start_z - low_now)
        lifted = by_id(scene, mug.id)
        rose = None if lifted is None else lifted.top_z - mug.top_z
        log.info("handle grasp %d at %s: held %s, rose %s (step %d)", attempt + 1, np.round(point, 3), held,
                 None if rose is None else round(rose, 3), arm.steps)
        episode.grasp_attempts = attempt + 1
        if not held or rose is None or rose < LIFTED_M:
            arm.set_gripper(OPEN)
            arm.move_to(arm.position - np.array([*pointing, 0.0]) * HANDLE_PRE_M, tolerance_m=VIA_M, max_steps=20)
            scene = planner._observe(sim, labels)
            mug = by_id(scene, mug.id, mug)
            continue
        log.info("held mug's lowest points %.3f m below level", droop)
        carry_in(arm, door, point, mug, pointing, droop_m=droop)
        if arm.succeeded:
            return
        scene = planner._observe(sim, labels)   # inside? look again (seen nowhere: hidden by the walls)
        seen = by_id(scene, mug.id)
        inside = seen is None or seen.bottom_z > floor - BELOW_FLOOR_M
        episode.verified_on_target = inside
        log.info("mug inside after try %d: %s (seen %s)", attempt + 1, inside,
                 None if seen is None else np.round(seen.centroid, 3))
        if inside:
            break
        mug = seen
    if not inside:
        episode.failure = "grasp" if episode.verified_on_target is None else "place"
        episode.message = f"{mug.name} not put in the {appliance_phrase}"
        return
    if not close:
        return
    for attempt in range(MAX_TRIES):
        scene = planner._observe(sim, labels)
        appliance = by_id(scene, appliance.id, appliance)
        points = object_points(planner._last_obs, appliance.id)
        if attempt and door_closed(points, door):
            return
        try:
            now = find_door(points)
        except InvalidInputError:   # no open panel seen any more: shut
            return
        close_door(arm, Door(hinge=door.hinge, open_dir=now.open_dir, closed_dir=door.closed_dir,
                             length=door.length, outward=door.outward, bottom=door.bottom, top=door.top))
        if arm.succeeded:
            return
    episode.failure, episode.message = "articulation", f"the {appliance_phrase} door did not close"
