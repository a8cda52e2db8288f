"""Parse the simulator's pick-and-place instructions into a structured :class:`Goal`.

The tabletop tasks use five templates (see ``sim_envs``); all are ``put <subject> on the <plate>``:

1. ``put the red cube on the green plate``                                   (named object)
2. ``put the object left of the blue cylinder on the green plate``           (relation to a reference)
3. ``put the cube left of the blue cylinder on the green plate``             (shape + relation)
4. ``put the object closest to the blue cylinder on the green plate``        (closest / farthest)
5. ``from the side camera, put the object behind the red cube on the green plate``  (another viewpoint)

Anything else raises :class:`InstructionError`, whose message starts with ``"cannot plan: "`` so the
planner can report it verbatim.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import JoyAIError
from ..spatial import DIRECTION_WORDS

#: Directional relations in instructions, mapped to the attribute of :class:`~joyai_embodied.Relation`
#: (the one direction vocabulary, :data:`joyai_embodied.spatial.DIRECTION_WORDS`).
RELATIONS = DIRECTION_WORDS
#: Distance superlatives (template 4), mapped to the relation key the planner uses.
SUPERLATIVES = {"closest to": "closest", "farthest from": "farthest"}
#: Cameras an instruction may take the perspective of (template 5).
VIEWPOINTS = ("front", "side", "top")

_RELATION_WORDS = "|".join(re.escape(r) for r in (*RELATIONS, *SUPERLATIVES))
_NAME = r"[a-z][a-z0-9_-]*(?: [a-z][a-z0-9_-]*)*"  # one or more words: "red cube", "mug"
_SENTENCE = re.compile(rf"^(?:from the (?P<viewpoint>[a-z]+) camera, )?put the (?P<subject>.+?) on the "
                       rf"(?P<place>{_NAME})$")
_RELATIONAL_SUBJECT = re.compile(rf"^(?P<head>{_NAME}?) ?(?P<relation>{_RELATION_WORDS}) the (?P<reference>{_NAME})$")
_NAMED_SUBJECT = re.compile(rf"^{_NAME}$")


class InstructionError(JoyAIError, ValueError):
    """The instruction matches none of the supported templates; the message says why."""

    def __init__(self, instruction: str, reason: str):
        self.instruction = instruction
        self.reason = reason
        super().__init__(f"cannot plan: {reason} (instruction: {instruction!r})")


@dataclass(frozen=True)
class Goal:
    """What an instruction asks for.

    Attributes:
        text: the normalised instruction (lower case, single spaces, no final full stop).
        template: which template it matched (1-5, see the module docstring).
        place: name of the object to place onto (``"green plate"``).
        target: full name of the object to pick (template 1), else None.
        shape: shape the picked object must have (template 3), else None.
        relation: ``"left_of"``, ``"right_of"``, ``"in_front_of"``, ``"behind"``, ``"closest"`` or
            ``"farthest"``; None for template 1.
        reference: name of the reference object of ``relation``, else None.
        viewpoint: camera the relation is judged from; None means the observing camera.
    """

    text: str
    template: int
    place: str
    target: str | None = None
    shape: str | None = None
    relation: str | None = None
    reference: str | None = None
    viewpoint: str | None = None

    def describe_subject(self) -> str:
        """The subject phrase in words, e.g. ``"the cube left of the blue cylinder"``."""
        if self.target is not None:
            return f"the {self.target}"
        words = {v: k for k, v in {**RELATIONS, **SUPERLATIVES}.items()}[self.relation]
        return f"the {self.shape or 'object'} {words} the {self.reference}"


def normalise(text: str) -> str:
    """Lower-cases, collapses whitespace and drops one final full stop."""
    return " ".join(text.lower().split()).removesuffix(".").strip()


def parse_instruction(text: str) -> Goal:
    """Parses one instruction into a :class:`Goal`.

    Args:
        text: the instruction, e.g. ``info["instruction"]``. Case, extra spaces and a final full stop
            are ignored.

    Returns:
        The structured goal.

    Raises:
        InstructionError: ``text`` is not a string or matches none of the five templates; the message
            starts with ``"cannot plan: "`` and says what was expected.
    """
    if not isinstance(text, str):
        raise InstructionError(repr(text), f"the instruction must be a string, got {type(text).__name__}")
    sentence = normalise(text)
    if not sentence:
        raise InstructionError(text, "the instruction is empty")
    match = _SENTENCE.match(sentence)
    if match is None:
        raise InstructionError(text, "expected 'put the <object> on the <place>', optionally preceded by "
                                     "'from the <camera> camera,'")
    viewpoint, subject, place = match.group("viewpoint"), match.group("subject"), match.group("place")
    if viewpoint is not None and viewpoint not in VIEWPOINTS:
        raise InstructionError(text, f"unknown camera {viewpoint!r}; expected one of {', '.join(VIEWPOINTS)}")

    relational = _RELATIONAL_SUBJECT.match(subject)
    if relational is None:
        if viewpoint is not None:
            raise InstructionError(text, "a camera viewpoint needs a relation such as 'the object left of the ...'")
        dangling = [w for w in (*RELATIONS, *SUPERLATIVES) if re.search(rf"\b{w}\b", subject)]
        if dangling:
            raise InstructionError(text, f"{dangling[0]!r} needs a reference: 'the object {dangling[0]} the <name>'")
        if not _NAMED_SUBJECT.match(subject) or subject.split()[0] == "object":
            raise InstructionError(text, f"cannot tell which object {subject!r} means; expected a name such as "
                                         "'red cube' or a relation such as 'object left of the blue cylinder'")
        return Goal(text=sentence, template=1, place=place, target=subject)

    head, words, reference = relational.group("head"), relational.group("relation"), relational.group("reference")
    if not head or " " in head:
        raise InstructionError(text, f"expected 'object' or a single shape word before {words!r}, got {head!r}")
    shape = None if head == "object" else head
    relation = SUPERLATIVES.get(words) or RELATIONS[words]
    if reference == place:
        raise InstructionError(text, f"the {place} is both the reference and the place to put the object")
    # The generator's templates; a shape with a superlative or a viewpoint is understood too.
    if viewpoint is not None:
        template = 5
    elif words in SUPERLATIVES:
        template = 4
    else:
        template = 3 if shape else 2
    return Goal(text=sentence, template=template, place=place, shape=shape, relation=relation,
                reference=reference, viewpoint=viewpoint)
