"""Resolves a LIBERO referring expression to one object with world-model queries.

Inputs are only the observation's arrays, its category labels and the instruction: objects of one
category get names numbered left to right in the image ("black bowl 1", "black bowl 2"), which say
nothing about the task, and the clause decides between them through ``WorldModel.relation``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from ...types import Scene, SceneObject
from .instructions import PickPlaceGoal

#: Below this score gap (m) between the best and second candidate the choice is reported as unsure.
UNSURE_GAP_M = 0.02


def by_id(scene: Scene, instance_id: int, default: SceneObject | None = None) -> SceneObject | None:
    """The scene's object with this instance id (as seen in this observation), else ``default``."""
    return next((o for o in scene.objects if o.id == instance_id), default)


class GroundingError(Exception):
    """The instruction names something the scene does not show (kind "perception") or cannot decide ("grounding")."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


@dataclass
class Choice:
    """The object a referring expression resolved to, with the queries that decided it."""

    obj: SceneObject
    scores: dict[str, float]
    queries: list[dict[str, Any]]
    unsure: bool


def numbered_labels(segmentation: np.ndarray, labels: Mapping[int, str]) -> dict[int, str]:
    """Category labels made unique: several objects of one category are numbered left to right in the image.

    Args:
        segmentation: HxW instance ids.
        labels: ``{instance id: category word}`` (ids absent from the image are dropped).
    """
    columns = defaultdict(list)
    for instance_id, word in labels.items():
        xs = np.nonzero(segmentation == instance_id)[1]
        if len(xs):
            columns[word].append((float(xs.mean()), int(instance_id)))
    named = {}
    for word, members in columns.items():
        members.sort()
        for rank, (_, instance_id) in enumerate(members):
            named[instance_id] = word if len(members) == 1 else f"{word} {rank + 1}"
    return named


def category_of(name: str) -> str:
    """``"black bowl 2"`` -> ``"black bowl"``."""
    words = name.split()
    return " ".join(words[:-1]) if len(words) > 1 and words[-1].isdigit() else name


def find_category(scene: Scene, phrase: str) -> list[SceneObject]:
    """Objects whose category the phrase names: exact, else all of the phrase's words, else all of the label's."""
    wanted = phrase.lower().split()
    exact = [o for o in scene.objects if category_of(o.name).lower().split() == wanted]
    if exact:
        return exact
    contains = [o for o in scene.objects if set(wanted) <= set(category_of(o.name).lower().split())]
    if contains:
        return contains
    within = [o for o in scene.objects if set(category_of(o.name).lower().split()) <= set(wanted)]
    # "yellow and white mug" holds both "white yellow mug" and "white mug": the fuller label wins.
    most = max((len(category_of(o.name).split()) for o in within), default=0)
    return [o for o in within if len(category_of(o.name).split()) == most]


def find_one(scene: Scene, phrase: str) -> SceneObject:
    """The single object a category phrase names ("the plate", "the stove").

    Raises:
        GroundingError: none ("perception") or several ("grounding").
    """
    found = find_category(scene, phrase)
    if not found:
        raise GroundingError("perception", f"no {phrase!r} in the scene: {scene.object_names()}")
    if len(found) > 1:
        raise GroundingError("grounding", f"{phrase!r} matches {[o.name for o in found]}")
    return found[0]


def resolve_subject(wm: Any, scene: Scene, goal: PickPlaceGoal, exclude: Sequence[int] = ()) -> Choice:
    """The object the instruction's subject phrase refers to.

    Args:
        exclude: instance ids already placed; for ``goal.any_of`` ("both moka pots") the nearest other one
            to the scene pivot is taken (any order is right).

    Raises:
        GroundingError: the subject or a reference is missing ("perception"), or the clause cannot decide.
    """
    candidates = find_category(scene, goal.subject)
    if not candidates:
        raise GroundingError("perception", f"no {goal.subject!r} in the scene: {scene.object_names()}")
    if goal.any_of:
        remaining = [c for c in candidates if c.id not in exclude] or candidates
        best = min(remaining, key=lambda c: float(np.hypot(*(np.asarray(c.centroid)[:2] - np.asarray(scene.pivot)[:2]))))
        return Choice(best, {c.name: 0.0 for c in remaining}, [], unsure=False)
    if len(candidates) == 1:
        return Choice(candidates[0], {candidates[0].name: 0.0}, [], unsure=False)
    if goal.clause is None:
        raise GroundingError("grounding", f"{len(candidates)} objects are {goal.subject!r} and nothing says which")
    references = [find_one(scene, phrase) for phrase in goal.references]
    queries: list[dict[str, Any]] = []
    scores = {c.name: _score(wm, scene, goal.clause, c, references, queries) for c in candidates}
    ranked = sorted(scores, key=scores.get)
    unsure = len(ranked) > 1 and scores[ranked[1]] - scores[ranked[0]] < UNSURE_GAP_M
    best = next(c for c in candidates if c.name == ranked[0])
    return Choice(best, scores, queries, unsure)


def _score(wm: Any, scene: Scene, clause: str, candidate: SceneObject, references: Sequence[SceneObject],
           queries: list[dict[str, Any]]) -> float:
    """Lower is a better fit of ``candidate`` to the clause (metres, from the world model's relations)."""
    if clause == "table_center":
        # The table's centre as the world model sees it: the pivot of the objects standing on it.
        offset = np.asarray(candidate.centroid)[:2] - np.asarray(scene.pivot)[:2]
        queries.append({"subject": candidate.name, "reference": "table center", "distance_m": float(np.hypot(*offset))})
        return float(np.hypot(*offset))
    relations = []
    for reference in references:
        relation = wm.relation(scene, candidate.name, reference.name)
        relations.append(relation)
        queries.append({"subject": candidate.name, "reference": reference.name, "distance_m": relation.distance_m,
                        "above": relation.above, "on_top_of": relation.on_top_of,
                        "vertical_m": relation.vertical_m})
    if clause == "between":
        return float(sum(r.distance_m for r in relations))
    if clause == "next_to":
        return float(relations[0].distance_m)
    relation = relations[0]
    vertical = relation.vertical_m if math.isfinite(relation.vertical_m) else 0.0
    horizontal = math.sqrt(max(relation.distance_m ** 2 - vertical ** 2, 0.0))
    if clause == "on":
        # Resting on the reference: over it (small horizontal offset) and higher than it.
        return horizontal + (0.0 if (relation.on_top_of or relation.above or vertical > 0) else 1.0)
    # in_drawer: inside the reference's footprint, and not standing on its top (above its upper half).
    on_top = vertical > float(references[0].extent[2]) / 2
    return horizontal + (1.0 if on_top else 0.0)
