"""The planner on LIBERO: instruction parsing, grounding with world-model queries, Panda skills over OSC_POSE.

    planner = LiberoPlanner(WorldModel.load("geometric"))
    obs, info = env.reset(options={"init_state": 0})          # env: joyai/LIBERO-v0, render_on_step=False
    episode = planner.run_episode(env, info["labels"], info["instruction"], max_steps=220)

Files: ``instructions.py`` (parse), ``grounding.py`` (which object), ``control.py`` (the arm),
``skills.py`` (pick, place), ``articulation.py`` / ``articulation_plan.py`` (drawers, knobs, pushes),
``planner.py`` (the loop). ``joyai_embodied.evaluation.libero`` scores it.
"""

from .grounding import GroundingError, numbered_labels, resolve_subject
from .instructions import PickPlaceGoal, parse_pick_place
from .planner import DEFAULT_MAX_STEPS, FAILURES, MAX_STEPS, LiberoEpisode, LiberoPlanner

__all__ = ["DEFAULT_MAX_STEPS", "FAILURES", "GroundingError", "LiberoEpisode", "LiberoPlanner", "MAX_STEPS",
           "PickPlaceGoal", "numbered_labels", "parse_pick_place", "resolve_subject"]
