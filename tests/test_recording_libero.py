"""LIBERO episodes recorded (``eval --libero --record``) and reported (``demo --libero``); the recording wrapper
and the background writer (a child process).

Read back with the Rerun SDK and the independent ``mcap`` reader. The LIBERO tests need the ``libero`` extra
(skipped without it): one episode each, about half a minute per test on two cores.
"""

from __future__ import annotations

import json
import multiprocessing
from collections import Counter

import numpy as np
import pytest

pytest.importorskip("rerun")
pytest.importorskip("mcap_ros2")
gym = pytest.importorskip("gymnasium")

import sim_envs  # noqa: E402  (registers the envs)
from joyai_embodied import CameraMove, InvalidInputError, MoveObject  # noqa: E402
from joyai_embodied.recording import RecordingWorldModel, open_recorder  # noqa: E402
from joyai_embodied.recording.base import QUEUE_SIZE, RecordingError, ee_pose  # noqa: E402


def _read_mcap(path):
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(path, "rb") as handle:
        reader = make_reader(handle, decoder_factories=[DecoderFactory()])
        return [(channel.topic, schema.name, message.log_time, decoded)
                for schema, channel, message, decoded in reader.iter_decoded_messages()]


def _libero():
    return pytest.importorskip("libero.libero", reason="needs the libero extra")


# -- the background writer ---------------------------------------------------------------------------------
def test_background_writer_loses_nothing_and_keeps_order_and_stamps(tmp_path):
    count = 3 * QUEUE_SIZE  # more than the queue holds: the caller waits, nothing is dropped
    paths = {}
    for background in (False, True):
        paths[background] = tmp_path / f"bg_{background}.mcap"
        with open_recorder(paths[background], background=background) as recorder:
            for i in range(count):
                recorder.set_time(i, 1_000 + i)
                recorder.log_text(f"line {i}")
                recorder.log_pose("end effector", np.eye(4) + _shift(i))
    written = {b: [(t, stamp, getattr(m, "data", None)) for t, _, stamp, m in _read_mcap(p)] for b, p in paths.items()}
    assert written[True] == written[False]
    texts = [(stamp, data) for topic, stamp, data in written[True] if topic == "/joyai/log/query"]
    assert texts == [(1_000 + i, f"line {i}") for i in range(count)]


def _shift(i: int) -> np.ndarray:
    shift = np.zeros((4, 4))
    shift[0, 3] = 0.01 * i
    return shift


def test_background_write_error_is_raised_by_close_in_one_line_naming_the_file(tmp_path):
    recorder = open_recorder(tmp_path / "err.mcap", background=True)
    recorder.set_time(0)
    recorder.log_text("fine")
    recorder._submit(recorder._log_pose, "broken", np.zeros((2, 2)))  # passes no validation: fails in the child
    with pytest.raises(RecordingError, match=r"recording .*err\.mcap: IndexError") as raised:
        recorder.close()
    assert "\n" not in str(raised.value)
    assert not multiprocessing.active_children()  # the writer process has ended
    assert [m.data for t, _, _, m in _read_mcap(tmp_path / "err.mcap") if t == "/joyai/log/query"] == ["fine"]


def test_background_write_error_is_raised_by_the_next_call_after_flush(tmp_path):
    recorder = open_recorder(tmp_path / "next.rrd", background=True)
    recorder._submit(recorder._log_pose, "broken", np.zeros((2, 2)))
    with pytest.raises(RecordingError, match=r"next\.rrd"):
        recorder.flush()
    recorder.log_text("raised once: the recorder goes on")
    recorder.close()


def test_a_writer_process_that_dies_is_reported_not_waited_on(tmp_path):
    recorder = open_recorder(tmp_path / "dead.mcap", background=True)
    recorder.log_text("first")
    recorder.flush()
    recorder.writer.process.kill()
    recorder.writer.process.join(10)
    with pytest.raises(RecordingError, match=r"dead\.mcap: the writer process died"):
        for _ in range(3 * QUEUE_SIZE):  # the pipe's buffer may take a few before the loss shows
            recorder.log_text("after")
    with pytest.raises(RecordingError, match="died"):
        recorder.close()
    assert not multiprocessing.active_children()


