"""Offline rollouts inside the world model: a Gymnasium env whose observations are imagined.

:class:`WorldModelEnv` starts from one real observation; its actions move a virtual camera about the
scene pivot or edit objects, and every observation after ``reset`` is what the world model imagines.
No simulator is touched, so a planner can try "what would I see from there / after moving that"
before acting. :func:`save_observation` and :func:`load_observation` store a frame as ``.npz`` for the
``joyai-embodied rollout`` command.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Mapping

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from .spatial import orbit_scene
from .errors import InvalidInputError, JoyAIError
from .types import CameraMove, CameraPose, ImaginedView, MoveObject, Observation, RotateObject, Scene
from .world_model import WorldModel

#: Action kinds (``action["kind"]``).
CAMERA, MOVE_OBJECT, ROTATE_OBJECT = 0, 1, 2
KIND_NAMES = {CAMERA: "camera", MOVE_OBJECT: "move", ROTATE_OBJECT: "rotate"}

_OBSERVATION_KEYS = ("rgb", "depth", "intrinsics", "cam_to_world")
#: Observation bounds: depth in metres (farther is clipped), and generous finite limits for K and poses.
MAX_DEPTH_M, MAX_INTRINSIC, MAX_POSE = 100.0, 1e6, 1e4


class WorldModelEnv(gym.Env):
    """A ``gymnasium.Env`` over imagined observations of one observed scene.

    ``reset`` returns the source frame (the real observation) and restores the scene and camera;
    ``step`` applies a camera move or an object edit through the :class:`WorldModel` and returns the view
    it imagines from the current virtual camera. Camera moves are relative to the current virtual camera
    and orbit the scene pivot (``CameraMove`` semantics); edits accumulate and the camera stays where it is.

    ## Action space: ``Dict``

    | key         | space                                   | meaning                                            |
    |-------------|-----------------------------------------|----------------------------------------------------|
    | `kind`      | `Discrete(3)`                           | 0 camera move, 1 move object, 2 rotate object      |
    | `camera`    | `Box([-180, -89, 0.5], [180, 89, 2])`   | (yaw deg, pitch deg, zoom) of a camera move         |
    | `object_id` | `Discrete(max id + 1)`                  | instance id of the object to edit (0 = none)        |
    | `position`  | `Box(-2, 2, (3,))`                      | world xyz where the moved object's base centre goes |
    | `yaw_deg`   | `Box(-180, 180, (1,))`                  | rotation about world z for a rotate edit            |

    Only the keys the chosen ``kind`` needs are read. :meth:`camera_action`, :meth:`move_action` and
    :meth:`rotate_action` build actions from names. An action the world model refuses (unknown id, a
    target off the table or over 1 m from the pivot, a pitch past the vertical or one that takes the camera
    under the table top or inside an object) is not an exception: the
    state is unchanged and ``info["action_error"]`` says why.

    ## Observation space: ``Dict``

    | key            | space / dtype             | meaning                                               |
    |----------------|---------------------------|-------------------------------------------------------|
    | `rgb`          | `(H, W, 3)` uint8         | imagined image (0 where unknown)                      |
    | `depth`        | `(H, W)` float32, metres  | z-depth; **0 where unknown** (spaces cannot hold NaN), <= 100 |
    | `segmentation` | `(H, W)` int32            | instance ids, 0 = background or unknown               |
    | `valid_mask`   | `(H, W)` uint8            | 1 where supported by observed evidence, 0 filled/unknown |
    | `intrinsics`   | `(3, 3)` float64          | K of the virtual camera (the source camera's)          |
    | `cam_to_world` | `(4, 4)` float64          | pose of the virtual camera (OpenCV)                    |

    ## Rewards, episode end, info

    The reward is ``reward_fn(scene, view)`` when given, else 0.0; episodes never terminate and are
    truncated after ``max_episode_steps``. ``info`` has ``valid_fraction``, ``edits`` (count),
    ``objects`` (``[{"id", "name", "position"}]`` after the edits) and, when refused, ``action_error``.

    Seeding: ``reset(seed=...)`` seeds ``np_random``; each step draws the seed it passes to ``imagine`` /
    ``edit`` from it, so learned (sampling) backends replay exactly.

    Args:
        world_model: a loaded WorldModel (any backend that can imagine a CameraPose and edit).
        observation: an env observation dict or an Observation; observed once, at construction.
        labels: optional ``{instance id: name}`` for the objects.
        max_episode_steps: steps before ``truncated`` is True.
        reward_fn: optional ``(scene, view) -> float``.
        render_mode: None or ``"rgb_array"`` (``render()`` returns the current rgb).

    Raises:
        InvalidInputError: bad observation, ``max_episode_steps`` < 1, unknown ``render_mode``,
            or a scene without objects.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 4}

    def __init__(self, world_model: WorldModel, observation: Mapping[str, Any] | Observation,
                 labels: Mapping[int, str] | None = None, max_episode_steps: int = 50,
                 reward_fn: Callable[[Scene, ImaginedView], float] | None = None,
                 render_mode: str | None = None):
        if not isinstance(world_model, WorldModel):
            raise InvalidInputError("world_model", "a WorldModel", type(world_model).__name__)
        if isinstance(max_episode_steps, bool) or not isinstance(max_episode_steps, int) or max_episode_steps < 1:
            raise InvalidInputError("max_episode_steps", "an integer >= 1", max_episode_steps)
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise InvalidInputError("render_mode", "None or 'rgb_array'", repr(render_mode))
        self.world_model = world_model
        self.max_episode_steps = max_episode_steps
        self.reward_fn = reward_fn
        self.render_mode = render_mode

        self.source_scene = world_model.observe(observation, labels=labels) \
            if not isinstance(observation, Observation) else world_model.observe(observation)
        if not self.source_scene.objects:
            raise InvalidInputError("observation", "a scene with at least one object", "no objects found")
        source = self.source_scene.observation
        self.source_camera = source.camera
        self._source_frame = _frame_from_observation(source)
        self._max_id = max(int(o.id) for o in self.source_scene.objects)

        height, width = source.height, source.width
        self.observation_space = spaces.Dict({
            "rgb": spaces.Box(0, 255, (height, width, 3), np.uint8),
            "depth": spaces.Box(0.0, MAX_DEPTH_M, (height, width), np.float32),
            "segmentation": spaces.Box(0, np.iinfo(np.int32).max, (height, width), np.int32),
            "valid_mask": spaces.Box(0, 1, (height, width), np.uint8),
            "intrinsics": spaces.Box(-MAX_INTRINSIC, MAX_INTRINSIC, (3, 3), np.float64),
            "cam_to_world": spaces.Box(-MAX_POSE, MAX_POSE, (4, 4), np.float64),
        })
        self.action_space = spaces.Dict({
            "kind": spaces.Discrete(3),
            "camera": spaces.Box(np.array([-180.0, -89.0, 0.5], np.float32),
                                 np.array([180.0, 89.0, 2.0], np.float32), dtype=np.float32),
            "object_id": spaces.Discrete(self._max_id + 1),
            "position": spaces.Box(-2.0, 2.0, (3,), np.float32),
            "yaw_deg": spaces.Box(-180.0, 180.0, (1,), np.float32),
        })
        self.scene = self.source_scene
        self.camera = self.source_camera
        self._frame = self._source_frame
        self._steps = 0

    # -- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Restores the observed scene and the source camera; returns the source frame."""
        super().reset(seed=seed)
        self.scene, self.camera, self._frame, self._steps = (self.source_scene, self.source_camera,
                                                             self._source_frame, 0)
        return _copy(self._frame), self._info(valid_fraction=float(self._frame["valid_mask"].mean()))

    def step(self, action: Mapping[str, Any]) -> tuple[dict, float, bool, bool, dict]:
        """Applies one camera move or edit and returns the imagined observation."""
        self._steps += 1
        truncated = self._steps >= self.max_episode_steps
        seed = int(self.np_random.integers(0, 2**31 - 1))
        try:
            scene, camera = self._apply(action, seed)
            view = self.world_model.imagine(scene, camera, seed=seed)
        except JoyAIError as error:  # refused action: report it, keep the state
            info = self._info(valid_fraction=float(self._frame["valid_mask"].mean()))
            info["action_error"] = str(error)
            return _copy(self._frame), 0.0, False, truncated, info
        self.scene, self.camera = scene, camera
        self._frame = _frame_from_view(view, camera)
        reward = float(self.reward_fn(scene, view)) if self.reward_fn is not None else 0.0
        info = self._info(valid_fraction=float(view.valid_mask.mean()))
        return _copy(self._frame), reward, False, truncated, info

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            return self._frame["rgb"].copy()
        return None

    # -- action builders -----------------------------------------------------------------------
    def camera_action(self, yaw_deg: float = 0.0, pitch_deg: float = 0.0, zoom: float = 1.0) -> dict:
        """An action that orbits the virtual camera by (yaw, pitch, zoom) about the pivot."""
        return self._action(CAMERA, camera=[yaw_deg, pitch_deg, zoom])

    def move_action(self, name: str, to) -> dict:
        """An action that moves object ``name`` so the centre of its base is at world ``to``.

        Raises:
            UnknownObjectError, AmbiguousObjectError: ``name`` matches no object / several.
        """
        return self._action(MOVE_OBJECT, object_id=self.scene.find(name).id, position=to)

    def rotate_action(self, name: str, yaw_deg: float) -> dict:
        """An action that rotates object ``name`` about world z by ``yaw_deg``."""
        return self._action(ROTATE_OBJECT, object_id=self.scene.find(name).id, yaw_deg=[yaw_deg])

    # -- internals -----------------------------------------------------------------------------
    def _action(self, kind: int, camera=(0.0, 0.0, 1.0), object_id: int = 0, position=(0.0, 0.0, 0.0),
                yaw_deg=(0.0,)) -> dict:
        return {"kind": kind, "camera": np.asarray(camera, np.float32), "object_id": int(object_id),
                "position": np.asarray(position, np.float32), "yaw_deg": np.asarray(yaw_deg, np.float32)}

    def _apply(self, action: Mapping[str, Any], seed: int) -> tuple[Scene, CameraPose]:
        if not isinstance(action, Mapping) or "kind" not in action:
            raise InvalidInputError("action", "a dict with 'kind' (see WorldModelEnv's action table)",
                                    type(action).__name__)
        kind = int(action["kind"])
        if kind == CAMERA:
            yaw, pitch, zoom = (float(v) for v in np.asarray(action["camera"], np.float64).reshape(3))
            move = CameraMove(yaw_deg=yaw, pitch_deg=pitch, zoom=zoom)
            # Refused like imagine's own moves: past the vertical, under the table top, inside an object.
            return self.scene, orbit_scene(self.scene, move, start=self.camera)
        if kind not in (MOVE_OBJECT, ROTATE_OBJECT):
            raise InvalidInputError("action.kind", "0 (camera), 1 (move object) or 2 (rotate object)", kind)
        name = self._name_of(int(action["object_id"]))
        if kind == MOVE_OBJECT:
            edit = MoveObject(name, to=np.asarray(action["position"], np.float64).reshape(3))
        else:
            edit = RotateObject(name, yaw_deg=float(np.asarray(action["yaw_deg"]).reshape(-1)[0]))
        return self.world_model.edit(self.scene, edit, seed=seed), self.camera

    def _name_of(self, object_id: int) -> str:
        for obj in self.scene.objects:
            if int(obj.id) == object_id:
                return obj.name
        known = ", ".join(f"{o.id} ({o.name})" for o in self.scene.objects)
        raise InvalidInputError("action.object_id", f"the id of an object in the scene: {known}", object_id)

    def _info(self, valid_fraction: float) -> dict:
        return {"valid_fraction": valid_fraction, "edits": len(self.scene.edits),
                "objects": [{"id": int(o.id), "name": o.name, "position": np.asarray(o.centroid).tolist()}
                            for o in self.scene.objects]}


