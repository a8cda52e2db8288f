"""Rerun and MCAP recordings of world-model runs, read back with the Rerun SDK and the independent mcap reader."""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("rerun")
pytest.importorskip("mcap_ros2")
gym = pytest.importorskip("gymnasium")

import sim_envs  # noqa: E402  (registers the env)
from joyai_embodied import CameraMove, WorldModel  # noqa: E402
from joyai_embodied.errors import InvalidInputError  # noqa: E402
from joyai_embodied.recording import add_record_argument, lift_point_cloud, open_recorder  # noqa: E402
from joyai_embodied.recording import ros_messages as msgs  # noqa: E402
from joyai_embodied.types import Observation  # noqa: E402

WIDTH, HEIGHT = 160, 120


@pytest.fixture(scope="module")
def world():
    env = gym.make(sim_envs.ENV_ID, width=WIDTH, height=HEIGHT)
    obs, info = env.reset(seed=3)
    env.close()
    wm = WorldModel.load("geometric")
    scene = wm.observe(obs)
    view = wm.imagine(scene, CameraMove(yaw_deg=30, pitch_deg=-10))
    return obs, scene, view


def _record(path, world):
    obs, scene, view = world
    with open_recorder(path) as recorder:
        recorder.set_time(0, 1_000_000_000)
        recorder.log_observation(obs)
        recorder.log_scene(scene, imagined=[("yaw 30", view)])
        moved = [scene.objects[0]]
        recorder.log_edit("move", moved, moved)
        recorder.log_text("Is the red cylinder left of the blue cylinder? -> no")
        recorder.set_time(1, 1_050_000_000)
        recorder.log_pose("end effector", np.eye(4))


def _read_mcap(path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(path, "rb") as handle:
        reader = make_reader(handle, decoder_factories=[DecoderFactory()])
        return [(channel.topic, schema.name, message.log_time, decoded)
                for schema, channel, message, decoded in reader.iter_decoded_messages()]


def test_rrd_recording_loads_back_with_its_entities(tmp_path, world):
    import rerun.chunk

    path = tmp_path / "run.rrd"
    _record(path, world)
    store = rerun.chunk.RrdReader(path).store()
    entities = set(store.schema().entity_paths())
    for entity in ("/world/observer", "/world/observer/rgb", "/world/observer/depth", "/world/observer/segmentation",
                   "/world/cloud", "/world/objects", "/world/imagined/yaw_30", "/world/imagined/yaw_30/rgb",
                   "/world/edits/move/before", "/world/edits/move/after", "/world/poses/end_effector", "/log/query"):
        assert entity in entities, entity
    labels = []
    for chunk in store.stream():
        if chunk.entity_path == "/world/objects":
            batch = chunk.to_record_batch()
            column = next(name for name in batch.schema.names if name.endswith("Boxes3D:labels"))
            labels += [label for row in batch.column(column).to_pylist() if row for label in row]
    _, scene, _ = world
    assert sorted(labels) == sorted(f"{o.name} #{o.id}" for o in scene.objects)
    # the viewer's own loader (the `rerun` executable the SDK installs) accepts the file
    viewer = Path(sys.executable).with_name("rerun")
    if viewer.exists():
        result = subprocess.run([str(viewer), "rrd", "verify", str(path)], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr


def test_mcap_recording_has_ros2_typed_messages(tmp_path, world):
    obs, scene, view = world
    path = tmp_path / "run.mcap"
    _record(path, world)
    messages = _read_mcap(path)
    types = {topic: schema for topic, schema, _, _ in messages}
    assert types["/joyai/observer/rgb"] == "sensor_msgs/msg/Image"
    assert types["/joyai/observer/camera_info"] == "sensor_msgs/msg/CameraInfo"
    assert types["/joyai/cloud"] == "sensor_msgs/msg/PointCloud2"
    assert types["/joyai/markers/objects"] == "visualization_msgs/msg/MarkerArray"
    assert types["/joyai/observer/pose"] == "geometry_msgs/msg/PoseStamped"
    assert types["/joyai/imagined/yaw_30/pose"] == "geometry_msgs/msg/PoseStamped"
    assert types["/joyai/log/query"] == "std_msgs/msg/String"
    by_topic = {topic: decoded for topic, _, _, decoded in messages}

    rgb = by_topic["/joyai/observer/rgb"]
    assert rgb.encoding == "rgb8"
    np.testing.assert_array_equal(np.frombuffer(bytes(rgb.data), np.uint8).reshape(HEIGHT, WIDTH, 3), obs["rgb"])
    depth = by_topic["/joyai/observer/depth"]
    assert depth.encoding == "32FC1"
    np.testing.assert_array_equal(np.frombuffer(bytes(depth.data), "<f4").reshape(HEIGHT, WIDTH), obs["depth"])
    info = by_topic["/joyai/observer/camera_info"]
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), obs["intrinsics"])

    cloud = by_topic["/joyai/cloud"]
    points, _ = lift_point_cloud(Observation.from_dict(obs))
    assert cloud.width == len(points) > 100 and cloud.point_step == 16
    xyz = np.frombuffer(bytes(cloud.data), np.float32).reshape(-1, 4)[:, :3]
    np.testing.assert_allclose(xyz, points, atol=1e-6)

    markers = by_topic["/joyai/markers/objects"].markers
    assert markers[0].action == 3  # DELETEALL first, so a viewer drops the previous step's boxes
    cubes = [m for m in markers if m.type == 1]
    texts = sorted(m.text for m in markers if m.type == 9)
    assert len(cubes) == len(scene.objects)
    assert texts == sorted(f"{o.name} #{o.id}" for o in scene.objects)
    for cube, obj in zip(cubes, scene.objects):
        assert (cube.pose.position.x, cube.pose.position.y, cube.pose.position.z) == pytest.approx(tuple(obj.centroid))

    pose = by_topic["/joyai/imagined/yaw_30/pose"].pose
    np.testing.assert_allclose([pose.position.x, pose.position.y, pose.position.z], view.cam_to_world[:3, 3])
    stamps = {topic: t for topic, _, t, _ in messages}
    assert stamps["/joyai/observer/rgb"] == 1_000_000_000 and stamps["/joyai/poses/end_effector"] == 1_050_000_000


