"""Recordings of world-model runs (Rerun ``.rrd``, MCAP with ROS 2 messages) and replay over ROS 2 bags.

``open_recorder(path)`` picks the recorder by suffix; ``add_record_argument(parser)`` adds ``--record`` to a
subcommand; :mod:`.replay` is ``joyai-embodied replay``; :mod:`.sim_bag` writes a simulator episode as a bag.
See README.md in this folder. Heavy libraries (rerun-sdk, mcap, rosbags: the ``record`` extra) load on use.
"""

import importlib

_EXPORTS = {"Recorder": "base", "lift_point_cloud": "base", "add_record_argument": "recorders",
            "open_recorder": "recorders", "preload_recorder": "recorders", "EpisodeRecorder": "recording_world_model",
            "EpisodeTrace": "recording_world_model", "RecordingWorldModel": "recording_world_model"}

__all__ = ["EpisodeRecorder", "EpisodeTrace", "Recorder", "RecordingWorldModel", "add_record_argument", "lift_point_cloud",
           "open_recorder", "preload_recorder"]


def __getattr__(name: str) -> object:
    # Names load on first use (PEP 562): the writer child imports only its recorder, not the world model.
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
