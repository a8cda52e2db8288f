"""Depth as RGB-D sensors deliver it: the simulator's sensor model, and the geometric backend under it."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import sim_envs
from joyai_embodied import WorldModel
from joyai_embodied.backends.geometric.depth_filter import clean_depth, fuse_depth
from joyai_embodied.errors import InvalidInputError
from sim_envs.cameras import intrinsics_for
from sim_envs.sensor_noise import SENSORS, apply_depth_noise

K = intrinsics_for(160, 120, 45.0)  # the env's optics at 160x120


def noisy_env(size=(160, 120), **options):
    return gym.make(sim_envs.ENV_ID, width=size[0], height=size[1], **options)


def test_spaces_unchanged_and_check_env_clean_with_noise():
    for model in ("structured_light", "stereo"):
        env = noisy_env((96, 96), depth_noise=model, noise_seed=4)
        exact = noisy_env((96, 96))
        assert env.observation_space == exact.observation_space
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            check_env(env.unwrapped)
        obs, _ = env.reset(seed=1)
        assert env.observation_space.contains(obs)
        assert (obs["depth"] == 0).any(), "a sensor has pixels without depth"
        env.close()
        exact.close()


def test_same_seed_same_noise_and_noise_seed_independent_of_scene():
    a, b, c = (noisy_env(depth_noise="structured_light", noise_seed=s) for s in (7, 7, 8))
    obs_a, info_a = a.reset(seed=3)
    obs_b, _ = b.reset(seed=3)
    obs_c, info_c = c.reset(seed=3)
    np.testing.assert_array_equal(obs_a["depth"], obs_b["depth"])
    assert not np.array_equal(obs_a["depth"], obs_c["depth"])
    # Another noise seed: the same scene, pixel for pixel, and the same ground truth.
    np.testing.assert_array_equal(obs_a["rgb"], obs_c["rgb"])
    np.testing.assert_array_equal(obs_a["segmentation"], obs_c["segmentation"])
    assert info_a == info_c
    # A fresh draw per frame (what temporal fusion averages), replayed by the next reset with that seed.
    again = a.unwrapped.observe()["depth"]
    assert not np.array_equal(again, obs_a["depth"])
    np.testing.assert_array_equal(a.reset(seed=3)[0]["depth"], obs_a["depth"])
    for env in (a, b, c):
        env.close()


def test_noise_follows_the_published_rms_formula_and_is_quantised():
    rng = np.random.default_rng(0)
    model = SENSORS["structured_light"]
    focal = K[0, 0]
    rms = {}
    for z in (0.6, 1.2):
        depth = np.full((120, 160), z, np.float32)
        noisy = apply_depth_noise(depth, model, rng, intrinsics=K)
        valid = noisy > 0
        assert valid.mean() > 0.9
        np.testing.assert_allclose(noisy[valid] * 1000, np.round(noisy[valid] * 1000), atol=1e-3)  # 1 mm units
        rms[z] = float(np.sqrt(np.mean((noisy[valid] - z) ** 2)))
        expected = float(model.rms_error_m(z, focal))
        # The 1 mm quantisation adds 0.29 mm RMS in quadrature.
        assert rms[z] == pytest.approx(np.hypot(expected, 0.001 / np.sqrt(12)), rel=0.2)
    assert 3.0 < rms[1.2] / rms[0.6] < 4.5  # ~ z^2 (quantisation flattens the near end a little)


def test_edges_get_a_shadow_on_the_left_and_flying_pixels():
    depth = np.full((60, 80), 1.2, np.float32)
    depth[20:40, 40:60] = 0.7  # a box in front of a wall
    model = SENSORS["structured_light"]
    noisy = apply_depth_noise(depth, model, np.random.default_rng(1), intrinsics=K)
    # The second imager sits to the right: the band left of the box is unseen, as wide as the disparity step.
    shadow = int(np.floor(K[0, 0] * model.baseline_m * (1 / 0.7 - 1 / 1.2))) - 1
    assert shadow >= 2
    assert np.all(noisy[22:38, 40 - shadow:39] == 0)
    between = (noisy > 0.75) & (noisy < 1.15)
    assert between.sum() > 5 and not between[:15].any()  # mixed depths only at the box's outline


def test_unknown_model_and_missing_focal_name_the_field():
    depth = np.ones((8, 8), np.float32)
    with pytest.raises(InvalidInputError, match="depth_noise"):
        apply_depth_noise(depth, "kinect", np.random.default_rng(0), intrinsics=K)
    with pytest.raises(InvalidInputError, match="intrinsics"):
        apply_depth_noise(depth, "stereo", np.random.default_rng(0))
    with pytest.raises(InvalidInputError, match="depth_noise"):
        noisy_env(depth_noise="lidar")
    np.testing.assert_array_equal(apply_depth_noise(depth, "none", np.random.default_rng(0)), depth)


def test_clean_depth_drops_flying_pixels_and_keeps_surfaces():
    depth = np.full((30, 30), 1.2, np.float32)
    depth[10:20, 10:20] = 0.8
    depth[12:18, 9] = 1.0  # a column of mixed pixels between the box and the wall
    depth[5, 5] = 0.0      # a hole
    cleaned = clean_depth(depth)
    assert np.all(np.isnan(cleaned[12:18, 9]))
    assert np.isnan(cleaned[5, 5])
    np.testing.assert_allclose(cleaned[13:17, 13:17], 0.8)
    np.testing.assert_allclose(cleaned[25:28, 25:28], 1.2)


def test_fuse_depth_takes_the_median_where_most_frames_have_depth():
    a = np.array([[1.0, 1.0, 0.0]], np.float32)
    b = np.array([[1.2, 0.0, 0.0]], np.float32)
    c = np.array([[1.1, 1.4, 2.0]], np.float32)
    fused = fuse_depth([a, b, c])
    np.testing.assert_allclose(fused[0, :2], [1.1, 1.2])
    assert np.isnan(fused[0, 2])  # seen once in three frames: a flicker


@pytest.fixture(scope="module")
def scene_frames():
    env = noisy_env((320, 240), depth_noise="structured_light", noise_seed=0)
    obs, info = env.reset(seed=5)
    frames = [obs] + [env.unwrapped.observe() for _ in range(2)]
    env.close()
    return frames, info


@pytest.mark.parametrize("segmentation", [True, False])
def test_observe_noisy_depth_finds_every_object_within_2cm(scene_frames, segmentation):
    frames, info = scene_frames
    wm = WorldModel.load("geometric")
    frame = frames[0] if segmentation else {k: v for k, v in frames[0].items() if k != "segmentation"}
    scene = wm.observe(frame)
    pixels = np.bincount(frames[0]["segmentation"].ravel(), minlength=16)
    for truth in info["objects"]:
        if pixels[truth["id"]] < 100:
            continue
        errors = [np.linalg.norm(o.centroid - np.asarray(truth["position"])) for o in scene.objects]
        assert min(errors) < 0.02, (truth["name"], min(errors))


def test_observe_a_list_fuses_frames_and_refuses_another_camera(scene_frames):
    frames, info = scene_frames
    wm = WorldModel.load("geometric")
    single, fused = wm.observe(frames[0]), wm.observe(frames)
    assert [o.id for o in fused.objects] == [o.id for o in single.objects]
    truth = {g["id"]: np.asarray(g["position"]) for g in info["objects"]}

    def mean_error(scene):
        return np.mean([np.linalg.norm(o.centroid - truth[o.id]) for o in scene.objects])

    assert mean_error(fused) <= mean_error(single) + 1e-3
    moved = dict(frames[1])
    moved["cam_to_world"] = moved["cam_to_world"].copy()
    moved["cam_to_world"][0, 3] += 0.05
    with pytest.raises(InvalidInputError, match=r"observations\[1\]"):
        wm.observe([frames[0], moved])


def test_exact_depth_is_used_as_it_is():
    env = noisy_env((160, 120))
    obs, _ = env.reset(seed=2)
    env.close()
    auto = WorldModel.load("geometric").observe(obs)
    off = WorldModel.load("geometric", depth_filter="off").observe(obs)
    assert [(o.name, o.centroid.tolist(), o.extent.tolist()) for o in auto.objects] == \
        [(o.name, o.centroid.tolist(), o.extent.tolist()) for o in off.objects]
    with pytest.raises(InvalidInputError, match="depth_filter"):
        WorldModel.load("geometric", depth_filter="sometimes")


def test_eval_command_scores_spatial_under_depth_noise(tmp_path, capsys):
    from joyai_embodied.commands import main

    assert main(["eval", "--only", "spatial", "--small", "--seeds", "1", "--depth-noise", "structured_light",
                 "--out", str(tmp_path)]) == 0
    import json

    result = json.loads((tmp_path / "spatial.json").read_text())["result"]
    assert result["depth_noise"] == "structured_light"
    assert result["relation_accuracy"]["overall"]["accuracy"] >= 0.9
    assert main(["eval", "--only", "spatial", "--small", "--depth-noise", "lidar", "--out", str(tmp_path)]) == 2


def test_planner_evaluation_runs_under_depth_noise():
    from joyai_embodied.envs import make_env
    from joyai_embodied.evaluation.planner import evaluate_planner

    env = make_env(width=320, height=240)
    try:
        scores = evaluate_planner(WorldModel.load("geometric"), env, [1000], baseline=False,
                                  depth_noise="structured_light")
        assert env.unwrapped.depth_noise == "structured_light"
        assert (env.unwrapped.observe()["depth"] == 0).any()
        assert len(scores["world model"].episodes) == 1
    finally:
        env.close()
