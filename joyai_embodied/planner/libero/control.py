"""Closed-loop Cartesian control of LIBERO's Panda through robosuite's OSC_POSE deltas.

The env's ``control(action)`` steps without rendering and returns ``robot_state`` (end-effector position,
quaternion x y z w, finger positions); everything here is proprioception, never object poses.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: OSC_POSE scales a unit position action to this many metres (robosuite's output_max).
POSITION_SCALE_M = 0.05
#: ...and a unit rotation action to this many radians.
ROTATION_SCALE_RAD = 0.5
#: Position gain on the error (per unit action): >1 overcomes the controller's lag near the target.
POSITION_GAIN = 1.5
#: A move is done when the end effector is this close to its target.
REACHED_M = 0.01
#: Via points (hover, carry height) only need to be passed this closely.
VIA_M = 0.025
#: Fingers wider than this are fully open (Panda: ~0.08 m).
OPEN_WIDTH_M = 0.07
#: Fingers this far apart (m) or less after closing means they met: nothing is between them.
EMPTY_GRIP_M = 0.0015
#: The fingers stopped moving when their width changes less than this per step.
FINGERS_STILL_M = 0.0005
GRIPPER_MIN_STEPS = 4
GRIPPER_MAX_STEPS = 25
OPEN, CLOSE = -1.0, 1.0
#: A wrist turn is done within this angle (rad): parallel fingers tolerate a few degrees.
TURNED_RAD = 0.08


#: While carrying, fingers closed to less than this fraction of their width at the grasp have lost the object
#: (a bowl pinched by its lip on a ramekin slid out 1.4 -> 1.1 -> 0.25 cm in ten steps of the carry).
GRIP_LOST_FRACTION = 0.5


class StepBudgetExceeded(Exception):
    """The episode's control-step budget ran out."""


class GripLost(Exception):
    """The fingers closed on nothing while carrying: the held object slipped out."""


