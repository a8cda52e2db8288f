"""The LIBERO planner: parsing, the two-bowl choice by world-model relations, one full episode by LIBERO's check.

Needs the ``libero`` extra (skipped without it). About a minute on two cores.
"""

import subprocess
import sys

import gymnasium as gym
import pytest

from joyai_embodied.errors import InvalidInputError
from joyai_embodied.planner.libero import parse_pick_place
from joyai_embodied.planner.libero.instructions import needs_articulation, parse_goals

SPATIAL = {
    0: ("between", ("plate", "ramekin")),
    1: ("next_to", ("ramekin",)),
    2: ("table_center", ()),
    3: ("on", ("cookie box",)),
    4: ("in_drawer", ("wooden cabinet",)),
}


def test_parses_libero_spatial_instructions():
    goal = parse_pick_place("pick up the black bowl between the plate and the ramekin and place it on the plate")
    assert (goal.subject, goal.clause, goal.references, goal.target) == ("black bowl", "between",
                                                                          ("plate", "ramekin"), "plate")
    goal = parse_pick_place("pick up the black bowl in the top drawer of the wooden cabinet and place it on the plate")
    assert (goal.clause, goal.references) == ("in_drawer", ("wooden cabinet",))
    goal = parse_pick_place("pick up the alphabet soup and place it in the basket")
    assert (goal.subject, goal.clause, goal.target, goal.preposition) == ("alphabet soup", None, "basket", "in")
    with pytest.raises(InvalidInputError, match="^instruction: "):
        parse_pick_place("open the top drawer of the cabinet")


def test_multi_step_instructions_become_goal_sequences():
    goals = parse_goals("put both the alphabet soup and the tomato sauce in the basket")
    assert [(g.subject, g.target, g.preposition) for g in goals] == [("alphabet soup", "basket", "in"),
                                                                      ("tomato sauce", "basket", "in")]
    goals = parse_goals("put the bowl on the plate and put the cream cheese in the bowl")
    assert [(g.subject, g.target) for g in goals] == [("bowl", "plate"), ("cream cheese", "bowl")]
    with pytest.raises(InvalidInputError, match="drawers, knobs"):
        parse_goals("put the black bowl in the bottom drawer of the cabinet and close it")
    assert needs_articulation("turn on the stove") and not needs_articulation("put the bowl on the stove")


libero = pytest.importorskip("libero.libero", reason="needs the libero extra")

import sim_envs  # noqa: E402
from joyai_embodied.evaluation.libero import goal_subject  # noqa: E402
from joyai_embodied.planner.libero import numbered_labels, resolve_subject  # noqa: E402
from libero_helpers import run_libero_episode  # noqa: E402


def _chosen_instance(info, chosen_id):
    return next(o["instance"] for o in info["ground_truth"]["objects"] if o["id"] == chosen_id)


@pytest.mark.parametrize("task_id", [0, 3])
def test_chooses_the_bowl_the_relation_names(wm, task_id):
    env = gym.make(sim_envs.LIBERO_ENV_ID, suite="libero_spatial", task_id=task_id, width=128, height=128,
                   render_on_step=False)
    try:
        for state in (0, 1):
            obs, info = env.reset(seed=state, options={"init_state": state})
            names = numbered_labels(obs["segmentation"], info["labels"])
            assert sorted(n for n in names.values() if "bowl" in n) == ["black bowl 1", "black bowl 2"]
            scene = wm.observe(obs, labels=names)
            goal = parse_pick_place(info["instruction"])
            assert (goal.clause, goal.references) == SPATIAL[task_id]
            choice = resolve_subject(wm, scene, goal)
            assert choice.queries, "the choice must come from world-model queries"
            # Only the test reads the goal, to check the planner's choice.
            assert _chosen_instance(info, choice.obj.id) == goal_subject(info["ground_truth"])
    finally:
        env.close()


def test_one_full_episode_passes_liberos_own_check(wm):
    episode, info, success = run_libero_episode(wm, "libero_spatial", 0, 0, 220)
    assert episode.success and episode.failure == "none", episode
    assert success
    assert episode.steps <= 220
    assert _chosen_instance(info, episode.chosen) == goal_subject(info["ground_truth"])


def test_cli_bad_suite_or_task_is_one_line_and_exit_2():
    for args in (["--libero", "libero_nope"], ["--libero", "libero_spatial", "--tasks", "12"],
                 ["--libero", "libero_spatial", "--init-states", "x-y"]):
        done = subprocess.run([sys.executable, "-m", "joyai_embodied.cli", "eval", *args], capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 2, done
        errors = [line for line in done.stderr.splitlines() if line.startswith("joyai-embodied eval:")]
        assert len(errors) == 1 and ("suite" in errors[0] or "tasks" in errors[0] or "init-states" in errors[0])


def test_evaluator_accepts_either_instance_a_both_goal_treats_alike():
    from joyai_embodied.evaluation.libero import goal_subjects
    both_pots = {"goal": [["On", "moka_pot_1", "flat_stove_1_cook_region"],
                          ["On", "moka_pot_2", "flat_stove_1_cook_region"], ["Turnon", "flat_stove_1"]]}
    assert goal_subjects(both_pots) == ["moka_pot_1", "moka_pot_2"]
    two_plates = {"goal": [["On", "white_mug_1", "plate_1"], ["On", "porcelain_mug_1", "plate_2"]]}
    assert goal_subjects(two_plates) == ["white_mug_1"]
    bowl_and_other_bowl = {"goal": [["On", "akita_black_bowl_1", "plate_1"], ["In", "akita_black_bowl_2", "basket_1"]]}
    assert goal_subjects(bowl_and_other_bowl) == ["akita_black_bowl_1"]
    assert goal_subjects({"goal": [["Open", "cabinet_top_region"]]}) == []
