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


def test_depth_noise_is_seeded_and_leaves_the_scene_alone():
    def depths(**options):
        env = gym.make(sim_envs.LIBERO_ENV_ID, suite="libero_spatial", task_id=0, width=64, height=64,
                       render_on_step=False, **options).unwrapped
        try:
            observation, _ = env.reset(seed=4)
            return observation["depth"], observation["rgb"]
        finally:
            env.close()

    exact, rgb = depths()
    noisy, noisy_rgb = depths(depth_noise="structured_light", noise_seed=1)
    again, _ = depths(depth_noise="structured_light", noise_seed=1)
    other, _ = depths(depth_noise="structured_light", noise_seed=2)
    np.testing.assert_array_equal(noisy_rgb, rgb)  # the scene is the same; only the sensor differs
    np.testing.assert_array_equal(noisy, again)
    assert not np.array_equal(noisy, other)
    valid = noisy > 0
    assert 0.5 < valid.mean() < 1.0  # some pixels dropped, most kept
    # z^2-growing noise; at 64 px the focal length is ~77 px, so centimetres (the sensor model, not a bug)
    assert 0 < np.median(np.abs(noisy[valid] - exact[valid])) < 0.05


def test_an_unknown_noise_model_names_the_field():
    from joyai_embodied.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="depth_noise"):
        gym.make(sim_envs.LIBERO_ENV_ID, suite="libero_spatial", task_id=0, depth_noise="lidar")
