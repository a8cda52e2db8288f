"""The ``"ros"`` world-model backend: WorldModel calls answered by the ROS 2 nodes, shaped like ``remote``.

``WorldModel.load("ros")`` (registered through the ``joyai_embodied.backends`` entry point group) runs
code written against :class:`joyai_embodied.WorldModel` (the planner, ``demo --via ros``) through
``/joyai/spatial_query`` and ``/joyai/imagine``. Scenes live on the nodes, in the same
:class:`~joyai_embodied.service.ModelService` every transport uses: ``observe`` sends the frame once
and gets a scene id back (``Scene.data`` is a :class:`RosSceneHandle`), every later call sends only
that id. So the pivot is the service's, ``edit`` is the world model's edit (a new scene id),
``answer_with_imagination`` runs on the node, and the results equal the in-process ones on the same
frame. A scene the nodes no longer hold raises :class:`~joyai_embodied.errors.SceneExpiredError`:
observe again.

If the nodes are not running, the backend starts ``joyai-embodied ros --preset <preset>`` as a child
process (loopback discovery, the current ROS_DOMAIN_ID) and stops it on :meth:`close`.
"""

from __future__ import annotations

import itertools
import os
import subprocess
from dataclasses import dataclass
from typing import Any, Sequence

from joyai_embodied.backends.base import Backend, Frame
from joyai_embodied.config import resolve_config
from joyai_embodied.errors import InvalidInputError, RemoteError
from joyai_embodied.types import (Answer, CameraMove, CameraPose, Edit, ImaginedView, MoveObject, Observation,
                                  Relation, Scene)

from ..child_process import close_client, start_launcher
from .configuration_ros import RosConfig
from .world_model_client import ImagineResult, SpatialQueryResult, WorldModelClient, error_from_result


#: Numbers the backends of this process: ROS warns (rosout publisher clash) when two nodes share a name.
_BACKEND_NUMBERS = itertools.count(1)


def node_name() -> str:
    """A client node name unique across processes and backends: ``joyai_ros_backend_<pid>_<n>``."""
    return f"joyai_ros_backend_{os.getpid()}_{next(_BACKEND_NUMBERS)}"


@dataclass(frozen=True)
class RosSceneHandle:
    """``Scene.data`` of a scene kept on the nodes.

    Attributes:
        scene_id: the nodes' handle for it.
        server_backend: the backend that built it there (``"geometric"``, ``"joyai-image"``...).
    """

    scene_id: str
    server_backend: str


