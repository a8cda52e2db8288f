"""Behaviour tests of joyai/TabletopSpatial-v0: spaces, conventions, determinism, actions, errors."""

import warnings

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim_envs
from joyai_embodied.camera import look_at, project
from joyai_embodied.errors import InvalidInputError
from sim_envs.mjcf import EE_GEOM_GROUP

SIZE = 96


def make(**kwargs):
    kwargs = {"width": SIZE, "height": SIZE, **kwargs}
    return gym.make(sim_envs.ENV_ID, **kwargs)


@pytest.fixture(scope="module")
def primitive_env():
    env = make(action_mode="primitive")
    yield env
    env.close()


def noop():
    return {"primitive": 0, "object_id": 0, "position": np.zeros(3, np.float32)}


def test_spaces_and_check_env_clean():
    env = make(action_mode="ee", render_mode="rgb_array")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_env(env.unwrapped, skip_render_check=False)
    obs, info = env.reset(seed=0)
    assert env.observation_space.contains(obs)
    assert obs["rgb"].shape == (SIZE, SIZE, 3) and obs["depth"].dtype == np.float32
    assert np.all(np.isfinite(obs["depth"])) and obs["depth"].min() > 0
    assert env.render().shape == (SIZE, SIZE, 3)
    ids = {o["id"] for o in info["objects"]}
    assert ids == set(range(1, len(ids) + 1)) and 3 <= len(ids) <= 8
    assert set(np.unique(obs["segmentation"])) <= ids | {0}
    env.close()
    check_env(make(action_mode="primitive").unwrapped)


def test_same_seed_same_episode_different_seed_different_scene():
    env_a, env_b = make(), make()
    obs_a, info_a = env_a.reset(seed=11)
    obs_b, info_b = env_b.reset(seed=11)
    for key in obs_a:
        np.testing.assert_array_equal(obs_a[key], obs_b[key])
    assert info_a == info_b
    action = np.array([0.3, -0.5, -1.0, 1.0], np.float32)
    for _ in range(3):
        step_a, step_b = env_a.step(action), env_b.step(action)
    np.testing.assert_array_equal(step_a[0]["depth"], step_b[0]["depth"])
    assert step_a[4]["objects"] == step_b[4]["objects"]
    _, info_c = env_a.reset(seed=12)
    assert info_c["objects"] != info_a["objects"]
    env_a.close()
    env_b.close()


def check_projections(env, frame, cam_to_world, intrinsics, objects):
    """Every object whose projected centre shows its own id: depth there equals a ray cast's surface depth.

    Returns the number of objects checked.
    """
    model, data = env.unwrapped.model, env.unwrapped.data
    height, width = frame["depth"].shape
    pixels, centre_depths = project(np.array([o["position"] for o in objects]), intrinsics, cam_to_world)
    checked = 0
    geomgroup = np.ones(6, np.uint8)
    geomgroup[EE_GEOM_GROUP] = 0
    for obj, (u, v), centre_depth in zip(objects, pixels, centre_depths):
        col, row = int(round(u)), int(round(v))
        if not (0 <= col < width and 0 <= row < height):
            continue
        seen = frame["segmentation"][row, col]
        depth = float(frame["depth"][row, col])
        if seen != obj["id"]:
            # Whatever hides the centre must be nearer than the centre.
            assert depth < centre_depth, (obj["name"], seen)
            continue
        # Ray through the pixel centre, compared as z-depth.
        ray_cam = np.array([(col - intrinsics[0, 2]) / intrinsics[0, 0],
                            (row - intrinsics[1, 2]) / intrinsics[1, 1], 1.0])
        ray_world = cam_to_world[:3, :3] @ ray_cam
        geom_id = np.array([-1], np.int32)
        distance = mujoco.mj_ray(model, data, cam_to_world[:3, 3], ray_world / np.linalg.norm(ray_world),
                                 geomgroup, 1, -1, geom_id)
        expected = distance / np.linalg.norm(ray_world)
        assert abs(depth - expected) < 2e-3, (obj["name"], depth, expected)
        assert depth <= centre_depth + 1e-3  # the visible surface is in front of (or at) the centre
        checked += 1
    return checked


