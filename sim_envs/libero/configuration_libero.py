"""Options of `joyai/LIBERO-v0`, checked once (suite and task range are checked against the benchmark)."""

from __future__ import annotations

import dataclasses

from joyai_embodied.config import TypedConfig
from joyai_embodied.errors import InvalidInputError

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
    """

    suite: str = "libero_spatial"
    task_id: int = 0
    init_state: int = 0
    width: int = 256
    height: int = 256
    camera: str = "agentview"
    render_on_step: bool = True
    settle_steps: int = SETTLE_STEPS

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
