"""Articulation instructions for LIBERO's Panda (parsing), stove knobs and pushes; drawers are in ``drawers.py``,
doors in ``doors.py``.

Every knob and contact point comes from the observation: the labelled object's points in the depth image
(``HeightMap``) and the world model's box of it. A knob is the stove's highest observed part.
Nothing here reads simulator poses or joint positions.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from ...errors import InvalidInputError
from ...spatial import view_axes
from ...types import SceneObject
from .control import CLOSE, OPEN, VIA_M, Arm, fold_half_turn, yaw_rotation
from .heights import HeightMap
from .instructions import PickPlaceGoal
from .skills import FINGERTIP_BELOW_M

log = logging.getLogger(__name__)


#: Points within this of the stove's highest point form its knob.
KNOB_BAND_M = 0.012
#: Fingertips close this far below the knob's top.
KNOB_GRASP_DEPTH_M = 0.015
#: Turn the wrist by this much to turn a knob on (LIBERO: on beyond 0.5 rad).
KNOB_TURN_RAD = 1.0
#: Push with the closed fingertips this high above the pushed object's bottom (a plate's rim is ~1.5 cm).
PUSH_HEIGHT_M = 0.006
#: A pushed object ends this far past the reference's edge (a hand's width: clear of it, still beside it).
PUSH_GAP_M = 0.04
#: "In front of" a reference: within the middle part of its width (this fraction of its half width).
IN_LINE_FRACTION = 0.4
#: Room wanted between a pushed object's goal footprint and its neighbours' boxes.
PUSH_ROOM_M = 0.008
#: The hand needs this much room around the point behind the object to come down there.
HAND_ROOM_RADIUS_M = 0.05
#: Something observed this far above the pushed object's top near that point blocks the hand.
HAND_BLOCK_ABOVE_M = 0.02
#: Start a push this far behind the object's edge (little: a cabinet may stand close behind it).
PUSH_BACKOFF_M = 0.015
#: The push instruction's side words as the project's camera-view directions.
PUSH_DIRECTIONS = {"front": "in_front_of", "back": "behind", "right": "right_of", "left": "left_of"}
#: An object that moved less than this after a push was not pushed.
PUSHED_M = 0.03

_OPEN_DRAWER = re.compile(r"^open the (?:(?P<level>top|middle|bottom) )?drawer(?: of the (?P<obj>.+?))?$")
_TURN = re.compile(r"^turn (?P<how>on|off) the (?P<obj>.+)$")
_PUSH = re.compile(r"^push the (?P<obj>.+?) to the (?P<where>front|back|left|right) of the (?P<ref>.+)$")
_ON_IT = re.compile(r"^(?:put|place) the (?P<obj>.+?) on (?:it|top of it)$")
_PUT_IN_DRAWER = re.compile(r"^(?:put|place) the (?P<obj>.+?) (?:in|into|inside) the (?P<level>top|middle|bottom) "
                            r"drawer of the (?P<cab>.+)$")
_PUT_IN_DOOR = re.compile(r"^(?:put|place) the (?P<obj>.+?) (?:in|into|inside) the (?P<app>microwave)$")
_INSIDE = re.compile(r"^(?:put|place) the (?P<obj>.+?) (?:inside|in it|in the drawer|into it)$")


@dataclass(frozen=True)
class ArticulationGoal:
    """One articulation in the instruction's words: action "open_drawer", "turn_on", "turn_off", "push", or
    "into_door" / "close_door" (a hinged appliance: ``obj`` the appliance, ``reference`` what goes in)."""

    instruction: str
    action: str
    obj: str                      # category words of what is moved ("cabinet", "stove", "plate")
    level: str = "top"            # drawers: "top", "middle", "bottom"
    where: str = ""               # pushes: "front", "back", "left", "right" of ``reference``
    reference: str = ""


@dataclass(frozen=True)
class IntoDrawerGoal:
    """Put ``subject`` into the drawer an earlier goal of the same instruction opened."""

    instruction: str
    subject: str


def parse_articulation(text: str) -> list[ArticulationGoal | IntoDrawerGoal | PickPlaceGoal]:
    """"open the top drawer and put the bowl inside" -> [open top drawer of the cabinet, bowl into it];
    "turn on the stove and put the moka pot on it" -> [turn on the stove, moka pot onto the stove].

    Raises:
        InvalidInputError: (field "instruction") a part is not an articulation this planner knows.
    """
    text = " ".join(text.lower().strip().rstrip(".").split())
    goals: list[ArticulationGoal | IntoDrawerGoal | PickPlaceGoal] = []
    for part in re.split(r" and (?=(?:put|place|open|turn|push|close) )", text):
        if (m := _OPEN_DRAWER.match(part)):
            goals.append(ArticulationGoal(text, "open_drawer", m["obj"] or "cabinet", level=m["level"] or "top"))
        elif (m := _TURN.match(part)):
            goals.append(ArticulationGoal(text, f"turn_{m['how']}", m["obj"]))
        elif (m := _PUSH.match(part)):
            goals.append(ArticulationGoal(text, "push", m["obj"], where=m["where"], reference=m["ref"]))
        elif (m := _PUT_IN_DRAWER.match(part)):
            # The drawer is already open (nothing asked to open it): locate it, put the object in.
            goals.append(ArticulationGoal(text, "locate_drawer", m["cab"], level=m["level"]))
            goals.append(IntoDrawerGoal(text, m["obj"]))
        elif (m := _PUT_IN_DOOR.match(part)):
            # A hinged door, open at the start: in through the opening ("close it" then swings the door shut).
            goals.append(ArticulationGoal(text, "into_door", m["app"], reference=m["obj"]))
        elif part == "close it" and goals and getattr(goals[-1], "action", "") == "into_door":
            goals.append(ArticulationGoal(text, "close_door", goals[-1].obj, reference=goals[-1].reference))
        elif part == "close it" and goals and isinstance(goals[-1], IntoDrawerGoal):
            located = next(g for g in reversed(goals) if isinstance(g, ArticulationGoal))
            goals.append(ArticulationGoal(text, "close_drawer", located.obj, level=located.level))
        elif (m := _INSIDE.match(part)) and goals and getattr(goals[-1], "action", "") == "open_drawer":
            goals.append(IntoDrawerGoal(text, m["obj"]))
        elif (m := _ON_IT.match(part)) and goals and getattr(goals[-1], "action", "") in ("turn_on", "turn_off"):
            # "turn on the stove and put the moka pot on it": "it" is what was turned.
            goals.append(PickPlaceGoal(text, m["obj"], target=goals[-1].obj, preposition="on"))
        else:
            raise InvalidInputError("instruction", "open a drawer, turn a knob, push an object, or put X inside",
                                    repr(part))
    return goals


# ---------------------------------------------------------------------- knobs
def find_knob(stove: SceneObject, heights: HeightMap) -> tuple[np.ndarray, float]:
    """The knob's grasp point (world m) and the gripper yaw across its narrow side (rad, about the start)."""
    mine = heights.points[heights.ids == stove.id]
    if len(mine) == 0:
        centre = np.asarray(stove.centroid, dtype=np.float64).copy()
        centre[2] = stove.top_z - KNOB_GRASP_DEPTH_M
        return centre, 0.0
    top = float(np.percentile(mine[:, 2], 99.5))
    knob = mine[mine[:, 2] > top - KNOB_BAND_M]
    point = np.array([*np.median(knob[:, :2], axis=0), top - KNOB_GRASP_DEPTH_M])
    yaw = 0.0
    if len(knob) >= 5:
        values, vectors = np.linalg.eigh(np.cov((knob[:, :2] - knob[:, :2].mean(0)).T))
        if values[0] > 0 and values[1] / values[0] > 1.5:
            narrow = vectors[:, 0]   # fingers close across the knob's narrow side
            yaw = float(np.arctan2(narrow[1], narrow[0]))
    return point, yaw


