"""``spatial_reasoning_node``: the world model's understanding as the ``/joyai/spatial_query`` service.

One request carries (or, with ``use_latest``, points at) an RGB-D frame and asks a free-text
``question`` and/or the relation of ``subject`` to ``reference``. The response lists every object
found. ``use_latest`` requests about an unchanged frame reuse its Scene (observed once per frame),
so a planner loop pays only for relation/ask. Bad input never takes the node down: the response says ``success=false`` and ``error`` names
the field and what was expected.

Run alone with ``python -m ros_nodes.spatial_reasoning_node --ros-args -p preset:=geometric``, or
together with the imagination node through ``joyai-embodied ros``.
"""

from __future__ import annotations

import math
import sys
from typing import Any

from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from joyai_embodied.errors import InvalidInputError, JoyAIError
from joyai_embodied.types import Answer, CameraPose, Observation, Relation, Scene

from . import SPATIAL_QUERY_SERVICE, conversions
from .common import (LatestFrames, SharedModel, answer_value, declare_model_parameters, load_model, scene_expired,
                     scene_for)


class SpatialReasoningNode(Node):
    """Serves ``joyai_interfaces/srv/SpatialQuery`` on ``/joyai/spatial_query``.

    Args:
        model: an already loaded model to share (the launcher passes one to both nodes); when None,
            the node loads the one its ``preset``/``device``/``address`` parameters name.
        **node_kwargs: passed to :class:`rclpy.node.Node` (``namespace``, ``parameter_overrides``...).
    """

    def __init__(self, model: SharedModel | None = None, **node_kwargs: Any):
        super().__init__("spatial_reasoning_node", **node_kwargs)
        declare_model_parameters(self)
        self.model = model or load_model(self)
        # Requests run concurrently (message conversion overlaps); the model itself is behind a lock.
        self.latest = LatestFrames(self, MutuallyExclusiveCallbackGroup())
        self.service = self.create_service(self._interface(), SPATIAL_QUERY_SERVICE, self.on_request,
                                           callback_group=ReentrantCallbackGroup())
        self.get_logger().info(f"serving {SPATIAL_QUERY_SERVICE} with backend {self.model.world_model.backend.name!r}")

    @staticmethod
    def _interface() -> Any:
        from joyai_interfaces.srv import SpatialQuery

        return SpatialQuery

    def on_request(self, request: Any, response: Any) -> Any:
        """Answers one request; every caller-fixable error becomes ``success=false`` + ``error``."""
        try:
            self._answer(request, response)
            response.success = True
        except JoyAIError as exc:
            response.success, response.error, response.error_type = False, str(exc), type(exc).__name__
        except Exception as exc:  # a backend bug must not kill the service; report it, keep serving
            self.get_logger().error(f"spatial query failed: {exc!r}")
            response.success, response.error = False, f"internal error: {type(exc).__name__}: {exc}"
            response.error_type = "InternalError"
        return response

    def _answer(self, request: Any, response: Any) -> None:
        frame = _frame(request)
        subject, reference = request.subject.strip(), request.reference.strip()
        if bool(subject) != bool(reference):
            missing = "reference" if subject else "subject"
            raise InvalidInputError(missing, "an object name (subject and reference go together)",
                                                "an empty string")
        wm = self.model.world_model

        def observe(observation: Observation) -> Scene:
            with self.model.lock:
                return wm.observe(observation)

        def query(scene: Scene) -> tuple[Relation | None, Answer | None]:
            with self.model.lock:
                relation = wm.relation(scene, subject, reference, frame=frame) if subject else None
                answer = wm.ask(scene, request.question, frame=frame) if request.question.strip() else None
            return relation, answer

        scene = scene_for(request, self.latest, observe)
        try:
            relation, answer = query(scene)
        except JoyAIError as exc:
            if not (request.use_latest and scene_expired(exc)):
                raise
            # The cached Scene's remote handle was evicted by the model server: observe the frame again.
            self.latest.forget(scene)
            scene = scene_for(request, self.latest, observe)
            relation, answer = query(scene)
        response.objects = [conversions.scene_object_to_msg(obj) for obj in scene.objects]
        if relation is not None:
            response.relation = conversions.relation_to_msg(relation)
        if answer is not None:
            response.value, unit = answer_value(answer.value)
            response.answer, response.unit = answer.text, answer.unit or unit
            response.confidence = float(answer.confidence)
        elif relation is not None:
            response.answer, response.value, response.unit = describe(relation), relation.distance_m, "m"
            response.confidence = float(relation.confidence)
        else:  # neither: the request asked what is there
            names = [obj.name for obj in scene.objects]
            response.answer = ", ".join(names) if names else "no objects found"
            response.value, response.unit, response.confidence = float(len(names)), "count", 1.0


def _frame(request: Any) -> str | CameraPose:
    frame = request.frame.strip() or "camera"
    if frame == "viewpoint":
        return conversions.camera_from_fields(request.viewpoint_info, request.viewpoint_pose)
    if frame not in ("camera", "world"):
        raise InvalidInputError("frame", "'camera', 'world', 'viewpoint' or empty (camera)", repr(request.frame))
    return frame


def describe(relation: Relation) -> str:
    """One sentence for a Relation, e.g. "the red cube is left of and in front of the blue cylinder (0.12 m)"."""
    words = [word for flag, word in ((relation.left_of, "left of"), (relation.right_of, "right of"),
                                     (relation.in_front_of, "in front of"), (relation.behind, "behind"),
                                     (relation.on_top_of, "on top of"),
                                     (relation.above and not relation.on_top_of, "above"),
                                     (relation.below, "below")) if flag]
    where = " and ".join(words) if words else "next to"
    distance = f" ({relation.distance_m:.2f} m apart)" if math.isfinite(relation.distance_m) else ""
    return f"the {relation.subject} is {where} the {relation.reference}{distance}"


def main(argv: list[str] | None = None) -> int:
    """Runs the node alone (``python -m ros_nodes.spatial_reasoning_node --ros-args ...``)."""
    from .launcher import run_node_alone

    return run_node_alone(SpatialReasoningNode, argv)


if __name__ == "__main__":
    sys.exit(main())
