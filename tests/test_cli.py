"""The `joyai-embodied` command line: subcommands in one place, and one-line errors with exit 2, never a traceback."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from joyai_embodied.commands import SUBCOMMANDS, main, positive_int, seed_int

ROOT = Path(__file__).resolve().parents[1]
SIZE = 16  # pixels; the rollout cases fail before any real work, so a tiny frame is enough


def test_help_lists_every_subcommand(capsys):
    assert main([]) == 2
    listed = capsys.readouterr().out
    for name in SUBCOMMANDS:
        assert name in listed


def test_every_subcommand_module_is_in_the_commands_package():
    for name, (module, _) in SUBCOMMANDS.items():
        assert module.startswith("joyai_embodied.commands."), name
        assert (ROOT / Path(*module.split("."))).with_suffix(".py").is_file(), module


def test_console_script_and_old_module_path_reach_the_same_main():
    from importlib.metadata import entry_points

    (script,) = [ep for ep in entry_points(group="console_scripts") if ep.name == "joyai-embodied"]
    assert script.value == "joyai_embodied.commands:main"
    # `python -m joyai_embodied.cli` (used by scripts and child processes) is the same command line
    done = subprocess.run([sys.executable, "-m", "joyai_embodied.cli", "demo", "--backend", "nope"],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 2 and done.stderr.startswith("joyai-embodied demo: unknown preset or backend 'nope'")


def test_choosing_a_subcommand_imports_only_what_it_needs():
    # `ros` must not need torch or MuJoCo, `demo` not rclpy: options are declared without the heavy imports.
    code = ("import sys; from joyai_embodied.commands import build_parser; "
            "[build_parser(c) for c in sys.argv[1:]]; "
            "print(' '.join(m for m in ('torch', 'rclpy', 'mujoco', 'open3d') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code, *SUBCOMMANDS], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ""


def _observation_file(path: Path) -> Path:
    rng = np.random.default_rng(0)
    intrinsics = np.array([[20.0, 0, SIZE / 2], [0, 20.0, SIZE / 2], [0, 0, 1]])
    np.savez(path, rgb=rng.integers(0, 255, (SIZE, SIZE, 3), dtype=np.uint8),
             depth=np.full((SIZE, SIZE), 0.8, np.float32), intrinsics=intrinsics, cam_to_world=np.eye(4))
    return path


def _empty(tmp_path: Path) -> list[str]:
    (tmp_path / "empty.npz").write_bytes(b"")
    return ["rollout", str(tmp_path / "empty.npz"), "--camera", "10"]


def _truncated(tmp_path: Path) -> list[str]:
    whole = _observation_file(tmp_path / "whole.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[: len(whole) // 2])
    return ["rollout", str(tmp_path / "cut.npz"), "--camera", "10"]


def _bad_yaml(tmp_path: Path) -> list[str]:
    (tmp_path / "steps.yaml").write_text("- camera: {yaw: 20\n- move: [\n")
    return ["rollout", str(_observation_file(tmp_path / "frame.npz")), "--steps", str(tmp_path / "steps.yaml")]


def _unwritable_out(tmp_path: Path) -> list[str]:
    return ["rollout", str(_observation_file(tmp_path / "frame.npz")), "--camera", "10", "--out", "/proc/x"]


# (id, argv builder, words the one line must contain). Each of these ended in a traceback or exit 1 before.
BAD_INPUT = [
    ("rollout-empty-npz", _empty, "observation file"),
    ("rollout-truncated-npz", _truncated, "observation file"),
    ("rollout-invalid-yaml", _bad_yaml, "--steps"),
    ("rollout-out-proc", _unwritable_out, "/proc/x"),
    ("serve-model-generate-keys-proc", lambda tmp: ["serve-model", "--generate-keys", "/proc/x"], "/proc/x"),
    ("sim-episode-negative-seed", lambda tmp: ["sim-episode", "--seed", "-1", "--out", str(tmp)], "--seed"),
    ("demo-huge-width", lambda tmp: ["demo", "--width", "100000", "--episodes", "1", "--out", str(tmp)], "width"),
    ("demo-unknown-backend", lambda tmp: ["demo", "--backend", "nope", "--out", str(tmp)], "nope"),
    ("demo-address-with-default-backend",
     lambda tmp: ["demo", "--address", "X", "--episodes", "1", "--out", str(tmp)], "address"),
    ("demo-out-proc", lambda tmp: ["demo", "--episodes", "1", "--out", "/proc/x"], "/proc/x"),
    ("eval-address-with-default-backend", lambda tmp: ["eval", "--address", "X", "--out", str(tmp)], "address"),
    ("demo-zero-episodes", lambda tmp: ["demo", "--episodes", "0", "--out", str(tmp)], "positive integer"),
]


@pytest.mark.parametrize("build, words", [case[1:] for case in BAD_INPUT], ids=[case[0] for case in BAD_INPUT])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, build, words):
    argv = build(tmp_path)
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"joyai-embodied {argv[0]}: ") and words in lines[0], lines[0]
    assert "Traceback" not in err


def test_address_with_the_default_backend_lists_the_options_it_takes(tmp_path, capsys):
    assert main(["demo", "--address", "tcp://127.0.0.1:1", "--episodes", "1", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "geometric backend" in err and "hole_fill_px" in err and "voxel_size_m" in err


def test_bad_input_exits_2_with_the_field_named(capsys):
    assert main(["sim-episode", "--width", "-5", "--out", "unused"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("joyai-embodied sim-episode: width: expected")
    assert "\n" not in err and "Traceback" not in err


def test_a_good_rollout_still_runs(tmp_path, capsys):
    # The error handling must not swallow success: a real (tiny) rollout exits 0 and writes its log.
    from joyai_embodied.rollout import save_observation

    pytest.importorskip("PIL")
    import gymnasium as gym

    import sim_envs

    env = gym.make(sim_envs.ENV_ID, width=64, height=48)
    obs, info = env.reset(seed=1)
    env.close()
    frame = save_observation(tmp_path / "frame.npz", obs, info)
    assert main(["rollout", str(frame), "--camera", "10", "--out", str(tmp_path / "out")]) == 0
    assert json.loads((tmp_path / "out" / "rollout.json").read_text())["steps"][0]["kind"] == "camera"


@pytest.mark.parametrize("text", ["0", "-3", "two"])
def test_positive_int_refuses(text):
    with pytest.raises(Exception, match="positive integer"):
        positive_int(text)


@pytest.mark.parametrize("text", ["-1", str(2**32), "x"])
def test_seed_int_refuses(text):
    with pytest.raises(Exception, match="seed"):
        seed_int(text)


# -- the env and model factory the commands build on ------------------------------------------------------
def test_make_env_builds_the_tabletop_from_a_typed_config():
    pytest.importorskip("mujoco")
    from joyai_embodied.envs import EnvConfig, make_env

    env = make_env(EnvConfig(width=48, height=32))
    try:
        obs, info = env.reset(seed=2)
        assert obs["rgb"].shape == (32, 48, 3) and "instruction" in info
    finally:
        env.close()


@pytest.mark.parametrize("options, field", [({"suite": "nope"}, "suite"), ({"widht": 64}, "widht"),
                                            ({"width": "64"}, "width"), ({"via": "carrier pigeon"}, "via")])
def test_make_env_refuses_bad_options_by_name(options, field):
    from joyai_embodied import InvalidInputError
    from joyai_embodied.envs import make_env

    with pytest.raises(InvalidInputError) as caught:
        make_env(**options)
    assert caught.value.field == field


def test_load_world_model_in_process_and_bad_transport():
    from joyai_embodied import InvalidInputError, WorldModel
    from joyai_embodied.envs import load_world_model

    wm = load_world_model("geometric", hole_fill_px=1)
    assert isinstance(wm, WorldModel) and wm.backend.hole_fill_px == 1
    with pytest.raises(InvalidInputError, match="via"):
        load_world_model("geometric", via="zmq")
