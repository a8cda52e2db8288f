"""``joyai-embodied replay`` over simulator bags: output read back with the independent mcap reader, answers
compared with the world model run in-process on the same frames, malformed bags refused in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("rosbags")
pytest.importorskip("mcap_ros2")
pytest.importorskip("gymnasium")

from joyai_embodied import WorldModel  # noqa: E402
from joyai_embodied.recording import ros_messages as msgs  # noqa: E402
from joyai_embodied.recording.bags import McapWriter  # noqa: E402
from joyai_embodied.recording.replay import main  # noqa: E402
from joyai_embodied.recording.sim_bag import (CAMERA_INFO_TOPIC, DEPTH_TOPIC, POSE_TOPIC, RGB_TOPIC,  # noqa: E402
                                              SEGMENTATION_TOPIC, write_sim_episode_bag)

WIDTH, HEIGHT = 160, 120
FRAMES = 10
QUESTIONS = ["How many objects are there?", "Which object is closest to the camera?"]
TOPIC_ARGS = ["--rgb-topic", RGB_TOPIC, "--depth-topic", DEPTH_TOPIC, "--camera-info-topic", CAMERA_INFO_TOPIC]


@pytest.fixture(scope="module")
def sim_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("bags") / "episode.mcap"
    # depth stamped 4 ms after colour, as a real driver's skew: replay must still pair them
    summary = write_sim_episode_bag(path, seed=0, width=WIDTH, height=HEIGHT, depth_delay_ms=4.0, max_frames=FRAMES)
    assert summary["frames"] == FRAMES
    return path


def _read(path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(path, "rb") as handle:
        reader = make_reader(handle, decoder_factories=[DecoderFactory()])
        messages = [(channel.topic, schema.name, decoded)
                    for schema, channel, _, decoded in reader.iter_decoded_messages(log_time_order=True)]
        metadata = {record.name: record.metadata for record in reader.iter_metadata()}
    return messages, metadata


def _array(msg, dtype, channels=1):
    data = np.frombuffer(bytes(msg.data), dtype)
    return data.reshape(msg.height, msg.width, channels) if channels > 1 else data.reshape(msg.height, msg.width)


def test_replay_writes_input_topics_markers_answers_matching_in_process(sim_bag, tmp_path):
    out = tmp_path / "out.mcap"
    args = [str(sim_bag), *TOPIC_ARGS, "--pose-topic", POSE_TOPIC, "--segmentation-topic", SEGMENTATION_TOPIC,
            "--out", str(out), "--quiet"]
    for question in QUESTIONS:
        args += ["--question", question]
    assert main(args) == 0
    messages, metadata = _read(out)
    counts = Counter(topic for topic, _, _ in messages)
    types = {topic: schema for topic, schema, _ in messages}
    for topic in (RGB_TOPIC, DEPTH_TOPIC, SEGMENTATION_TOPIC, CAMERA_INFO_TOPIC, POSE_TOPIC, "/robot/ee_pose"):
        assert counts[topic] == FRAMES, topic  # input topics copied unchanged
    assert types["/joyai/markers"] == "visualization_msgs/msg/MarkerArray"
    assert types["/joyai/answers"] == "std_msgs/msg/String"
    assert counts["/joyai/markers"] == FRAMES
    assert counts["/joyai/answers"] == FRAMES * len(QUESTIONS)
    assert counts["/joyai/summary"] == 1
    summary = json.loads(next(d.data for t, _, d in messages if t == "/joyai/summary"))
    assert summary["frames_processed"] == FRAMES and summary["frames_skipped"] == {}
    assert json.loads(metadata["joyai_replay"]["frames_processed"]) == FRAMES

    # the same frames, decoded by the independent reader, through the world model in this process
    wm = WorldModel.load("geometric")
    frames = {name: [d for t, _, d in messages if t == topic]
              for name, topic in (("rgb", RGB_TOPIC), ("depth", DEPTH_TOPIC), ("seg", SEGMENTATION_TOPIC),
                                  ("info", CAMERA_INFO_TOPIC), ("pose", POSE_TOPIC))}
    answers = [json.loads(d.data) for t, _, d in messages if t == "/joyai/answers"]
    markers = [d for t, _, d in messages if t == "/joyai/markers"]
    for index in range(FRAMES):
        pose = frames["pose"][index].pose
        cam_to_world = np.eye(4)
        cam_to_world[:3, :3] = msgs.matrix_from_quaternion(
            [pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w])
        cam_to_world[:3, 3] = [pose.position.x, pose.position.y, pose.position.z]
        scene = wm.observe(rgb=_array(frames["rgb"][index], np.uint8, 3), depth=_array(frames["depth"][index], "<f4"),
                           segmentation=_array(frames["seg"][index], "<i4"),
                           intrinsics=np.reshape(frames["info"][index].k, (3, 3)), cam_to_world=cam_to_world)
        for question in QUESTIONS:
            record = next(a for a in answers if a["frame"] == index and a["question"] == question)
            assert record["answer"] == wm.ask(scene, question).text
        boxes = sorted(m.text for m in markers[index].markers if m.type == 9 and m.ns == "objects/labels")
        assert boxes == sorted(f"{o.name} #{o.id}" for o in scene.objects)
    assert answers[0]["value"] >= 3  # the simulator puts 3-8 objects on the table


def test_replay_sqlite3_bag_with_tf_and_every(tmp_path):
    bag = tmp_path / "episode_bag"
    write_sim_episode_bag(bag, seed=2, width=WIDTH, height=HEIGHT, max_frames=7)
    assert (bag / "metadata.yaml").is_file() and list(bag.glob("*.db3"))
    out = tmp_path / "out.mcap"
    # no --pose-topic: the camera info's frame is placed through /tf_static
    assert main([str(bag), *TOPIC_ARGS, "--segmentation-topic", SEGMENTATION_TOPIC, "--every", "3",
                 "--question", QUESTIONS[0], "--out", str(out), "--quiet"]) == 0
    messages, _ = _read(out)
    counts = Counter(topic for topic, _, _ in messages)
    assert counts[RGB_TOPIC] == 7 and counts["/joyai/markers"] == 3 and counts["/joyai/answers"] == 3
    marker = next(d for t, _, d in messages if t == "/joyai/markers").markers[1]
    assert marker.header.frame_id == "world"


def _bad_bag(path, rgb_size=(HEIGHT, WIDTH), depth_size=(HEIGHT, WIDTH), encoding="rgb8"):
    """A two-topic bag (plus camera info and /tf_static) with one defect chosen by the arguments."""
    k = np.array([[100.0, 0, WIDTH / 2], [0, 100.0, HEIGHT / 2], [0, 0, 1]])
    with McapWriter(path) as writer:
        writer.write("/tf_static", msgs.transform_message(np.eye(4), 0, "world", "cam"), 0)
        for i in range(2):
            ns = i * 50_000_000
            rgb = msgs.image(np.zeros((*rgb_size, 3), np.uint8), ns, "cam")
            rgb.encoding = encoding
            writer.write(RGB_TOPIC, rgb, ns)
            writer.write(DEPTH_TOPIC, msgs.image(np.ones(depth_size, np.float32), ns, "cam"), ns)
            writer.write(CAMERA_INFO_TOPIC, msgs.camera_info(k, WIDTH, HEIGHT, ns, "cam"), ns)
    return path


@pytest.mark.parametrize("case, topic", [
    ("missing topic", SEGMENTATION_TOPIC),
    ("mismatched size", DEPTH_TOPIC),
    ("unknown encoding", RGB_TOPIC),
    ("not a bag", "bag"),
])
def test_malformed_bag_is_one_line_exit_2(tmp_path, capsys, case, topic):
    path = tmp_path / "bad.mcap"
    if case == "not a bag":
        path.write_bytes(b"this is not an mcap file")
    else:
        _bad_bag(path, depth_size=(HEIGHT // 2, WIDTH // 2) if case == "mismatched size" else (HEIGHT, WIDTH),
                 encoding="yuv422" if case == "unknown encoding" else "rgb8")
    extra = ["--segmentation-topic", SEGMENTATION_TOPIC] if case == "missing topic" else []
    out = tmp_path / "out.mcap"
    assert main([str(path), *TOPIC_ARGS, *extra, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("joyai-embodied replay: ") and topic in err, err
    assert not out.exists()  # no half-written output


def test_replay_refuses_to_overwrite_its_input(sim_bag, capsys):
    size = sim_bag.stat().st_size
    assert main([str(sim_bag), *TOPIC_ARGS, "--pose-topic", POSE_TOPIC, "--out", str(sim_bag), "--quiet"]) == 2
    assert "--out" in capsys.readouterr().err and sim_bag.stat().st_size == size


def test_replay_as_a_process_prints_one_line_not_a_traceback(tmp_path):
    missing = tmp_path / "nothing.mcap"
    result = subprocess.run([sys.executable, "-m", "joyai_embodied.recording.replay", str(missing), *TOPIC_ARGS,
                             "--out", str(tmp_path / "o.mcap")], capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "bag" in result.stderr, result.stderr


def test_sim_bag_is_deterministic_and_succeeds(tmp_path):
    first, second = tmp_path / "a.mcap", tmp_path / "b.mcap"
    summary = write_sim_episode_bag(first, seed=4, width=64, height=48)
    write_sim_episode_bag(second, seed=4, width=64, height=48)
    assert first.read_bytes() == second.read_bytes()  # same seed, same bytes: a fixture that never drifts
    assert summary["success"] and summary["topics"][RGB_TOPIC] == summary["frames"] > 20


def test_frames_without_a_partner_are_skipped_and_counted(tmp_path, capsys):
    late = tmp_path / "late.mcap"
    # frames 20 ms apart, depth stamped 100 ms late: with 3 frames, no depth lies within 15 ms of any colour
    write_sim_episode_bag(late, seed=1, width=64, height=48, depth_delay_ms=100.0, max_frames=3)
    out = tmp_path / "out.mcap"
    assert main([str(late), *TOPIC_ARGS, "--pose-topic", POSE_TOPIC, "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "usable frame" in err and f"no {DEPTH_TOPIC} within 15 ms" in err and "\n" not in err
    # a wider window pairs them all
    assert main([str(late), *TOPIC_ARGS, "--pose-topic", POSE_TOPIC, "--max-skew-ms", "120", "--out", str(out),
                 "--quiet"]) == 0
    messages, _ = _read(out)
    assert Counter(t for t, _, _ in messages)["/joyai/markers"] == 3
