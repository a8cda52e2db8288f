"""The recorder for a path, chosen by its suffix, and the ``--record`` option that commands add.

``.rrd`` -> :class:`~.rerun_recorder.RerunRecorder` (``rerun PATH.rrd``); ``.mcap`` ->
:class:`~.mcap_recorder.McapRecorder` (ROS 2 messages; Foxglove, ``ros2 bag play``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInputError
from .base import Recorder

if TYPE_CHECKING:
    from .writer_process import WriterProcess

SUFFIXES = (".rrd", ".mcap")
#: The Python module each suffix's recorder needs (the ``record`` extra), checked before a writer starts.
REQUIRED_MODULES = {".rrd": ("rerun",), ".mcap": ("rosbags", "mcap")}
#: suffix -> the writer process started by preload_recorder, importing its recorder (taken by open_recorder).
_PRELOADS: dict[str, "WriterProcess"] = {}


def preload_recorder(path: str | Path | None) -> None:
    """Starts the writer process for ``path``'s suffix (no-op for None, another suffix or a missing extra).

    A command calls it first, so that the child's imports (Rerun SDK ~0.7 s CPU, rosbags' type store and
    serializers ~0.3 s) run on the other core while the command builds its env and world model;
    :func:`open_recorder` with ``background=True`` takes it. One left unused ends at exit.
    """
    suffix = Path(path).suffix.lower() if path else ""
    if suffix not in SUFFIXES or suffix in _PRELOADS or _missing_module(suffix):
        return
    from .writer_process import WriterProcess

    _PRELOADS[suffix] = WriterProcess(suffix)


def _missing_module(suffix: str) -> str | None:
    import importlib.util

    return next((name for name in REQUIRED_MODULES[suffix] if importlib.util.find_spec(name) is None), None)


def open_recorder(path: str | Path, background: bool = False, **options: Any) -> Recorder:
    """The recorder for ``path``'s suffix: ``.rrd`` (Rerun) or ``.mcap`` (ROS 2 messages in MCAP).

    Args:
        path: the file to write.
        background: encode and write in a child process (the one :func:`preload_recorder` started, or a new
            one); the caller only validates and sends. False: in the caller's thread, as each call is made.
        options: passed to the recorder (``recording_name`` for .rrd, ``compression`` for .mcap).

    Raises:
        InvalidInputError: another suffix (field ``record``).
        BackendUnavailableError: the ``record`` extra is not installed.
    """
    from ..errors import BackendUnavailableError

    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInputError("record", "a path ending in .rrd or .mcap", str(path))
    missing = _missing_module(suffix)
    if missing:
        raise BackendUnavailableError(f"--record {suffix} needs the 'record' extra "
                                      f"(pip install -e .[record]): no module named {missing!r}")
    if background:
        from .writer_process import ProcessRecorder

        return ProcessRecorder(path, writer=_PRELOADS.pop(suffix, None), **options)
    try:
        if suffix == ".rrd":
            from .rerun_recorder import RerunRecorder as cls
        else:
            from .mcap_recorder import McapRecorder as cls
    except ImportError as exc:
        raise BackendUnavailableError(f"--record {suffix} needs the 'record' extra "
                                      f"(pip install -e .[record]): {exc}") from None
    return cls(path, **options)


def _record_path(text: str) -> str:
    if Path(text).suffix.lower() not in SUFFIXES:
        raise argparse.ArgumentTypeError(f"expected a path ending in .rrd or .mcap, got {text!r}")
    return text


def add_record_argument(parser: argparse.ArgumentParser) -> None:
    """Adds ``--record PATH.rrd|PATH.mcap`` (default None: no recording) to a subcommand's parser."""
    parser.add_argument("--record", type=_record_path, default=None, metavar="PATH.rrd|PATH.mcap",
                        help="record the run: .rrd opens with `rerun PATH.rrd`, .mcap (ROS 2 messages) "
                             "with Foxglove or `ros2 bag play`")
    _preload_from_command_line()


def _preload_from_command_line() -> None:
    """Starts the writer process while the command line is still being parsed, when it asks to record.

    The parser is built before the command's ``run`` (which calls :func:`preload_recorder` again: a no-op
    then): the command's own start-up (its imports, building the parser) is single-threaded, and the writer's
    imports use the other core meanwhile, instead of competing later with the planner's threads. Only for
    the ``joyai-embodied`` command itself (``sys.argv`` is its command line), not for a caller of ``main(argv)``.
    """
    program = Path(sys.argv[0]).name if sys.argv and sys.argv[0] else ""
    if program != "joyai-embodied" and not (program == "__main__.py" and "joyai_embodied" in sys.argv[0]):
        return
    arguments = sys.argv[1:]
    for index, argument in enumerate(arguments):
        if argument == "--record" and index + 1 < len(arguments):
            path = arguments[index + 1]
        elif argument.startswith("--record="):
            path = argument.split("=", 1)[1]
        else:
            continue
        preload_recorder(path)  # a bad path or suffix: nothing is started (argparse then reports it)
        return
