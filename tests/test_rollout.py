"""WorldModelEnv (imagined rollouts), saved observations and the `joyai-embodied rollout` command."""

import json

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from joyai_embodied import InvalidInputError, UnknownObjectError
from joyai_embodied.cli import main as cli_main
from joyai_embodied.evaluation import synthetic
from joyai_embodied.rollout import WorldModelEnv, load_observation, save_observation

WIDTH, HEIGHT = 160, 120


@pytest.fixture(scope="module")
def observation():
    return synthetic.observe(synthetic.front_camera(WIDTH, HEIGHT), synthetic.default_boxes())


@pytest.fixture()
def env(wm, observation):
    return WorldModelEnv(wm, observation, max_episode_steps=5, render_mode="rgb_array")


def test_check_env_is_clean(env):
    check_env(env, skip_render_check=False)


def test_reset_returns_the_source_frame(env, observation):
    obs, info = env.reset(seed=1)
    assert env.observation_space.contains(obs)
    np.testing.assert_array_equal(obs["rgb"], observation.rgb)
    np.testing.assert_array_equal(obs["segmentation"], observation.segmentation)
    assert obs["valid_mask"].all()
    assert {o["name"] for o in info["objects"]} == {"red cube", "blue box", "yellow cube"}


def test_camera_steps_orbit_the_pivot_and_come_back(env):
    start, _ = env.reset(seed=0)
    turned, reward, terminated, truncated, info = env.step(env.camera_action(yaw_deg=30))
    assert env.observation_space.contains(turned)
    assert (reward, terminated, truncated) == (0.0, False, False)
    assert "action_error" not in info and 0.4 < info["valid_fraction"] < 1.0
    assert not np.allclose(turned["cam_to_world"], start["cam_to_world"])
    pivot = env.scene.pivot
    assert np.linalg.norm(turned["cam_to_world"][:3, 3] - pivot) == pytest.approx(
        np.linalg.norm(start["cam_to_world"][:3, 3] - pivot))
    back, *_ = env.step(env.camera_action(yaw_deg=-30))
    np.testing.assert_allclose(back["cam_to_world"], start["cam_to_world"], atol=1e-9)
    same = back["valid_mask"].astype(bool)
    assert (back["segmentation"][same] == start["segmentation"][same]).mean() > 0.99


def test_move_edit_changes_the_imagined_scene(env):
    env.reset(seed=0)
    to = (0.0, 0.22, synthetic.TABLE_HEIGHT)
    obs, _, _, _, info = env.step(env.move_action("red cube", to))
    assert "action_error" not in info and info["edits"] == 1
    red = next(o for o in info["objects"] if o["name"] == "red cube")
    assert np.hypot(red["position"][0] - to[0], red["position"][1] - to[1]) < 0.01
    truth = synthetic.raycast(synthetic.front_camera(WIDTH, HEIGHT),
                              [b.moved(to) if b.id == 1 else b for b in synthetic.default_boxes()])
    valid = obs["valid_mask"].astype(bool)
    assert (obs["segmentation"][valid] == truth["segmentation"][valid]).mean() > 0.99
    rotated, _, _, _, info = env.step(env.rotate_action("blue box", 90))
    assert "action_error" not in info and info["edits"] == 2
    env.reset()
    assert env.scene.edits == ()


def test_refused_actions_report_and_keep_the_state(env):
    start, _ = env.reset(seed=0)
    obs, _, _, _, info = env.step(env.camera_action(pitch_deg=80))  # past the vertical
    assert "action_error" in info
    np.testing.assert_array_equal(obs["cam_to_world"], start["cam_to_world"])
    action = env.move_action("red cube", (1.5, 0.0, 0.4))
    _, _, _, _, info = env.step(action)
    assert "edit.to" in info["action_error"]
    _, _, _, truncated, info = env.step({**action, "object_id": 0})
    assert "action.object_id" in info["action_error"]
    with pytest.raises(UnknownObjectError):
        env.move_action("green sphere", (0, 0, 0.4))


def test_a_camera_step_under_the_table_is_refused_with_the_pitch(env):
    start, _ = env.reset(seed=0)
    obs, _, _, _, info = env.step(env.camera_action(pitch_deg=-60))
    assert info["action_error"].startswith("move.pitch_deg") and "support plane" in info["action_error"]
    np.testing.assert_array_equal(obs["cam_to_world"], start["cam_to_world"])


