"""Nodes started on demand in a child process (`joyai-embodied ros ...`), and stopping them again.

Used by :class:`~ros_nodes.ros_backend.RosBackend` and :class:`~ros_nodes.sim_client.RosSimEnv`, which
start the nodes themselves when none answer, and by the tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Sequence


def start_launcher(arguments: Sequence[str], **popen_options: Any) -> subprocess.Popen:
    """Starts ``joyai-embodied ros ARGUMENTS`` with this Python, inheriting the ROS environment.

    The child inherits ``ROS_DOMAIN_ID`` and ``ROS_AUTOMATIC_DISCOVERY_RANGE``, so it stays in the
    caller's domain and, by default, on localhost.
    """
    command = [sys.executable, "-m", "joyai_embodied.cli", "ros", *arguments]
    return subprocess.Popen(command, env=dict(os.environ), **popen_options)


def stop_process(process: subprocess.Popen | None, timeout_s: float = 10.0) -> None:
    """Asks ``process`` to stop (SIGTERM: the launcher shuts its nodes down cleanly), kills it if it hangs."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout_s)


def close_client(node: Any, process: subprocess.Popen | None, owns_context: bool) -> None:
    """Destroys a client ``node``, stops the nodes it started, and shuts rclpy down if it initialised it."""
    import rclpy

    node.destroy_node()
    stop_process(process)
    if owns_context:
        rclpy.try_shutdown()
