"""The ``"ros"`` world-model backend: WorldModel calls answered by the ROS 2 nodes.

Code written against :class:`joyai_embodied.WorldModel` (the planner, ``joyai-embodied demo --via ros``)
runs unchanged through ``/joyai/spatial_query`` and ``/joyai/imagine``. The observation stays in this
process and travels with every request (the nodes are stateless); an edit is imagined from the
observing camera and the edited view becomes the new scene's observation, so later questions see
the edit.

If the nodes are not running, the backend starts ``joyai-embodied ros --preset <preset>`` as a child
process (loopback discovery, the current ROS_DOMAIN_ID) and stops it on :meth:`close`.
"""

from __future__ import annotations

import os
import subprocess
from typing import Any, Sequence

import numpy as np

from joyai_embodied.backends.base import Backend, Frame
from joyai_embodied.types import (Answer, CameraMove, CameraPose, Edit, ImaginedView, MoveObject, Observation,
                                  Relation, Scene)

from .child_process import close_client, start_launcher
from .client import WorldModelClient, error_from_result


class RosBackend(Backend):
    """Forwards every WorldModel call to the world-model nodes.

    Args:
        preset: preset the nodes load when this backend has to start them.
        address: model server address passed to the nodes (remote preset).
        start_nodes: "auto" starts the nodes when they do not answer within ``wait_s``; True always
            starts them; False only connects.
        timeout_s: per-call timeout.
        wait_s: how long to wait for running nodes before starting our own.
    """

    name = "ros"

    def __init__(self, preset: str = "geometric", address: str | None = None, start_nodes: bool | str = "auto",
                 timeout_s: float = 60.0, wait_s: float = 2.0):
        import rclpy

        os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
        self._owns_context = not rclpy.ok()
        if self._owns_context:
            from .fastdds_profile import use_large_frame_transport

            use_large_frame_transport()  # this process sends 640x480 frames too (and its node child inherits it)
            rclpy.init()
        self.timeout_s = timeout_s
        self.client = WorldModelClient("joyai_ros_backend")
        self._process: subprocess.Popen | None = None
        if start_nodes is True or (start_nodes == "auto" and not self._ready(wait_s)):
            arguments = ["--preset", str(preset)] + (["--address", address] if address else [])
            self._process = start_launcher(arguments)
            self.client.wait_until_ready(timeout_s=timeout_s)

    def _ready(self, wait_s: float) -> bool:
        try:
            self.client.wait_until_ready(timeout_s=wait_s)
            return True
        except Exception:
            return False

    # -- understanding -------------------------------------------------------------------------
    def observe(self, observation: Observation) -> Scene:
        result = self._query(observation)
        centroids = [o.centroid for o in result.objects]
        pivot = np.mean(centroids, axis=0) if centroids else observation.cam_to_world[:3, 3].copy()
        return Scene(observation, list(result.objects), pivot, backend=self.name)

    def relation(self, scene: Scene, subject: str, reference: str, frame: Frame = "camera") -> Relation:
        return self._query(scene.observation, subject=subject, reference=reference, frame=frame).relation

    def ask(self, scene: Scene, question: str, frame: Frame = "camera") -> Answer:
        result = self._query(scene.observation, question=question, frame=frame)
        value = None if np.isnan(result.value) else result.value
        return Answer(result.answer, value, result.unit, result.confidence,
                      frame=frame if isinstance(frame, str) else "viewpoint")

    def answer_with_imagination(self, scene: Scene, question: str, max_views: int = 4) -> Answer:
        """Answers from the observed frame only: the service has no multi-view question (views=())."""
        return self.ask(scene, question)

    # -- imagination ---------------------------------------------------------------------------
    def imagine(self, scene: Scene, move: CameraMove | CameraPose, seed: int | None = None) -> ImaginedView:
        if isinstance(move, CameraPose):
            return self._imagine(scene.observation, viewpoint=move, seed=seed).view
        return self._imagine(scene.observation, yaw_deg=move.yaw_deg, pitch_deg=move.pitch_deg, zoom=move.zoom,
                             seed=seed).view

    def edit(self, scene: Scene, edit: Edit, seed: int | None = None) -> Scene:
        fields: dict[str, Any] = {"edit": "move" if isinstance(edit, MoveObject) else "rotate",
                                  "object_name": edit.object}
        if isinstance(edit, MoveObject):
            fields["target"] = edit.to
        else:
            fields["rotate_yaw_deg"] = edit.yaw_deg
        result = self._imagine(scene.observation, seed=seed, **fields)
        # the edited scene, seen from the same camera, is what later questions are about
        observation = result.view.as_observation(labels=scene.observation.labels)
        return Scene(observation, list(result.objects), scene.pivot, backend=self.name,
                     edits=(*scene.edits, edit))

    # -- plumbing ------------------------------------------------------------------------------
    def _query(self, observation: Observation, **fields: Any) -> Any:
        result = self.client.spatial_query(observation, timeout_s=self.timeout_s, **fields)
        if not result.success:
            raise error_from_result(result)
        return result

    def _imagine(self, observation: Observation, **fields: Any) -> Any:
        result = self.client.imagine(observation, timeout_s=self.timeout_s, **fields)
        if not result.success:
            raise error_from_result(result)
        return result

    def imagine_batch(self, scene: Scene, moves: Sequence[CameraMove | CameraPose],
                      seed: int | None = None) -> list[ImaginedView]:
        return [self.imagine(scene, move, seed=seed) for move in moves]

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "started_nodes": self._process is not None}

    def close(self) -> None:
        close_client(self.client, self._process, self._owns_context)
        self._process = None
