"""``imagination`` node: the world model's novel-view imagination as the ``/joyai/imagine`` action.

A goal names a scene kept on the node (``scene_id``), points at the latest frames (``use_latest``)
or carries an RGB-D frame; it asks for a camera move about the scene's pivot (or an explicit camera,
``use_viewpoint``) and optionally an object edit first. The edit is the world model's edit, run by the
service: the result's ``scene_id`` is the edited scene (later requests with it see the edit), exactly
as ``WorldModel.edit`` in process; ``edit_only`` returns it without rendering a view. A goal that
carries a frame keeps one scene (the edited one when it edits), named by the result's ``scene_id``.

Stages observe -> edit -> imagine -> encode publish feedback (``progress``, ``stage``) before each.
Cancel is honoured within ~10 ms: each model stage runs in a worker thread while the action thread
watches for a cancel request (an abandoned stage finishes in the background; its result is dropped).
Bad input ends the goal as aborted with ``success=false`` and an ``error`` naming the field.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from geometry_msgs.msg import Point
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from joyai_embodied.errors import InvalidInputError, JoyAIError
from joyai_embodied.types import CameraMove, CameraPose, MoveObject, RotateObject

from .. import conversions, results
from ..topics import IMAGINE_ACTION
from .common import LatestFrames, SharedModel, declare_model_parameters, load_model, scene_for
from .runtime import Serving
from .scene_publisher import ScenePublisher

T = TypeVar("T")
#: How often a running stage checks for a cancel request (seconds).
CANCEL_POLL_S = 0.01
#: How long a finished goal's result (a whole view: ~1 MB at 320x240, ~3.7 MB at 640x480) is kept for a late
#: get_result. It bounds the memory they hold to imagine rate x this x result size (measured +150 MB at ~12/s, 320x240);
#: rclpy's default was 900 s until ros2/rclpy#1171 (2024), so it is set here rather than inherited.
RESULT_KEEP_S = 10


class GoalCanceled(Exception):
    """Raised inside ``execute`` when the client asked to cancel the goal."""


class ImaginationNode(Node):
    """Serves ``joyai_interfaces/action/Imagine`` on ``/joyai/imagine``.

    Args:
        model: the process's shared service; when None the node loads the model its parameters name.
        serving: the process's request counter when ``model`` is None.
        **node_kwargs: passed to :class:`rclpy.node.Node`.
    """

    def __init__(self, model: SharedModel | None = None, serving: Serving | None = None, **node_kwargs: Any):
        super().__init__("imagination_node", **node_kwargs)
        declare_model_parameters(self)
        self.model = model or load_model(self, serving)
        self.latest = LatestFrames(self, MutuallyExclusiveCallbackGroup())
        self.scene_publisher = ScenePublisher.shared(self.model, self)  # markers (and cloud) for RViz
        # Stages run here so that the action thread stays free to notice a cancel request.
        self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="imagine")
        from joyai_interfaces.action import Imagine

        self._action_type = Imagine
        self.server = ActionServer(self, Imagine, IMAGINE_ACTION, self.execute, goal_callback=self._on_goal,
                                   cancel_callback=lambda goal_handle: CancelResponse.ACCEPT, result_timeout=RESULT_KEEP_S,
                                   callback_group=ReentrantCallbackGroup())
        self.get_logger().info(f"serving {IMAGINE_ACTION} with backend {self.model.world_model.backend.name!r}")

    def _on_goal(self, goal: Any) -> GoalResponse:
        # A process that is stopping takes no new goal: the client sees "rejected" at once.
        return GoalResponse.REJECT if self.model.serving.stopping.is_set() else GoalResponse.ACCEPT

    def execute(self, goal_handle: Any) -> Any:
        """Runs one goal to a result; the goal ends succeeded, canceled or aborted (bad input)."""
        result = self._action_type.Result()
        try:
            with self.model.serving.request():
                self._imagine(goal_handle, result)
            result.success = True
            goal_handle.succeed()
        except GoalCanceled:
            result.success, result.error, result.error_type = False, "canceled by the client", "GoalCanceled"
            goal_handle.canceled()
        except Exception as exc:  # bad input, or a backend bug: the server keeps serving either way
            if not isinstance(exc, JoyAIError):
                self.get_logger().error(f"imagine failed: {exc!r}")
            results.fill_error(result, exc)
            goal_handle.abort()
        return result

    def _imagine(self, goal_handle: Any, result: Any) -> None:
        goal = goal_handle.request
        edit = edit_from_goal(goal)
        if goal.edit_only and edit is None:
            raise InvalidInputError("edit", "'move' or 'rotate' with edit_only", repr(goal.edit))
        move = None if goal.edit_only else move_from_goal(goal)
        seed = None if goal.seed < 0 else int(goal.seed)
        # "" / 0 mean "not set": the service's WorldModel then passes nothing (a geometric backend accepts that)
        img2img = {"init": goal.init or None, "strength": float(goal.strength) if goal.strength != 0.0 else None}
        self._stage(goal_handle, 0.0, "observe")
        handle = self._run(goal_handle, lambda: scene_for(goal, self.latest, self.model))
        if edit is not None:
            self._stage(goal_handle, 0.3, "edit")
            observed = handle
            handle = self._run(goal_handle, lambda: self.model.service.edit(observed, edit, seed=seed))[0]
            if not goal.scene_id and not goal.use_latest:  # keep one scene per goal: the edited one
                self.model.service.release([observed])
        view = None
        if move is not None:
            self._stage(goal_handle, 0.5, "imagine")
            view = self._run(goal_handle, lambda: self.model.service.imagine(handle, move, seed=seed, **img2img))
            self._stage(goal_handle, 0.9, "encode")
            results.fill_view(result, view)
        scene = self.model.scene(handle)
        self.scene_publisher.show(handle, scene, () if view is None else (view,))
        result.scene_id = handle
        result.pivot = Point(x=float(scene.pivot[0]), y=float(scene.pivot[1]), z=float(scene.pivot[2]))
        result.objects = [results.scene_object_to_msg(obj) for obj in scene.objects]
        self._stage(goal_handle, 1.0, "done")

    def _stage(self, goal_handle: Any, progress: float, stage: str) -> None:
        if goal_handle.is_cancel_requested:
            raise GoalCanceled()
        feedback = self._action_type.Feedback(progress=float(progress), stage=stage)
        goal_handle.publish_feedback(feedback)

    def _run(self, goal_handle: Any, work: Callable[[], T]) -> T:
        """Runs ``work`` in a worker; raises GoalCanceled as soon as cancel is asked (the service locks itself)."""
        future = self._workers.submit(work)
        while True:
            if goal_handle.is_cancel_requested:
                raise GoalCanceled()
            try:
                return future.result(timeout=CANCEL_POLL_S)
            except TimeoutError:
                continue

    def destroy_node(self) -> None:
        self._workers.shutdown(wait=False, cancel_futures=True)
        self.scene_publisher.close()
        super().destroy_node()


def move_from_goal(goal: Any) -> CameraMove | CameraPose:
    """The camera an Imagine goal asks for: its explicit viewpoint, or the move about the pivot."""
    if goal.use_viewpoint:
        conversions.check_image_size(goal.viewpoint_info.width, goal.viewpoint_info.height, "viewpoint_info")
        return conversions.camera_from_fields(goal.viewpoint_info, goal.viewpoint_pose, goal.viewpoint_cam_to_world)
    return CameraMove(yaw_deg=goal.yaw_deg, pitch_deg=goal.pitch_deg, zoom=goal.zoom or 1.0)


def edit_from_goal(goal: Any) -> MoveObject | RotateObject | None:
    """The core edit an Imagine goal asks for (None for ``edit == ""``).

    Raises:
        InvalidInputError: unknown ``edit`` kind, or the object name / target is missing.
    """
    kind = goal.edit.strip().lower()
    if not kind:
        return None
    if kind == "move":
        target = goal.target
        return MoveObject(goal.object_name, to=[target.x, target.y, target.z])
    if kind == "rotate":
        return RotateObject(goal.object_name, yaw_deg=goal.rotate_yaw_deg)
    raise InvalidInputError("edit", "'', 'move' or 'rotate'", repr(goal.edit))


def main(argv: list[str] | None = None) -> int:
    """Runs the node alone (``python -m ros_nodes.nodes.imagination --ros-args ...``)."""
    from .runtime import run_node_alone

    return run_node_alone(lambda serving: ImaginationNode(serving=serving), argv)


if __name__ == "__main__":
    sys.exit(main())