def test_planner_episode_records_queries_views_and_edit(tmp_path):
    from joyai_embodied.planner import Planner

    env = gym.make(sim_envs.ENV_ID, width=WIDTH, height=HEIGHT, action_mode="primitive")
    try:
        episode = Planner(WorldModel.load("geometric")).run_episode(env, seed=1)
    finally:
        env.close()
    assert episode.plan.ok
    path = tmp_path / "episode.mcap"
    with open_recorder(path) as recorder:
        next_step = recorder.log_episode(episode)
    assert next_step == 2
    counts = Counter(topic for topic, _, _, _ in _read_mcap(path))
    asked = len(episode.plan.queries) + (episode.verification.query is not None)
    assert counts["/joyai/log/query"] == asked
    assert counts["/joyai/observer/rgb"] == 2  # before and after acting
    assert counts["/joyai/markers/edits/predicted/after"] == 1
    for record in episode.plan.imagined:
        assert any(topic.startswith("/joyai/imagined/") and topic.endswith("/rgb") for topic in counts), record.label

    rrd = tmp_path / "episode.rrd"
    with open_recorder(rrd) as recorder:
        recorder.log_episode(episode)
    import rerun.chunk

    entities = set(rerun.chunk.RrdReader(rrd).store().schema().entity_paths())
    assert {"/world/objects", "/world/edits/predicted/after", "/log/query", "/log/instruction"} <= entities


def test_record_path_must_be_rrd_or_mcap(tmp_path):
    with pytest.raises(InvalidInputError) as caught:
        open_recorder(tmp_path / "run.txt")
    assert caught.value.field == "record"
    parser = argparse.ArgumentParser()
    add_record_argument(parser)
    assert parser.parse_args(["--record", "x.rrd"]).record == "x.rrd"
    assert parser.parse_args([]).record is None
    with pytest.raises(SystemExit):
        parser.parse_args(["--record", "x.bag"])


