"""``joyai-embodied ros``: both ROS 2 world-model nodes (and optionally the simulator bridge) in one process.
Its options and its spin loop live with the nodes (:mod:`ros_nodes.launcher`); this module only hooks them
into the command line.

    joyai-embodied ros --backend geometric --domain-id 42
    joyai-embodied ros --with-sim-bridge --sim-width 320 --sim-height 240
"""

from __future__ import annotations

import argparse
import sys
from typing import Sequence

from . import run_as_script


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the ``ros`` options (the launcher's own ``add_arguments``; rclpy is not imported yet)."""
    from ros_nodes import launcher

    launcher.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Serves until SIGINT/SIGTERM (see the launcher's ``run`` for the exit codes)."""
    from ros_nodes import launcher

    return launcher.run(args)


def main(argv: Sequence[str] | None = None) -> int:
    return run_as_script("ros", argv)


if __name__ == "__main__":
    sys.exit(main())
