"""`joyai-embodied` command line: every subcommand in this package, one module each, imported only when used.

A subcommand module defines ``add_arguments(parser)`` and ``run(args) -> int``. It is a thin layer: it parses
options, builds what it needs through the factory (:mod:`joyai_embodied.envs`) and calls library functions.
:func:`main` is the ``joyai-embodied`` entry point; it turns bad input (``JoyAIError``, ``OSError`` on a user's
path, a bad option) into one line on stderr and exit code 2, never a traceback.

Exit codes: 0 done; 1 the work ran but did not succeed (a refused rollout step, a failed episode, a failed
benchmark); 2 bad input or something unavailable (unknown backend, missing extra, unwritable folder);
130 interrupted.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import NoReturn, Sequence

from ..config import positive_int, seed_int

__all__ = ["SUBCOMMANDS", "OneLineParser", "build_parser", "main", "positive_int", "run_as_script", "seed_int"]

#: name -> (module, one-line help). The module is imported only when its subcommand is chosen, so that
#: ``ros`` never needs torch and ``demo`` never needs rclpy.
SUBCOMMANDS = {
    "demo": ("joyai_embodied.commands.demo", "run the planner on simulated tasks and write a report"),
    "eval": ("joyai_embodied.commands.eval", "run the spatial and imagination benchmarks over seeds"),
    "rollout": ("joyai_embodied.commands.rollout", "offline world-model rollout from a saved observation"),
    "sim-episode": ("joyai_embodied.commands.sim_episode", "run a scripted pick-and-place episode and write its frames"),
    "serve-model": ("joyai_embodied.commands.serve_model", "serve a world model over ZMQ"),
    "ros": ("joyai_embodied.commands.ros", "start the ROS 2 spatial-reasoning and imagination nodes"),
    "replay": ("joyai_embodied.commands.replay", "run the world model over a recorded ROS 2 bag, write OUT.mcap"),
}
PROG = "joyai-embodied"
#: Exit code of bad input or an unavailable dependency (argparse's own choice for usage errors).
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


class OneLineParser(argparse.ArgumentParser):
    """An ArgumentParser whose usage errors are one line (``prog: message``) and exit code 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: {message} (see {self.prog} --help)\n")


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (YAML and OS errors span several)."""
    text = " ".join(part.strip() for part in str(exc).splitlines() if part.strip())
    return text or type(exc).__name__


def build_parser(chosen: str | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand listed; only ``chosen``'s module is imported to add its options.

    Raises:
        ImportError: the chosen subcommand's module needs an extra that is not installed.
    """
    from .. import __version__

    parser = OneLineParser(prog=PROG, description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in SUBCOMMANDS.items():
        sub = subparsers.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module_name).add_arguments(sub)
            sub.set_defaults(_module=module_name)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """The ``joyai-embodied`` entry point.

    Returns:
        The exit code (see the module docstring).
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = argv[0] if argv and argv[0] in SUBCOMMANDS else None
    where = f"{PROG} {chosen}" if chosen else PROG
    try:
        parser = build_parser(chosen)
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, usage errors (already printed on one line)
        return _exit_code(exit_, where)
    except ImportError as exc:
        return _missing_dependency(exc, where)
    if not getattr(args, "command", None):
        parser.print_help()
        return EXIT_BAD_INPUT
    from ..errors import JoyAIError

    try:
        return int(importlib.import_module(args._module).run(args) or 0)
    except (JoyAIError, OSError) as exc:  # bad input, an unavailable backend, an unusable path: one line
        print(f"{where}: {one_line(exc)}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ModuleNotFoundError as exc:  # an extra that is not installed (a missing module, not a broken one)
        return _missing_dependency(exc, where)
    except SystemExit as exit_:
        return _exit_code(exit_, where)
    except KeyboardInterrupt:
        print(f"{where}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def run_as_script(command: str, argv: Sequence[str] | None = None) -> int:
    """``python -m joyai_embodied.commands.<module> ARGS`` behaves as ``joyai-embodied <command> ARGS``."""
    return main([command, *(sys.argv[1:] if argv is None else argv)])


def _missing_dependency(exc: ImportError, where: str) -> int:
    print(f"{where}: needs an optional dependency that is not installed ({one_line(exc)}); "
          f"see README 'Install by hand' for the extra", file=sys.stderr)
    return EXIT_BAD_INPUT


def _exit_code(exit_: SystemExit, where: str) -> int:
    """SystemExit's code as an int; a message (``SystemExit("--domain-id: ...")``) is printed as bad input."""
    if exit_.code is None or isinstance(exit_.code, int):
        return int(exit_.code or 0)
    message = one_line(exit_.code)
    print(message if message.startswith(PROG) else f"{where}: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT
