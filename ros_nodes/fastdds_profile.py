"""The Fast DDS transport for multi-megabyte images between processes of one machine.

A 640x480 SpatialQuery request or Imagine goal carries ~2.7 MB (rgb8 + 32FC1 depth + 16-bit ids),
an Imagine result ~3.5 MB. Fast DDS's default shared-memory segment is 512 KiB: such messages lose
fragments and the reader waits for a repair, which made a spatial query +43 ms slower over ROS than
in-process (p50, 640x480); with a 32 MiB shared-memory-only segment the same call adds ~8 ms.

Shared memory is written by the *sender* into its own segment, so the client process needs the
profile as much as the nodes do. It is a process-wide setting read when rclpy creates its first
participant: call :func:`use_large_frame_transport` before ``rclpy.init()``.
"""

from __future__ import annotations

import os

#: Shared memory only, 32 MiB segment (see the comment in the file).
FAST_DDS_PROFILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "config", "large_frames_fastdds.xml")


def use_large_frame_transport() -> bool:
    """Points Fast DDS at :data:`FAST_DDS_PROFILE`; call before ``rclpy.init()``.

    Applies only with localhost discovery (``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST``; the profile
    has no network transport), the Fast DDS middleware, and no ``FASTDDS_DEFAULT_PROFILES_FILE`` (or
    the older ``FASTRTPS_...``) of the user's own. Child processes inherit it through the environment.

    Returns:
        True when the profile is (now) in use.
    """
    rmw = os.environ.get("RMW_IMPLEMENTATION", "rmw_fastrtps_cpp")
    own = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE") or os.environ.get("FASTRTPS_DEFAULT_PROFILES_FILE")
    if own:
        return own == FAST_DDS_PROFILE
    if rmw != "rmw_fastrtps_cpp" or os.environ.get("ROS_AUTOMATIC_DISCOVERY_RANGE") != "LOCALHOST":
        return False
    os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = FAST_DDS_PROFILE
    return True
