"""`joyai-embodied` command line. Each subcommand lives in its own module, imported only when used.

A subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Sequence

SUBCOMMANDS = {
    "demo": ("joyai_embodied.planner.cli", "run the planner on simulated tasks and write a report"),
    "eval": ("joyai_embodied.evaluation.cli", "run the spatial and imagination benchmarks over seeds"),
    "rollout": ("joyai_embodied.rollout_cli", "offline world-model rollout from a saved observation"),
    "sim-episode": ("sim_envs.scripted", "run a scripted pick-and-place episode and write its frames"),
    "serve-model": ("joyai_embodied.serve.zmq_server", "serve a world model over ZMQ"),
    "ros": ("ros_nodes.launcher", "start the ROS 2 spatial-reasoning and imagination nodes"),
}


def positive_int(text: str) -> int:
    """argparse ``type=`` for counts and sizes: an integer greater than zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value


def run_as_script(command: str, argv: Sequence[str] | None = None) -> int:
    """``python -m <subcommand module> ARGS`` behaves as ``joyai-embodied <command> ARGS``."""
    return main([command, *(sys.argv[1:] if argv is None else argv)])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="joyai-embodied", description=__doc__.splitlines()[0])
    from . import __version__

    parser.add_argument("--version", action="version", version=f"joyai-embodied {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = argv[0] if argv else None
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            # Only the chosen subcommand's module is imported: `ros` must not need torch, `demo` not rclpy.
            importlib.import_module(module_name).add_arguments(sub)
            sub.set_defaults(_module=module_name)
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from .errors import JoyAIError

    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except JoyAIError as exc:  # bad input or an unavailable backend: one line, not a traceback
        print(f"joyai-embodied {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"joyai-embodied {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