def turn_knob(arm: Arm, point: np.ndarray, yaw: float, turn_rad: float) -> bool:
    """Grasps the knob at ``point`` and turns the wrist by ``turn_rad``; True when the fingers held it."""
    closing = arm.closing_axis
    yaw = fold_half_turn(yaw - float(np.arctan2(closing[1], closing[0])))
    hover = point + np.array([0.0, 0.0, 0.08])
    arm.set_gripper(OPEN)
    arm.target_rotation = yaw_rotation(yaw) @ arm.down
    arm.move_to(np.array([*arm.position[:2], max(arm.position[2], hover[2])]), tolerance_m=VIA_M, max_steps=20)
    arm.move_to(hover, tolerance_m=VIA_M, max_steps=60)
    arm.rotate_to_yaw(yaw)
    arm.move_to(point, max_steps=40)
    arm.set_gripper(CLOSE)
    held = arm.holding()
    log.info("knob at %s: reached %s, fingers %.4f m", np.round(point, 3), np.round(arm.position, 3),
             arm.finger_width)
    for step in (0.5, 1.0):
        arm.rotate_to_yaw(yaw + step * turn_rad, max_steps=30)
    arm.set_gripper(OPEN)
    arm.move_to(hover, tolerance_m=VIA_M, max_steps=30)
    arm.target_rotation = arm.down
    return held


