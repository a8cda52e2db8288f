"""Behaviour tests of joyai/LIBERO-v0: the project's observation conventions on a real LIBERO task, and bad input.

Needs the ``libero`` extra (skipped without it). One env of libero_spatial task 0 is shared by the module.
"""

import gymnasium as gym
import mujoco
import numpy as np
import pytest

pytest.importorskip("libero.libero", reason="needs the libero extra")

import sim_envs  # noqa: E402
from joyai_embodied.errors import InvalidInputError  # noqa: E402

SIZE = 128
#: Depth must agree with an independent MuJoCo ray cast this well (the issue's tolerance).
DEPTH_TOLERANCE_M = 0.005


@pytest.fixture(scope="module")
def env():
    env = gym.make(sim_envs.LIBERO_ENV_ID, suite="libero_spatial", task_id=0, width=SIZE, height=SIZE,
                   render_on_step=False)
    yield env
    env.close()


@pytest.fixture(scope="module")
def first(env):
    return env.reset(seed=0, options={"init_state": 0})


def test_observation_matches_the_declared_spaces(env, first):
    obs, info = first
    assert env.observation_space.contains(obs)
    assert obs["rgb"].dtype == np.uint8 and obs["depth"].dtype == np.float32
    assert obs["segmentation"].dtype == np.int32
    assert info["instruction"] == "pick up the black bowl between the plate and the ramekin and place it on the plate"
    assert info["success"] is False


def test_labels_are_category_words_without_the_robot(first):
    obs, info = first
    labels = info["labels"]
    assert sorted(labels.values()) == ["black bowl", "black bowl", "cookie box", "flat stove", "plate", "ramekin",
                                       "wooden cabinet"]
    # Every labelled id appears in the image; nothing else does (the robot is background).
    assert set(np.unique(obs["segmentation"])) - {0} <= set(labels)


def test_instance_ids_follow_the_seed_not_the_instance_number(env):
    orders = set()
    for seed in range(6):
        _, info = env.reset(seed=seed, options={"init_state": 0})
        gt = {o["instance"]: o["id"] for o in info["ground_truth"]["objects"]}
        orders.add(gt["akita_black_bowl_1"] < gt["akita_black_bowl_2"])
    assert orders == {True, False}
    _, again = env.reset(seed=5, options={"init_state": 0})
    assert {o["instance"]: o["id"] for o in again["ground_truth"]["objects"]} == gt


def test_each_true_position_projects_into_its_own_mask(env):
    obs, info = env.reset(seed=1, options={"init_state": 2})
    K, world_to_cam = obs["intrinsics"], np.linalg.inv(obs["cam_to_world"])
    inside = 0
    for obj in info["ground_truth"]["objects"]:
        cam = world_to_cam @ np.array([*obj["position"], 1.0])
        assert cam[2] > 0, obj["instance"]
        u, v = (K @ cam[:3])[:2] / cam[2]
        row, col = int(round(v)), int(round(u))
        if obs["segmentation"][row, col] == obj["id"]:
            inside += 1
        else:  # only something nearer the camera may hide an object's own position
            assert obs["depth"][row, col] < cam[2] - 0.01, obj["instance"]
    assert inside >= len(info["ground_truth"]["objects"]) - 1


def test_depth_agrees_with_a_mujoco_ray_cast(env):
    obs, _ = env.reset(seed=0, options={"init_state": 1})
    sim = env.unwrapped._env.env.sim
    model, data = sim.model._model, sim.data._data
    K, pose = obs["intrinsics"], obs["cam_to_world"]
    rng = np.random.default_rng(0)
    rows, cols = rng.integers(0, SIZE, 300), rng.integers(0, SIZE, 300)
    geom = np.zeros(1, dtype=np.int32)
    errors = []
    for v, u in zip(rows, cols):
        ray_cam = np.array([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], 1.0])
        direction = pose[:3, :3] @ ray_cam
        distance = mujoco.mj_ray(model, data, pose[:3, 3], direction, None, 1, -1, geom)
        if distance > 0:  # direction has unit z in the camera: the ray parameter is the z-depth
            errors.append(abs(distance - obs["depth"][v, u]))
    errors = np.array(errors)
    assert len(errors) > 250
    # Edge pixels may hit the neighbouring surface in one of the two; the rest agree to the tolerance.
    assert np.mean(errors < DEPTH_TOLERANCE_M) > 0.97, (np.mean(errors < DEPTH_TOLERANCE_M),
                                                        np.percentile(errors, [50, 90, 99]))


def test_intrinsics_put_pixel_centres_at_integers_and_pose_is_opencv(first):
    obs, _ = first
    K, pose = obs["intrinsics"], obs["cam_to_world"]
    assert K[0, 2] == pytest.approx((SIZE - 1) / 2) and K[1, 2] == pytest.approx((SIZE - 1) / 2)
    assert np.allclose(pose[:3, :3].T @ pose[:3, :3], np.eye(3), atol=1e-9)
    # agentview looks down at the table: the optical axis (z) points down, image-down (y) points away... down.
    assert pose[2, 2] < -0.3 and pose[2, 1] < 0


def test_control_steps_do_not_render_and_observe_does(env):
    obs, _ = env.reset(seed=0, options={"init_state": 0})
    sim = env.unwrapped
    for _ in range(8):
        state = sim.control(np.array([0, 0, 1.0, 0, 0, 0, -1.0]))
    assert state[2] > obs["robot_state"][2] + 0.05
    stale, *_ = env.step(np.array([0, 0, 0, 0, 0, 0, -1.0]))
    assert np.array_equal(stale["rgb"], obs["rgb"])  # render_on_step=False: the last rendered frame
    fresh = sim.observe()
    assert not np.array_equal(fresh["rgb"], obs["rgb"])


def test_bad_input_names_the_field(env):
    with pytest.raises(InvalidInputError, match="^suite: "):
        gym.make(sim_envs.LIBERO_ENV_ID, suite="libero_nope")
    with pytest.raises(InvalidInputError, match="^task_id: "):
        gym.make(sim_envs.LIBERO_ENV_ID, suite="libero_spatial", task_id=10)
    with pytest.raises(InvalidInputError, match="^init_state: "):
        env.reset(options={"init_state": 50})
    with pytest.raises(InvalidInputError, match="^action: "):
        env.unwrapped.control(np.zeros(6))
    with pytest.raises(InvalidInputError, match="camera"):
        gym.make(sim_envs.LIBERO_ENV_ID, camera="frontview")


def test_a_seed_replays_the_same_scene(env):
    def positions(seed):
        _, info = env.reset(seed=seed, options={"init_state": 3})
        return {o["instance"]: o["position"] for o in info["ground_truth"]["objects"]}

    first = positions(7)
    positions(8)
    assert positions(7) == first


def test_gymnasium_env_checker_passes(env):
    from gymnasium.utils.env_checker import check_env

    check_env(env.unwrapped)


def test_unmet_goal_lists_the_goal_predicates_that_do_not_hold(env, first):
    _, info = first
    goal = [" ".join(str(term) for term in predicate) for predicate in info["ground_truth"]["goal"]]
    assert goal and env.unwrapped.unmet_goal() == goal  # nothing is where the goal wants it at the start
    assert not info["success"]
