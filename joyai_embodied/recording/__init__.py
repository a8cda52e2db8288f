"""Recordings of world-model runs (Rerun ``.rrd``, MCAP with ROS 2 messages) and replay over ROS 2 bags.

``open_recorder(path)`` picks the recorder by suffix; ``add_record_argument(parser)`` adds ``--record`` to a
subcommand; :mod:`.replay` is ``joyai-embodied replay``; :mod:`.sim_bag` writes a simulator episode as a bag.
See README.md in this folder. Heavy libraries (rerun-sdk, mcap, rosbags: the ``record`` extra) load on use.
"""

from .base import Recorder, lift_point_cloud
from .recorders import add_record_argument, open_recorder, preload_recorder
from .recording_world_model import EpisodeRecorder, EpisodeTrace, RecordingWorldModel

__all__ = ["EpisodeRecorder", "EpisodeTrace", "Recorder", "RecordingWorldModel", "add_record_argument", "lift_point_cloud",
           "open_recorder", "preload_recorder"]
