"""``joyai-embodied rollout``: imagine a sequence of camera moves and edits from one saved observation.

    joyai-embodied rollout frame.npz --camera 15 --camera 15,-10 --move "red cube=0.1,0.05,0.4" \\
        --rotate "blue cylinder=45" --out out/rollout
    joyai-embodied rollout frame.npz --steps steps.yaml --out out/rollout

Steps run in order through :class:`~joyai_embodied.rollout.WorldModelEnv`: camera moves are relative
to the current virtual camera (yaw, pitch in degrees, zoom factor) and orbit the scene pivot; edits
accumulate. A steps file (YAML or JSON) is a list of one-key mappings::

    - camera: {yaw: 20, pitch: -10, zoom: 1.2}
    - move: {object: red cube, to: [0.10, 0.05, 0.40]}
    - rotate: {object: blue cylinder, yaw: 45}

Writes ``frame_000.png`` (the source) and one PNG per step, ``rollout.gif`` (all frames, animated),
``strip.png`` (all frames side by side) and ``rollout.json`` (each step, its camera pose, valid fraction
and any refusal). Save an observation with :func:`joyai_embodied.rollout.save_observation`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import zipfile
import zlib
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import InvalidInputError
from . import run_as_script, seed_int

#: Largest number of steps in one rollout (each writes a PNG).
MAX_STEPS = 200


class _StepAction(argparse.Action):
    """Appends ``(kind, text)`` to ``namespace.steps`` so that flags of different kinds keep their order."""

    def __call__(self, parser, namespace, values, option_string=None):
        steps = list(getattr(namespace, "steps", None) or [])
        steps.append((self.const, values))
        namespace.steps = steps


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the ``rollout`` options on ``parser``."""
    parser.add_argument("observation", help=".npz with rgb, depth, intrinsics, cam_to_world "
                                            "[, segmentation, labels] (see save_observation)")
    parser.add_argument("--steps-file", "--steps", dest="steps_file", metavar="FILE",
                        help="YAML/JSON list of steps (camera / move / rotate); runs before any flag steps")
    parser.add_argument("--camera", action=_StepAction, const="camera", metavar="YAW[,PITCH[,ZOOM]]",
                        help="a camera move relative to the current view (repeatable)")
    parser.add_argument("--move", action=_StepAction, const="move", metavar="NAME=X,Y,Z",
                        help="move an object so its base centre is at world X,Y,Z (repeatable)")
    parser.add_argument("--rotate", action=_StepAction, const="rotate", metavar="NAME=DEG",
                        help="rotate an object about world z (repeatable)")
    parser.add_argument("--preset", "--backend", dest="preset", default="geometric",
                        help="world model preset or backend (default geometric)")
    parser.add_argument("--out", default="out/rollout", help="output folder (default out/rollout)")
    parser.add_argument("--frame-ms", type=int, default=500, help="GIF frame duration in ms (default 500)")
    parser.add_argument("--seed", type=seed_int, default=0, help="seed passed to the rollout env (default 0)")
    from ..recording.recorders import add_record_argument

    add_record_argument(parser)
    parser.set_defaults(steps=[])


