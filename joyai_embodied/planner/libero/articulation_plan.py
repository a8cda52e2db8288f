"""Runs articulation instructions (drawers, knobs, pushes) for the LIBERO planner, verifying each by looking again.

Each articulation is checked on a new observation (the drawer's handle moved toward the robot, the knob
turned, the pushed object moved) and retried when the look shows it failed.
"""

from __future__ import annotations

import logging
from typing import Any, Mapping

import numpy as np

from ...spatial import scene_pivot
from .articulation import (KNOB_TURN_RAD, PUSHED_M, ArticulationGoal, IntoDrawerGoal, find_knob, parse_articulation,
                           push, push_blocked, push_goal, table_spot, turn_knob)
from .doors import put_in_and_close
from .drawers import (CLOSED_WITHIN_M, HANDLE_APPROACH_M, OPENED_M, close_drawer, closed_plane, drawer_target,
                      find_handle, handle_out_m, open_drawer, under_drawer_target)
from .skills import pick, place_on
from .control import VIA_M, Arm
from .grounding import by_id, find_one
from .heights import HeightMap
from .clearing import aside_spot, in_drawer_sweep
from .drawer_put import MAX_GRASPS, hanging_m, on_the_way, quick_pick, quick_place
from .instructions import PickPlaceGoal

log = logging.getLogger(__name__)

#: Articulation tries before the episode fails with "articulation".
MAX_ARTICULATION_ATTEMPTS = 2
#: A plate carried by its rim lands this fraction of its observed hand-to-centre offset from the hand.
RIM_CARRY_LANDING_FRACTION = 0.2
#: A placed object this near the opened drawer's interior centre (xy) is in the drawer.
DRAWER_HALF_WIDTH_M = 0.10
#: Before a second look at an object seen high over the drawer, the hand rises this much off it.
LOOK_AGAIN_RISE_M = 0.05
#: A knob whose observed top turned less than this did not turn.
KNOB_TURNED_RAD = 0.3


def articulate(planner: Any, sim: Any, arm: Arm, labels: Mapping[int, str], instruction: str, episode: Any) -> None:
    """Runs every goal of an articulation instruction; sets ``episode.failure`` when one fails.

    Args:
        planner: the LiberoPlanner (its observe and pick-and-place steps).
        sim: the unwrapped env.
        arm: the arm, with the episode's step budget.
        labels: instance id -> category word.
        instruction: the task's language.
        episode: the LiberoEpisode record to fill.

    Raises:
        InvalidInputError: an instruction part no skill here reads.
    """
    goals = parse_articulation(instruction)
    opened = None
    for index, goal in enumerate(goals):
        arm.succeeded = False
        arm.stop_on_success = index == len(goals) - 1
        if isinstance(goal, PickPlaceGoal):   # e.g. the moka pot onto the stove just turned on
            planner._one_goal(sim, arm, labels, goal, episode, first=True)
        elif isinstance(goal, IntoDrawerGoal):
            _put_into_drawer(planner, sim, arm, labels, goal, opened, episode)
        elif goal.action == "locate_drawer":   # already open: the observed handle is where it was pulled to
            scene = planner._observe(sim, labels)
            cabinet = find_one(scene, goal.obj)
            pivot = scene_pivot(scene.objects, planner._last_obs["cam_to_world"])
            opened = cabinet, find_handle(cabinet, goal.level, HeightMap(planner._last_obs), pivot), goal.level
        elif goal.action == "into_door":   # the mug into the microwave; a following "close it" shuts its door
            following = goals[index + 1] if index + 1 < len(goals) else None
            close = following is not None and following.action == "close_door"
            arm.stop_on_success = True
            put_in_and_close(planner, sim, arm, labels, goal.reference, goal.obj, episode, close=close)
            return
        elif goal.action == "close_drawer":
            _close(planner, sim, arm, labels, goal, opened, episode)
        elif goal.action == "open_drawer":
            following = goals[index + 1] if index + 1 < len(goals) else None
            if isinstance(following, IntoDrawerGoal):
                _clear_drawer_path(planner, sim, arm, labels, goal, following, episode)
                if episode.failure != "none":
                    return
            opened = _open(planner, sim, arm, labels, goal, episode)
        elif goal.action in ("turn_on", "turn_off"):
            _turn(planner, sim, arm, labels, goal, episode)
        else:
            _push(planner, sim, arm, labels, goal, episode)
        if episode.failure != "none" or (arm.succeeded and arm.stop_on_success):
            return