@pytest.mark.parametrize("camera", ["front", "side", "top"])
def test_projected_positions_land_on_their_segmentation_and_depth(camera):
    env = make(camera=camera, width=120, height=90)
    checked = 0
    for seed in range(4):
        obs, info = env.reset(seed=seed)
        checked += check_projections(env, obs, obs["cam_to_world"], obs["intrinsics"], info["objects"])
    assert checked >= 12  # most objects are visible
    env.close()


def test_render_view_matches_observation_and_any_pose():
    env = make(width=80, height=64)
    obs, info = env.reset(seed=5)
    same = env.unwrapped.render_view(obs["cam_to_world"], obs["intrinsics"], 80, 64)
    for key in ("rgb", "depth", "segmentation"):
        np.testing.assert_array_equal(same[key], obs[key])
    cam_to_world, intrinsics = env.unwrapped.camera_pose("front")
    np.testing.assert_array_equal(cam_to_world, obs["cam_to_world"])
    # A new pose, another size and an off-centre, non-square pinhole still follow the same conventions.
    pose = look_at(np.array([-0.5, 0.55, 0.95]), np.array([0.05, -0.05, 0.42]))
    k = np.array([[150.0, 0, 70.0], [0, 150.0, 50.0], [0, 0, 1]])
    view = env.unwrapped.render_view(pose, k, 160, 120)
    assert view["rgb"].shape == (120, 160, 3) and view["depth"].shape == (120, 160)
    assert check_projections(env, view, pose, k, info["objects"]) >= 2
    env.close()


def test_primitive_pick_and_place_moves_object_and_succeeds(primitive_env):
    obs, info = primitive_env.reset(seed=2)
    target = info["target"]
    start = {o["id"]: np.array(o["position"]) for o in info["objects"]}
    obs, reward, terminated, _, info = primitive_env.step(
        {"primitive": 1, "object_id": target["pick_id"], "position": np.zeros(3, np.float32)})
    assert info["action_error"] is None and reward == 0 and not terminated
    assert obs["robot_state"][4] == 1 and obs["robot_state"][5] == target["pick_id"]
    lifted = next(o for o in info["objects"] if o["id"] == target["pick_id"])
    assert lifted["position"][2] > start[target["pick_id"]][2] + 0.1  # really carried by physics
    plate = next(o for o in info["objects"] if o["id"] == target["place_id"])
    goal = np.array(plate["position"]) + [0, 0, plate["size"][2] / 2]
    obs, reward, terminated, _, info = primitive_env.step(
        {"primitive": 2, "object_id": 0, "position": goal.astype(np.float32)})
    assert info["action_error"] is None and info["success"] and terminated and reward == 1.0
    placed = next(o for o in info["objects"] if o["id"] == target["pick_id"])
    assert np.hypot(*(np.array(placed["position"][:2]) - goal[:2])) < 0.02
    assert obs["robot_state"][4] == 0
    # The object is visible on the plate where the ground truth says.
    pixels, _ = project(np.array([placed["position"]]), obs["intrinsics"], obs["cam_to_world"])
    u, v = np.round(pixels[0]).astype(int)
    assert obs["segmentation"][v, u] == target["pick_id"]


def test_primitive_errors_are_reported_not_raised(primitive_env):
    seed = 0
    while len(primitive_env.reset(seed=seed)[1]["objects"]) == 8:
        seed += 1
    obs, info = primitive_env.reset(seed=seed)
    before = [o["position"] for o in info["objects"]]
    missing = len(info["objects"]) + 1  # in the action space (ids 0..8) but not in this scene
    _, _, _, _, step_info = primitive_env.step({**noop(), "primitive": 1, "object_id": missing})
    assert "no object with id" in step_info["action_error"]
    _, _, _, _, step_info = primitive_env.step({**noop(), "primitive": 2})
    assert "nothing is held" in step_info["action_error"]
    plate_id = info["target"]["place_id"]
    _, _, _, _, step_info = primitive_env.step({**noop(), "primitive": 1, "object_id": plate_id})
    assert "cannot be picked" in step_info["action_error"]
    np.testing.assert_allclose([o["position"] for o in step_info["objects"]], before, atol=1e-3)