def quat_to_matrix(quat_xyzw: np.ndarray) -> np.ndarray:
    """3x3 rotation of a unit quaternion given as (x, y, z, w)."""
    x, y, z, w = np.asarray(quat_xyzw, dtype=np.float64) / np.linalg.norm(quat_xyzw)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def rotation_error(current: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Axis-angle vector (world frame) that rotates ``current`` onto ``target`` (both 3x3)."""
    delta = target @ current.T
    angle = np.arccos(np.clip((np.trace(delta) - 1.0) / 2.0, -1.0, 1.0))
    if angle < 1e-6:
        return np.zeros(3)
    axis = np.array([delta[2, 1] - delta[1, 2], delta[0, 2] - delta[2, 0], delta[1, 0] - delta[0, 1]])
    return axis / (2.0 * np.sin(angle)) * angle


def fold_half_turn(angle: float) -> float:
    """A yaw folded into [-pi/2, pi/2): parallel fingers are symmetric, so a yaw and its opposite grasp alike."""
    return float((angle + np.pi / 2) % np.pi - np.pi / 2)


def yaw_rotation(yaw_rad: float) -> np.ndarray:
    c, s = np.cos(yaw_rad), np.sin(yaw_rad)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


class Arm:
    """The Panda seen through ``env.control``: moves, gripper, and a step budget.

    Args:
        env: a ``joyai/LIBERO-v0`` env (its ``unwrapped``: ``control``, ``observe``, ``robot_state``).
        max_steps: control steps allowed for the episode (LIBERO's protocol budget).
    """

    def __init__(self, env: Any, max_steps: int, stop_on_success: bool = True):
        self.env = env
        self.max_steps = max_steps
        self.stop_on_success = stop_on_success
        self.succeeded = False
        self.steps = 0
        self.state = env.robot_state()
        self.home = self.position.copy()
        # The grasp orientation: the gripper pointing down as LIBERO starts it; skills only change its yaw.
        self.down = quat_to_matrix(self.state[3:7])
        self.target_rotation = self.down
        self.gripper = OPEN
        self.grip_width: float | None = None   # set by watch_grip: the width the fingers hold the object at

    @property
    def position(self) -> np.ndarray:
        return self.state[:3].astype(np.float64)

    @property
    def finger_width(self) -> float:
        return float(self.state[7] - self.state[8])

    @property
    def closing_axis(self) -> np.ndarray:
        """World direction along which the fingers close in the start orientation (the gripper frame's y axis).

        Skills turn the hand by yaws relative to :attr:`down`, so this is the axis those yaws turn; the
        current hand's axis would be off by the previous skill's turn (a second grasp closed along a box's
        long side).
        """
        axis = np.array(self.down[:, 1], dtype=np.float64)
        axis[2] = 0.0
        return axis / max(np.linalg.norm(axis), 1e-9)

    def step(self, delta_position: np.ndarray) -> None:
        if self.steps >= self.max_steps:
            raise StepBudgetExceeded(f"{self.steps} control steps used")
        action = np.zeros(7)
        action[:3] = np.clip(delta_position * POSITION_GAIN / POSITION_SCALE_M, -1.0, 1.0)
        rotation = rotation_error(quat_to_matrix(self.state[3:7]), self.target_rotation)
        action[3:6] = np.clip(rotation / ROTATION_SCALE_RAD, -1.0, 1.0)
        action[6] = self.gripper
        self.state = self.env.control(action)
        self.steps += 1
        if (self.grip_width is not None and self.gripper == CLOSE
                and self.finger_width < max(EMPTY_GRIP_M, GRIP_LOST_FRACTION * self.grip_width)):
            self.grip_width = None
            raise GripLost(f"fingers at {self.finger_width:.4f} m at step {self.steps}")
        # LIBERO's protocol ends an episode at the first step its check passes; skills then stop moving.
        if self.stop_on_success and self.env.success():
            self.succeeded = True

    def move_to(self, target: np.ndarray, tolerance_m: float = REACHED_M, max_steps: int = 60) -> bool:
        """Servoes the end effector to ``target`` (world m); True when it got within ``tolerance_m``."""
        target = np.asarray(target, dtype=np.float64)
        for _ in range(max_steps):
            error = target - self.position
            if np.linalg.norm(error) < tolerance_m or self.succeeded:
                return True
            self.step(error)
        return bool(np.linalg.norm(target - self.position) < tolerance_m * 2)

    def hold(self, steps: int) -> None:
        """Keeps the current position for ``steps`` steps (lets the gripper or the scene settle)."""
        target = self.position.copy()
        for _ in range(steps):
            if self.succeeded:
                return
            self.step(target - self.position)

    def set_gripper(self, command: float) -> float:
        """Opens (-1) or closes (+1) the fingers and waits until they stop; returns their width (m)."""
        already_open = command == OPEN and self.gripper == OPEN and self.finger_width > OPEN_WIDTH_M
        self.gripper = command
        if already_open:
            return self.finger_width
        target = self.position.copy()
        previous = self.finger_width
        for i in range(GRIPPER_MAX_STEPS):
            if self.succeeded:
                break
            self.step(target - self.position)
            width = self.finger_width
            if i >= GRIPPER_MIN_STEPS and abs(width - previous) < FINGERS_STILL_M:
                break
            previous = width
        return self.finger_width

    def watch_grip(self, on: bool) -> None:
        """From now on (``on``), a step whose fingers closed on nothing raises :class:`GripLost`, so a carry
        stops where the object slipped instead of finishing empty-handed."""
        self.grip_width = self.finger_width if on and self.holding() else None

    def holding(self) -> bool:
        """Gripper feedback: closed fingers that did not meet hold something."""
        return self.gripper == CLOSE and self.finger_width > EMPTY_GRIP_M

    def rotate_to_yaw(self, yaw_rad: float, max_steps: int = 25) -> None:
        """Turns the downward gripper about world z to ``yaw_rad`` relative to its start orientation."""
        self.rotate_to(yaw_rotation(yaw_rad) @ self.down, max_steps)

    def rotate_to(self, rotation: np.ndarray, max_steps: int = 25) -> None:
        """Turns the hand in place to ``rotation`` (3x3, world), within :data:`TURNED_RAD`."""
        self.target_rotation = np.asarray(rotation, dtype=np.float64)
        target = self.position.copy()
        for _ in range(max_steps):
            if np.linalg.norm(rotation_error(quat_to_matrix(self.state[3:7]), self.target_rotation)) < TURNED_RAD:
                return
            self.step(target - self.position)
