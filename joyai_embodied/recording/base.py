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
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..drawing import lift_point_cloud
from ..errors import InvalidInputError, JoyAIError
from ..types import ImaginedView, Observation, Scene, SceneObject
from .rotations import matrix_from_quaternion

#: Logging calls that may wait for the background writer: an episode's burst (~40 calls) fits, and at most
#: ~100 MB of 640x480 camera images wait; when it is full the caller waits for the writer (nothing is dropped).
QUEUE_SIZE = 32


class RecordingError(JoyAIError, RuntimeError):
    """Writing a recording failed in the writer process (one line naming the file and the cause)."""

#: Robot state vectors at least this long carry the end effector's orientation (x, y, z, qx, qy, qz, qw, ...),
#: as ``joyai/LIBERO-v0``'s ``robot_state`` does; shorter ones give its position only.
POSE_STATE_SIZE = 7


def ee_pose(robot_state: Any) -> np.ndarray | None:
    """4x4 end-effector pose from a robot state.

    Args:
        robot_state: a 4x4 matrix, a vector x, y, z, qx, qy, qz, qw, ... (position and orientation), or a
            shorter vector starting with x, y, z (position only; the orientation is the world's).

    Returns:
        The pose, or None when ``robot_state`` is None.

    Raises:
        InvalidInputError: anything else (field ``robot_state``).
    """
    if robot_state is None:
        return None
    state = np.asarray(robot_state, dtype=np.float64)
    if state.shape == (4, 4):
        return state
    if state.ndim == 1 and state.size >= 3:
        matrix = np.eye(4)
        matrix[:3, 3] = state[:3]
        quaternion = state[3:POSE_STATE_SIZE]
        if state.size >= POSE_STATE_SIZE and np.all(np.isfinite(quaternion)) and np.linalg.norm(quaternion) > 0.5:
            matrix[:3, :3] = matrix_from_quaternion(quaternion)
        return matrix
    raise InvalidInputError("robot_state", "a 4x4 pose or a vector starting with x, y, z", state.shape)


