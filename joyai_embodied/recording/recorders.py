"""The recorder for a path, chosen by its suffix, and the ``--record`` option that commands add.

``.rrd`` -> :class:`~.rerun_recorder.RerunRecorder` (``rerun PATH.rrd``); ``.mcap`` ->
:class:`~.mcap_recorder.McapRecorder` (ROS 2 messages; Foxglove, ``ros2 bag play``).
"""

from __future__ import annotations

import argparse
import threading
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from .base import Recorder

SUFFIXES = (".rrd", ".mcap")
#: suffix -> the thread importing and warming its recorder (started by preload_recorder, joined on open).
_PRELOADS: dict[str, threading.Thread] = {}


def preload_recorder(path: str | Path | None) -> None:
    """Starts importing the recorder for ``path``'s suffix in a background thread (no-op for None or another
    suffix). A command calls it first, so that the import (Rerun SDK ~0.5 s, rosbags' type store and
    serializers ~0.4 s) overlaps building the env and the world model; :func:`open_recorder` waits for it.
    """
    suffix = Path(path).suffix.lower() if path else ""
    if suffix not in SUFFIXES or suffix in _PRELOADS:
        return
    thread = threading.Thread(target=_warm_up, args=(suffix,), name=f"preload {suffix} recorder", daemon=True)
    _PRELOADS[suffix] = thread
    thread.start()


def _warm_up(suffix: str) -> None:
    try:
        if suffix == ".rrd":
            from .rerun_recorder import warm_up
        else:
            from .mcap_recorder import warm_up
        warm_up()
    except Exception:  # noqa: BLE001 - open_recorder imports again and reports a missing extra in one line
        pass


def open_recorder(path: str | Path, **options: Any) -> Recorder:
    """The recorder for ``path``'s suffix: ``.rrd`` (Rerun) or ``.mcap`` (ROS 2 messages in MCAP).

    Args:
        path: the file to write.
        options: passed to the recorder (``background=True``: encode and write in a writer thread).

    Raises:
        InvalidInputError: another suffix (field ``record``).
        BackendUnavailableError: the ``record`` extra is not installed.
    """
    from ..errors import BackendUnavailableError

    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise InvalidInputError("record", "a path ending in .rrd or .mcap", str(path))
    preload = _PRELOADS.get(suffix)
    if preload is not None:
        preload.join()  # the warm-up's generated serializers are cached; do not race it
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