def test_scene_markers_round_trip_through_cdr(world):
    _, scene, view = world
    array = msgs.scene_markers(scene, 5, "world", imagined_cameras=[("yaw 30", view)])
    decoded = msgs.TYPESTORE.deserialize_cdr(msgs.TYPESTORE.serialize_cdr(array, msgs.MARKER_ARRAY), msgs.MARKER_ARRAY)
    ids = [(m.ns, m.id) for m in decoded.markers[1:]]
    assert len(ids) == len(set(ids)), "marker (ns, id) pairs must be unique or RViz overwrites them"
    frusta = [m for m in decoded.markers if m.type == 5]
    assert len(frusta) == 2 and all(len(m.points) == 16 for m in frusta)
    assert sum(m.type == 1 for m in decoded.markers) == len(scene.objects)


def test_quaternion_round_trip_and_image_decoding():
    rng = np.random.default_rng(0)
    for _ in range(20):
        q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
        q *= np.sign(np.linalg.det(q))
        np.testing.assert_allclose(msgs.matrix_from_quaternion(msgs.quaternion_from_matrix(q)), q, atol=1e-9)
    bgr = rng.integers(0, 255, (4, 5, 3), dtype=np.uint8)
    msg = msgs.image(bgr, 0, "cam", encoding="bgr8")
    np.testing.assert_array_equal(msgs.image_to_array(msg, "/t"), bgr[..., ::-1])
    mm = np.full((4, 5), 1500, np.uint16)
    np.testing.assert_allclose(msgs.image_to_array(msgs.image(mm, 0, "cam", encoding="16UC1"), "/d"), 1.5)
    msg.encoding = "yuv422"
    with pytest.raises(InvalidInputError) as caught:
        msgs.image_to_array(msg, "/t")
    assert caught.value.field == "/t"


def test_rollout_frames_and_scene_edits_are_recorded(tmp_path, world):
    from joyai_embodied import MoveObject
    from joyai_embodied.rollout import WorldModelEnv

    obs, scene, _ = world
    wm = WorldModel.load("geometric")
    env = WorldModelEnv(wm, obs)
    frame, _ = env.reset(seed=0)
    moved = scene.objects[0]
    target = [float(moved.centroid[0]) + 0.05, float(moved.centroid[1]), moved.bottom_z]
    path = tmp_path / "rollout.mcap"
    with open_recorder(path) as recorder:
        before = env.scene
        frame, _, _, _, info = env.step(env.move_action(moved.name, target))
        assert "action_error" not in info
        recorder.log_imagined("rollout", frame)  # a WorldModelEnv observation, not an ImaginedView
        recorder.log_scene_edit("move", before, env.scene)
    by_topic = {}
    for topic, _, _, decoded in _read_mcap(path):
        by_topic.setdefault(topic, decoded)
    before_boxes = [m for m in by_topic["/joyai/markers/edits/move/before"].markers if m.type == 1]
    after_boxes = [m for m in by_topic["/joyai/markers/edits/move/after"].markers if m.type == 1]
    assert len(before_boxes) == len(after_boxes) == 1  # only the moved object
    assert after_boxes[0].pose.position.x - before_boxes[0].pose.position.x == pytest.approx(0.05, abs=0.01)
    assert by_topic["/joyai/imagined/rollout/rgb"].width == WIDTH


def test_replay_is_a_joyai_embodied_subcommand(tmp_path, capsys):
    from joyai_embodied.commands import main

    assert main(["replay", str(tmp_path / "missing.mcap"), "--rgb-topic", "/a", "--depth-topic", "/b",
                 "--camera-info-topic", "/c", "--out", str(tmp_path / "o.mcap")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("joyai-embodied replay: bag") and "\n" not in err


def test_demo_record_and_sim_episode_bag_from_the_command_line(tmp_path, capsys):
    from joyai_embodied.commands import main

    record = tmp_path / "demo.mcap"
    assert main(["demo", "--episodes", "1", "--width", "96", "--height", "72", "--out", str(tmp_path / "demo"),
                 "--record", str(record)]) == 0
    counts = Counter(topic for topic, _, _, _ in _read_mcap(record))
    assert counts["/joyai/log/instruction"] == 1 and counts["/joyai/markers/objects"] >= 1
    bag = tmp_path / "episode.mcap"
    assert main(["sim-episode", "--seed", "2", "--width", "64", "--height", "48", "--bag", str(bag)]) == 0
    assert Counter(topic for topic, _, _, _ in _read_mcap(bag))["/camera/color/image_raw"] > 20
    capsys.readouterr()