def _frame_from_observation(observation: Observation) -> dict[str, np.ndarray]:
    height, width = observation.height, observation.width
    depth = observation.depth if observation.depth is not None else np.zeros((height, width), np.float32)
    known = np.isfinite(depth) & (depth > 0)
    segmentation = observation.segmentation if observation.segmentation is not None \
        else np.zeros((height, width), np.int32)
    return {"rgb": observation.rgb.copy(), "depth": np.clip(np.where(known, depth, 0.0), 0.0, MAX_DEPTH_M).astype(np.float32),
            "segmentation": np.maximum(segmentation, 0).astype(np.int32),
            "valid_mask": np.ones((height, width), np.uint8) if observation.depth is None else known.astype(np.uint8),
            "intrinsics": observation.intrinsics.astype(np.float64),
            "cam_to_world": observation.cam_to_world.astype(np.float64)}


def _frame_from_view(view: ImaginedView, camera: CameraPose) -> dict[str, np.ndarray]:
    expected = (camera.height, camera.width, 3)
    if view.rgb.shape != expected:
        raise InvalidInputError("imagined view", f"an image of shape {expected}", view.rgb.shape)
    height, width = camera.height, camera.width
    depth = view.depth if view.depth is not None else np.zeros((height, width), np.float32)
    segmentation = view.segmentation if view.segmentation is not None else np.zeros((height, width), np.int32)
    return {"rgb": view.rgb.astype(np.uint8), "depth": np.clip(np.nan_to_num(depth, nan=0.0), 0.0, MAX_DEPTH_M).astype(np.float32),
            "segmentation": np.maximum(segmentation, 0).astype(np.int32),
            "valid_mask": np.asarray(view.valid_mask, dtype=np.uint8),
            "intrinsics": camera.intrinsics.copy(), "cam_to_world": camera.cam_to_world.copy()}


