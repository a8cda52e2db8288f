"""What :class:`~ros_nodes.clients.world_model_client.WorldModelClient`'s calls return, in core types."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from joyai_embodied.types import Answer, ImaginedView, Relation, SceneObject


@dataclass
class SpatialQueryResult:
    """A SpatialQuery response in core types.

    Attributes:
        success: False when the node refused the request; ``error``/``error_type``/``error_json`` say why.
        scene_id: the scene answered about, kept on the node: pass it instead of the frame next time.
        pivot: that scene's pivot (world, m); ``backend`` the backend that built it.
        answer, value, unit, confidence: the answer in words and numbers (``value`` NaN when it has none).
        answer_result: the whole core :class:`Answer` (value as sent, views), when a question was asked.
        relation: the relation of subject to reference, when both were asked for.
        objects: every object in the scene.
    """

    success: bool
    error: str = ""
    error_type: str = ""
    error_json: str = ""
    scene_id: str = ""
    pivot: np.ndarray | None = None
    backend: str = ""
    answer: str = ""
    value: float = math.nan
    unit: str = ""
    confidence: float = 0.0
    answer_result: Answer | None = None
    relation: Relation | None = None
    objects: list[SceneObject] = field(default_factory=list)


@dataclass
class ImagineResult:
    """An Imagine action's outcome.

    Attributes:
        status: "succeeded", "canceled", "aborted" (bad input; see ``error``) or "rejected".
        view: the imagined view when succeeded (None with ``edit_only``).
        scene_id: the scene imagined from, after the edit (kept on the node); ``pivot`` its pivot.
        objects: the scene's objects after the edit.
        feedback: every (progress, stage) received, in order.
    """

    status: str
    success: bool = False
    error: str = ""
    error_type: str = ""
    error_json: str = ""
    view: ImaginedView | None = None
    scene_id: str = ""
    pivot: np.ndarray | None = None
    objects: list[SceneObject] = field(default_factory=list)
    feedback: list[tuple[float, str]] = field(default_factory=list)
