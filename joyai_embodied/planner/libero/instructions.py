"""Parses LIBERO pick-and-place instructions into a subject, a referring clause and a target.

Only the language is read: "pick up the black bowl between the plate and the ramekin and place it on
the plate" -> subject "black bowl", clause ("between", ["plate", "ramekin"]), target "plate", "on".
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from ...errors import InvalidInputError

#: Referring clauses after the subject's category, tried in order; each names its reference objects.
CLAUSES = (
    ("between", re.compile(r"^between the (?P<a>.+?) and the (?P<b>.+)$")),
    ("next_to", re.compile(r"^(?:next to|beside|near) the (?P<a>.+)$")),
    ("in_drawer", re.compile(r"^in the (?:top |middle |bottom )?drawer of the (?P<a>.+)$")),
    ("on", re.compile(r"^(?:on top of|on) the (?P<a>.+)$")),
    ("table_center", re.compile(r"^(?:from|at|in|on) (?:the )?(?:table center|center of the table)$")),
)
#: Prepositions of a placement: on / in a support, or on the table beside a reference (camera's view).
_PREPOSITIONS = r"(?P<prep>on top of|on|in front of|into|inside|in|to the left of|to the right of|behind)"
PREPOSITION_KEYS = {"on top of": "on", "on": "on", "in": "in", "into": "in", "inside": "in",
                    "to the left of": "left_of", "to the right of": "right_of", "in front of": "in_front_of",
                    "behind": "behind"}
_PICK_PLACE = re.compile(
    r"^(?:pick up|pick|put|place|move) the (?P<subject>.+?) and (?:place|put) it " + _PREPOSITIONS +
    r" the (?P<target>.+)$")
_PUT = re.compile(r"^(?:put|place|move) the (?P<subject>.+?) " + _PREPOSITIONS + r" the (?P<target>.+)$")
#: Category words a subject phrase may start with; the rest of the phrase is its referring clause.
_CLAUSE_START = re.compile(r"\s+(?=(?:between|next to|beside|near|in the|on top of|on the|from|at the|at table)\b)")


@dataclass(frozen=True)
class PickPlaceGoal:
    """What to move where, in the instruction's own words."""

    instruction: str
    subject: str                        # category words, e.g. "black bowl"
    clause: str | None = None           # "between", "next_to", "on", "in_drawer", "table_center" or None
    references: tuple[str, ...] = field(default_factory=tuple)
    target: str = ""
    preposition: str = "on"             # "on", "in", or beside: "left_of", "right_of", "in_front_of", "behind"
    any_of: bool = False                # "both moka pots": any object of the category not placed yet


def parse_pick_place(instruction: str) -> PickPlaceGoal:
    """Parses a LIBERO pick-and-place instruction.

    Raises:
        InvalidInputError: (field "instruction") the sentence is not a pick-and-place this parser knows.
    """
    if not isinstance(instruction, str) or not instruction.strip():
        raise InvalidInputError("instruction", "a non-empty sentence", repr(instruction))
    text = " ".join(instruction.lower().strip().rstrip(".").split())
    match = _PICK_PLACE.match(text) or _PUT.match(text)
    if not match:
        raise InvalidInputError("instruction", "'pick up the X [clause] and place it on|in the Y'", repr(instruction))
    phrase = match["subject"]
    parts = _CLAUSE_START.split(phrase, maxsplit=1)
    subject, clause, references = parts[0], None, ()
    if len(parts) == 2:
        for name, pattern in CLAUSES:
            found = pattern.match(parts[1])
            if found:
                clause, references = name, tuple(v for v in found.groupdict().values() if v)
                break
        else:
            raise InvalidInputError("instruction", "a referring clause such as 'next to the plate'", repr(parts[1]))
    return PickPlaceGoal(instruction, subject, clause, references, match["target"], PREPOSITION_KEYS[match["prep"]])


_BOTH = re.compile(r"^(?:put|place|pick up) both (?:the )?(?P<a>.+?) and (?:the )?(?P<b>.+?) "
                   r"(?P<prep>on top of|on|in|into|inside) the (?P<target>.+)$")
#: "put both moka pots on the stove": two objects of one category (plural noun), in any order.
_BOTH_PLURAL = re.compile(r"^(?:put|place|pick up) both (?:the )?(?P<plural>[a-z ]+?)s " + _PREPOSITIONS +
                          r" the (?P<target>.+)$")
_SECOND_STEP = re.compile(r" and (?=(?:put|place|pick up) the )")
#: Verbs of articulated-object skills (drawers, knobs, doors, pushing) this planner does not have.
ARTICULATION_VERBS = ("open", "close", "turn on", "turn off", "push")


def parse_goals(instruction: str) -> list[PickPlaceGoal]:
    """A LIBERO instruction as a sequence of pick-and-place goals (multi-step tasks give several).

    "put both the alphabet soup and the tomato sauce in the basket" -> two goals into the basket;
    "put the white mug on the plate and put the chocolate pudding ..." -> one goal per clause.

    Raises:
        InvalidInputError: (field "instruction") a part is not a pick-and-place; ``needs_articulation``
            tells whether it asks for a drawer, knob or push.
    """
    if not isinstance(instruction, str) or not instruction.strip():
        raise InvalidInputError("instruction", "a non-empty sentence", repr(instruction))
    text = " ".join(instruction.lower().strip().rstrip(".").split())
    if needs_articulation(text):
        raise InvalidInputError("instruction", "a pick-and-place without drawers, knobs or pushing (no such skill yet)",
                                repr(instruction))
    both = _BOTH.match(text)
    if both:
        tail = f" {both['prep']} the {both['target']}"
        return [parse_pick_place(f"put the {both['a']}{tail}"), parse_pick_place(f"put the {both['b']}{tail}")]
    plural = _BOTH_PLURAL.match(text)
    if plural and " and " not in plural["plural"]:
        goal = dataclasses.replace(parse_pick_place(f"put the {plural['plural']} {plural['prep']} the {plural['target']}"),
                                   instruction=instruction, any_of=True)
        return [goal, goal]
    return [parse_pick_place(part) for part in _SECOND_STEP.split(text)]


def needs_articulation(instruction: str) -> bool:
    """True when the instruction asks to open/close/turn/push something (a skill this planner lacks)."""
    text = " " + " ".join(instruction.lower().split()) + " "
    return any(f" {verb} " in text for verb in ARTICULATION_VERBS)
