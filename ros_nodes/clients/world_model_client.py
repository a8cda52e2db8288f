"""A Python API over the world-model nodes, in the style of ``nav2_simple_commander``.

One class, one method per capability; each blocks with a timeout, and has an ``*_async`` form that
returns an ``rclpy`` future. Results come back as core types (Relation, SceneObject, ImaginedView)::

    import rclpy
    from ros_nodes.client import WorldModelClient
    from ros_nodes.fastdds_profile import use_large_frame_transport

    use_large_frame_transport()  # before rclpy.init: 640x480 requests go over a 32 MiB shared-memory segment
    rclpy.init()
    client = WorldModelClient()
    client.wait_until_ready(timeout_s=10)
    result = client.spatial_query(observation, subject="red cube", reference="blue cylinder")
    if result.success:
        print(result.relation.left_of, result.answer)
    view = client.imagine(observation, yaw_deg=30).view
    client.destroy_node(); rclpy.shutdown()

The client spins its own single-threaded executor, so it may be used from any one thread; use one
client per thread for concurrent calls. Without :func:`~ros_nodes.fastdds_profile.use_large_frame_transport`
in the client's process, a 640x480 request leaves through Fast DDS's default 512 KiB shared-memory
segment and a spatial query takes ~35 ms longer (see ``ros_nodes/fastdds_profile.py``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.task import Future

from joyai_embodied.errors import RequestTimeoutError
from joyai_embodied.types import CameraPose, ImaginedView, Observation, Relation, SceneObject

from . import IMAGINE_ACTION, SPATIAL_QUERY_SERVICE, conversions


@dataclass
class SpatialQueryResult:
    """A SpatialQuery response in core types.

    Attributes:
        success: False when the node refused the request; ``error`` says why.
        answer, value, unit, confidence: the answer (``value`` is NaN when it has no number).
        relation: the relation of subject to reference, when both were asked for.
        objects: every object the model found.
    """

    success: bool
    error: str = ""
    error_type: str = ""
    answer: str = ""
    value: float = math.nan
    unit: str = ""
    confidence: float = 0.0
    relation: Relation | None = None
    objects: list[SceneObject] = field(default_factory=list)


@dataclass
class ImagineResult:
    """An Imagine action's outcome.

    Attributes:
        status: "succeeded", "canceled", "aborted" (bad input; see ``error``) or "rejected".
        view: the imagined view when succeeded.
        objects: the scene's objects after the edit.
        feedback: every (progress, stage) received, in order.
    """

    status: str
    success: bool = False
    error: str = ""
    error_type: str = ""
    view: ImaginedView | None = None
    objects: list[SceneObject] = field(default_factory=list)
    feedback: list[tuple[float, str]] = field(default_factory=list)


_STATUS = {4: "succeeded", 5: "canceled", 6: "aborted"}  # action_msgs/GoalStatus codes


class WorldModelClient(Node):
    """Calls ``/joyai/spatial_query`` and ``/joyai/imagine``.

    Args:
        node_name: name of this client node.
        namespace: ROS namespace (the service and action names are absolute and unaffected).
    """

    def __init__(self, node_name: str = "joyai_world_model_client", namespace: str = ""):
        super().__init__(node_name, namespace=namespace)
        from joyai_interfaces.action import Imagine
        from joyai_interfaces.srv import SpatialQuery

        self._srv_type, self._action_type = SpatialQuery, Imagine
        self._query_client = self.create_client(SpatialQuery, SPATIAL_QUERY_SERVICE)
        self._imagine_client = ActionClient(self, Imagine, IMAGINE_ACTION)
        self._executor = SingleThreadedExecutor()
        self._executor.add_node(self)
        self._goal_handle: Any = None
        self._feedback: list[tuple[float, str]] = []

    # -- readiness ------------------------------------------------------------------------------
    def wait_until_ready(self, timeout_s: float = 10.0) -> None:
        """Blocks until both the service and the action server are available.

        Raises:
            RequestTimeoutError: they did not appear within ``timeout_s``.
        """
        deadline = time.monotonic() + timeout_s
        if not self._query_client.wait_for_service(timeout_sec=timeout_s):
            raise RequestTimeoutError(f"{SPATIAL_QUERY_SERVICE} not available after {timeout_s} s")
        if not self._imagine_client.wait_for_server(timeout_sec=max(0.0, deadline - time.monotonic())):
            raise RequestTimeoutError(f"{IMAGINE_ACTION} not available after {timeout_s} s")

    # -- spatial query --------------------------------------------------------------------------
    def spatial_query_async(self, observation: Observation | None = None, question: str = "", subject: str = "",
                            reference: str = "", frame: str | CameraPose = "camera",
                            labels: Mapping[int, str] | None = None) -> Future:
        """Sends a SpatialQuery; the future's result is the raw response (see :meth:`to_query_result`).

        Args:
            observation: the frame to ask about; None uses the node's latest subscribed frames.
            question: free-text question (may be empty when subject/reference are set).
            subject, reference: ask the relation of subject to reference.
            frame: "camera" (viewer-relative), "world", or a CameraPose to take that camera's perspective.
            labels: ``{segmentation id: name}``; replaces the observation's labels (also with use_latest).
        """
        request = self._srv_type.Request(question=question, subject=subject, reference=reference)
        if isinstance(frame, CameraPose):
            request.frame = "viewpoint"
            conversions.fill_camera_fields(request.viewpoint_info, request.viewpoint_pose, frame)
        else:
            request.frame = frame
        _fill_scene(request, observation, labels)
        return self._query_client.call_async(request)

    def spatial_query(self, observation: Observation | None = None, question: str = "", subject: str = "",
                      reference: str = "", frame: str | CameraPose = "camera",
                      labels: Mapping[int, str] | None = None, timeout_s: float = 10.0) -> SpatialQueryResult:
        """Blocking :meth:`spatial_query_async`.

        Returns:
            The result; ``success`` is False with ``error`` when the node refused the request.

        Raises:
            RequestTimeoutError: no response within ``timeout_s``.
        """
        future = self.spatial_query_async(observation, question, subject, reference, frame, labels)
        return self.to_query_result(self._wait(future, timeout_s, SPATIAL_QUERY_SERVICE))

    @staticmethod
    def to_query_result(response: Any) -> SpatialQueryResult:
        """Converts a SpatialQuery response message into a :class:`SpatialQueryResult`."""
        if not response.success:
            return SpatialQueryResult(False, response.error, response.error_type)
        relation = conversions.relation_from_msg(response.relation) if response.relation.subject else None
        return SpatialQueryResult(True, "", "", response.answer, float(response.value), response.unit,
                                  float(response.confidence), relation,
                                  [conversions.scene_object_from_msg(o) for o in response.objects])

    # -- imagination ----------------------------------------------------------------------------
    def imagine_async(self, observation: Observation | None = None, yaw_deg: float = 0.0, pitch_deg: float = 0.0,
                      zoom: float = 1.0, viewpoint: CameraPose | None = None, edit: str = "", object_name: str = "",
                      target: Sequence[float] = (0.0, 0.0, 0.0), rotate_yaw_deg: float = 0.0,
                      seed: int | None = None, labels: Mapping[int, str] | None = None,
                      feedback_callback: Callable[[float, str], None] | None = None) -> Future:
        """Sends an Imagine goal; the future resolves to its goal handle (accepted or not).

        Args:
            observation: the frame to imagine from; None uses the node's latest subscribed frames.
            yaw_deg, pitch_deg, zoom: camera move about the scene centre.
            viewpoint: an explicit camera to imagine from instead of the move.
            edit: "" (none), "move" (object_name to ``target``, world xyz of its base centre) or
                "rotate" (object_name by ``rotate_yaw_deg`` about world z).
            seed: for learned backends; None = unseeded.
            labels: ``{segmentation id: name}``; replaces the observation's labels (also with use_latest).
            feedback_callback: called with (progress, stage) for each feedback message.
        """
        goal = self._action_type.Goal(yaw_deg=float(yaw_deg), pitch_deg=float(pitch_deg), zoom=float(zoom),
                                      edit=edit, object_name=object_name, rotate_yaw_deg=float(rotate_yaw_deg),
                                      seed=-1 if seed is None else int(seed))
        goal.target.x, goal.target.y, goal.target.z = (float(v) for v in target)
        if viewpoint is not None:
            goal.use_viewpoint = True
            conversions.fill_camera_fields(goal.viewpoint_info, goal.viewpoint_pose, viewpoint)
        _fill_scene(goal, observation, labels)
        self._feedback = []

        def on_feedback(msg: Any) -> None:
            self._feedback.append((float(msg.feedback.progress), msg.feedback.stage))
            if feedback_callback is not None:
                feedback_callback(float(msg.feedback.progress), msg.feedback.stage)

        future = self._imagine_client.send_goal_async(goal, feedback_callback=on_feedback)
        future.add_done_callback(self._remember_goal)
        return future

    def _remember_goal(self, future: Future) -> None:
        self._goal_handle = future.result()

    def imagine(self, observation: Observation | None = None, timeout_s: float = 30.0,
                **goal_fields: Any) -> ImagineResult:
        """Blocking :meth:`imagine_async`: sends the goal and waits for its result.

        Raises:
            RequestTimeoutError: no result within ``timeout_s`` (the goal is canceled first).
        """
        deadline = time.monotonic() + timeout_s
        goal_handle = self._wait(self.imagine_async(observation, **goal_fields), timeout_s, IMAGINE_ACTION)
        if not goal_handle.accepted:
            return ImagineResult("rejected", error="the imagination node rejected the goal")
        try:
            wrapped = self._wait(goal_handle.get_result_async(), max(0.0, deadline - time.monotonic()),
                                 IMAGINE_ACTION)
        except RequestTimeoutError:
            self.cancel_imagine()
            raise
        return self.to_imagine_result(wrapped)

    def cancel_imagine(self, timeout_s: float = 5.0) -> bool:
        """Asks the node to cancel the last goal sent; True when the node accepted the cancel."""
        if self._goal_handle is None or not self._goal_handle.accepted:
            return False
        response = self._wait(self._goal_handle.cancel_goal_async(), timeout_s, IMAGINE_ACTION)
        return len(response.goals_canceling) > 0

    def get_feedback(self) -> list[tuple[float, str]]:
        """The (progress, stage) feedback received for the last goal so far."""
        self._executor.spin_once(timeout_sec=0.0)
        return list(self._feedback)

    def to_imagine_result(self, wrapped: Any) -> ImagineResult:
        """Converts a ``get_result_async`` outcome (status + result message) into an :class:`ImagineResult`."""
        result = wrapped.result
        status = _STATUS.get(int(wrapped.status), f"status {wrapped.status}")
        outcome = ImagineResult(status, bool(result.success), result.error, result.error_type,
                                feedback=list(self._feedback))
        if result.success:
            outcome.view = conversions.view_from_result(result)
            outcome.objects = [conversions.scene_object_from_msg(o) for o in result.objects]
        return outcome

    # -- plumbing -------------------------------------------------------------------------------
    def spin_until(self, future: Future, timeout_s: float) -> bool:
        """Spins this client until ``future`` is done or ``timeout_s`` passes; True when done."""
        self._executor.spin_until_future_complete(future, timeout_sec=timeout_s)
        return future.done()

    def _wait(self, future: Future, timeout_s: float, what: str) -> Any:
        if not self.spin_until(future, timeout_s):
            raise RequestTimeoutError(f"no answer from {what} within {timeout_s} s")
        return future.result()

    def destroy_node(self) -> None:
        self._imagine_client.destroy()
        self._executor.remove_node(self)
        self._executor.shutdown()
        super().destroy_node()


def _fill_scene(message: Any, observation: Observation | None, labels: Mapping[int, str] | None) -> None:
    if observation is None:
        message.use_latest = True
    else:
        conversions.fill_scene_fields(message, observation)
    if labels is not None:
        message.label_ids = [int(i) for i in labels]
        message.label_names = [str(n) for n in labels.values()]


def error_from_result(result: SpatialQueryResult | ImagineResult) -> Exception:
    """The core exception a failed result stands for (same class when it is one of joyai_embodied.errors)."""
    from joyai_embodied import errors

    cls = getattr(errors, result.error_type, None)
    if not (isinstance(cls, type) and issubclass(cls, errors.JoyAIError)):
        cls = errors.RemoteError
    exc = cls.__new__(cls)  # the message is already formatted; skip the class's own formatting
    Exception.__init__(exc, result.error or getattr(result, "status", "failed"))
    return exc


def labels_of(objects: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """``{id: name}`` from a simulator's ``info["objects"]`` list, for :class:`Observation` labels."""
    return {int(o["id"]): str(o["name"]) for o in objects}