def run(args: argparse.Namespace) -> int:
    """Runs the rollout.

    Returns:
        0 on success, 1 when a step was refused (the others still run and are written).

    Raises:
        InvalidInputError: bad steps, an unreadable observation file, or a bad preset option.
        OSError: the output folder cannot be written.
    """
    from ..errors import JoyAIError
    from ..recording.recorders import preload_recorder
    from ..world_model import WorldModel

    steps = _read_steps_file(args.steps_file) if args.steps_file else []
    steps += [_parse_flag(kind, text) for kind, text in args.steps]
    if not steps:
        raise InvalidInputError("steps", "at least one: give --camera/--move/--rotate flags or --steps FILE",
                                "no steps")
    if len(steps) > MAX_STEPS:
        raise InvalidInputError("steps", f"at most {MAX_STEPS}", len(steps))
    observation = read_observation(args.observation)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)  # before the model loads: an unwritable --out fails at once
    preload_recorder(getattr(args, "record", None))  # the writer process imports while the model loads
    wm = WorldModel.load(args.preset)
    recorder = None
    with wm:
        from ..rollout import WorldModelEnv

        env = WorldModelEnv(wm, observation, max_episode_steps=len(steps) + 1)
        frame, _ = env.reset(seed=args.seed)
        if getattr(args, "record", None):
            from ..recording import open_recorder

            recorder = open_recorder(args.record, background=True)  # encoded and written by a writer process
            recorder.set_time(0)
            recorder.log_observation(observation)
            recorder.log_scene(env.scene)
        frames, records, refused = [frame["rgb"]], [], 0
        _write_png(out / "frame_000.png", frame["rgb"])
        print(f"[0/{len(steps)}] source view -> {out / 'frame_000.png'}", flush=True)
        for i, step in enumerate(steps, start=1):
            start = time.perf_counter()
            try:
                action = _to_action(env, step)
            except JoyAIError as error:  # unknown object name
                action, info = None, {"action_error": str(error), "valid_fraction": float("nan")}
            before = env.scene
            if action is not None:
                frame, _, _, _, info = env.step(action)
            elapsed_ms = 1000 * (time.perf_counter() - start)
            path = out / f"frame_{i:03d}.png"
            _write_png(path, frame["rgb"])
            frames.append(frame["rgb"])
            record = {"step": i, **step, "frame": path.name, "valid_fraction": info["valid_fraction"],
                      "cam_to_world": frame["cam_to_world"].tolist(), "ms": round(elapsed_ms, 1)}
            if "action_error" in info:
                refused += 1
                record["error"] = info["action_error"]
                print(f"[{i}/{len(steps)}] {_describe(step)}: REFUSED: {info['action_error']}", flush=True)
            else:
                print(f"[{i}/{len(steps)}] {_describe(step)}: valid {info['valid_fraction']:.0%}, "
                      f"{elapsed_ms:.0f} ms -> {path}", flush=True)
            records.append(record)
            if recorder is not None:  # the rollout's imagined camera, the scene as edited, the step in words
                recorder.set_time(i)
                recorder.log_imagined("rollout", frame)
                recorder.log_scene(env.scene)
                if env.scene is not before and step["kind"] != "camera":
                    recorder.log_scene_edit(f"step {i}", before, env.scene)
                recorder.log_text(f"[{i}] {_describe(step)}: {record.get('error', 'ok')}", kind="rollout")
    if recorder is not None:
        recorder.close()
        print(f"recording: {args.record}")

    _write_gif(out / "rollout.gif", frames, args.frame_ms)
    _write_strip(out / "strip.png", frames)
    (out / "rollout.json").write_text(json.dumps({"observation": str(args.observation), "preset": args.preset,
                                                  "steps": records}, indent=2), encoding="utf-8")
    print(f"wrote {len(frames)} frames, {out / 'rollout.gif'}, {out / 'strip.png'}, {out / 'rollout.json'}")
    return 1 if refused else 0


# -- steps ---------------------------------------------------------------------------------------
def read_observation(path: str) -> Any:
    """The observation saved at ``path``; an empty or truncated archive is bad input, not a crash.

    Raises:
        InvalidInputError: missing, empty, truncated or malformed file (field ``observation file``).
    """
    from ..rollout import load_observation

    try:
        return load_observation(path)
    except (EOFError, zipfile.BadZipFile, zlib.error) as error:  # np.load's errors on a cut-off archive
        raise InvalidInputError("observation file", "a complete .npz archive (see save_observation)",
                                f"{path}: {type(error).__name__}: {error or 'empty file'}") from error


def _read_steps_file(path: str) -> list[dict[str, Any]]:
    import yaml  # JSON is YAML too

    with open(path, encoding="utf-8") as handle:
        try:
            data = yaml.safe_load(handle)
        except yaml.YAMLError as error:
            raise InvalidInputError("--steps", "a YAML or JSON list of steps", f"{path}: {error}") from error
    if isinstance(data, dict) and "steps" in data:
        data = data["steps"]
    if not isinstance(data, list):
        raise InvalidInputError("--steps", "a list of steps (camera / move / rotate)",
                                f"{path}: {type(data).__name__}")
    return [_parse_mapping(item, f"{path}: step {i + 1}") for i, item in enumerate(data)]


