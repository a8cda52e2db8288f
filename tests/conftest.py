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

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def tiny_joyai_checkpoint(tmp_path_factory):
    """A random-weight JoyAI-Image checkpoint in the real diffusers layout, written once per test session."""
    pytest.importorskip("torch")
    from joyai_embodied.backends.joyai_image import write_tiny_checkpoint

    return write_tiny_checkpoint(tmp_path_factory.mktemp("joyai") / "tiny", seed=0)


@pytest.fixture(scope="module")
def ros_context():
    """rclpy in this process, with the shared-memory transport the nodes' processes also use."""
    rclpy = pytest.importorskip("rclpy")
    from ros_nodes.fastdds_profile import use_large_frame_transport

    saved = os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE")
    use_large_frame_transport()
    rclpy.init()
    yield
    rclpy.try_shutdown()
    if saved is None:
        os.environ.pop("FASTDDS_DEFAULT_PROFILES_FILE", None)
    else:
        os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] = saved


@pytest.fixture(scope="module")
def wm():
    """The default CPU world model (modules that test another backend define their own ``wm``)."""
    from joyai_embodied import WorldModel

    model = WorldModel.load("geometric")
    yield model
    model.close()
