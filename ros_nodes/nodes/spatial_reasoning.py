"""``spatial_reasoning`` node: the world model's understanding as the ``/joyai/spatial_query`` service.

A request names a scene kept on the node (``scene_id``), points at the latest camera frames
(``use_latest``) or carries an RGB-D frame, and asks a free-text ``question`` (optionally answered
from imagined views too: ``with_imagination``) and/or the relation of ``subject`` to ``reference``.
The response carries the scene's pivot and every object. A request with a frame and nothing to ask
is an observe: the scene is kept, and the response's ``scene_id`` names it, so later requests need
not send the frame again. A request with a frame and a question is answered without keeping the
scene (``scene_id`` empty): one-shot clients do not fill the bounded scene store.

Bad input never takes the node down: the response says ``success=false``, ``error`` names the field
and what was expected, ``error_json`` carries the error's fields.

Run alone with ``python -m ros_nodes.nodes.spatial_reasoning --ros-args -p preset:=geometric``, or
together with the imagination node through ``joyai-embodied ros`` (one service, shared scene ids).
"""

from __future__ import annotations

import math
import sys
from typing import Any

from geometry_msgs.msg import Point
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from joyai_embodied.errors import InvalidInputError, JoyAIError
from joyai_embodied.types import CameraPose, Relation

from .. import conversions, results
from ..topics import SPATIAL_QUERY_SERVICE
from .common import LatestFrames, SharedModel, declare_model_parameters, load_model, scene_for
from .runtime import Serving
from .scene_publisher import ScenePublisher


class SpatialReasoningNode(Node):
    """Serves ``joyai_interfaces/srv/SpatialQuery`` on ``/joyai/spatial_query``.

    Args:
        model: the process's shared service (the launcher passes one to both nodes); when None, the
            node loads the model its ``preset``/``device``/``address`` parameters name.
        serving: the process's request counter when ``model`` is None.
        **node_kwargs: passed to :class:`rclpy.node.Node` (``namespace``, ``parameter_overrides``...).
    """

    def __init__(self, model: SharedModel | None = None, serving: Serving | None = None, **node_kwargs: Any):
        super().__init__("spatial_reasoning_node", **node_kwargs)
        declare_model_parameters(self)
        self.model = model or load_model(self, serving)
        # Requests run concurrently (message conversion overlaps); the service locks itself.
        self.latest = LatestFrames(self, MutuallyExclusiveCallbackGroup())
        self.scene_publisher = ScenePublisher.shared(self.model, self)  # markers (and cloud) for RViz
        from joyai_interfaces.srv import SpatialQuery

        self.service = self.create_service(SpatialQuery, SPATIAL_QUERY_SERVICE, self.on_request,
                                           callback_group=ReentrantCallbackGroup())
        self.get_logger().info(f"serving {SPATIAL_QUERY_SERVICE} with backend {self.model.world_model.backend.name!r}")

    def on_request(self, request: Any, response: Any) -> Any:
        """Answers one request; every error becomes ``success=false`` with its fields (the node keeps serving)."""
        try:
            with self.model.serving.request():
                self._answer(request, response)
            response.success = True
        except Exception as exc:  # a backend bug must not kill the service either: report it, keep serving
            if not isinstance(exc, JoyAIError):
                self.get_logger().error(f"spatial query failed: {exc!r}")
            results.fill_error(response, exc)
        return response

    def _answer(self, request: Any, response: Any) -> None:
        frame = _frame(request)
        subject, reference, question = request.subject.strip(), request.reference.strip(), request.question
        if bool(subject) != bool(reference):
            missing = "reference" if subject else "subject"
            raise InvalidInputError(missing, "an object name (subject and reference go together)", "an empty string")
        if request.with_imagination and not question.strip():
            raise InvalidInputError("question", "a question to answer with imagination", "an empty string")
        handle = scene_for(request, self.latest, self.model)
        one_shot = not request.scene_id and not request.use_latest and bool(subject or question.strip())
        service, relation, answer = self.model.service, None, None
        try:
            if subject:
                relation = service.relation(handle, subject, reference, frame=frame)
            if question.strip() and request.with_imagination:
                seen = service.scene(handle).observation
                conversions.check_views_fit(int(request.max_views), seen.width, seen.height)
                answer = service.answer_with_imagination(handle, question, max_views=int(request.max_views))
            elif question.strip():
                answer = service.ask(handle, question, frame=frame)
            scene = self.model.scene(handle)
        finally:
            if one_shot:  # a frame plus a question: answered, not kept (send the frame alone to get a scene_id)
                service.release([handle])
        self.scene_publisher.show(handle, scene, answer.views if answer is not None else ())
        handle = "" if one_shot else handle
        response.scene_id, response.backend = handle, scene.backend
        response.pivot = Point(x=float(scene.pivot[0]), y=float(scene.pivot[1]), z=float(scene.pivot[2]))
        response.objects = [results.scene_object_to_msg(obj) for obj in scene.objects]
        if relation is not None:
            response.relation = results.relation_to_msg(relation)
        if answer is not None:
            results.fill_answer(response, answer)
        elif relation is not None:
            response.answer, response.value, response.unit = describe(relation), relation.distance_m, "m"
            response.confidence, response.supported = float(relation.confidence), True
        else:  # neither: an observe (or "what is there")
            names = [obj.name for obj in scene.objects]
            response.answer = ", ".join(names) if names else "no objects found"
            response.value, response.unit, response.confidence = float(len(names)), "count", 1.0
            response.supported = True

    def destroy_node(self) -> None:
        self.scene_publisher.close()
        super().destroy_node()


def _frame(request: Any) -> str | CameraPose:
    frame = request.frame.strip() or "camera"
    if frame == "viewpoint":
        return conversions.camera_from_fields(request.viewpoint_info, request.viewpoint_pose,
                                              request.viewpoint_cam_to_world)
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
    """Runs the node alone (``python -m ros_nodes.nodes.spatial_reasoning --ros-args ...``)."""
    from .runtime import run_node_alone

    return run_node_alone(lambda serving: SpatialReasoningNode(serving=serving), argv)


if __name__ == "__main__":
    sys.exit(main())
