"""Nodes started on demand in a child process (`joyai-embodied ros ...`), and stopping them again.

Used by :class:`~ros_nodes.clients.ros_backend.RosBackend` and :class:`~ros_nodes.clients.sim_client.RosSimEnv`, which
start the nodes themselves when none answer, and by the tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any, Sequence


def start_node(module: str, ros_arguments: Sequence[str] = (), **popen_options: Any) -> subprocess.Popen:
    """Starts ``python -m <module> --ros-args ROS_ARGUMENTS`` (a standalone node) with this Python."""
    command = [sys.executable, "-m", module, "--ros-args", *ros_arguments]
    return subprocess.Popen(command, env=dict(os.environ), **popen_options)


def start_launcher(arguments: Sequence[str], **popen_options: Any) -> subprocess.Popen:
    """Starts ``joyai-embodied ros ARGUMENTS`` with this Python, inheriting the ROS environment.

    The child inherits ``ROS_DOMAIN_ID`` and ``ROS_AUTOMATIC_DISCOVERY_RANGE``, so it stays in the
    caller's domain and, by default, on localhost.
    """
    command = [sys.executable, "-m", "joyai_embodied.cli", "ros", *arguments]
    return subprocess.Popen(command, env=dict(os.environ), **popen_options)


class ProcessHangError(RuntimeError):
    """A child process did not exit within its time after SIGTERM (it was then killed)."""


def stop_process(process: subprocess.Popen | None, timeout_s: float = 5.0) -> int | None:
    """Asks ``process`` to stop with one SIGTERM and waits for it.

    The launcher and the nodes end within 2 s of a SIGTERM (``nodes/runtime.py``); a process that takes
    longer is a bug, so it is reported rather than hidden: it is killed and :class:`ProcessHangError` raised.

    Returns:
        The exit code (None when there was no process); a process that had already exited is left alone.

    Raises:
        ProcessHangError: still running ``timeout_s`` after the SIGTERM (killed since).
    """
    if process is None:
        return None
    if process.poll() is not None:
        return process.returncode
    process.terminate()
    try:
        return process.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise ProcessHangError(f"{process.args[:4]}... did not exit within {timeout_s} s of SIGTERM; "
                               "killed it") from None


def close_client(node: Any, process: subprocess.Popen | None, owns_context: bool) -> None:
    """Destroys a client ``node``, stops the nodes it started, and shuts rclpy down if it initialised it."""
    import rclpy

    node.destroy_node()
    try:
        stop_process(process)
    finally:
        if owns_context:
            rclpy.try_shutdown()
