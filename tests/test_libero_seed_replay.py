"""A LIBERO seed replays the same first steps whatever episode came before (robosuite keeps gripper state)."""

import numpy as np
import pytest

pytest.importorskip("libero")
import gymnasium as gym  # noqa: E402

import sim_envs  # noqa: E402


def test_a_seed_replays_after_episodes_of_any_length():
    env = gym.make(sim_envs.LIBERO_ENV_ID, suite="libero_spatial", task_id=0, width=64, height=64,
                   render_on_step=False).unwrapped
    try:
        def first_step(then_steps: int) -> dict:
            env.reset(seed=123)
            env.action_space.seed(123)
            observation, *_ = env.step(env.action_space.sample())
            for _ in range(then_steps):  # the episode goes on: its last grip must not leak into the next one
                env.step(env.action_space.sample())
            return observation

        reference = first_step(0)
        for then_steps in (1, 30, 0, 5):
            observation = first_step(then_steps)
            for key in ("rgb", "depth", "robot_state"):
                np.testing.assert_array_equal(observation[key], reference[key], err_msg=key)
    finally:
        env.close()
