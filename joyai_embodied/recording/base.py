"""The :class:`Recorder` interface, the recorder chosen by file suffix, and planner-episode logging.

A recorder logs, on one timeline (``step`` plus a timestamp): observation images, depth, the lifted coloured
point cloud, the scene's objects as named 3D boxes, the observing camera and imagined cameras as pinhole
frusta with their images, edits as before/after boxes, query/answer text and robot/end-effector poses.
``.rrd`` -> :class:`~.rerun_recorder.RerunRecorder`, ``.mcap`` -> :class:`~.mcap_recorder.McapRecorder`
(:func:`~.recorders.open_recorder` picks one by suffix).
"""

from __future__ import annotations

import dataclasses
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..drawing import lift_point_cloud
from ..errors import InvalidInputError
from ..types import ImaginedView, Observation, Scene, SceneObject

def ee_pose(robot_state: Any) -> np.ndarray | None:
    """4x4 end-effector pose from a robot state: a 4x4 matrix, or a vector starting with the tip x, y, z."""
    if robot_state is None:
        return None
    state = np.asarray(robot_state, dtype=np.float64)
    if state.shape == (4, 4):
        return state
    if state.ndim == 1 and state.size >= 3:
        matrix = np.eye(4)
        matrix[:3, 3] = state[:3]
        return matrix
    raise InvalidInputError("robot_state", "a 4x4 pose or a vector starting with x, y, z", state.shape)


