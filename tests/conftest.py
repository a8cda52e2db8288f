"""Test-session environment: headless MuJoCo, and ROS 2 discovery kept on this machine.

Every process that starts ROS 2 must use localhost discovery and its own domain id; child processes
started by tests inherit these variables.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
# A domain id of the test run's own (not the user's robot domain); derived from the pid so parallel runs differ.
os.environ["ROS_DOMAIN_ID"] = os.environ.get("JOYAI_TEST_ROS_DOMAIN_ID") or str(10 + os.getpid() % 90)
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