def _open(planner: Any, sim: Any, arm: Arm, labels: Mapping[int, str], goal: ArticulationGoal, episode: Any):
    scene = planner._observe(sim, labels)
    cabinet = find_one(scene, goal.obj)
    pivot = scene_pivot(scene.objects, planner._last_obs["cam_to_world"])
    handle = find_handle(cabinet, goal.level, HeightMap(planner._last_obs), pivot)
    start = handle.centre.copy()
    before = handle.centre + handle.front * HANDLE_APPROACH_M
    way = on_the_way([o for o in scene.objects if o.id != cabinet.id], arm.position, before)
    way_top = max([o.top_z for o in way], default=cabinet.bottom_z)   # nothing on the way: the table it stands on
    for attempt in range(MAX_ARTICULATION_ATTEMPTS):
        open_drawer(arm, handle, way_top)
        if arm.succeeded:
            return cabinet, handle, goal.level
        scene = planner._observe(sim, labels)   # did the drawer's front move? look again
        cabinet = by_id(scene, cabinet.id, cabinet)
        handle = find_handle(cabinet, goal.level, HeightMap(planner._last_obs), pivot)
        moved = float((handle.centre - start)[:2] @ handle.front[:2])
        log.info("drawer %s try %d: front moved %.3f m", goal.level, attempt + 1, moved)
        if moved > OPENED_M:
            return cabinet, handle, goal.level
    episode.failure, episode.message = "articulation", f"the {goal.level} drawer did not open"
    return cabinet, handle, goal.level


def _clear_drawer_path(planner: Any, sim: Any, arm: Arm, labels: Mapping[int, str], goal: ArticulationGoal,
                       into: IntoDrawerGoal, episode: Any) -> None:
    """Sets the object to go into the drawer aside first when it stands where the opened drawer will be.

    Under an opened drawer no hand reaches its rim; LIBERO checks only the final state, so the order is free.
    """
    scene = planner._observe(sim, labels)
    cabinet, subject = find_one(scene, goal.obj), find_one(scene, into.subject)
    pivot = scene_pivot(scene.objects, planner._last_obs["cam_to_world"])
    heights = HeightMap(planner._last_obs)
    handle = find_handle(cabinet, goal.level, heights, pivot)
    if not in_drawer_sweep(subject, cabinet, handle):
        return
    spot = aside_spot(subject, cabinet, handle, heights, arm.home, scene.objects)
    log.info("the %s at %s stands in the %s drawer's path: set aside to %s", subject.name,
             np.round(subject.centroid, 3), goal.level, None if spot is None else np.round(spot, 3))
    if spot is None:
        return
    episode.chosen, episode.chosen_name = subject.id, subject.name
    grasp, scene = quick_pick(planner, sim, arm, labels, subject, scene)
    if grasp is None:
        episode.failure, episode.message = "grasp", f"{subject.name} not lifted to set it aside"
        return
    others = [o for o in scene.objects if o.id != subject.id]
    quick_place(arm, grasp, table_spot(subject, spot), on_the_way(others, arm.position, spot),
                hanging_m(grasp, subject))
    log.info("set aside by step %d", arm.steps)


