"""A scripted pick-and-place from the ground-truth target, saved as PNG frames (``joyai-embodied sim-episode``).

It shows the simulator working end to end (no world model involved): reset, pick ``info["target"]``'s
object with a primitive action, place it on the target plate, and write the observation after each step
plus a side-by-side view of rgb, depth and segmentation. The command line is
``joyai_embodied/commands/sim_episode.py``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np


def _depth_to_gray(depth: np.ndarray) -> np.ndarray:
    near, far = float(np.min(depth)), float(np.percentile(depth, 99))
    scaled = np.clip((depth - near) / max(far - near, 1e-6), 0.0, 1.0)
    return np.repeat(((1.0 - scaled) * 255).astype(np.uint8)[..., None], 3, axis=2)


def _segmentation_to_rgb(segmentation: np.ndarray, objects: list[dict]) -> np.ndarray:
    from .constants import COLORS

    palette = np.zeros((segmentation.max() + 1 if segmentation.size else 1, 3), dtype=np.uint8)
    for obj in objects:
        if obj["id"] < len(palette):
            palette[obj["id"]] = (np.array(COLORS[obj["color"]]) * 255).astype(np.uint8)
    return palette[segmentation]


def run_scripted_episode(seed: int = 0, out: str | Path = "out/sim-episode", width: int = 640, height: int = 480,
                         camera: str = "front", log: Callable[[str], None] = print) -> bool:
    """Runs one scripted episode and writes its frames into ``out``.

    Args:
        seed: the episode seed (>= 0).
        out: folder for the PNG frames (created).
        width: image width in pixels.
        height: image height in pixels.
        camera: observation camera: front, side or top.
        log: where progress lines go.

    Returns:
        True when the object ends on the plate.

    Raises:
        InvalidInputError: a bad size or camera name.
        OSError: ``out`` cannot be created or written.
    """
    import gymnasium as gym
    from PIL import Image

    import sim_envs

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    env = gym.make(sim_envs.ENV_ID, width=width, height=height, camera=camera, action_mode="primitive")
    try:
        obs, info = env.reset(seed=seed)
        target = info["target"]
        log(f"seed {seed}: {info['instruction']!r} -> pick {target['pick_name']} (id {target['pick_id']}),"
            f" place on {target['place_name']} (id {target['place_id']})")
        plate = next(o for o in info["objects"] if o["id"] == target["place_id"])
        on_plate = np.array(plate["position"]) + [0.0, 0.0, plate["size"][2] / 2]
        actions = [
            ("pick", {"primitive": 1, "object_id": target["pick_id"], "position": np.zeros(3, np.float32)}),
            ("place", {"primitive": 2, "object_id": 0, "position": on_plate.astype(np.float32)}),
        ]
        frames = [("reset", obs, info)]
        for name, action in actions:
            obs, reward, terminated, truncated, info = env.step(action)
            log(f"  {name}: reward {reward:.0f}, success {info['success']}, error {info['action_error']}")
            frames.append((name, obs, info))
        for index, (name, frame_obs, frame_info) in enumerate(frames):
            path = out / f"frame_{index:02d}_{name}.png"
            Image.fromarray(frame_obs["rgb"]).save(path)
            panel = np.concatenate([frame_obs["rgb"], _depth_to_gray(frame_obs["depth"]),
                                    _segmentation_to_rgb(frame_obs["segmentation"], frame_info["objects"])], axis=1)
            Image.fromarray(panel).save(out / f"frame_{index:02d}_{name}_rgb_depth_seg.png")
            log(f"  wrote {path}")
        success = bool(info["success"])
        log("success" if success else "failed: the object is not on the plate")
        return success
    finally:
        env.close()
