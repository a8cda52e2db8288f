"""Category words for LIBERO instances: what instructions call them, never which instance it is.

LIBERO names instances ``akita_black_bowl_1``, ``akita_black_bowl_2``...; the task goal always names ``_1``,
so the number would tell a planner the answer. Labels keep only the category word the instructions use.
"""

from __future__ import annotations

import re

#: Instances that belong to the robot: removed from segmentation and labels.
ROBOT_INSTANCE_PREFIXES = ("MountedPanda", "OnTheGroundPanda", "PandaGripper", "RethinkMount", "Panda", "mount",
                           "gripper")

#: LIBERO asset names whose words differ from what the instructions say.
CATEGORY_WORDS = {
    "akita_black_bowl": "black bowl",
    "glazed_rim_porcelain_ramekin": "ramekin",
    "cookies": "cookie box",
    "flat_stove": "flat stove",
    "chefmate_8_frypan": "frying pan",
    "white_yellow_mug": "white yellow mug",
    "red_coffee_mug": "red coffee mug",
    "porcelain_mug": "white mug",
    "black_book": "black book",
    "yellow_book": "yellow book",
    "new_salad_dressing": "salad dressing",
    "bbq_sauce": "bbq sauce",
}

_NUMBER_SUFFIX = re.compile(r"_\d+$")


def is_robot(instance: str) -> bool:
    """True for the arm, gripper and mount instances robosuite adds."""
    return instance.startswith(ROBOT_INSTANCE_PREFIXES)


def category_word(instance: str) -> str:
    """``"akita_black_bowl_2"`` -> ``"black bowl"``; unknown assets keep their name with spaces."""
    base = _NUMBER_SUFFIX.sub("", instance)
    return CATEGORY_WORDS.get(base, base.replace("_", " "))