# ---------------------------------------------------------------------- pushes
def push_goal(obj: SceneObject, reference: SceneObject, where: str, cam_to_world: np.ndarray,
              others: Sequence[SceneObject] = ()) -> np.ndarray:
    """Where to push ``obj`` (xy, world m): beside ``reference`` on its ``where`` side as the camera sees it.

    "front" is toward the camera along its optical axis (the project's ``in_front_of``), "left"/"right"
    along the camera's x. Along that axis the object ends a gap past the reference's edge; across it,
    in line with the reference, shifted within the middle part of its width to stay clear of ``others``.
    """
    axis = view_axes(cam_to_world)[PUSH_DIRECTIONS[where]][:2]
    across = np.array([-axis[1], axis[0]])
    ref = np.asarray(reference.centroid)[:2]
    own = _half_extent_along(obj, axis)
    beyond = _half_extent_along(reference, axis) + own + PUSH_GAP_M
    half_width = _half_extent_along(reference, across) * IN_LINE_FRACTION
    radius = float(max(obj.extent[0], obj.extent[1])) / 2
    best, best_score = ref + axis * beyond, -np.inf
    for sideways in np.linspace(-half_width, half_width, 25):
        spot = ref + axis * beyond + across * sideways
        # Room to the nearest other object's oriented box (a cream cheese box is long and thin: its
        # bounding circle would push the goal off the reference's front for nothing).
        room = min((_gap_to_box(spot, o) - radius for o in others if o.id not in (obj.id, reference.id)),
                   default=np.inf)
        # Clear of every neighbour first (a plate set down on a cheese box's edge slides off it), then in line.
        score = (0.0 if room >= PUSH_ROOM_M else room - PUSH_ROOM_M) - 1e-3 * abs(sideways) / max(half_width, 1e-9)
        if score > best_score:
            best, best_score = spot, score
    return best


def _gap_to_box(xy: np.ndarray, obj: SceneObject) -> float:
    """Horizontal distance (m) from ``xy`` to ``obj``'s oriented box (0 inside it)."""
    axes = np.asarray(obj.obb_rotation, dtype=np.float64)[:2, :2]
    offset = np.asarray(xy, dtype=np.float64)[:2] - np.asarray(obj.centroid, dtype=np.float64)[:2]
    local = np.array([offset @ (axes[:, i] / max(np.linalg.norm(axes[:, i]), 1e-9)) for i in range(2)])
    outside = np.maximum(np.abs(local) - np.asarray(obj.extent[:2], dtype=np.float64) / 2, 0.0)
    return float(np.linalg.norm(outside))


