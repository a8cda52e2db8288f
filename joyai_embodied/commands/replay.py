"""``joyai-embodied replay``: the world model over a recorded ROS 2 bag (see :mod:`joyai_embodied.recording.replay`).

    joyai-embodied replay BAG --rgb-topic T --depth-topic T --camera-info-topic T [--pose-topic T | --frame-id F]
        [--segmentation-topic T] [--question Q]... [--every N] --out OUT.mcap
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import run_as_script


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the ``replay`` options on ``parser``."""
    from ..recording.replay import add_arguments as replay_arguments

    replay_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Runs the replay; 0 done, 2 a bad bag or option (one line on stderr)."""
    from ..recording.replay import run as replay_run

    return replay_run(args)


def main(argv: Sequence[str] | None = None) -> int:
    return run_as_script("replay", argv)


if __name__ == "__main__":
    sys.exit(main())