def _parse_mapping(item: Any, where: str) -> dict[str, Any]:
    if not isinstance(item, dict) or len(item) != 1:
        raise InvalidInputError(where, "one of {camera: ...}, {move: ...}, {rotate: ...}", repr(item))
    (kind, body), = item.items()
    body = body or {}
    if not isinstance(body, dict):
        raise InvalidInputError(where, f"a mapping of the fields of '{kind}'", repr(body))
    try:
        if kind == "camera":
            unknown = set(body) - {"yaw", "pitch", "zoom"}
            if unknown:
                raise ValueError(f"unknown camera fields {sorted(unknown)} (expected yaw, pitch, zoom)")
            return {"kind": "camera", "yaw": float(body.get("yaw", 0.0)), "pitch": float(body.get("pitch", 0.0)),
                    "zoom": float(body.get("zoom", 1.0))}
        if kind == "move":
            to = [float(v) for v in body["to"]]
            if len(to) != 3:
                raise ValueError(f"'to' needs three coordinates, got {len(to)}")
            return {"kind": "move", "object": str(body["object"]), "to": to}
        if kind == "rotate":
            return {"kind": "rotate", "object": str(body["object"]), "yaw": float(body["yaw"])}
    except KeyError as missing:
        raise InvalidInputError(where, f"the field {missing} in '{kind}'", "none") from None
    except (TypeError, ValueError) as error:
        raise InvalidInputError(where, f"valid fields of '{kind}'", str(error)) from None
    raise InvalidInputError(where, "a step kind camera, move or rotate", repr(kind))


def _parse_flag(kind: str, text: str) -> dict[str, Any]:
    try:
        if kind == "camera":
            values = [float(v) for v in text.split(",")]
            if not 1 <= len(values) <= 3:
                raise ValueError
            yaw, pitch, zoom = (values + [0.0, 1.0][len(values) - 1:])[:3]
            return {"kind": "camera", "yaw": yaw, "pitch": pitch, "zoom": zoom}
        name, _, value = text.rpartition("=")
        if not name.strip():
            raise ValueError
        if kind == "move":
            to = [float(v) for v in value.split(",")]
            if len(to) != 3:
                raise ValueError
            return {"kind": "move", "object": name.strip(), "to": to}
        return {"kind": "rotate", "object": name.strip(), "yaw": float(value)}
    except ValueError:
        expected = {"camera": "YAW[,PITCH[,ZOOM]]", "move": "NAME=X,Y,Z", "rotate": "NAME=DEG"}[kind]
        raise InvalidInputError(f"--{kind}", expected, repr(text)) from None


def _to_action(env, step: dict[str, Any]) -> dict:
    if step["kind"] == "camera":
        return env.camera_action(step["yaw"], step["pitch"], step["zoom"])
    if step["kind"] == "move":
        return env.move_action(step["object"], step["to"])
    return env.rotate_action(step["object"], step["yaw"])


def _describe(step: dict[str, Any]) -> str:
    if step["kind"] == "camera":
        return f"camera yaw {step['yaw']:g}, pitch {step['pitch']:g}, zoom {step['zoom']:g}"
    if step["kind"] == "move":
        return f"move {step['object']} to ({', '.join(f'{v:.3f}' for v in step['to'])})"
    return f"rotate {step['object']} by {step['yaw']:g} deg"


# -- images --------------------------------------------------------------------------------------
def _write_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    Image.fromarray(rgb).save(path)


def _write_gif(path: Path, frames: list[np.ndarray], frame_ms: int) -> None:
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=max(int(frame_ms), 20), loop=0)


def _write_strip(path: Path, frames: list[np.ndarray], max_width: int = 4096) -> None:
    """All frames side by side, scaled down so the strip is at most ``max_width`` pixels wide."""
    from PIL import Image

    height, width = frames[0].shape[:2]
    scale = min(1.0, max_width / (width * len(frames)))
    size = (max(int(width * scale), 1), max(int(height * scale), 1))
    strip = Image.new("RGB", (size[0] * len(frames), size[1]))
    for i, frame in enumerate(frames):
        strip.paste(Image.fromarray(frame).resize(size), (i * size[0], 0))
    strip.save(path)


def main(argv: Sequence[str] | None = None) -> int:
    return run_as_script("rollout", argv)


if __name__ == "__main__":
    sys.exit(main())
