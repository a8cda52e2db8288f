"""When ros_nodes.fastdds_profile puts multi-MB images on the 32 MiB shared-memory profile, and when it must not.

The profile has no network transport, so it may only apply with localhost discovery; a profile file of
the user's own always wins. (Its effect on latency is measured by benchmarks/ros_bench.py.)
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET

import pytest

from ros_nodes.fastdds_profile import FAST_DDS_PROFILE, use_large_frame_transport

PROFILE_VARS = ("FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE", "RMW_IMPLEMENTATION")


@pytest.fixture
def clean_env(monkeypatch):
    for name in PROFILE_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    return monkeypatch


def test_applies_with_localhost_discovery(clean_env):
    assert use_large_frame_transport() is True
    assert os.environ["FASTDDS_DEFAULT_PROFILES_FILE"] == FAST_DDS_PROFILE
    assert use_large_frame_transport() is True  # idempotent: a second call (or a child process) keeps it


@pytest.mark.parametrize("discovery", ["SUBNET", "SYSTEM_DEFAULT", "OFF"])
def test_not_applied_beyond_localhost(clean_env, discovery):
    clean_env.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", discovery)
    assert use_large_frame_transport() is False
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in os.environ


@pytest.mark.parametrize("variable", ["FASTDDS_DEFAULT_PROFILES_FILE", "FASTRTPS_DEFAULT_PROFILES_FILE"])
def test_users_own_profile_wins(clean_env, tmp_path, variable):
    own = str(tmp_path / "mine.xml")
    clean_env.setenv(variable, own)
    assert use_large_frame_transport() is False
    assert os.environ[variable] == own
    assert os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE", own) == own


def test_other_middleware_untouched(clean_env):
    clean_env.setenv("RMW_IMPLEMENTATION", "rmw_cyclonedds_cpp")
    assert use_large_frame_transport() is False
    assert "FASTDDS_DEFAULT_PROFILES_FILE" not in os.environ


def test_profile_is_shared_memory_only_with_a_segment_for_whole_frames():
    ns = {"d": "http://www.eprosima.com"}
    root = ET.parse(FAST_DDS_PROFILE).getroot()
    descriptor = root.find("d:profiles/d:transport_descriptors/d:transport_descriptor", ns)
    assert descriptor.findtext("d:type", namespaces=ns) == "SHM"
    assert int(descriptor.findtext("d:segment_size", namespaces=ns)) >= 4 * 2_765_841  # several 640x480 requests
    participant = root.find("d:profiles/d:participant", ns)
    assert participant.get("is_default_profile") == "true"
    assert participant.findtext("d:rtps/d:useBuiltinTransports", namespaces=ns) == "false"
    assert participant.findtext("d:rtps/d:userTransports/d:transport_id", namespaces=ns) == \
        descriptor.findtext("d:transport_id", namespaces=ns)
