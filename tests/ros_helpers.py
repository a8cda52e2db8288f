"""Helpers shared by the ROS 2 test modules (imported by name: tests/ is on sys.path under pytest)."""

from __future__ import annotations

import subprocess

import pytest


def connect_client(process: subprocess.Popen, node_name: str, timeout_s: float = 60.0):
    """A WorldModelClient once the nodes started as ``process`` answer; fails the test with their output if not."""
    from ros_nodes.clients.world_model_client import WorldModelClient

    client = WorldModelClient(node_name)
    try:
        client.wait_until_ready(timeout_s=timeout_s)
    except Exception:
        process.terminate()
        client.destroy_node()
        pytest.fail("nodes did not come up:\n" + process.communicate(timeout=10)[0][-3000:])
    return client
