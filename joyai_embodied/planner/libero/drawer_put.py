"""Short moves for "open the drawer and put the bowl inside" within LIBERO's 300-step budget.

The bowl in front of the cabinet is set aside before the drawer opens (see ``clearing.py``), so the task
takes two grasps, two releases and a pull. The generic pick-and-place climbs over the tallest object in the
scene (a wine rack) and waits for the fingers to open fully; here the arm only clears what lies on its
way (from the observation), and releases by opening the fingers briefly before it rises.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping, Sequence

import numpy as np

from ...types import SceneObject
from .control import OPEN, VIA_M, Arm
from .grounding import by_id
from .heights import HeightMap
from .skills import (APPROACH_M, CARRY_CLEARANCE_M, LIFTED_M, PLACE_CLEARANCE_M, RIM_GRASP_WORDS, Grasp,
                     obstacles_on_the_way, pick)

log = logging.getLogger(__name__)

#: An object counts as on the way when its footprint comes this close to the straight carry path.
ON_THE_WAY_M = 0.06
#: Steps with the fingers opening before the hand rises: the object is free of them by then.
RELEASE_STEPS = 5
#: Grasps tried before the bowl counts as not picked.
MAX_GRASPS = 3


def on_the_way(objects: Sequence[SceneObject], start_xy: np.ndarray, goal_xy: np.ndarray,
               exclude: Sequence[int] = ()) -> list[SceneObject]:
    """The objects whose footprint lies within :data:`ON_THE_WAY_M` of the segment ``start_xy`` -> ``goal_xy``,
    except those the way leads away from (see :func:`.skills.obstacles_on_the_way`)."""
    return obstacles_on_the_way(objects, start_xy, goal_xy, ON_THE_WAY_M, exclude, skip_leading_away=True)


def carry_height(arm: Arm, goal: np.ndarray, obstacles: Sequence[SceneObject], hanging_m: float) -> float:
    """The end effector's height for a straight move to ``goal``: above ``obstacles`` with what it holds."""
    tops = [o.top_z + CARRY_CLEARANCE_M + hanging_m for o in obstacles]
    return max([float(goal[2])] + tops)


def travel(arm: Arm, goal: np.ndarray, obstacles: Sequence[SceneObject], hanging_m: float = 0.0) -> None:
    """Rises (only as high as what is on the way needs), moves across, comes down to ``goal``."""
    safe = carry_height(arm, goal, obstacles, hanging_m)
    if arm.position[2] < safe - VIA_M:
        # Rise and start across together: the first part of the way is the object's own air space.
        first = arm.position + 0.3 * (np.array([goal[0], goal[1], safe]) - arm.position)
        arm.move_to(np.array([first[0], first[1], safe]), tolerance_m=VIA_M, max_steps=30)
    arm.move_to(np.array([goal[0], goal[1], max(safe, goal[2])]), tolerance_m=VIA_M, max_steps=60)
    arm.move_to(goal, tolerance_m=VIA_M, max_steps=40)


def quick_pick(planner: Any, sim: Any, arm: Arm, labels: Mapping[int, str], subject: SceneObject,
               scene: Any, max_grasps: int = MAX_GRASPS) -> tuple[Grasp | None, Any]:
    """Picks ``subject`` (skills.pick's grasp choice) over a low path; verified by observing again.

    Returns:
        (the grasp or None when it was not lifted in ``max_grasps`` tries, the latest scene).
    """
    for attempt in range(max_grasps):
        subject = by_id(scene, subject.id, subject)
        before_top = subject.top_z
        others = [o for o in scene.objects if o.id != subject.id]
        way = on_the_way(others, arm.position, subject.centroid)
        log.debug("quick pick of %s from %s: on the way %s", subject.name, np.round(arm.position, 3),
                 [(o.name, round(o.top_z, 3)) for o in way])
        grasp = pick(arm, subject, way + [_hover_floor(subject)], HeightMap(planner._last_obs))
        scene = planner._observe(sim, labels)
        lifted = by_id(scene, subject.id)
        rise = None if lifted is None else lifted.top_z - before_top
        log.info("quick grasp %d of %s: rose %s m by step %d", attempt + 1, subject.name,
                 None if rise is None else round(rise, 3), arm.steps)
        if grasp is not None and rise is not None and rise > LIFTED_M:
            return grasp, scene
        if grasp is not None:
            arm.gripper = OPEN
            arm.hold(RELEASE_STEPS)
            scene = planner._observe(sim, labels)
    return None, scene


def quick_place(arm: Arm, grasp: Grasp, support: SceneObject, obstacles: Sequence[SceneObject],
                hanging_m: float) -> None:
    """Carries the held object over ``support``, releases it just above its top and rises clear."""
    release = np.asarray(support.centroid, dtype=np.float64) + grasp.offset
    release[2] = support.top_z + hanging_m + PLACE_CLEARANCE_M
    travel(arm, release + np.array([0.0, 0.0, 0.03]), obstacles, hanging_m)
    arm.move_to(release, max_steps=30)
    arm.gripper = OPEN
    arm.hold(RELEASE_STEPS)
    arm.move_to(release + np.array([0.0, 0.0, APPROACH_M * 0.7]), tolerance_m=VIA_M, max_steps=20)


def hanging_m(grasp: Grasp, subject: SceneObject) -> float:
    """How far the held object hangs below the end effector (a bowl: at most half its width, as in planner.py)."""
    hang = grasp.below_eef_m
    if any(word in subject.name.lower() for word in RIM_GRASP_WORDS):
        hang = min(hang, float(min(subject.extent[0], subject.extent[1])) * 0.5)
    return hang


def _hover_floor(obj: SceneObject) -> SceneObject:
    """A stand-in obstacle as high as the object itself, so the path to its hover never dips below its top."""
    return SceneObject(id=-2, name="floor", centroid=np.asarray(obj.centroid, dtype=np.float64),
                       extent=np.array([0.01, 0.01, float(obj.extent[2])]))
