"""`joyai/TabletopSpatial-v0`: a MuJoCo tabletop with a suction end effector and spatial language tasks."""

from __future__ import annotations

import math
from typing import Any, Mapping

import gymnasium as gym
import mujoco
import numpy as np
from gymnasium import spaces

from joyai_embodied.errors import InvalidInputError

from .cameras import CAMERAS, camera_intrinsics, camera_to_world, check_camera_name
from .constants import GRASPABLE_SHAPES, MAX_OBJECTS, TABLE_HALF_SIZE, TABLE_HEIGHT
from .instructions import generate_instruction
from .mjcf import build_mjcf
from .rendering import FAR_M, FrameRenderer
from .scene import generate_scene
from .actions import check_unit_action
from .sensor_noise import apply_depth_noise, noise_options

ACTION_MODES = ("ee", "primitive")
NOOP, PICK, PLACE = 0, 1, 2
EE_STEP_M = 0.02          # largest end-effector move per "ee" step
GRASP_RANGE_M = 0.02      # suction reaches an object whose top centre is this close to the tip
TRAVEL_HEIGHT_M = 0.20    # primitives move between objects with the tip this high above the table
PRIMITIVE_SPEED_M_S = 0.6
#: Reachable tip positions: over the table, from just above its top to 60 cm above it.
EE_LOW = np.array([-TABLE_HALF_SIZE[0], -TABLE_HALF_SIZE[1], TABLE_HEIGHT + 0.003])
EE_HIGH = np.array([TABLE_HALF_SIZE[0], TABLE_HALF_SIZE[1], TABLE_HEIGHT + 0.60])
MIN_SIZE, MAX_SIZE = 16, 4096
MAX_CACHED_RENDERERS = 4


def _check_size(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not MIN_SIZE <= value <= MAX_SIZE:
        raise InvalidInputError(field, f"an integer number of pixels in [{MIN_SIZE}, {MAX_SIZE}]", repr(value))
    return int(value)


def _yaw(quat: np.ndarray) -> float:
    w, x, y, z = quat
    return math.atan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))