@pytest.mark.parametrize("size", [2, 5, 7])
def test_a_frame_with_no_support_plane_is_refused_naming_depth(wm, tmp_path, capsys, size):
    rng = np.random.default_rng(size)
    camera = synthetic.front_camera(size, size)
    observation = {"rgb": rng.integers(0, 255, (size, size, 3), dtype=np.uint8),
                   "depth": rng.uniform(0.3, 2.0, (size, size)).astype(np.float32),
                   "intrinsics": camera.intrinsics, "cam_to_world": camera.cam_to_world}
    with pytest.raises(InvalidInputError) as info:
        WorldModelEnv(wm, observation)
    assert info.value.field == "depth"
    # The command says so in one line, exit code 2.
    path = save_observation(tmp_path / "noise.npz", observation)
    assert cli_main(["rollout", path, "--camera", "10,0", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "depth" in err and "Traceback" not in err


def test_episodes_truncate_and_seeds_replay(env):
    env.reset(seed=3)
    env.action_space.seed(3)
    first = [env.step(env.action_space.sample()) for _ in range(5)]
    assert [step[3] for step in first] == [False] * 4 + [True]
    env.reset(seed=3)
    env.action_space.seed(3)
    second = [env.step(env.action_space.sample()) for _ in range(5)]
    for a, b in zip(first, second):
        np.testing.assert_array_equal(a[0]["rgb"], b[0]["rgb"])


def test_constructor_refuses_bad_arguments(wm, observation):
    with pytest.raises(InvalidInputError, match="world_model"):
        WorldModelEnv("geometric", observation)
    with pytest.raises(InvalidInputError, match="max_episode_steps"):
        WorldModelEnv(wm, observation, max_episode_steps=0)
    with pytest.raises(InvalidInputError, match="render_mode"):
        WorldModelEnv(wm, observation, render_mode="human")


def test_saved_observation_round_trips(tmp_path, observation):
    path = save_observation(tmp_path / "frame", observation)
    loaded = load_observation(path)
    for key in ("rgb", "depth", "segmentation", "intrinsics", "cam_to_world"):
        np.testing.assert_array_equal(getattr(loaded, key), getattr(observation, key))
    assert loaded.labels == observation.labels
    np.savez(tmp_path / "bad.npz", rgb=observation.rgb)
    with pytest.raises(InvalidInputError, match="depth"):
        load_observation(tmp_path / "bad.npz")
    with pytest.raises(InvalidInputError, match="observation file"):
        load_observation(tmp_path / "missing.npz")


def test_rollout_command_writes_frames_gif_and_log(tmp_path, observation, capsys):
    path = save_observation(tmp_path / "frame.npz", observation)
    steps = tmp_path / "steps.yaml"
    steps.write_text("- camera: {yaw: 20, pitch: -5}\n- move: {object: red cube, to: [0.0, 0.2, 0.4]}\n")
    out = tmp_path / "out"
    code = cli_main(["rollout", path, "--steps", str(steps), "--camera", "-20", "--rotate", "blue box=45",
                     "--move", "yellow cube=3,0,0.4", "--out", str(out)])
    assert code == 1  # the last move is refused (3 m away) and reported
    printed = capsys.readouterr().out
    assert "[5/5]" in printed and "REFUSED" in printed
    assert sorted(p.name for p in out.glob("frame_*.png")) == [f"frame_{i:03d}.png" for i in range(6)]
    assert (out / "rollout.gif").stat().st_size > 0 and (out / "strip.png").stat().st_size > 0
    log = json.loads((out / "rollout.json").read_text())
    assert [s["kind"] for s in log["steps"]] == ["camera", "move", "camera", "rotate", "move"]
    assert "edit.to" in log["steps"][-1]["error"] and "error" not in log["steps"][0]


@pytest.mark.parametrize("flags, words", [([], "no steps"), (["--camera", "x"], "YAW"),
                                          (["--move", "red cube=1,2"], "NAME=X,Y,Z")])
def test_rollout_command_explains_bad_steps(tmp_path, observation, capsys, flags, words):
    path = save_observation(tmp_path / "frame.npz", observation)
    assert cli_main(["rollout", path, *flags, "--out", str(tmp_path / "out")]) == 2
    assert words in capsys.readouterr().err
