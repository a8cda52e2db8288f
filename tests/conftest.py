"""Test-session environment: headless MuJoCo, and ROS 2 discovery kept on this machine.

Every process that starts ROS 2 must use localhost discovery and its own domain id; child processes
started by tests inherit these variables.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
# A domain id of our own (0-101 are valid with Fast DDS defaults); derived from the pid so parallel runs differ.
os.environ.setdefault("ROS_DOMAIN_ID", str(10 + os.getpid() % 90))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