def _put_into_drawer(planner: Any, sim: Any, arm: Arm, labels: Mapping[int, str], goal: IntoDrawerGoal,
                     opened: Any, episode: Any) -> None:
    """Picks the goal's subject and releases it over the opened drawer's floor; verified by looking again."""
    cabinet, handle, level = opened
    floor = drawer_target(cabinet, handle, level)
    scene = planner._observe(sim, labels)
    subject = find_one(scene, goal.subject)
    episode.chosen, episode.chosen_name = subject.id, subject.name
    plane = None
    if level != "top":   # under another drawer: come down in front of the closed drawers' handles
        pivot = scene_pivot(scene.objects, planner._last_obs["cam_to_world"])
        plane = closed_plane(by_id(scene, cabinet.id, cabinet), level, HeightMap(planner._last_obs), pivot)
    for attempt in range(MAX_ARTICULATION_ATTEMPTS):
        # Once released over the drawer, one grasp only: a bowl low in the drawer is not lifted (~100 steps each).
        grasp, scene = quick_pick(planner, sim, arm, labels, subject, scene, max_grasps=1 if attempt else MAX_GRASPS)
        if grasp is None and attempt > 0:
            # Released over the drawer once and now not to be lifted: it lies low in the drawer (a bowl
            # leaning on the front wall slid in); LIBERO checks the final state, so close the drawer on it.
            log.info("%s not lifted again: taken as in the drawer", subject.name)
            return
        if grasp is None:
            episode.failure, episode.message = "grasp", f"{subject.name} not lifted"
            return
        if plane is not None:
            radius = float(max(subject.extent[0], subject.extent[1])) / 2
            hand_behind = float(np.asarray(grasp.offset)[:2] @ -handle.front[:2])
            floor = under_drawer_target(cabinet, handle, plane, radius, hand_behind)
            log.info("under the drawer above: aim %s (hand %.3f m behind the object's centre)",
                     np.round(floor.centroid, 3), hand_behind)
        # The opened drawer's walls stand about as high as the cabinet: carry over the cabinet's height.
        quick_place(arm, grasp, floor, [cabinet], hanging_m(grasp, subject))
        arm.hold(4)
        if arm.succeeded:
            return
        scene = planner._observe(sim, labels)   # in the drawer? look again
        seen = by_id(scene, subject.id)
        if seen is not None and seen.bottom_z >= float(handle.centre[2]):
            # Seen high: it may lean on a finger that has just let go. Move the hand off and look once more.
            arm.move_to(arm.position + np.array([0.0, 0.0, LOOK_AGAIN_RISE_M]), tolerance_m=VIA_M, max_steps=10)
            scene = planner._observe(sim, labels)
            seen = by_id(scene, subject.id)
        # Over the drawer's interior (about 20 cm wide) counts: re-grasping a bowl already in the drawer
        # (measured: seen 7 cm off the interior's centre) only pulls it out again.
        # ...and below the handle's height: a bowl hanging on the handle above is over the interior too.
        episode.verified_on_target = bool(seen is not None and np.hypot(
            *(np.asarray(seen.centroid)[:2] - np.asarray(floor.centroid)[:2])) < DRAWER_HALF_WIDTH_M
            and seen.bottom_z < float(handle.centre[2]))
        log.info("into the drawer try %d: seen inside %s (step %d)", attempt + 1, episode.verified_on_target,
                 arm.steps)
        if episode.verified_on_target:
            return
        subject = by_id(scene, subject.id, subject)


def _close(planner: Any, sim: Any, arm: Arm, labels: Mapping[int, str], goal: ArticulationGoal, opened: Any,
           episode: Any) -> None:
    """Pushes the opened drawer shut, past the plane where the other (closed) drawers' handles are seen;
    verified by its handle seen back in that plane, else pushed again from the new observation."""
    cabinet, handle, _ = opened
    scene = planner._observe(sim, labels)
    pivot = scene_pivot(scene.objects, planner._last_obs["cam_to_world"])
    heights = HeightMap(planner._last_obs)
    cabinet = by_id(scene, cabinet.id, cabinet)
    plane = closed_plane(cabinet, goal.level, heights, pivot)
    for attempt in range(MAX_ARTICULATION_ATTEMPTS):
        out = handle_out_m(cabinet, handle, plane)
        closed_at = None if plane is None else handle.centre - handle.front * out
        close_drawer(arm, handle, closed_at)
        if arm.succeeded:
            return
        scene = planner._observe(sim, labels)   # is the drawer's front back in the closed plane? look again
        cabinet = by_id(scene, cabinet.id, cabinet)
        heights = HeightMap(planner._last_obs)
        handle = find_handle(cabinet, goal.level, heights, pivot)
        plane = closed_plane(cabinet, goal.level, heights, pivot)
        out = handle_out_m(cabinet, handle, plane)
        log.info("drawer %s close try %d: handle %.3f m out of the closed plane", goal.level, attempt + 1, out)
        if out < CLOSED_WITHIN_M:
            return
    episode.failure, episode.message = "articulation", f"the {goal.level} drawer did not close"


