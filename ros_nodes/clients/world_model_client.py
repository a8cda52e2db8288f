"""A Python API over the world-model nodes, in the style of ``nav2_simple_commander``.

One class, one method per capability; each blocks with a timeout, and has an ``*_async`` form that
returns an ``rclpy`` future. Results come back as core types (Relation, Answer, SceneObject, ImaginedView)::

    import rclpy
    from ros_nodes.clients.world_model_client import WorldModelClient
    from ros_nodes.fastdds_profile import use_large_frame_transport

    use_large_frame_transport()  # before rclpy.init: 640x480 requests go over a 32 MiB shared-memory segment
    rclpy.init()
    client = WorldModelClient()
    client.wait_until_ready(timeout_s=10)
    scene_id = client.observe(observation).scene_id          # the frame travels once
    result = client.spatial_query(scene_id=scene_id, subject="red cube", reference="blue cylinder")
    if result.success:
        print(result.relation.left_of, result.answer)
    view = client.imagine(scene_id=scene_id, yaw_deg=30).view
    client.destroy_node(); rclpy.shutdown()

The client spins its own single-threaded executor, so it may be used from any one thread; use one
client per thread for concurrent calls. A node that goes away while a call waits (stopped, crashed)
ends the wait within about a second with :class:`~joyai_embodied.errors.BackendUnavailableError`
rather than at the timeout.

Restarts: a request goes to the servers in the graph when it is sent (ROS never delivers it to a server that
appears later). Each call notes the servers' endpoint GIDs (the readers of the service's request topic) when it
sends; when none is there, or the set changes while it waits (a restarted node has new GIDs, a killed one's
leave when its lease ends), no answer can come: a query (``spatial_query``, an ``imagine`` without an edit) is
sent once more, to the servers present then; an edit is never re-sent and raises ``BackendUnavailableError``
(not sent at all when no server was there).
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from rclpy.action import ActionClient
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.task import Future

from joyai_embodied.errors import BackendUnavailableError, JoyAIError, RequestTimeoutError
from joyai_embodied.types import CameraPose, Observation

from .. import conversions, results
from ..topics import IMAGINE_ACTION, SPATIAL_QUERY_SERVICE
from .call_results import ImagineResult, SpatialQueryResult  # noqa: F401  (part of this module's API)

#: The action's services whose requests a goal and its result wait go out on.
SEND_GOAL_SERVICE = f"{IMAGINE_ACTION}/_action/send_goal"
GET_RESULT_SERVICE = f"{IMAGINE_ACTION}/_action/get_result"

#: How often a waiting call checks that its server is still there.
PRESENCE_POLL_S = 0.25
#: How long a server may be missing from the graph before a waiting call gives up on it.
GONE_AFTER_S = 0.75
#: How long a query waits for a server to (re)appear before it is sent again: a restart's new node is
#: in the graph ~0.1 s after it is created; longer than this and the caller hears BackendUnavailableError.
REAPPEAR_WAIT_S = 1.0


class _ServerChanged(BackendUnavailableError):
    """The servers a request was sent to left the graph or were replaced while it waited: no answer will come.

    Internal: callers see a plain :class:`BackendUnavailableError` once the request is not re-sent."""


_STATUS = {4: "succeeded", 5: "canceled", 6: "aborted"}  # action_msgs/GoalStatus codes


def _point(msg: Any) -> np.ndarray:
    return np.array([msg.x, msg.y, msg.z], dtype=np.float64)


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
                            labels: Mapping[int, str] | None = None, scene_id: str = "",
                            with_imagination: bool = False, max_views: int = 4) -> Future:
        """Sends a SpatialQuery; the future's result is the raw response (see :meth:`to_query_result`).

        Args:
            observation: the frame to ask about; None (and no ``scene_id``) uses the node's latest frames.
            question: free-text question (may be empty when subject/reference are set).
            subject, reference: ask the relation of subject to reference.
            frame: "camera" (viewer-relative), "world", or a CameraPose to take that camera's perspective.
            labels: ``{segmentation id: name}``; replaces the observation's labels (also with use_latest).
            scene_id: a scene kept on the node (from an earlier result); the frame is not sent.
            with_imagination: answer ``question`` with ``answer_with_imagination`` (up to ``max_views``).

        Raises:
            InvalidInputError: the observation is larger than the ROS limit (refused before sending).
        """
        request = self._srv_type.Request(question=question, subject=subject, reference=reference,
                                         with_imagination=bool(with_imagination), max_views=int(max_views))
        if isinstance(frame, CameraPose):
            request.frame = "viewpoint"
            conversions.fill_camera_fields(request, "viewpoint", frame)
        else:
            request.frame = frame
        _fill_scene(request, observation, labels, scene_id)
        return self._query_client.call_async(request)

    def spatial_query(self, observation: Observation | None = None, question: str = "", subject: str = "",
                      reference: str = "", frame: str | CameraPose = "camera",
                      labels: Mapping[int, str] | None = None, timeout_s: float = 10.0, scene_id: str = "",
                      with_imagination: bool = False, max_views: int = 4) -> SpatialQueryResult:
        """Blocking :meth:`spatial_query_async`.

        Returns:
            The result; ``success`` is False with ``error`` when the node refused the request.

        Raises:
            RequestTimeoutError: no response within ``timeout_s``.
            BackendUnavailableError: the node went away before answering.
        """
        deadline = time.monotonic() + timeout_s

        def send() -> Future:
            return self.spatial_query_async(observation, question, subject, reference, frame, labels, scene_id,
                                            with_imagination, max_views)

        for attempt in range(2):  # a query is idempotent: sent once more after its servers changed
            try:
                sent_to = self._servers_for(SPATIAL_QUERY_SERVICE, deadline, wait=True)
                future = send()
                return self.to_query_result(self._wait(future, max(0.0, deadline - time.monotonic()),
                                                       SPATIAL_QUERY_SERVICE, self._query_client,
                                                       SPATIAL_QUERY_SERVICE, sent_to))
            except _ServerChanged as exc:
                if attempt == 1:
                    raise BackendUnavailableError(str(exc)) from None
        raise AssertionError("unreachable")

    def observe(self, observation: Observation, labels: Mapping[int, str] | None = None,
                timeout_s: float = 10.0) -> SpatialQueryResult:
        """Sends the frame once; the result's ``scene_id`` names the scene kept on the node."""
        return self.spatial_query(observation, labels=labels, timeout_s=timeout_s)

    @staticmethod
    def to_query_result(response: Any) -> SpatialQueryResult:
        """Converts a SpatialQuery response message into a :class:`SpatialQueryResult`."""
        if not response.success:
            return SpatialQueryResult(False, response.error, response.error_type, response.error_json)
        relation = results.relation_from_msg(response.relation) if response.relation.subject else None
        answer = results.answer_from_response(response) if response.value_json else None
        return SpatialQueryResult(True, scene_id=response.scene_id, pivot=_point(response.pivot),
                                  backend=response.backend, answer=response.answer, value=float(response.value),
                                  unit=response.unit, confidence=float(response.confidence), answer_result=answer,
                                  relation=relation,
                                  objects=[results.scene_object_from_msg(o) for o in response.objects])

    # -- imagination ----------------------------------------------------------------------------
    def imagine_async(self, observation: Observation | None = None, yaw_deg: float = 0.0, pitch_deg: float = 0.0,
                      zoom: float = 1.0, viewpoint: CameraPose | None = None, edit: str = "", object_name: str = "",
                      target: Sequence[float] = (0.0, 0.0, 0.0), rotate_yaw_deg: float = 0.0,
                      seed: int | None = None, labels: Mapping[int, str] | None = None,
                      feedback_callback: Callable[[float, str], None] | None = None, scene_id: str = "",
                      edit_only: bool = False, init: str | None = None, strength: float | None = None) -> Future:
        """Sends an Imagine goal; the future resolves to its goal handle (accepted or not).

        Args:
            observation: the frame to imagine from; None (and no ``scene_id``) uses the node's latest frames.
            yaw_deg, pitch_deg, zoom: camera move about the scene's pivot.
            viewpoint: an explicit camera to imagine from instead of the move.
            edit: "" (none), "move" (object_name to ``target``, world xyz of its base centre) or
                "rotate" (object_name by ``rotate_yaw_deg`` about world z); the world model's edit.
            seed: for learned backends; None = unseeded.
            labels: ``{segmentation id: name}``; replaces the observation's labels (also with use_latest).
            feedback_callback: called with (progress, stage) for each feedback message.
            scene_id: a scene kept on the node; the frame is not sent.
            edit_only: apply the edit and return the edited scene's id, without rendering a view.
            init, strength: img2img start of a learned backend (``init="geometric"``, ``strength`` in (0, 1]);
                None = the backend's default. A backend without them refuses a set value, naming the field.
        """
        goal = self._action_type.Goal(yaw_deg=float(yaw_deg), pitch_deg=float(pitch_deg), zoom=float(zoom),
                                      edit=edit, object_name=object_name, rotate_yaw_deg=float(rotate_yaw_deg),
                                      seed=-1 if seed is None else int(seed), edit_only=bool(edit_only),
                                      init=init or "", strength=0.0 if strength is None else float(strength))
        goal.target.x, goal.target.y, goal.target.z = (float(v) for v in target)
        if viewpoint is not None:
            conversions.check_image_size(viewpoint.width, viewpoint.height, "viewpoint")  # the view comes back
            goal.use_viewpoint = True
            conversions.fill_camera_fields(goal, "viewpoint", viewpoint)
        _fill_scene(goal, observation, labels, scene_id)
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
            BackendUnavailableError: the node went away before answering.
        """
        deadline = time.monotonic() + timeout_s
        # a view is a query (sent once more after a restart); an edit never runs twice
        is_query = not goal_fields.get("edit") and not goal_fields.get("edit_only")
        for attempt in range(2 if is_query else 1):
            try:
                return self._imagine_once(observation, deadline, is_query, goal_fields)
            except _ServerChanged as exc:
                if attempt == 1 or not is_query:
                    raise BackendUnavailableError(str(exc)) from None
        raise AssertionError("unreachable")

    def _imagine_once(self, observation: Observation | None, deadline: float, is_query: bool,
                      goal_fields: dict[str, Any]) -> ImagineResult:
        sent_to = self._servers_for(SEND_GOAL_SERVICE, deadline, wait=is_query)
        goal_handle = self._wait(self.imagine_async(observation, **goal_fields), max(0.0, deadline - time.monotonic()),
                                 IMAGINE_ACTION, self._imagine_client, SEND_GOAL_SERVICE, sent_to)
        if not goal_handle.accepted:
            return ImagineResult("rejected", error="the imagination node rejected the goal (is it shutting down?)",
                                 error_type="ServerBusyError")
        try:
            sent_to = self._servers_for(GET_RESULT_SERVICE, deadline, wait=False)
            wrapped = self._wait(goal_handle.get_result_async(), max(0.0, deadline - time.monotonic()),
                                 IMAGINE_ACTION, self._imagine_client, GET_RESULT_SERVICE, sent_to)
        except RequestTimeoutError:
            self.cancel_imagine()
            raise
        return self.to_imagine_result(wrapped)

    def cancel_imagine(self, timeout_s: float = 5.0) -> bool:
        """Asks the node to cancel the last goal sent; True when the node accepted the cancel."""
        if self._goal_handle is None or not self._goal_handle.accepted:
            return False
        response = self._wait(self._goal_handle.cancel_goal_async(), timeout_s, IMAGINE_ACTION, self._imagine_client)
        return len(response.goals_canceling) > 0

    def get_feedback(self) -> list[tuple[float, str]]:
        """The (progress, stage) feedback received for the last goal so far."""
        self._executor.spin_once(timeout_sec=0.0)
        return list(self._feedback)

    def to_imagine_result(self, wrapped: Any) -> ImagineResult:
        """Converts a ``get_result_async`` outcome (status + result message) into an :class:`ImagineResult`."""
        result = wrapped.result
        status = _STATUS.get(int(wrapped.status), f"status {wrapped.status}")
        outcome = ImagineResult(status, bool(result.success), result.error, result.error_type, result.error_json,
                                feedback=list(self._feedback))
        if result.success:
            outcome.view = None if conversions.is_empty(result.rgb) else results.view_from_msg(result)
            outcome.scene_id, outcome.pivot = result.scene_id, _point(result.pivot)
            outcome.objects = [results.scene_object_from_msg(o) for o in result.objects]
        return outcome

    # -- plumbing -------------------------------------------------------------------------------
    def spin_until(self, future: Future, timeout_s: float) -> bool:
        """Spins this client until ``future`` is done or ``timeout_s`` passes; True when done."""
        self._executor.spin_until_future_complete(future, timeout_sec=timeout_s)
        return future.done()

    def server_gids(self, service: str) -> frozenset[bytes]:
        """Endpoint GIDs of the servers of ``service`` in the graph now (the readers of its request topic)."""
        infos = self.get_subscriptions_info_by_topic(f"rq{service}Request", no_mangle=True)  # rmw's DDS name
        return frozenset(bytes(info.endpoint_gid) for info in infos)

    def _servers_for(self, service: str, deadline: float, wait: bool) -> frozenset[bytes]:
        """The servers a request about to be sent will reach; waits up to :data:`REAPPEAR_WAIT_S` when ``wait``.

        Raises:
            BackendUnavailableError: no server in the graph (the request is then not sent).
        """
        gids = self.server_gids(service)
        until = min(deadline, time.monotonic() + (REAPPEAR_WAIT_S if wait else 0.0))
        while not gids and time.monotonic() < until:
            self._executor.spin_once(timeout_sec=0.05)  # graph updates arrive through the executor's wait set
            gids = self.server_gids(service)
        if not gids:
            raise BackendUnavailableError(f"no server for {service} in the graph (stopped, crashed or restarting); "
                                          "the request was not sent")
        return gids

    def _wait(self, future: Future, timeout_s: float, what: str, server: Any = None, service: str = "",
              sent_to: frozenset[bytes] | None = None) -> Any:
        """Spins until ``future`` is done; gives up early when the server leaves the graph or is replaced.

        Args:
            server: the service client or action client, to drop the pending request when giving up.
            service, sent_to: the service the request went to and its servers' GIDs when it was sent (see
                :meth:`server_gids`); any change to that set ends the wait.

        Raises:
            RequestTimeoutError: not done within ``timeout_s``.
            _ServerChanged: the servers of ``service`` changed since the request was sent.
            BackendUnavailableError: ``server`` (a service client or action client) lost its server.
        """
        deadline = time.monotonic() + timeout_s
        missing_since: float | None = None
        while not future.done():
            now = time.monotonic()
            if now >= deadline:
                raise RequestTimeoutError(f"no answer from {what} within {timeout_s} s")
            self._executor.spin_until_future_complete(future, timeout_sec=min(PRESENCE_POLL_S, deadline - now))
            if future.done() or server is None:
                continue
            if sent_to is not None and self.server_gids(service) != sent_to:
                _drop_pending(server, future)
                raise _ServerChanged(f"{what}: the node the request went to stopped or was replaced "
                                         "(restarted) before answering; the request may or may not have run")
            ready = server.service_is_ready() if hasattr(server, "service_is_ready") else server.server_is_ready()
            if ready:
                missing_since = None
            elif missing_since is None:
                missing_since = time.monotonic()
            elif time.monotonic() - missing_since > GONE_AFTER_S:
                _drop_pending(server, future)
                raise BackendUnavailableError(f"{what} went away before answering (the node stopped or crashed); "
                                              "the request may or may not have run")
        return future.result()

    def destroy_node(self) -> None:
        self._imagine_client.destroy()
        self._executor.remove_node(self)
        self._executor.shutdown()
        super().destroy_node()


def _drop_pending(server: Any, future: Future) -> None:
    if hasattr(server, "remove_pending_request"):  # a service client: its answer, if any, is not wanted now
        server.remove_pending_request(future)


def _fill_scene(message: Any, observation: Observation | None, labels: Mapping[int, str] | None,
                scene_id: str = "") -> None:
    if scene_id:
        message.scene_id = str(scene_id)
    elif observation is None:
        message.use_latest = True
    else:
        conversions.fill_scene_fields(message, observation)
    if labels is not None:
        message.label_ids = [int(i) for i in labels]
        message.label_names = [str(n) for n in labels.values()]


def error_from_result(result: SpatialQueryResult | ImagineResult | Any) -> JoyAIError:
    """The core exception a failed result (or raw response) stands for: same class, ``field`` and all."""
    return results.error_from_response(result, default=getattr(result, "status", "failed"))


def labels_of(objects: Sequence[Mapping[str, Any]]) -> dict[int, str]:
    """``{id: name}`` from a simulator's ``info["objects"]`` list, for :class:`Observation` labels."""
    return {int(o["id"]): str(o["name"]) for o in objects}