def test_ee_control_moves_mocap_and_suction_lifts():
    env = make(action_mode="ee")
    obs, info = env.reset(seed=2)
    tip = obs["robot_state"][:3].copy()
    obs, *_ = env.step(np.array([1.0, -0.5, 0.0, -1.0], np.float32))
    np.testing.assert_allclose(obs["robot_state"][:3] - tip, [0.02, -0.01, 0.0], atol=1e-6)
    # Fly over an object, descend onto its top, close, lift.
    target = next(o for o in info["objects"] if o["shape"] in ("cube", "cylinder") and o["position"][2] < 0.46)
    top = np.array(target["position"]) + [0, 0, target["size"][2] / 2]
    for _ in range(200):
        delta = np.clip((top + [0, 0, 0.003] - obs["robot_state"][:3]) / 0.02, -1, 1)
        if np.linalg.norm(delta) < 0.05:
            break
        obs, *_ = env.step(np.append(delta, -1.0).astype(np.float32))
    obs, _, _, _, info = env.step(np.array([0, 0, 0, 1.0], np.float32))
    assert obs["robot_state"][3] == 1 and obs["robot_state"][4] == 1
    for _ in range(5):
        obs, _, _, _, info = env.step(np.array([0, 0, 1.0, 1.0], np.float32))
    held = next(o for o in info["objects"] if o["id"] == int(obs["robot_state"][5]))
    assert held["position"][2] > target["position"][2] + 0.07
    for _ in range(15):
        obs, _, _, _, info = env.step(np.array([0, 0, 0, -1.0], np.float32))
    dropped = next(o for o in info["objects"] if o["id"] == held["id"])
    assert obs["robot_state"][4] == 0 and dropped["position"][2] < held["position"][2] - 0.05
    env.close()


@pytest.mark.parametrize("kwargs, field", [({"width": 0}, "width"), ({"height": "480"}, "height"),
                                           ({"camera": "back"}, "camera"), ({"action_mode": "joint"}, "action_mode")])
def test_bad_construction_arguments_raise(kwargs, field):
    with pytest.raises(InvalidInputError) as error:
        sim_envs.tabletop.TabletopSpatialEnv(**kwargs)
    assert error.value.field == field


def test_bad_actions_and_views_raise(primitive_env):
    env = make(action_mode="ee")
    env.reset(seed=0)
    for bad in ([0, 0, 0], [2.0, 0, 0, 0], [np.nan, 0, 0, 0], "up"):
        with pytest.raises(InvalidInputError, match="action"):
            env.step(bad)
    with pytest.raises(InvalidInputError, match="cam_to_world"):
        env.unwrapped.render_view(np.eye(3), np.eye(3), 32, 32)
    with pytest.raises(InvalidInputError, match="cam_to_world"):
        env.unwrapped.render_view(np.diag([1.0, 1.0, -1.0, 1.0]), np.eye(3), 32, 32)
    with pytest.raises(InvalidInputError, match="intrinsics"):
        env.unwrapped.render_view(np.eye(4), np.diag([100.0, 90.0, 1.0]), 32, 32)
    with pytest.raises(InvalidInputError, match="width"):
        env.unwrapped.render_view(np.eye(4), np.eye(3), 5, 32)
    with pytest.raises(InvalidInputError, match="camera"):
        env.unwrapped.camera_pose("back")
    env.close()
    primitive_env.reset(seed=0)
    with pytest.raises(InvalidInputError, match="action.object_id"):
        primitive_env.step({**noop(), "primitive": 1, "object_id": 9})
    with pytest.raises(InvalidInputError, match="action.position"):
        primitive_env.step({**noop(), "position": [0.0, np.inf, 0.4]})
    with pytest.raises(InvalidInputError, match="action"):
        primitive_env.step([1, 2, 0])


def test_async_vector_env_with_spawn():
    envs = gym.vector.AsyncVectorEnv(
        [lambda: gym.make("sim_envs:joyai/TabletopSpatial-v0", width=32, height=32) for _ in range(2)],
        context="spawn")
    try:
        obs, info = envs.reset(seed=[1, 2])
        assert obs["rgb"].shape == (2, 32, 32, 3)
        obs, reward, terminated, truncated, info = envs.step(np.zeros((2, 4), np.float32))
        assert obs["depth"].shape == (2, 32, 32) and reward.shape == (2,)
        assert info["instruction"][0] != info["instruction"][1] or info["objects"][0] != info["objects"][1]
    finally:
        envs.close()


def test_import_picks_headless_gl_and_stays_light():
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    code = "import os, sys, sim_envs; print(os.environ['MUJOCO_GL'], 'mujoco' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    backend, mujoco_imported = out.stdout.split()
    assert backend in ("egl", "osmesa") and mujoco_imported == "False"
