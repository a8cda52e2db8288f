"""What the planner decided, did and checked: the records a report is made from.

:class:`Plan` (the decision, with every world-model :class:`Query` and :class:`ImaginationRecord`),
:class:`ActResult` (the primitive actions sent), :class:`Verification` (the world model's check after
acting) and :class:`Episode` (all of it, plus the simulator's success flag for scoring).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np

from ..types import ImaginedView, Scene, SceneObject
from .instructions import Goal


@dataclass(frozen=True)
class Query:
    """One question the planner asked the world model and what it answered (kept for the report).

    Attributes:
        kind: ``"observe"``, ``"find"``, ``"relation"``, ``"distance"``, ``"imagine"``, ``"predict"``
            or ``"verify"``.
        question: the question in words.
        answer: the answer in words.
        frame: frame of any directions (``"camera"``, ``"camera:side"``...).
        detail: JSON-serialisable facts behind the answer (booleans, distances, ids).
    """

    kind: str
    question: str
    answer: str
    frame: str = "camera"
    detail: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "question": self.question, "answer": self.answer, "frame": self.frame,
                "detail": self.detail}


@dataclass(frozen=True)
class ImaginationRecord:
    """An imagined view the planner used, and why."""

    label: str
    reason: str
    view: ImaginedView


@dataclass
class Plan:
    """The planner's decision for one instruction.

    Attributes:
        instruction: the instruction as given.
        goal: the parsed goal; None when the instruction could not be parsed.
        pick: the object to pick (its ``id`` is the segmentation id used in the pick action).
        place: the object to place onto.
        place_position: world (x, y, z) where the picked object's bottom centre goes.
        candidates: names of the objects the instruction could mean.
        rationale: why ``pick`` was chosen, in words.
        error: ``"cannot plan: ..."`` when no plan could be made; None otherwise.
        queries: every world-model query asked, in order.
        imagined: imagined views used.
        scene: the scene the plan was made on.
    """

    instruction: str
    goal: Goal | None = None
    pick: SceneObject | None = None
    place: SceneObject | None = None
    place_position: np.ndarray | None = None
    candidates: list[str] = field(default_factory=list)
    rationale: str = ""
    error: str | None = None
    queries: list[Query] = field(default_factory=list)
    imagined: list[ImaginationRecord] = field(default_factory=list)
    scene: Scene | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.pick is not None and self.place_position is not None


@dataclass
class ActResult:
    """What happened when a plan was executed.

    Attributes:
        observation: the last observation dict returned by the env.
        info: the last info dict returned by the env.
        steps: one entry per env step: the action sent and the env's ``action_error`` (or None).
        error: why execution stopped early (a failed primitive), or None.
    """

    observation: Mapping[str, Any]
    info: Mapping[str, Any]
    steps: list[dict[str, Any]]
    error: str | None = None


@dataclass
class Verification:
    """The world model's check, after acting, that the picked object rests on the plate."""

    verified: bool
    reason: str
    query: Query | None = None
    scene: Scene | None = None


@dataclass
class Episode:
    """One planned and executed task, with everything the report shows.

    ``success`` and ``target`` come from the simulator and are used only for scoring.
    """

    seed: int | None
    plan: Plan
    observation: Mapping[str, Any]
    act: ActResult | None = None
    verification: Verification | None = None
    success: bool = False
    target: Mapping[str, Any] | None = None
    seconds: float = 0.0

    @property
    def status(self) -> str:
        if not self.plan.ok:
            return "cannot plan"
        if self.act is not None and self.act.error:
            return "action failed"
        return "success" if self.success else "failure"

    @property
    def picked_intended(self) -> bool | None:
        """Whether the planner chose the object the task meant (None when unknown)."""
        if self.target is None or self.plan.pick is None:
            return None
        return int(self.plan.pick.id) == int(self.target.get("pick_id", -1))

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable summary (images are written separately by the report)."""
        plan = self.plan
        goal = plan.goal
        return {
            "seed": self.seed,
            "instruction": plan.instruction,
            "status": self.status,
            "success": bool(self.success),
            "verified": None if self.verification is None else bool(self.verification.verified),
            "verification": None if self.verification is None else self.verification.reason,
            "verified_matches_success": (None if self.verification is None
                                         else bool(self.verification.verified) == bool(self.success)),
            "error": plan.error or (self.act.error if self.act else None),
            "goal": None if goal is None else {
                "template": goal.template, "place": goal.place, "target": goal.target, "shape": goal.shape,
                "relation": goal.relation, "reference": goal.reference, "viewpoint": goal.viewpoint},
            "pick": None if plan.pick is None else {"id": int(plan.pick.id), "name": plan.pick.name},
            "place": None if plan.place is None else {"id": int(plan.place.id), "name": plan.place.name},
            "place_position": None if plan.place_position is None else [round(float(v), 4)
                                                                         for v in plan.place_position],
            "candidates": list(plan.candidates),
            "rationale": plan.rationale,
            "picked_intended": self.picked_intended,
            "queries": [q.to_dict() for q in plan.queries]
                       + ([self.verification.query.to_dict()]
                          if self.verification is not None and self.verification.query is not None else []),
            "imagined_views": [{"label": r.label, "reason": r.reason, "source": r.view.source,
                                "cam_to_world": np.round(r.view.cam_to_world, 4).tolist()}
                               for r in plan.imagined],
            "actions": [] if self.act is None else self.act.steps,
            "target": None if self.target is None else dict(self.target),
            "seconds": round(self.seconds, 3),
        }