class Recorder(ABC):
    """Logs world-model runs for a viewer. Call :meth:`set_time` before each step's logs.

    Subclasses implement the ``_log_*`` hooks; the public methods validate and share the conversions.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.step = 0
        self.stamp_ns = time.time_ns()
        self.closed = False
        self._next_episode_step = 0

    # -- timeline --------------------------------------------------------------------------
    def set_time(self, step: int, stamp_ns: int | None = None) -> None:
        """Moves the timeline to ``step`` at ``stamp_ns`` (wall clock now when None)."""
        self.step = int(step)
        self.stamp_ns = time.time_ns() if stamp_ns is None else int(stamp_ns)
        self._set_time()

    # -- what gets logged ------------------------------------------------------------------
    def log_observation(self, obs: Observation | Mapping[str, Any], robot_state: Any = None,
                        cloud: bool = True) -> Observation:
        """Logs the observing camera (pose, pinhole, rgb, depth, segmentation), the lifted cloud, the robot.

        Args:
            obs: an Observation or an env observation dict (``robot_state`` is taken from it when present).
            robot_state: end-effector pose (4x4) or state vector starting with x, y, z; overrides the dict's.
            cloud: also log the coloured point cloud lifted from depth.

        Returns:
            The validated Observation.
        """
        if not isinstance(obs, Observation):
            if robot_state is None and isinstance(obs, Mapping):
                robot_state = obs.get("robot_state")
            obs = Observation.from_dict(obs)
        self._log_camera("observer", obs.rgb, obs.depth, obs.segmentation, obs.intrinsics, obs.cam_to_world)
        if cloud and obs.depth is not None:
            self._log_cloud(*lift_point_cloud(obs))
        pose = ee_pose(robot_state)
        if pose is not None:
            self.log_pose("end_effector", pose)
        return obs

    def log_scene(self, scene: Scene, imagined: Sequence[tuple[str, ImaginedView]] = ()) -> None:
        """Logs every object of ``scene`` as a named box (world frame), plus imagined camera frusta."""
        self._log_objects("objects", list(scene.objects))
        for label, view in imagined:
            self.log_imagined(label, view)

    def log_imagined(self, label: str, view: ImaginedView | Mapping[str, Any], depth: bool = False) -> None:
        """Logs an imagined camera as a frustum with its imagined image.

        Args:
            label: the camera's name (``"side camera"``, ``"rollout"``...).
            view: an ImaginedView, or a frame mapping with ``rgb``, ``intrinsics``, ``cam_to_world`` and
                optionally ``depth`` (a :class:`~joyai_embodied.rollout.WorldModelEnv` observation).
            depth: also log the imagined depth (off by default: it adds a third of a camera's logging cost
                and the observer's depth and cloud already give the scene's geometry).
        """
        if isinstance(view, Mapping):
            missing = [k for k in ("rgb", "intrinsics", "cam_to_world") if k not in view]
            if missing:
                raise InvalidInputError("view", "rgb, intrinsics and cam_to_world", f"missing {missing}")
            rgb, view_depth, k, pose = view["rgb"], view.get("depth"), view["intrinsics"], view["cam_to_world"]
        else:
            rgb, view_depth, k, pose = view.rgb, view.depth, view.intrinsics, view.cam_to_world
        depth_image = np.asarray(view_depth) if depth and view_depth is not None else None
        self._log_camera(f"imagined/{_slug(label)}", np.asarray(rgb), depth_image, None,
                         np.asarray(k, dtype=np.float64), np.asarray(pose, dtype=np.float64))

    def log_edit(self, label: str, before: Sequence[SceneObject], after: Sequence[SceneObject]) -> None:
        """Logs an edit as the boxes of the changed objects before and after it."""
        self._log_objects(f"edits/{_slug(label)}/before", list(before), alpha=0.25)
        self._log_objects(f"edits/{_slug(label)}/after", list(after), alpha=0.8)

    def log_scene_edit(self, label: str, before: Scene, after: Scene) -> None:
        """Logs the objects an edit changed (moved, turned or removed), as boxes before and after it."""
        after_by_id = {o.id: o for o in after.objects}
        changed = [o for o in before.objects if o.id not in after_by_id
                   or not np.allclose(o.centroid, after_by_id[o.id].centroid, atol=1e-6)
                   or not np.allclose(o.obb_rotation, after_by_id[o.id].obb_rotation, atol=1e-6)]
        self.log_edit(label, changed, [after_by_id[o.id] for o in changed if o.id in after_by_id])

    def log_text(self, text: str, kind: str = "query") -> None:
        """Logs a line of text (a query and its answer, an instruction, a status) on the timeline."""
        self._log_text(kind, str(text))

    def log_pose(self, name: str, matrix: np.ndarray) -> None:
        """Logs a named 4x4 world pose (robot base, end effector...)."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.shape != (4, 4):
            raise InvalidInputError(f"pose {name}", "a 4x4 matrix", matrix.shape)
        self._log_pose(_slug(name), matrix)

    def log_episode(self, episode: Any, first_step: int | None = None) -> int:
        """Logs a planner :class:`~joyai_embodied.planner.records.Episode` (after it ran).

        Step ``first_step`` (default: after the last logged episode): the observation, the planned-on scene,
        each query with its answer, the imagined views, the predicted edit (picked object before / at the
        place position). Next step: the observation after acting, the verification scene and answer.

        Returns:
            The next free step.
        """
        first_step = self._next_episode_step if first_step is None else int(first_step)
        plan = episode.plan
        self.set_time(first_step)
        self.log_text(f"seed {episode.seed}: {plan.instruction}", kind="instruction")
        if episode.observation:  # evaluations drop the images of finished episodes: text and boxes remain
            self.log_observation(episode.observation)
        if plan.scene is not None:
            self.log_scene(plan.scene)
        for query in plan.queries:
            self.log_text(f"[{query.kind}] {query.question} -> {query.answer} ({query.frame})", kind="query")
        for record in plan.imagined:
            self.log_imagined(record.label, record.view)
        if plan.pick is not None and plan.place_position is not None:
            moved = _moved(plan.pick, np.asarray(plan.place_position, dtype=np.float64))
            self.log_edit("predicted", [plan.pick], [moved])
        step = first_step + 1
        if episode.act is not None:
            self.set_time(step)
            if episode.act.observation:
                self.log_observation(episode.act.observation)
            verification = episode.verification
            if verification is not None and verification.scene is not None:
                self.log_scene(verification.scene)
            if verification is not None and verification.query is not None:
                query = verification.query
                self.log_text(f"[{query.kind}] {query.question} -> {query.answer} ({query.frame})", kind="query")
            step += 1
        self.log_text(f"seed {episode.seed}: {episode.status}", kind="status")
        self._next_episode_step = step
        return step

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- backend hooks -----------------------------------------------------------------------
    @abstractmethod
    def _set_time(self) -> None: ...

    @abstractmethod
    def _log_camera(self, name: str, rgb: np.ndarray, depth: np.ndarray | None, segmentation: np.ndarray | None,
                    intrinsics: np.ndarray, cam_to_world: np.ndarray) -> None: ...

    @abstractmethod
    def _log_cloud(self, points: np.ndarray, colors: np.ndarray) -> None: ...

    @abstractmethod
    def _log_objects(self, name: str, objects: list[SceneObject], alpha: float = 0.6) -> None: ...

    @abstractmethod
    def _log_text(self, kind: str, text: str) -> None: ...

    @abstractmethod
    def _log_pose(self, name: str, matrix: np.ndarray) -> None: ...

    @abstractmethod
    def _close(self) -> None: ...


def _slug(label: str) -> str:
    """An entity/topic-safe name: lower case, words joined by underscores."""
    return "_".join("".join(c if c.isalnum() else " " for c in str(label).lower()).split()) or "unnamed"


def _moved(obj: SceneObject, bottom_centre: np.ndarray) -> SceneObject:
    """``obj`` moved so that the centre of its base sits at ``bottom_centre`` (a MoveObject edit's result)."""
    centroid = bottom_centre + np.array([0.0, 0.0, obj.extent[2] / 2])
    return dataclasses.replace(obj, centroid=centroid)
