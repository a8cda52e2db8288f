"""``joyai-embodied sim-episode``: a scripted pick-and-place in the simulator, its frames as PNG.

    joyai-embodied sim-episode --seed 3 --out out/sim-episode

No world model is involved: the episode picks the ground-truth target (``sim_envs.scripted``).
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from . import run_as_script, seed_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the ``sim-episode`` options on ``parser``."""
    parser.add_argument("--seed", type=seed_int, default=0, help="episode seed (default 0)")
    parser.add_argument("--out", default="out/sim-episode", help="folder for the PNG frames")
    # Sizes are checked by the env (it names its limits), so only the sign is checked here.
    parser.add_argument("--width", type=int, default=640, help="image width in pixels (default 640)")
    parser.add_argument("--height", type=int, default=480, help="image height in pixels (default 480)")
    parser.add_argument("--camera", default="front", help="observation camera: front, side or top")
    parser.add_argument("--bag", default=None, metavar="PATH.mcap|DIR",
                        help="write the episode as a ROS 2 bag instead of PNG frames (an end-effector pick-and-"
                             "place, one frame per step): PATH.mcap is one MCAP file, another path a rosbag2 "
                             "directory (sqlite3); replay it with `joyai-embodied replay`")


def run(args: argparse.Namespace) -> int:
    """Runs the episode.

    Returns:
        0 when the object ends on the plate, 1 otherwise.

    Raises:
        InvalidInputError: a bad size or camera name.
        OSError: the output folder cannot be written.
    """
    os.environ.setdefault("MUJOCO_GL", "egl")  # before sim_envs imports mujoco
    if args.bag:
        from ..recording.sim_bag import write_sim_episode_bag

        bag = write_sim_episode_bag(args.bag, seed=args.seed, width=args.width, height=args.height,
                                    camera=args.camera)
        print(f"seed {args.seed}: {bag['instruction']!r}: {bag['frames']} frames, "
              f"{'success' if bag['success'] else 'failed'} -> {bag['path']} ({', '.join(sorted(bag['topics']))})")
        return 0 if bag["success"] else 1
    from sim_envs.scripted import run_scripted_episode

    success = run_scripted_episode(seed=args.seed, out=args.out, width=args.width, height=args.height,
                                   camera=args.camera)
    return 0 if success else 1


def main(argv: Sequence[str] | None = None) -> int:
    return run_as_script("sim-episode", argv)


if __name__ == "__main__":
    sys.exit(main())
