"""`joyai/LIBERO-v0`: a LIBERO task (real meshes, a Franka Panda under OSC_POSE) in the project's conventions."""

from __future__ import annotations

import logging
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from joyai_embodied.config import config_from_options
from joyai_embodied.errors import InvalidInputError

from .configuration_libero import LiberoConfig
from .labels import category_word, is_robot
from ..actions import check_unit_action
from ..sensor_noise import apply_depth_noise
from .rendering import CameraRenderer
from .suites import load_task

#: Depth never exceeds this in LIBERO's rooms (walls ~3 m from the cameras); the space's upper bound.
MAX_DEPTH_M = 20.0
#: Gripper command of a no-op step (open), as LIBERO's own evaluation uses while objects settle.
OPEN, CLOSE = -1.0, 1.0
ROBOT_STATE_SIZE = 9
MAX_INSTANCES = 64


class LiberoEnv(gym.Env):
    """One LIBERO task from the benchmark package, observed like ``joyai/TabletopSpatial-v0``.

    ## Observation (``spaces.Dict``)
    | key          | dtype / shape   | meaning                                                                 |
    |--------------|-----------------|-------------------------------------------------------------------------|
    | rgb          | uint8 (H, W, 3) | upright colour image of ``camera``                                      |
    | depth        | float32 (H, W)  | metric z-depth (m)                                                      |
    | segmentation | int32 (H, W)    | instance id per pixel, 0 = table, walls, floor and the robot            |
    | intrinsics   | float64 (3, 3)  | K, pixel centres at integer coordinates                                 |
    | cam_to_world | float64 (4, 4)  | OpenCV camera pose (x right, y down, z forward), world z up             |
    | robot_state  | float32 (9,)    | end-effector position (3, m), quaternion (4, x y z w), finger qpos (2)  |

    Instance ids are shuffled per episode from the reset seed, and ``info["labels"]`` maps them to category
    words only ("black bowl", "plate", "flat stove"...): neither tells two objects of one category apart.

    ## Actions
    ``Box(-1, 1, (7,))``: robosuite OSC_POSE deltas (x, y, z times 5 cm; rotation times 0.5 rad), then
    the gripper (-1 open, +1 close).

    ## Info
    ``instruction`` (the task's language), ``success`` (LIBERO's own check), ``labels``, ``steps``, and
    ``ground_truth`` (instance names, positions and the BDDL goal) **for evaluators only**: a planner
    must not read it.

    ``reset(seed=, options={"init_state": k})`` picks another fixed initial state. With
    ``render_on_step=False``, ``step`` does not render (the camera fields are those of the last
    render) and :meth:`observe` renders on demand.

    Args: the fields of :class:`~sim_envs.libero.configuration_libero.LiberoConfig`, plus ``render_mode``.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(self, render_mode: str | None = None, **options: Any):
        if render_mode not in (None, "rgb_array"):
            raise InvalidInputError("render_mode", "None or 'rgb_array'", repr(render_mode))
        self.config = config_from_options(LiberoConfig, options, "LIBERO env")
        self.render_mode = render_mode
        self.task = load_task(self.config.suite, self.config.task_id)
        self._check_init_state(self.config.init_state)
        h, w = self.config.height, self.config.width
        self.observation_space = spaces.Dict({
            "rgb": spaces.Box(0, 255, (h, w, 3), np.uint8),
            "depth": spaces.Box(0.0, MAX_DEPTH_M, (h, w), np.float32),
            "segmentation": spaces.Box(0, MAX_INSTANCES, (h, w), np.int32),
            "intrinsics": spaces.Box(0.0, 1e6, (3, 3), np.float64),
            "cam_to_world": spaces.Box(-10.0, 10.0, (4, 4), np.float64),
            "robot_state": spaces.Box(-10.0, 10.0, (ROBOT_STATE_SIZE,), np.float32),
        })
        self.action_space = spaces.Box(-1.0, 1.0, (7,), np.float32)
        self._env = self._make_env()
        self._model = None
        self._renderer: CameraRenderer | None = None
        self._frame: dict[str, np.ndarray] | None = None
        self._state: dict[str, np.ndarray] = {}
        self.steps = 0

    # ------------------------------------------------------------------ episode
    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Resets to a fixed initial state and lets objects settle; returns (observation, info).

        Raises:
            InvalidInputError: ``options["init_state"]`` out of range, or unknown option keys.
        """
        super().reset(seed=seed)
        # The depth noise of an episode comes from (noise_seed, reset seed); without a reset seed, from a child of
        # the episode generator (spawning does not advance it, so the scene draws below stay as they were).
        episode = seed if seed is not None else int(self.np_random.spawn(1)[0].integers(2**31))
        self._noise_rng = np.random.default_rng([self.config.noise_seed, int(episode)])
        options = dict(options or {})
        init_state = options.pop("init_state", self.config.init_state)
        if options:
            raise InvalidInputError("options", "only the key 'init_state'", sorted(options))
        self._check_init_state(init_state)
        self.init_state = int(init_state)
        # robosuite places fixtures (cabinet, stove) with the global numpy generator and set_init_state does not
        # move them: seed it from the episode's generator so that a seed replays the same scene exactly.
        saved = np.random.get_state()
        np.random.seed(int(self.np_random.integers(2**31)))
        try:
            self._env.reset()
        finally:
            np.random.set_state(saved)
        data = self._env.env.sim.data._data
        # The previous episode's solver warm start, controls and applied forces would otherwise leak into
        # this one (set_init_state restores only time, qpos and qvel): clear them so a seed replays exactly.
        for buffer in (data.qacc_warmstart, data.ctrl, data.act, data.qfrc_applied, data.xfrc_applied):
            buffer[...] = 0
        # robosuite's Panda gripper integrates its command into `current_action` and keeps it across resets:
        # the previous episode's last grip would shape this one's first steps.
        for robot in self._env.env.robots:
            gripper = getattr(robot, "gripper", None)
            if gripper is not None and hasattr(gripper, "current_action"):
                gripper.current_action = np.zeros_like(gripper.current_action)
        self._state = self._env.set_init_state(self.task.init_states[self.init_state])
        self._bind_model()
        for _ in range(self.config.settle_steps):
            self._state, *_ = self._env.step(np.array([0, 0, 0, 0, 0, 0, OPEN]))
        self.steps = 0
        return self.observe(), self._info()

    def step(self, action):
        """Applies one OSC_POSE action; returns (observation, reward, terminated, truncated, info).

        Reward 1 and ``terminated`` when LIBERO's own success check passes.

        Raises:
            InvalidInputError: the action is not 7 finite numbers in [-1, 1].
        """
        self.control(action)
        success = bool(self._env.check_success())
        obs = self.observe() if self.config.render_on_step else self._observation(self._frame)
        return obs, float(success), success, False, self._info(success)

    def control(self, action) -> np.ndarray:
        """One control step without rendering (what skills use between observations).

        Returns:
            The new ``robot_state``.
        """
        if self._renderer is None:
            raise gym.error.ResetNeeded("call reset() before step()")
        values = self._check_action(action)
        self._state, *_ = self._env.step(values)
        self.steps += 1
        return self.robot_state()

    def observe(self) -> dict[str, np.ndarray]:
        """Renders the camera now and returns a full observation."""
        if self._renderer is None:
            raise gym.error.ResetNeeded("call reset() before observe()")
        frame = self._renderer.render(self._env.sim.data._data, self._geom_to_instance)
        if self.config.depth_noise != "none":
            frame["depth"] = apply_depth_noise(frame["depth"], self.config.depth_noise, self._noise_rng,
                                               intrinsics=frame["intrinsics"], rgb=frame["rgb"])
        self._frame = frame
        return self._observation(self._frame)

    def success(self) -> bool:
        """LIBERO's own success check of the current state."""
        return bool(self._env.check_success())

    def unmet_goal(self) -> list[str]:
        """The BDDL goal's predicates that do not hold now, as text (``"turnon flat_stove_1"``).

        For the evaluator only (the planner never reads the goal): it says which part of a failed goal is missing.
        """
        inner = self._env.env
        return [" ".join(str(term) for term in predicate) for predicate in inner.parsed_problem["goal_state"]
                if not inner._eval_predicate(predicate)]

    def robot_state(self) -> np.ndarray:
        s = self._state
        return np.concatenate([s["robot0_eef_pos"], s["robot0_eef_quat"], s["robot0_gripper_qpos"]]).astype(np.float32)

    @property
    def instruction(self) -> str:
        return self.task.instruction

    def render(self):
        return None if self._frame is None or self.render_mode is None else self._frame["rgb"].copy()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        if getattr(self, "_env", None) is not None:
            try:
                self._env.close()
            except Exception:  # robosuite's EGL teardown can fail at interpreter exit; nothing to recover
                logging.getLogger(__name__).debug("LIBERO env close failed", exc_info=True)
            self._env = None

    # ------------------------------------------------------------------ internals
    def _make_env(self):
        from libero.libero.envs.env_wrapper import ControlEnv

        # Our own renderer draws the camera on demand: robosuite's offscreen renderer and camera observables
        # would render every step (~0.25 s). hard_reset=False keeps one MjModel across resets.
        return ControlEnv(bddl_file_name=self.task.bddl_file, has_renderer=False, has_offscreen_renderer=False,
                          use_camera_obs=False, camera_names=[self.config.camera], camera_depths=False,
                          hard_reset=False)

    def _bind_model(self) -> None:
        """(Re)builds the renderer and the geom -> instance table when robosuite made a new model."""
        inner = self._env.env
        model = inner.sim.model._model
        if model is not self._model:
            if self._renderer is not None:
                self._renderer.close()
            self._renderer = CameraRenderer(model, self.config.camera, self.config.width, self.config.height)
            self._model = model
        # Labelled instances are the task's objects and fixtures; the arm, gripper and mount (whatever the
        # robot model calls them: MountedPanda0, OnTheGroundPanda0...) stay background.
        names = [n for n in inner.model.instances_to_ids
                 if (n in inner.objects_dict or n in inner.fixtures_dict) and not is_robot(n)]
        # Ids shuffled per episode from the seed: their order must not reveal which instance is the goal's.
        order = self.np_random.permutation(len(names))
        self._instance_ids = {names[i]: rank + 1 for rank, i in enumerate(order)}
        table = np.zeros(model.ngeom, dtype=np.int32)
        for name, instance_id in self._instance_ids.items():
            table[np.asarray(inner.model.instances_to_ids[name]["geom"], dtype=np.int64)] = instance_id
        self._geom_to_instance = table

    def _observation(self, frame: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        # Copies: a caller keeps every observation, and a non-rendering step reuses the last frame.
        return {**{key: value.copy() for key, value in frame.items()}, "robot_state": self.robot_state()}

    def _info(self, success: bool | None = None) -> dict[str, Any]:
        if success is None:
            success = self.success()
        return {"instruction": self.task.instruction, "success": bool(success), "steps": self.steps,
                "labels": {i: category_word(n) for n, i in self._instance_ids.items()},
                "ground_truth": self._ground_truth()}

    def _ground_truth(self) -> dict[str, Any]:
        inner = self._env.env
        data = inner.sim.data._data
        objects = []
        for name, instance_id in self._instance_ids.items():
            entity = inner.objects_dict.get(name) or inner.fixtures_dict.get(name)
            position = None
            if entity is not None:
                body = inner.sim.model.body_name2id(entity.root_body)
                position = data.xpos[body].tolist()
            objects.append({"id": instance_id, "instance": name, "label": category_word(name), "position": position})
        return {"objects": objects, "goal": [list(p) for p in inner.parsed_problem["goal_state"]]}

    def _check_init_state(self, value: Any) -> None:
        count = len(self.task.init_states)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not 0 <= value < count:
            raise InvalidInputError("init_state", f"an init state index in [0, {count - 1}]", repr(value))

    def _check_action(self, action) -> np.ndarray:
        return check_unit_action(action, 7, "7 finite numbers in [-1, 1]: OSC_POSE (dx, dy, dz, droll, dpitch, "
                                            "dyaw, gripper)")