class TabletopSpatialEnv(gym.Env):
    """Pick-and-place on a table of 3-8 coloured primitives, with exact cameras and ground truth.

    A floating suction end effector (a mocap body, no arm) picks objects: closing the gripper within 2 cm
    of an object's top centre welds the object to it with an equality constraint, so physics carries it;
    opening releases it and it falls. Each episode draws a new scene and instruction from the seed.

    ## Observation (``spaces.Dict``)
    | key            | dtype / shape       | meaning                                                       |
    |----------------|---------------------|---------------------------------------------------------------|
    | rgb            | uint8 (H, W, 3)     | colour image of the observation camera                        |
    | depth          | float32 (H, W)      | metric z-depth (m); empty space reads 20 m, never inf         |
    | segmentation   | int32 (H, W)        | object id 1..8 (``info["objects"][i]["id"]``), 0 = the rest    |
    | intrinsics     | float64 (3, 3)      | K; pixel centres at integer coordinates                       |
    | cam_to_world   | float64 (4, 4)      | OpenCV camera pose (x right, y down, z forward), world z up   |
    | robot_state    | float32 (6,)        | tip x, y, z (m), gripper closed (0/1), holding (0/1), held id |

    ## Actions
    ``action_mode="ee"``: ``Box(-1, 1, (4,))`` = (dx, dy, dz) times 2 cm, then gripper (> 0 close, <= 0
    open). The move is spread over the step's physics sub-steps; the gripper acts after it.
    ``action_mode="primitive"``: ``Dict(primitive=Discrete(3), object_id=Discrete(9), position=Box(-2, 2, (3,)))``;
    0 = no-op, 1 = pick ``object_id`` (above, descend, attach, lift), 2 = place the held object so its bottom
    centre lands at ``position`` (world m) and release. A primitive that cannot run moves nothing and
    sets ``info["action_error"]``.

    ## Reward, termination, info
    Reward 1 and ``terminated`` when ``info["success"]``: the target object rests on the target plate.
    ``info``: objects (ground truth), instruction, target, success, action_error.

    Args:
        width: image width in pixels.
        height: image height in pixels.
        camera: observation camera, "front", "side" or "top".
        action_mode: "ee" or "primitive".
        render_mode: None or "rgb_array" (``render()`` returns the observation camera's colour image).
        frame_skip: physics steps (2 ms each) per "ee" step.
        shadows: let the light cast shadows (off by default: they cost most of the render time).
        depth_noise: ``"none"`` (exact depth), ``"structured_light"`` or ``"stereo"``: depth as a RealSense
            D4xx-class sensor reports it (:mod:`sim_envs.sensor_noise`; 0 = no value). Spaces are unchanged.
        noise_seed: seed of the depth noise, independent of the scene seed: the noise of an episode is
            drawn from (noise_seed, reset seed), fresh on every frame, so a seed replays it and changing
            it changes the noise, never the scene.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 25}

    def __init__(self, width: int = 640, height: int = 480, camera: str = "front", action_mode: str = "ee",
                 render_mode: str | None = None, frame_skip: int = 10, shadows: bool = False,
                 depth_noise: str = "none", noise_seed: int = 0):
        self.width = _check_size("width", width)
        self.height = _check_size("height", height)
        self.camera = check_camera_name(camera)
        if action_mode not in ACTION_MODES:
            raise InvalidInputError("action_mode", f"one of {list(ACTION_MODES)}", repr(action_mode))
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise InvalidInputError("render_mode", "None or 'rgb_array'", repr(render_mode))
        if isinstance(frame_skip, bool) or not isinstance(frame_skip, int) or frame_skip < 1:
            raise InvalidInputError("frame_skip", "a positive integer", repr(frame_skip))
        self.action_mode, self.render_mode = action_mode, render_mode
        self.frame_skip, self.shadows = frame_skip, bool(shadows)
        self.set_depth_noise(depth_noise, noise_seed)

        h, w = self.height, self.width
        self.observation_space = spaces.Dict({
            "rgb": spaces.Box(0, 255, (h, w, 3), np.uint8),
            "depth": spaces.Box(0.0, FAR_M, (h, w), np.float32),
            "segmentation": spaces.Box(0, MAX_OBJECTS, (h, w), np.int32),
            "intrinsics": spaces.Box(0.0, 1e6, (3, 3), np.float64),
            "cam_to_world": spaces.Box(-10.0, 10.0, (4, 4), np.float64),  # unit rotation, metres
            "robot_state": spaces.Box(np.array([*EE_LOW, 0, 0, 0], np.float32),
                                      np.array([*EE_HIGH, 1, 1, MAX_OBJECTS], np.float32)),
        })
        if action_mode == "ee":
            self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        else:
            self.action_space = spaces.Dict({
                "primitive": spaces.Discrete(3),
                "object_id": spaces.Discrete(MAX_OBJECTS + 1),
                "position": spaces.Box(-2.0, 2.0, (3,), np.float32),
            })
        self._renderers: dict[tuple[int, int], FrameRenderer] = {}
        self._poses = {name: (camera_to_world(name), camera_intrinsics(name, w, h)) for name in CAMERAS}
        self.model: mujoco.MjModel | None = None
        self.data: mujoco.MjData | None = None

    # ------------------------------------------------------------------ episode
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Draws a new scene and instruction; returns (observation, info)."""
        super().reset(seed=seed)
        if seed is not None:  # the episode's noise stream: its own generator, never the scene's
            self._noise_rng = np.random.default_rng([self.noise_seed, int(seed)])
        self._specs = generate_scene(self.np_random)
        self.model = mujoco.MjModel.from_xml_string(build_mjcf(self._specs))
        self.model.light_castshadow[:] = 1 if self.shadows else 0
        self.data = mujoco.MjData(self.model)
        self._body = {s.id: self.model.body(f"obj_{s.id}").id for s in self._specs}
        self._weld = {s.id: self.model.equality(f"grip_{s.id}").id for s in self._specs}
        self._spec = {s.id: s for s in self._specs}
        self._ee_body = self.model.body("ee").id
        self._geom_to_instance = np.zeros(self.model.ngeom, dtype=np.int32)
        for spec in self._specs:
            self._geom_to_instance[self.model.geom(f"obj_{spec.id}").id] = spec.id
        for renderer in self._renderers.values():
            renderer.set_model(self.model)
        self._held: int | None = None
        self._gripper_closed = False
        mujoco.mj_forward(self.model, self.data)
        self._simulate(250)  # let contacts settle (stacks, spheres) before anything is measured

        self._instruction, self._target = generate_instruction(
            self.np_random, self._objects(), self.camera, {name: pose for name, (pose, _) in self._poses.items()})
        return self._observation(), self._info(None)

    def step(self, action):
        """Applies an action; returns (observation, reward, terminated, truncated, info).

        Raises:
            InvalidInputError: the action is not in the action space (wrong shape, type or range).
        """
        if self.data is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        if self.action_mode == "ee":
            error = self._apply_ee(self._check_ee_action(action))
        else:
            error = self._apply_primitive(*self._check_primitive_action(action))
        success = self._success()
        return self._observation(), float(success), success, False, self._info(error, success)

    # ------------------------------------------------------------------ actions
    def _check_ee_action(self, action) -> np.ndarray:
        return check_unit_action(action, 4, "4 finite numbers in [-1, 1]: (dx, dy, dz, gripper)")

    def _check_primitive_action(self, action) -> tuple[int, int, np.ndarray]:
        if not isinstance(action, Mapping) or not {"primitive", "object_id", "position"} <= set(action):
            raise InvalidInputError("action", "a dict with keys 'primitive', 'object_id', 'position'",
                                    type(action).__name__ if not isinstance(action, Mapping) else sorted(action))
        primitive, object_id = action["primitive"], action["object_id"]
        for field, value, high in (("primitive", primitive, 2), ("object_id", object_id, MAX_OBJECTS)):
            if not (isinstance(value, (int, np.integer)) or (isinstance(value, np.ndarray) and value.shape == ()
                                                              and np.issubdtype(value.dtype, np.integer))):
                raise InvalidInputError(f"action.{field}", f"an integer in [0, {high}]", repr(value))
            if not 0 <= int(value) <= high:
                raise InvalidInputError(f"action.{field}", f"an integer in [0, {high}]", int(value))
        try:
            position = np.asarray(action["position"], dtype=np.float64)
        except (TypeError, ValueError):
            raise InvalidInputError("action.position", "3 world coordinates (m)", repr(action["position"])) from None
        if position.shape != (3,) or not np.all(np.isfinite(position)) or np.any(np.abs(position) > 2.0):
            raise InvalidInputError("action.position", "3 finite world coordinates in [-2, 2] m",
                                    np.array2string(position, precision=3))
        return int(primitive), int(object_id), position

    def _apply_ee(self, action: np.ndarray) -> str | None:
        target = np.clip(self.data.mocap_pos[0] + EE_STEP_M * action[:3], EE_LOW, EE_HIGH)
        self._move_tip(target, substeps=self.frame_skip)
        close = action[3] > 0
        if close and not self._gripper_closed:
            self._gripper_closed = True
            self._attach()
        elif not close and self._gripper_closed:
            self._gripper_closed = False
            self._release()
        return None

    def _apply_primitive(self, primitive: int, object_id: int, position: np.ndarray) -> str | None:
        if primitive == PICK:
            return self._pick(object_id)
        if primitive == PLACE:
            return self._place(position)
        self._simulate(self.frame_skip)
        return None

    def _pick(self, object_id: int) -> str | None:
        if object_id not in self._spec:
            return f"pick: no object with id {object_id} (ids in this scene: {sorted(self._spec)})"
        spec = self._spec[object_id]
        if spec.shape not in GRASPABLE_SHAPES:
            return f"pick: the {spec.name} is a {spec.shape} (a place target), it cannot be picked"
        if self._held is not None:
            return f"pick: already holding the {self._spec[self._held].name}; place it first"
        x, y, _ = self.data.xpos[self._body[object_id]]
        self._release()
        self._gripper_closed = False
        self._travel_to(np.array([x, y, TABLE_HEIGHT + TRAVEL_HEIGHT_M]))
        self._travel_to(np.array([x, y, self._top_z(object_id) + 0.003]))
        self._gripper_closed = True
        self._attach()
        self._travel_to(np.array([x, y, TABLE_HEIGHT + TRAVEL_HEIGHT_M]))
        if self._held != object_id:
            held = self._held
            self._release()
            self._gripper_closed = False
            got = "nothing" if held is None else f"the {self._spec[held].name}"
            return f"pick: suction caught {got} instead of the {spec.name}"
        return None

    def _place(self, position: np.ndarray) -> str | None:
        if self._held is None:
            return "place: nothing is held; pick an object first"
        low, high = EE_LOW - [0, 0, 0.01], EE_HIGH
        if np.any(position < low) or np.any(position > high):
            return (f"place: position {np.round(position, 3).tolist()} is outside the reachable workspace "
                    f"{np.round(low, 3).tolist()}..{np.round(high, 3).tolist()}")
        body = self._body[self._held]
        tip = self.data.mocap_pos[0].copy()
        bottom = self.data.xpos[body] - [0.0, 0.0, self._spec[self._held].size[2] / 2]
        offset = tip - bottom  # the held object keeps this offset from the tip while carried
        self._travel_to(np.array([*(position[:2] + offset[:2]), TABLE_HEIGHT + TRAVEL_HEIGHT_M]))
        self._travel_to(position + offset + [0.0, 0.0, 0.004])
        self._gripper_closed = False
        self._release()
        self._simulate(100)
        self._travel_to(np.array([*self.data.mocap_pos[0][:2], TABLE_HEIGHT + TRAVEL_HEIGHT_M]))
        return None

    # ------------------------------------------------------------------ physics
    def _simulate(self, substeps: int) -> None:
        mujoco.mj_step(self.model, self.data, nstep=substeps)

    def _move_tip(self, target: np.ndarray, substeps: int) -> None:
        start = self.data.mocap_pos[0].copy()
        for k in range(1, substeps + 1):
            self.data.mocap_pos[0] = start + (target - start) * (k / substeps)
            mujoco.mj_step(self.model, self.data)

    def _travel_to(self, target: np.ndarray) -> None:
        distance = float(np.linalg.norm(target - self.data.mocap_pos[0]))
        substeps = max(1, math.ceil(distance / (PRIMITIVE_SPEED_M_S * self.model.opt.timestep)))
        self._move_tip(np.clip(target, EE_LOW, EE_HIGH), substeps)
        self._simulate(25)  # let the carried object catch up with the tip

    def _top_z(self, object_id: int) -> float:
        return float(self.data.xpos[self._body[object_id]][2] + self._spec[object_id].size[2] / 2)

    def _attach(self) -> None:
        """Welds the graspable object whose top centre is nearest the tip, if within GRASP_RANGE_M."""
        if self._held is not None:
            return
        tip = self.data.mocap_pos[0]
        best, best_distance = None, GRASP_RANGE_M
        for spec in self._specs:
            if spec.shape not in GRASPABLE_SHAPES:
                continue
            top = self.data.xpos[self._body[spec.id]] + [0.0, 0.0, spec.size[2] / 2]
            distance = float(np.linalg.norm(top - tip))
            if distance <= best_distance:
                best, best_distance = spec.id, distance
        if best is None:
            return
        # Keep the current relative pose: body2 (object) expressed in body1 (end effector).
        body = self._body[best]
        ee_pos, ee_quat = self.data.xpos[self._ee_body], self.data.xquat[self._ee_body]
        inverse = np.zeros(4)
        mujoco.mju_negQuat(inverse, ee_quat)
        relpos, relquat = np.zeros(3), np.zeros(4)
        mujoco.mju_rotVecQuat(relpos, self.data.xpos[body] - ee_pos, inverse)
        mujoco.mju_mulQuat(relquat, inverse, self.data.xquat[body])
        weld = self._weld[best]
        self.model.eq_data[weld, 0:3] = 0.0
        self.model.eq_data[weld, 3:6] = relpos
        self.model.eq_data[weld, 6:10] = relquat
        self.data.eq_active[weld] = 1
        self._held = best

    def _release(self) -> None:
        if self._held is not None:
            self.data.eq_active[self._weld[self._held]] = 0
            self._held = None

    def _success(self) -> bool:
        pick, place = self._target["pick_id"], self._target["place_id"]
        if self._held == pick:
            return False
        obj, plate = self.data.xpos[self._body[pick]], self.data.xpos[self._body[place]]
        plate_spec, pick_spec = self._spec[place], self._spec[pick]
        inside = np.hypot(*(obj[:2] - plate[:2])) <= plate_spec.size[0] / 2
        bottom = obj[2] - pick_spec.size[2] / 2
        plate_top = plate[2] + plate_spec.size[2] / 2
        return bool(inside and abs(bottom - plate_top) <= 0.02)

    # ------------------------------------------------------------------ observations
    def _objects(self) -> list[dict]:
        objects = []
        for spec in self._specs:
            body = self._body[spec.id]
            objects.append({"id": spec.id, "name": spec.name, "color": spec.color, "shape": spec.shape,
                            "position": self.data.xpos[body].tolist(), "size": [float(s) for s in spec.size],
                            "yaw": _yaw(self.data.xquat[body])})
        return objects

    def _info(self, action_error: str | None, success: bool | None = None) -> dict:
        return {"objects": self._objects(), "instruction": self._instruction, "target": dict(self._target),
                "success": self._success() if success is None else success, "action_error": action_error}

    def _robot_state(self) -> np.ndarray:
        held = 0 if self._held is None else self._held
        return np.array([*self.data.mocap_pos[0], float(self._gripper_closed), float(self._held is not None),
                         float(held)], dtype=np.float32)

    def _observation(self) -> dict[str, np.ndarray]:
        cam_to_world, intrinsics = self.camera_pose(self.camera)
        frame = self._renderer(self.width, self.height).render(self.data, cam_to_world, intrinsics,
                                                               self._geom_to_instance)
        if self.depth_noise != "none":
            frame["depth"] = apply_depth_noise(frame["depth"], self.depth_noise, self._noise_rng,
                                               intrinsics=intrinsics, rgb=frame["rgb"])
        return {**frame, "intrinsics": intrinsics, "cam_to_world": cam_to_world,
                "robot_state": self._robot_state()}

    def _renderer(self, width: int, height: int) -> FrameRenderer:
        key = (width, height)
        renderer = self._renderers.get(key)
        if renderer is None:
            if len(self._renderers) >= MAX_CACHED_RENDERERS:  # drop the oldest extra size, never the main one
                oldest = next(k for k in self._renderers if k != (self.width, self.height))
                self._renderers.pop(oldest).close()
            renderer = self._renderers[key] = FrameRenderer(self.model, width, height)
        return renderer

    # ------------------------------------------------------------------ public extras
    def set_depth_noise(self, depth_noise: str, noise_seed: int = 0) -> None:
        """Switches the observation depth's sensor model (as the constructor's options); from the next reset.

        Raises:
            InvalidInputError: an unknown model (field ``depth_noise``) or a bad seed (``noise_seed``).
        """
        checked = noise_options({"depth_noise": depth_noise, "noise_seed": noise_seed})
        self.depth_noise, self.noise_seed = checked["depth_noise"], checked["noise_seed"]
        self._noise_rng = np.random.default_rng([self.noise_seed])

    def observe(self) -> dict[str, np.ndarray]:
        """The observation of the current state rendered again, without stepping: with depth noise, a fresh
        draw of it (the frames a caller fuses over time).

        Raises:
            ResetNeeded: before the first reset.
        """
        if self.data is None:
            raise gym.error.ResetNeeded("call reset() before observe()")
        return self._observation()

    def camera_pose(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """(cam_to_world 4x4, intrinsics 3x3) of a named camera at the env's image size.

        Raises:
            InvalidInputError: unknown camera name.
        """
        cam_to_world, intrinsics = self._poses[check_camera_name(name)]
        return cam_to_world.copy(), intrinsics.copy()

    def render_view(self, cam_to_world: np.ndarray, intrinsics: np.ndarray, width: int,
                    height: int) -> dict[str, np.ndarray]:
        """Renders the current state from any camera (the ground truth for imagined views).

        Args:
            cam_to_world: 4x4 OpenCV camera pose (rotation part orthonormal, right-handed).
            intrinsics: 3x3 K for an image of ``width`` x ``height``; square pixels (fx == fy), any
                principal point.
            width: image width in pixels.
            height: image height in pixels.

        Returns:
            {"rgb": uint8 (H, W, 3), "depth": float32 (H, W) metres, "segmentation": int32 (H, W)}.

        Raises:
            InvalidInputError: a malformed pose, intrinsics or size.
        """
        if self.data is None:
            raise gym.error.ResetNeeded("call reset() before render_view()")
        width, height = _check_size("width", width), _check_size("height", height)
        pose = np.asarray(cam_to_world, dtype=np.float64)
        if pose.shape != (4, 4) or not np.all(np.isfinite(pose)):
            raise InvalidInputError("cam_to_world", "a finite 4x4 matrix", getattr(pose, "shape", pose))
        rotation = pose[:3, :3]
        if not np.allclose(rotation.T @ rotation, np.eye(3), atol=1e-5) or np.linalg.det(rotation) < 0:
            raise InvalidInputError("cam_to_world", "a rotation (orthonormal, det +1) in its top-left 3x3",
                                    np.array2string(rotation, precision=3))
        k = np.asarray(intrinsics, dtype=np.float64)
        if (k.shape != (3, 3) or not np.all(np.isfinite(k)) or k[0, 0] <= 0
                or not np.isclose(k[0, 0], k[1, 1], rtol=1e-6) or k[0, 1] != 0):
            # OpenGL's frustum here fixes the horizontal scale from the aspect ratio: square pixels only.
            raise InvalidInputError("intrinsics", "a 3x3 K with fx == fy > 0 and no skew (square pixels)",
                                    np.array2string(k, precision=3))
        return self._renderer(width, height).render(self.data, pose, k, self._geom_to_instance)

    def render(self):
        """The observation camera's colour image (``render_mode="rgb_array"``), else None."""
        if self.render_mode != "rgb_array" or self.data is None:
            return None
        return self._observation()["rgb"]

    def close(self) -> None:
        for renderer in self._renderers.values():
            renderer.close()
        self._renderers.clear()
