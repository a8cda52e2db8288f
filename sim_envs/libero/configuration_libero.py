"""Options of `joyai/LIBERO-v0`, checked once (suite and task range are checked against the benchmark)."""

from __future__ import annotations

import dataclasses

from joyai_embodied.config import TypedConfig
from joyai_embodied.errors import InvalidInputError

from ..sensor_noise import noise_options

CAMERAS = ("agentview", "robot0_eye_in_hand")
MIN_SIZE, MAX_SIZE = 32, 1024
#: LIBERO's own evaluation steps ~10 no-op actions after set_init_state: objects start ~7 cm up and fall.
SETTLE_STEPS = 10


@dataclasses.dataclass(frozen=True)
class LiberoConfig(TypedConfig):
    """Which LIBERO task and init state, and how to observe it.

    Attributes:
        suite: a suite name the benchmark package knows (``"libero_spatial"``, ``"libero_object"``...).
        task_id: task index within the suite.
        init_state: index of the benchmark's fixed initial state (LIBERO has 50 per task).
        width, height: image size in pixels.
        camera: observation camera.
        render_on_step: render the camera on every ``step`` (a Gymnasium-complete observation, ~0.1-0.3 s);
            False makes ``step`` return the last rendered images with a fresh ``robot_state``, and
            ``observe()`` renders on demand (skills control at ~12-20 ms a step this way).
        settle_steps: no-op control steps after ``set_init_state`` before the first observation.
        depth_noise: ``"none"`` (exact depth), ``"structured_light"`` or ``"stereo"``: depth as a RealSense-class
            sensor reports it (:func:`sim_envs.sensor_noise.apply_depth_noise`, the tabletop env's model).
        noise_seed: seed of the depth noise, independent of the scene: drawn from (noise_seed, reset seed).
    """

    suite: str = "libero_spatial"
    task_id: int = 0
    init_state: int = 0
    width: int = 256
    height: int = 256
    camera: str = "agentview"
    render_on_step: bool = True
    settle_steps: int = SETTLE_STEPS
    depth_noise: str = "none"
    noise_seed: int = 0

    def check(self) -> None:
        for name in ("width", "height"):
            value = getattr(self, name)
            if not MIN_SIZE <= value <= MAX_SIZE:
                raise InvalidInputError(name, f"an integer number of pixels in [{MIN_SIZE}, {MAX_SIZE}]", value)
        if self.camera not in CAMERAS:
            raise InvalidInputError("camera", f"one of {list(CAMERAS)}", repr(self.camera))
        if self.task_id < 0:
            raise InvalidInputError("task_id", "a non-negative task index", self.task_id)
        if self.init_state < 0:
            raise InvalidInputError("init_state", "a non-negative init state index", self.init_state)
        if not 0 <= self.settle_steps <= 200:
            raise InvalidInputError("settle_steps", "an integer in [0, 200]", self.settle_steps)
        noise_options({"depth_noise": self.depth_noise, "noise_seed": self.noise_seed})
