"""``imagination_node``: the world model's novel-view imagination as the ``/joyai/imagine`` action.

A goal carries (or, with ``use_latest``, points at) an RGB-D frame, a camera move about the scene
centre (or an explicit camera, ``use_viewpoint``) and an optional object edit. The node runs the stages observe -> edit -> imagine -> encode,
publishing feedback (``progress``, ``stage``) before each. Cancel is honoured within ~10 ms: each
model stage runs in a worker thread while the action thread watches for a cancel request (an
abandoned stage finishes in the background; its result is dropped).

Bad input ends the goal as aborted with ``success=false`` and an ``error`` naming the field.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, TypeVar

from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.node import Node

from joyai_embodied.errors import InvalidInputError, JoyAIError
from joyai_embodied.types import CameraMove, ImaginedView, MoveObject, Observation, RotateObject, Scene

from . import IMAGINE_ACTION, conversions
from .common import LatestFrames, SharedModel, declare_model_parameters, load_model, scene_expired, scene_for

T = TypeVar("T")
#: How often a running stage checks for a cancel request (seconds).
CANCEL_POLL_S = 0.01


class GoalCanceled(Exception):
    """Raised inside ``execute`` when the client asked to cancel the goal."""


class ImaginationNode(Node):
    """Serves ``joyai_interfaces/action/Imagine`` on ``/joyai/imagine``.

    Args:
        model: an already loaded model to share; when None the node loads the one its parameters name.
        **node_kwargs: passed to :class:`rclpy.node.Node`.
    """

    def __init__(self, model: SharedModel | None = None, **node_kwargs: Any):
        super().__init__("imagination_node", **node_kwargs)
        declare_model_parameters(self)
        self.model = model or load_model(self)
        self.latest = LatestFrames(self, MutuallyExclusiveCallbackGroup())
        # Stages run here so that the action thread stays free to notice a cancel request.
        self._workers = ThreadPoolExecutor(max_workers=2, thread_name_prefix="imagine")
        from joyai_interfaces.action import Imagine

        self._action_type = Imagine
        self.server = ActionServer(self, Imagine, IMAGINE_ACTION, self.execute,
                                   goal_callback=lambda goal: GoalResponse.ACCEPT,
                                   cancel_callback=lambda goal_handle: CancelResponse.ACCEPT,
                                   callback_group=ReentrantCallbackGroup())
        self.get_logger().info(f"serving {IMAGINE_ACTION} with backend {self.model.world_model.backend.name!r}")

    def execute(self, goal_handle: Any) -> Any:
        """Runs one goal to a result; the goal ends succeeded, canceled or aborted (bad input)."""
        result = self._action_type.Result()
        try:
            self._imagine(goal_handle, result)
            result.success = True
            goal_handle.succeed()
        except GoalCanceled:
            result.success, result.error = False, "canceled by the client"
            goal_handle.canceled()
        except JoyAIError as exc:
            result.success, result.error, result.error_type = False, str(exc), type(exc).__name__
            goal_handle.abort()
        except Exception as exc:  # a backend bug must not kill the server
            self.get_logger().error(f"imagine failed: {exc!r}")
            result.success, result.error = False, f"internal error: {type(exc).__name__}: {exc}"
            result.error_type = "InternalError"
            goal_handle.abort()
        return result

    def _imagine(self, goal_handle: Any, result: Any) -> None:
        goal = goal_handle.request
        if goal.use_viewpoint:
            move = conversions.camera_from_fields(goal.viewpoint_info, goal.viewpoint_pose)
        else:
            move = CameraMove(yaw_deg=goal.yaw_deg, pitch_deg=goal.pitch_deg, zoom=goal.zoom or 1.0)
        edit = edit_from_goal(goal)
        seed = None if goal.seed < 0 else int(goal.seed)
        wm = self.model.world_model

        def observe(observation: Observation) -> Scene:
            return self._run(goal_handle, lambda: wm.observe(observation))

        def edit_and_imagine(observed: Scene) -> tuple[Scene, ImaginedView]:
            scene = observed
            if edit is not None:
                self._stage(goal_handle, 0.3, "edit")
                scene = self._run(goal_handle, lambda: wm.edit(observed, edit, seed=seed))
            self._stage(goal_handle, 0.5, "imagine")
            return scene, self._run(goal_handle, lambda: wm.imagine(scene, move, seed=seed))

        self._stage(goal_handle, 0.0, "observe")
        # use_latest goals share the Scene cached for the latest frame (observed once per frame).
        observed = scene_for(goal, self.latest, observe)
        try:
            scene, view = edit_and_imagine(observed)
        except JoyAIError as exc:
            if not (goal.use_latest and scene_expired(exc)):
                raise
            # The cached Scene's remote handle was evicted by the model server: observe the frame again.
            self.latest.forget(observed)
            scene, view = edit_and_imagine(scene_for(goal, self.latest, observe))
        self._stage(goal_handle, 0.9, "encode")
        conversions.fill_view_result(result, view)
        result.objects = [conversions.scene_object_to_msg(obj) for obj in scene.objects]
        self._stage(goal_handle, 1.0, "done")

    def _stage(self, goal_handle: Any, progress: float, stage: str) -> None:
        if goal_handle.is_cancel_requested:
            raise GoalCanceled()
        feedback = self._action_type.Feedback(progress=float(progress), stage=stage)
        goal_handle.publish_feedback(feedback)

    def _run(self, goal_handle: Any, work: Callable[[], T]) -> T:
        """Runs ``work`` under the model lock in a worker; raises GoalCanceled as soon as cancel is asked."""
        def locked() -> T:
            with self.model.lock:
                return work()

        future = self._workers.submit(locked)
        while True:
            if goal_handle.is_cancel_requested:
                raise GoalCanceled()
            try:
                return future.result(timeout=CANCEL_POLL_S)
            except TimeoutError:
                continue

    def destroy_node(self) -> None:
        self._workers.shutdown(wait=False, cancel_futures=True)
        super().destroy_node()


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
    """Runs the node alone (``python -m ros_nodes.imagination_node --ros-args ...``)."""
    from .launcher import run_node_alone

    return run_node_alone(ImaginationNode, argv)


if __name__ == "__main__":
    sys.exit(main())