def _copy(frame: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {key: value.copy() for key, value in frame.items()}


# -- saved observations -------------------------------------------------------------------------
def save_observation(path: str | os.PathLike, observation: Mapping[str, Any] | Observation,
                     info: Mapping[str, Any] | None = None, labels: Mapping[int, str] | None = None) -> str:
    """Writes one RGB-D frame to a compressed ``.npz`` that :func:`load_observation` reads back.

    Keys: ``rgb``, ``depth``, ``intrinsics``, ``cam_to_world``, optional ``segmentation``, and ``labels``
    (a JSON string ``{"id": "name"}``).

    Args:
        path: output file (``.npz`` is appended by numpy when missing).
        observation: an env observation dict (extra keys such as ``robot_state`` are dropped) or an
            Observation.
        info: optional env ``info``; its ``objects`` list gives the labels.
        labels: optional ``{instance id: name}``; wins over ``info``.

    Returns:
        The path written.

    Raises:
        InvalidInputError: the observation is missing a field or has a bad one.
    """
    if not isinstance(observation, Observation):
        if labels is None and info is not None and "objects" in info:
            labels = {int(o["id"]): str(o["name"]) for o in info["objects"]}
        observation = Observation.from_dict(observation, labels=labels)
    elif labels is not None:
        observation = Observation(rgb=observation.rgb, depth=observation.depth, intrinsics=observation.intrinsics,
                                  cam_to_world=observation.cam_to_world, segmentation=observation.segmentation,
                                  labels=labels)
    if observation.depth is None:
        raise InvalidInputError("depth", "a depth image (a rollout needs RGB-D)", "None")
    arrays = {"rgb": observation.rgb, "depth": observation.depth, "intrinsics": observation.intrinsics,
              "cam_to_world": observation.cam_to_world,
              "labels": np.array(json.dumps({str(k): v for k, v in (observation.labels or {}).items()}))}
    if observation.segmentation is not None:
        arrays["segmentation"] = observation.segmentation
    path = os.fspath(path)
    np.savez_compressed(path, **arrays)
    return path if path.endswith(".npz") else path + ".npz"


def load_observation(path: str | os.PathLike) -> Observation:
    """Reads a frame written by :func:`save_observation` (or any ``.npz`` with the same keys).

    Raises:
        InvalidInputError: the file is missing, unreadable, lacks a key, or holds a bad field.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise InvalidInputError("observation file", "an existing .npz file", path)
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as error:
        raise InvalidInputError("observation file", "a numpy .npz archive", f"{path}: {error}") from error
    with data:
        missing = [key for key in _OBSERVATION_KEYS if key not in data.files]
        if missing:
            raise InvalidInputError(missing[0], f"a value (missing from {path}; it has {', '.join(data.files)})")
        labels = None
        if "labels" in data.files:
            try:
                labels = {int(k): v for k, v in json.loads(str(data["labels"])).items()}
            except (ValueError, AttributeError) as error:
                raise InvalidInputError("labels", 'a JSON object {"id": "name"}', str(error)) from error
        return Observation(rgb=data["rgb"], depth=data["depth"], intrinsics=data["intrinsics"],
                           cam_to_world=data["cam_to_world"],
                           segmentation=data["segmentation"] if "segmentation" in data.files else None,
                           labels=labels or None)