class Recorder(ABC):
    """Logs world-model runs for a viewer. Call :meth:`set_time` before each step's logs.

    Subclasses implement the ``_log_*`` hooks; the public methods validate and share the conversions. The
    hooks (encoding and writing: most of a recording's cost) run in the caller's thread; the recorder that
    ``open_recorder(path, background=True)`` returns (:class:`~.writer_process.ProcessRecorder`) runs them, in
    order, in a child process fed by a bounded queue, so that the caller goes on planning while the previous
    step is encoded and written with another GIL; :meth:`flush` waits for it, :meth:`close` drains it (nothing
    is lost). A hook's error there is raised by the next logging call, :meth:`flush` or :meth:`close`.

    Args:
        path: the file to write.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.step = 0
        self.stamp_ns = time.time_ns()
        #: The time of the hook being written (the writer's view of the timeline; set before each hook).
        self.write_step, self.write_stamp_ns = self.step, self.stamp_ns
        self.closed = False
        #: Whether the hooks run elsewhere (a writer process), after the logging call returns.
        self.background = False
        self._next_episode_step = 0
        self._written_time: tuple[int, int] | None = None
        #: CPU seconds spent encoding and writing (in whichever process ran the hooks): what recording costs.
        self.write_cpu_s = 0.0
        #: CPU seconds of the whole writer process (imports included; 0 when the hooks run in the caller).
        self.child_cpu_s = 0.0

    # -- timeline --------------------------------------------------------------------------
    def set_time(self, step: int, stamp_ns: int | None = None) -> None:
        """Moves the timeline to ``step`` at ``stamp_ns`` (wall clock now when None)."""
        self.step = int(step)
        self.stamp_ns = time.time_ns() if stamp_ns is None else int(stamp_ns)

    # -- the writer ------------------------------------------------------------------------
    def _check_open(self) -> None:
        """Raises InvalidInputError (field ``recorder``) once the recorder is closed."""
        if self.closed:
            raise InvalidInputError("recorder", "an open recorder", "closed")

    def _submit(self, hook: Callable[..., None], *args: Any) -> None:
        """Runs ``hook(*args)`` at the current time (a writer process's recorder sends it there instead)."""
        self._check_open()
        step, stamp_ns = self.step, self.stamp_ns
        start = time.thread_time()
        try:
            if self._written_time != (step, stamp_ns):
                self._written_time = (step, stamp_ns)
                self.write_step, self.write_stamp_ns = step, stamp_ns
                self._set_time()
            hook(*args)
        finally:
            self.write_cpu_s += time.thread_time() - start

    def flush(self) -> None:
        """Waits until everything logged so far is written (a no-op when the hooks run in the caller)."""

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
        # One item: a writer process gets the images once (pickled at this call: the caller may reuse them).
        self._submit(self._log_observed, obs, bool(cloud))
        pose = ee_pose(robot_state)
        if pose is not None:
            self.log_pose("end_effector", pose)
        return obs

    def log_scene(self, scene: Scene, imagined: Sequence[tuple[str, ImaginedView]] = ()) -> None:
        """Logs every object of ``scene`` as a named box (world frame), plus imagined camera frusta."""
        self._submit(self._log_objects, "objects", list(scene.objects))
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
        self._submit(self._log_camera, f"imagined/{_slug(label)}", np.asarray(rgb), depth_image, None,
                     np.array(k, dtype=np.float64), np.array(pose, dtype=np.float64))

    def log_edit(self, label: str, before: Sequence[SceneObject], after: Sequence[SceneObject]) -> None:
        """Logs an edit as the boxes of the changed objects before and after it."""
        self._submit(self._log_objects, f"edits/{_slug(label)}/before", list(before), 0.25)
        self._submit(self._log_objects, f"edits/{_slug(label)}/after", list(after), 0.8)

    def log_scene_edit(self, label: str, before: Scene, after: Scene) -> None:
        """Logs the objects an edit changed (moved, turned or removed), as boxes before and after it."""
        after_by_id = {o.id: o for o in after.objects}
        changed = [o for o in before.objects if o.id not in after_by_id
                   or not np.allclose(o.centroid, after_by_id[o.id].centroid, atol=1e-6)
                   or not np.allclose(o.obb_rotation, after_by_id[o.id].obb_rotation, atol=1e-6)]
        self.log_edit(label, changed, [after_by_id[o.id] for o in changed if o.id in after_by_id])

    def log_text(self, text: str, kind: str = "query") -> None:
        """Logs a line of text (a query and its answer, an instruction, a status) on the timeline."""
        self._submit(self._log_text, _slug(kind), str(text))

    def log_pose(self, name: str, matrix: np.ndarray) -> None:
        """Logs a named 4x4 world pose (robot base, end effector...)."""
        matrix = np.asarray(matrix, dtype=np.float64)
        if matrix.shape != (4, 4):
            raise InvalidInputError(f"pose {name}", "a 4x4 matrix", matrix.shape)
        self._submit(self._log_pose, _slug(name), matrix.copy())

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

    def close(self, wait: bool = True) -> None:
        """Closes the file (a writer process's recorder first writes what is still queued).

        Args:
            wait: False lets a writer process finish on its own (a later ``close()`` or the exit waits for it);
                a recorder writing in the caller closes at once either way.
        """
        if self.closed:
            return
        self.closed = True
        self._close()

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- backend hooks (called in the writer's order; the time is write_step / write_stamp_ns) ----
    def _log_observed(self, obs: Observation, cloud: bool) -> None:
        """The observing camera and (with ``cloud`` and depth) the cloud lifted from it (lifting is encoding)."""
        self._log_camera("observer", obs.rgb, obs.depth, obs.segmentation, obs.intrinsics, obs.cam_to_world)
        if cloud and obs.depth is not None:
            self._log_cloud(*lift_point_cloud(obs))

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