class RosBackend(Backend):
    """Forwards every WorldModel call to the world-model nodes (both in one ``joyai-embodied ros`` process).

    Args:
        config: a :class:`RosConfig`; or its fields as keywords (``preset=``, ``start_nodes=``...).

    Raises:
        InvalidInputError: a bad option.
        RequestTimeoutError: the nodes did not come up within ``timeout_s``.
    """

    name = "ros"
    config_class = RosConfig

    def __init__(self, config: RosConfig | None = None, **options: Any):
        import rclpy

        self.config = resolve_config(RosConfig, config, options, "ros backend")
        os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        self._owns_context = not rclpy.ok()
        if self._owns_context:
            from ..fastdds_profile import use_large_frame_transport

            use_large_frame_transport()  # this process sends 640x480 frames too (and its node child inherits it)
            rclpy.init()
        self.timeout_s = self.config.timeout_s
        self.client = WorldModelClient(node_name())
        self._process: subprocess.Popen | None = None
        self._server_backend = ""
        start = self.config.start_nodes
        try:
            if start is True or (start == "auto" and not self._ready(self.config.wait_s)):
                arguments = ["--preset", self.config.preset]
                arguments += ["--address", self.config.address] if self.config.address else []
                arguments += ["--device", self.config.device] if self.config.device else []
                self._process = start_launcher(arguments)
                self.client.wait_until_ready(timeout_s=self.timeout_s)
        except BaseException:
            self.close()
            raise

    def _ready(self, wait_s: float) -> bool:
        try:
            self.client.wait_until_ready(timeout_s=wait_s)
            return True
        except Exception:
            return False

    # -- scenes --------------------------------------------------------------------------------
    def observe(self, observation: Observation) -> Scene:
        result = self._query(observation=observation)
        self._server_backend = result.backend
        return self._scene(result, observation, (), result.backend)

    def edit(self, scene: Scene, edit: Edit, seed: int | None = None) -> Scene:
        fields: dict[str, Any] = {"edit": "move" if isinstance(edit, MoveObject) else "rotate",
                                  "object_name": edit.object}
        if isinstance(edit, MoveObject):
            fields["target"] = edit.to
        else:
            fields["rotate_yaw_deg"] = edit.yaw_deg
        result = self._imagine(scene, seed=seed, edit_only=True, **fields)
        return self._scene(result, scene.observation, (*scene.edits, edit), scene.data.server_backend)

    # -- understanding -------------------------------------------------------------------------
    def relation(self, scene: Scene, subject: str, reference: str, frame: Frame = "camera") -> Relation:
        return self._query(scene, subject=subject, reference=reference, frame=frame).relation

    def ask(self, scene: Scene, question: str, frame: Frame = "camera") -> Answer:
        return self._answer(self._query(scene, question=question, frame=frame))

    def answer_with_imagination(self, scene: Scene, question: str, max_views: int = 4) -> Answer:
        """Answered on the node by the service's ``answer_with_imagination`` (views included)."""
        return self._answer(self._query(scene, question=question, with_imagination=True, max_views=max_views))

    # -- imagination ---------------------------------------------------------------------------
    def imagine(self, scene: Scene, move: CameraMove | CameraPose, seed: int | None = None,
                init: str | None = None, strength: float | None = None) -> ImaginedView:
        """One view, imagined on the node; ``init`` / ``strength`` (img2img start) go in the goal only when set,
        and the node's backend decides whether it takes them (``InvalidInputError`` naming the field if not)."""
        img2img = {"init": init, "strength": strength}
        if isinstance(move, CameraPose):
            result = self._imagine(scene, viewpoint=move, seed=seed, **img2img)
        else:
            result = self._imagine(scene, yaw_deg=move.yaw_deg, pitch_deg=move.pitch_deg, zoom=move.zoom, seed=seed,
                                   **img2img)
        if result.view is None:
            raise RemoteError("the imagination node answered without a view")
        return result.view

    def imagine_batch(self, scene: Scene, moves: Sequence[CameraMove | CameraPose], seed: int | None = None,
                      init: str | None = None, strength: float | None = None) -> list[ImaginedView]:
        """One Imagine goal per move (the action has one view per goal); ``init`` / ``strength`` as :meth:`imagine`."""
        return [self.imagine(scene, move, seed=seed, init=init, strength=strength) for move in moves]

    # -- plumbing ------------------------------------------------------------------------------
    def _scene_id(self, scene: Scene) -> str:
        if not isinstance(scene.data, RosSceneHandle):
            raise InvalidInputError("scene", "a Scene observed through the ros backend",
                                    f"a scene of backend {scene.backend!r}")
        return scene.data.scene_id

    def _scene(self, result: SpatialQueryResult | ImagineResult, observation: Observation, edits: tuple,
               server_backend: str) -> Scene:
        return Scene(observation=observation, objects=list(result.objects), pivot=result.pivot, backend=self.name,
                     data=RosSceneHandle(result.scene_id, server_backend), edits=edits)

    def _query(self, scene: Scene | None = None, **fields: Any) -> SpatialQueryResult:
        if scene is not None:
            fields["scene_id"] = self._scene_id(scene)
        result = self.client.spatial_query(timeout_s=self.timeout_s, **fields)
        if not result.success:
            raise error_from_result(result)
        return result

    @staticmethod
    def _answer(result: SpatialQueryResult) -> Answer:
        if result.answer_result is None:
            raise RemoteError("the spatial-reasoning node answered a question without an answer")
        return result.answer_result

    def _imagine(self, scene: Scene, **fields: Any) -> ImagineResult:
        result = self.client.imagine(scene_id=self._scene_id(scene), timeout_s=self.timeout_s, **fields)
        if not result.success:
            raise error_from_result(result)
        return result

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "started_nodes": self._process is not None,
                "server_backend": self._server_backend}

    def close(self) -> None:
        """Destroys the client node; stops the nodes if this backend started them."""
        client, process, self._process = getattr(self, "client", None), self._process, None
        if client is not None:
            self.client = None
            close_client(client, process, self._owns_context)