def test_close_without_waiting_then_waiting_gives_the_whole_file(tmp_path):
    path = tmp_path / "later.mcap"
    recorder = open_recorder(path, background=True)
    for i in range(50):
        recorder.set_time(i)
        recorder.log_text(f"line {i}")
    recorder.close(wait=False)  # returns at once; the writer process finishes meanwhile
    with pytest.raises(InvalidInputError, match="closed"):
        recorder.log_text("too late")
    recorder.close()
    assert [m.data for t, _, _, m in _read_mcap(path)] == [f"line {i}" for i in range(50)]
    assert not multiprocessing.active_children()


def test_logged_arrays_are_taken_at_the_call(tmp_path):
    """The caller may reuse its buffers at once: what is written is what was given at the call."""
    path = tmp_path / "reuse.mcap"
    pose = np.eye(4)
    with open_recorder(path, background=True) as recorder:
        for i in range(5):
            pose[0, 3] = i
            recorder.set_time(i)
            recorder.log_pose("ee", pose)
    written = [m.pose.position.x for t, _, _, m in _read_mcap(path) if t == "/joyai/poses/ee"]
    assert written == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_background_recorder_left_open_is_written_at_exit(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "open.mcap"
    script = (f"from joyai_embodied.recording import open_recorder\n"
              f"r = open_recorder({str(path)!r}, background=True)\n"
              f"for i in range(100):\n    r.set_time(i); r.log_text(f'line {{i}}')\n")
    subprocess.run([sys.executable, "-c", script], check=True, timeout=120)
    assert [m.data for t, _, _, m in _read_mcap(path)] == [f"line {i}" for i in range(100)]


@pytest.mark.parametrize("suffix, signal_name", [(".mcap", "SIGINT"), (".rrd", "SIGINT"), (".mcap", "SIGTERM")])
def test_a_signal_to_a_recording_demo_stops_every_process_and_leaves_a_readable_file(tmp_path, suffix, signal_name):
    """SIGINT to the process group (a Ctrl-C): the demo says 'interrupted', its writer process finishes what was
    queued and ends, the file reads back, and no process of the group is left. SIGTERM kills the demo at once
    (no clean-up runs there): the writer still finishes what it received and closes the file."""
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    record = tmp_path / f"demo{suffix}"
    command = [sys.executable, "-m", "joyai_embodied.commands", "demo", "--episodes", "40", "--width", "64",
               "--height", "48", "--out", str(tmp_path / "demo"), "--record", str(record)]
    process = subprocess.Popen(command, cwd=Path(__file__).parents[1], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, start_new_session=True,
                               env={**os.environ, "MUJOCO_GL": "egl"})
    try:
        lines = [process.stdout.readline() for _ in range(3)]  # episode 1 opens the recorder, 2 and 3 log to it
        assert all(lines), process.stderr.read()[-2000:]
        children = _live_children(process.pid)  # the writer process (in a session of its own) and the like
        assert children
        os.killpg(process.pid, getattr(signal, signal_name))
        _, err = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    if signal_name == "SIGINT":
        assert process.returncode == 130 and err.strip().endswith("demo: interrupted"), err[-2000:]
    else:
        assert process.returncode == -signal.SIGTERM
    deadline = time.monotonic() + 30
    while (_live_processes_of_group(process.pid) or _still_live(children)) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _live_processes_of_group(process.pid) == [] and _still_live(children) == []
    if suffix == ".mcap":
        counts = Counter(topic for topic, _, _, _ in _read_mcap(record))
        assert counts["/joyai/log/instruction"] >= 2 and counts["/joyai/observer/rgb"] >= 2
    else:
        import rerun.chunk

        entities = set(rerun.chunk.RrdReader(record).store().schema().entity_paths())
        assert {"/log/instruction", "/world/observer/rgb", "/world/objects"} <= entities


def _live_processes(field: int, value: int) -> list[int]:
    """Processes (not zombies) whose /proc stat field ``field`` (1: parent id, 2: process group) is ``value``."""
    import os

    live = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[0] != "Z" and int(fields[field]) == value:
            live.append(int(entry))
    return live


def _live_processes_of_group(group: int) -> list[int]:
    return _live_processes(2, group)


def _live_children(parent: int) -> list[int]:
    return _live_processes(1, parent)


def _still_live(pids: list[int]) -> list[int]:
    live = []
    for pid in pids:
        try:
            state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            live.append(pid)
    return live


def test_ee_pose_reads_libero_robot_state_orientation():
    quarter_turn_z = [0.1, 0.2, 0.3, 0.0, 0.0, np.sqrt(0.5), np.sqrt(0.5), 0.04, -0.04]  # x y z, qx qy qz qw, fingers
    pose = ee_pose(np.array(quarter_turn_z, np.float32))
    np.testing.assert_allclose(pose[:3, 3], [0.1, 0.2, 0.3], atol=1e-6)
    np.testing.assert_allclose(pose[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-6)
    np.testing.assert_allclose(ee_pose([0.1, 0.2, 0.3])[:3, :3], np.eye(3))


# -- the recording world model (tabletop: fast) ------------------------------------------------------------
def test_recording_world_model_forwards_calls_and_logs_each(tmp_path, wm):
    env = gym.make(sim_envs.ENV_ID, width=160, height=120)
    obs, _ = env.reset(seed=3)
    env.close()
    path = tmp_path / "calls.mcap"
    recorder = open_recorder(path, background=True)
    recording = RecordingWorldModel(wm, recorder, keep_frames=True, imagine_edits=True)
    recording.start_episode("an instruction")
    scene = recording.observe(obs)
    direct = wm.observe(obs)
    assert [o.name for o in scene.objects] == [o.name for o in direct.objects]
    a, b = scene.objects[0], scene.objects[1]
    assert recording.relation(scene, a, b.id) == wm.relation(direct, a.name, b.name)
    assert recording.ask(scene, "How many objects are there?").text == wm.ask(direct, "How many objects are there?").text
    moved = recording.edit(scene, MoveObject(a.name, to=[float(a.centroid[0]) + 0.05, float(a.centroid[1]), a.bottom_z]))
    recording.imagine(scene, CameraMove(yaw_deg=20))
    trace = recording.end_episode("done", final_observation=obs)
    recorder.close()

    assert [q["kind"] for q in trace.queries] == ["relation", "ask", "edit"]
    assert trace.queries[0]["question"] == f"where is {a.name} relative to {b.name}?"
    assert trace.first_observation is obs and trace.final_observation is obs
    assert trace.edits[0].after is moved and trace.edits[0].view is not None
    counts = Counter(topic for topic, _, _, _ in _read_mcap(path))
    assert counts["/joyai/observer/rgb"] == 2  # the observation and the final frame
    assert counts["/joyai/log/query"] == 3 and counts["/joyai/log/instruction"] == counts["/joyai/log/status"] == 1
    assert counts["/joyai/markers/edits/predicted/after"] == 1
    assert counts["/joyai/imagined/predicted_outcome/rgb"] == 1 and counts["/joyai/imagined/yaw_20_pitch_0/rgb"] == 1


# -- LIBERO ----------------------------------------------------------------------------------------------------
def test_libero_eval_records_an_episode_to_mcap(tmp_path, capsys):
    _libero()
    from joyai_embodied.commands import main

    path = tmp_path / "libero.mcap"
    main(["eval", "--libero", "libero_spatial", "--tasks", "0", "--init-states", "0", "--out", str(tmp_path),
          "--record", str(path)])
    capsys.readouterr()
    report = json.loads((tmp_path / "libero_libero_spatial.json").read_text())
    episode = report["episodes"][0]
    messages = _read_mcap(path)
    types = {topic: schema for topic, schema, _, _ in messages}
    counts = Counter(topic for topic, _, _, _ in messages)
    assert types["/joyai/observer/rgb"] == "sensor_msgs/msg/Image"
    assert types["/joyai/observer/depth"] == types["/joyai/observer/segmentation"] == "sensor_msgs/msg/Image"
    assert types["/joyai/observer/camera_info"] == "sensor_msgs/msg/CameraInfo"
    assert types["/joyai/cloud"] == "sensor_msgs/msg/PointCloud2"
    assert types["/joyai/markers/objects"] == types["/joyai/markers/cameras/observer"] == "visualization_msgs/msg/MarkerArray"
    assert types["/joyai/poses/end_effector"] == "geometry_msgs/msg/PoseStamped"
    assert types["/joyai/log/query"] == "std_msgs/msg/String"
    observed = counts["/joyai/markers/objects"]  # one scene per observe call
    assert observed >= 2  # planned on, then looked again to verify the lift
    assert counts["/joyai/observer/rgb"] == counts["/joyai/cloud"] == observed + 1  # + the final frame
    assert counts["/joyai/poses/end_effector"] == observed + 1  # LIBERO's robot_state is in every observation
    assert counts["/joyai/markers/cameras/observer"] == 1  # a still camera's frustum is drawn once
    by_topic: dict[str, list] = {}
    for topic, _, _, decoded in messages:
        by_topic.setdefault(topic, []).append(decoded)
    rgb = by_topic["/joyai/observer/rgb"][0]
    assert (rgb.width, rgb.height, rgb.encoding) == (256, 256, "rgb8")
    labels = {m.text for m in by_topic["/joyai/markers/objects"][0].markers if m.type == 9}
    assert {"black bowl 1 #", "plate #"} <= {text.split("#")[0] + "#" for text in labels}
    queries = [m.data for m in by_topic["/joyai/log/query"]]
    assert any(q.startswith("[relation] where is black bowl") for q in queries)
    assert any(q.startswith("[edit] move ") for q in queries)
    assert by_topic["/joyai/log/instruction"][0].data.endswith(episode["instruction"])
    assert ("success" if episode["success"] else "failure") in by_topic["/joyai/log/status"][0].data


def test_libero_demo_writes_the_report_and_an_rrd(tmp_path, capsys):
    _libero()
    import rerun.chunk

    from joyai_embodied.commands import main

    out, path = tmp_path / "demo", tmp_path / "libero.rrd"
    assert main(["demo", "--libero", "libero_spatial", "--tasks", "0", "--init-states", "0", "--out", str(out),
                 "--record", str(path)]) == 0
    printed = capsys.readouterr().out
    assert "report.html" in printed and "recording:" in printed
    entities = set(rerun.chunk.RrdReader(path).store().schema().entity_paths())
    for entity in ("/world/observer/rgb", "/world/observer/depth", "/world/cloud", "/world/objects",
                   "/world/observer", "/world/edits/predicted/after", "/world/imagined/predicted_outcome/rgb",
                   "/world/poses/end_effector", "/log/query", "/log/instruction", "/log/status"):
        assert entity in entities, entity
    report = json.loads((out / "report.json").read_text())
    detail = report["episodes_detail"][0]
    assert detail["task_id"] == 0 and detail["queries"] and detail["edits"]
    for key in ("observation", "imagined", "final"):
        assert (out / detail["images"][key]).stat().st_size > 1000, key
    page = (out / "report.html").read_text()
    assert detail["images"]["observation"] in page and "LIBERO's check" in page
    assert detail["instruction"] in page and detail["queries"][0]["question"] in page
    # the chosen object is outlined in the observation (yellow pixels the rendered frame does not have)
    from PIL import Image

    pixels = np.asarray(Image.open(out / detail["images"]["observation"]))
    assert (np.all(pixels == (255, 221, 0), axis=-1)).sum() > 20


@pytest.mark.parametrize("args", [["--libero", "libero_nope"], ["--libero", "libero_spatial", "--tasks", "12"],
                                  ["--libero", "libero_spatial", "--init-states", "x-y"]])
def test_libero_demo_bad_suite_or_task_is_one_line_exit_2(tmp_path, capsys, args):
    _libero()
    from joyai_embodied.commands import main

    assert main(["demo", *args, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("joyai-embodied demo:") and "\n" not in err