def push_start(obj: SceneObject, goal_xy: np.ndarray) -> np.ndarray:
    """Where the closed fingertips start a push of ``obj`` toward ``goal_xy`` (world m): just behind its edge."""
    start_xy = np.asarray(obj.centroid, dtype=np.float64)[:2]
    direction = np.asarray(goal_xy) - start_xy
    direction /= max(float(np.linalg.norm(direction)), 1e-9)
    radius = _half_extent_along(obj, direction)
    return np.array([*(start_xy - direction * (radius + PUSH_BACKOFF_M)), obj.bottom_z + PUSH_HEIGHT_M])


def push_blocked(obj: SceneObject, goal_xy: np.ndarray, heights: HeightMap) -> bool:
    """Whether something observed behind ``obj`` (a cabinet's front) leaves the hand no room to push from there."""
    start = push_start(obj, goal_xy)
    return heights.top_near(start[:2], HAND_ROOM_RADIUS_M, obj.id) > obj.top_z + HAND_BLOCK_ABOVE_M


def table_spot(obj: SceneObject, goal_xy: np.ndarray) -> SceneObject:
    """A support to set ``obj`` down on at ``goal_xy``: the table under it (a push done as a low carry)."""
    return SceneObject(id=-1, name="table", centroid=np.array([goal_xy[0], goal_xy[1], obj.bottom_z - 0.005]),
                       extent=np.array([0.2, 0.2, 0.01]))


def push(arm: Arm, obj: SceneObject, goal_xy: np.ndarray, obstacles: Sequence[SceneObject]) -> None:
    """Pushes ``obj`` along the table until its centre reaches ``goal_xy``, fingers closed, from behind it."""
    start_xy = np.asarray(obj.centroid, dtype=np.float64)[:2]
    direction = np.asarray(goal_xy) - start_xy
    distance = float(np.linalg.norm(direction))
    if distance < 1e-3:
        return
    direction /= distance
    radius = _half_extent_along(obj, direction)
    z = obj.bottom_z + PUSH_HEIGHT_M + FINGERTIP_BELOW_M
    behind = np.array([*(start_xy - direction * (radius + PUSH_BACKOFF_M)), z])
    # The hand is long along the fingers' closing axis: turn it across the push so that it fits the
    # narrow gap behind the object (a cabinet's handles) and pushes with its flat side.
    closing = arm.closing_axis
    across = np.array([-direction[1], direction[0]])
    yaw = fold_half_turn(float(np.arctan2(across[1], across[0]) - np.arctan2(closing[1], closing[0])))
    arm.target_rotation = yaw_rotation(yaw) @ arm.down
    arm.set_gripper(CLOSE)
    tops = [o.top_z for o in obstacles] + [obj.top_z]
    safe = max(max(tops) + 0.06, arm.position[2])
    arm.move_to(np.array([*arm.position[:2], safe]), tolerance_m=VIA_M, max_steps=30)
    arm.move_to(np.array([*behind[:2], safe]), tolerance_m=VIA_M, max_steps=60)
    arm.move_to(behind, max_steps=40)
    end = np.array([*(np.asarray(goal_xy) - direction * radius), z])
    log.info("push from %s (reached %s) to %s", np.round(behind, 3), np.round(arm.position, 3), np.round(end, 3))
    for fraction in (0.5, 1.0):   # slowly: a fast push slides the object past the goal
        arm.move_to(behind + (end - behind) * fraction, max_steps=50)
    log.info("push ended at %s (step %d)", np.round(arm.position, 3), arm.steps)
    arm.move_to(arm.position - np.array([*direction * 0.03, 0.0]), tolerance_m=VIA_M, max_steps=15)
    arm.move_to(arm.position + np.array([0.0, 0.0, 0.08]), tolerance_m=VIA_M, max_steps=20)
    arm.target_rotation = arm.down


def _half_extent_along(obj: SceneObject, direction: np.ndarray) -> float:
    axes = np.asarray(obj.obb_rotation, dtype=np.float64)[:2, :2]
    return float(sum(abs(axes[:, i] @ direction[:2]) * obj.extent[i] / 2 for i in range(2)))
