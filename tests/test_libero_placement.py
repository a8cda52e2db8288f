"""LIBERO placement targets: side words ("the left plate"), beside spots ("to the right of"), compartments.

Parsing is pure; the scene tests need the ``libero`` extra (one reset each, a few seconds).
"""

import gymnasium as gym
import numpy as np
import pytest

from joyai_embodied.planner.libero.instructions import parse_goals


def test_parses_beside_plural_and_compartment_targets():
    goals = parse_goals("put the white mug on the plate and put the chocolate pudding to the right of the plate")
    assert [(g.subject, g.target, g.preposition) for g in goals] == [("white mug", "plate", "on"),
                                                                      ("chocolate pudding", "plate", "right_of")]
    goals = parse_goals("put both moka pots on the stove")
    assert [(g.subject, g.target, g.any_of) for g in goals] == [("moka pot", "stove", True)] * 2
    (goal,) = parse_goals("pick up the book and place it in the back compartment of the caddy")
    assert (goal.subject, goal.target, goal.preposition) == ("book", "back compartment of the caddy", "in")
    goals = parse_goals("put the white mug on the left plate and put the yellow and white mug on the right plate")
    assert [g.target for g in goals] == ["left plate", "right plate"]
    (goal,) = parse_goals("put the bowl in front of the plate")
    assert goal.preposition == "in_front_of"


libero = pytest.importorskip("libero.libero", reason="needs the libero extra")

import sim_envs  # noqa: E402
from joyai_embodied.planner.libero import numbered_labels  # noqa: E402
from joyai_embodied.planner.libero.placement import beside_spot, find_target  # noqa: E402
from joyai_embodied.spatial import view_axes  # noqa: E402


def _scene(wm, suite, task_id):
    env = gym.make(sim_envs.LIBERO_ENV_ID, suite=suite, task_id=task_id, width=128, height=128,
                   render_on_step=False)
    try:
        obs, info = env.reset(seed=0, options={"init_state": 0})
    finally:
        env.close()
    return obs, info, wm.observe(obs, labels=numbered_labels(obs["segmentation"], info["labels"]))


def test_left_and_right_plate_from_the_cameras_view(wm):
    obs, info, scene = _scene(wm, "libero_10", 4)
    left, right = find_target(wm, scene, "left plate"), find_target(wm, scene, "right plate")
    assert left.id != right.id
    # Only the test reads the simulator's positions: "left" in the image is the camera's -x.
    truth = {o["id"]: np.asarray(o["position"]) for o in info["ground_truth"]["objects"]}
    camera_right = view_axes(obs["cam_to_world"])["right_of"]
    assert truth[left.id][:2] @ camera_right[:2] < truth[right.id][:2] @ camera_right[:2]


def test_beside_spot_is_clear_of_the_reference_on_its_side(wm):
    obs, _, scene = _scene(wm, "libero_10", 6)
    plate = find_target(wm, scene, "plate")
    pudding = find_target(wm, scene, "chocolate pudding")
    spot = beside_spot(scene, obs["cam_to_world"], pudding, plate, "right_of")
    offset = np.asarray(spot.centroid)[:2] - np.asarray(plate.centroid)[:2]
    right = view_axes(obs["cam_to_world"])["right_of"][:2]
    assert offset @ right > max(plate.extent[:2]) / 2          # past the plate's edge, to the camera's right
    # ...and next to it: the pudding's edge within 1.5 cm of the plate's (2 cm put it out of LIBERO's region)
    assert offset @ right < max(plate.extent[:2]) / 2 + max(pudding.extent[:2]) / 2 + 0.015
    assert abs(offset @ np.array([-right[1], right[0]])) < 0.01  # in line with it
    assert abs(spot.top_z - plate.bottom_z) < 1e-6              # on the table