def _turn(planner: Any, sim: Any, arm: Arm, labels: Mapping[int, str], goal: ArticulationGoal, episode: Any) -> None:
    scene = planner._observe(sim, labels)
    stove = find_one(scene, goal.obj)
    sign = 1.0 if goal.action == "turn_on" else -1.0
    point, yaw = find_knob(stove, HeightMap(planner._last_obs))
    for attempt in range(MAX_ARTICULATION_ATTEMPTS):
        turn_knob(arm, point, yaw, sign * KNOB_TURN_RAD)
        if arm.succeeded:
            return
        scene = planner._observe(sim, labels)   # did the knob turn? look again
        stove = by_id(scene, stove.id, stove)
        new_point, new_yaw = find_knob(stove, HeightMap(planner._last_obs))
        turned = abs(float((new_yaw - yaw + np.pi / 2) % np.pi - np.pi / 2))
        log.info("knob try %d: turned %.2f rad", attempt + 1, turned)
        if turned > KNOB_TURNED_RAD:
            return
        point, yaw = new_point, new_yaw
    episode.failure, episode.message = "articulation", f"the {goal.obj} knob did not turn"


def _push(planner: Any, sim: Any, arm: Arm, labels: Mapping[int, str], goal: ArticulationGoal, episode: Any) -> None:
    scene = planner._observe(sim, labels)
    obj, reference = find_one(scene, goal.obj), find_one(scene, goal.reference)
    episode.chosen, episode.chosen_name = obj.id, obj.name
    for attempt in range(MAX_ARTICULATION_ATTEMPTS):
        target = push_goal(obj, reference, goal.where, planner._last_obs["cam_to_world"], scene.objects)
        before = np.asarray(obj.centroid)[:2].copy()
        obstacles = [o for o in scene.objects if o.id != obj.id]
        if push_blocked(obj, target, HeightMap(planner._last_obs)):
            # No room behind it for the hand (a cabinet's handles): grasp its rim and carry it there low.
            grasp = pick(arm, obj, obstacles, HeightMap(planner._last_obs))
            log.info("push blocked behind the %s: carried it instead (held %s)", obj.name, grasp is not None)
            if grasp is not None:
                # Closing on a flat rim slides the object a few cm: where it hangs now sets the release.
                held = by_id(planner._observe(sim, labels), obj.id)
                if held is not None:
                    grasp.offset = arm.position - np.asarray(held.centroid)
                # A flat object held by its rim tips over as it is set down: its far edge meets the table first
                # and it slides toward the hand (measured: it ends ~1 cm from the hand, not 7 cm).
                grasp.offset[:2] *= RIM_CARRY_LANDING_FRACTION
                place_on(arm, grasp, table_spot(obj, target), obstacles)
        else:
            push(arm, obj, target, obstacles)
        if arm.succeeded:
            return
        scene = planner._observe(sim, labels)   # did it move, and is it there? look again
        obj = by_id(scene, obj.id, obj)
        moved = float(np.linalg.norm(np.asarray(obj.centroid)[:2] - before))
        left = float(np.linalg.norm(np.asarray(obj.centroid)[:2] - target))
        log.info("push try %d: moved %.3f m, %.3f m from the goal %s (now %s)", attempt + 1, moved, left,
                 np.round(target, 3), np.round(obj.centroid, 3))
        if left < PUSHED_M:
            return
    episode.failure, episode.message = "articulation", f"the {goal.obj} was not pushed to the {goal.where}"
