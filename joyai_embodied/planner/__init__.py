"""Language-conditioned pick-and-place planning with the world model (the package's main job).

    from joyai_embodied.planner import Planner, parse_instruction, write_report
    planner = Planner(WorldModel.load("geometric"))
    episode = planner.run_episode(env, seed=3)      # env: joyai/TabletopSpatial-v0, action_mode="primitive"
    write_report([episode], "out/demo")

The command line front end is ``joyai-embodied demo`` (:mod:`joyai_embodied.commands.demo`).
"""

from .instructions import Goal, InstructionError, parse_instruction
from .planner import Planner
from .records import ActResult, Episode, ImaginationRecord, Plan, Query, Verification

__all__ = ["ActResult", "Episode", "Goal", "ImaginationRecord", "InstructionError", "Plan", "Planner", "Query",
           "Verification", "parse_instruction", "summarise", "write_report"]


def __getattr__(name: str):
    # The report writer needs pillow; load it only when asked for.
    if name in ("write_report", "summarise"):
        from . import report

        return getattr(report, name)
    raise AttributeError(name)
