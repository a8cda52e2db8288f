"""``replay --jobs N``: frames observed in worker processes give the same OUT.mcap, message for message, as the
in-process path; a bad frame or a dead worker still ends in one line, exit 2, and no output file."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal

import pytest

pytest.importorskip("rosbags")
pytest.importorskip("mcap")
pytest.importorskip("gymnasium")

from joyai_embodied import WorldModel  # noqa: E402
from joyai_embodied.recording.replay import main, replay  # noqa: E402
from joyai_embodied.recording.replay_jobs import ReplayWorkerError, default_jobs  # noqa: E402
from joyai_embodied.recording.sim_bag import (CAMERA_INFO_TOPIC, DEPTH_TOPIC, POSE_TOPIC, RGB_TOPIC,  # noqa: E402
                                              SEGMENTATION_TOPIC, write_sim_episode_bag)

WIDTH, HEIGHT = 160, 120
FRAMES = 8
QUESTIONS = ["How many objects are there?", "Which object is closest to the camera?",
             "Is the red cube left of the nothing-like-it?"]  # the last one cannot be answered: error records
TOPICS = dict(rgb_topic=RGB_TOPIC, depth_topic=DEPTH_TOPIC, camera_info_topic=CAMERA_INFO_TOPIC,
              pose_topic=POSE_TOPIC, segmentation_topic=SEGMENTATION_TOPIC)
ARGS = ["--rgb-topic", RGB_TOPIC, "--depth-topic", DEPTH_TOPIC, "--camera-info-topic", CAMERA_INFO_TOPIC,
        "--pose-topic", POSE_TOPIC, "--segmentation-topic", SEGMENTATION_TOPIC, "--quiet"]


@pytest.fixture(scope="module")
def sim_bag(tmp_path_factory):
    path = tmp_path_factory.mktemp("bags") / "episode.mcap"
    write_sim_episode_bag(path, seed=3, width=WIDTH, height=HEIGHT, depth_delay_ms=4.0, max_frames=FRAMES)
    return path


def _messages(path):
    """(topic, schema, bytes) in file order, with the summary's timing and job count taken out."""
    from mcap.reader import make_reader

    with open(path, "rb") as handle:
        reader = make_reader(handle)
        messages = [(channel.topic, schema.name, message.log_time, bytes(message.data))
                    for schema, channel, message in reader.iter_messages(log_time_order=False)]
    summary = None
    for i, (topic, _, _, data) in enumerate(messages):
        if topic == "/joyai/summary":
            text = data[data.index(b"{"):data.rindex(b"}") + 1]  # the JSON inside the CDR string
            summary = {k: v for k, v in json.loads(text).items() if k not in ("seconds", "fps", "jobs")}
            messages[i] = messages[i][:3]
    return messages, summary


def test_jobs_2_writes_the_same_messages_as_jobs_1(sim_bag, tmp_path):
    outs = {}
    for jobs in (1, 2):
        outs[jobs] = tmp_path / f"out_{jobs}.mcap"
        args = [str(sim_bag), *ARGS, "--jobs", str(jobs), "--out", str(outs[jobs])]
        for question in QUESTIONS:
            args += ["--question", question]
        assert main(args) == 0
    (serial, serial_summary), (parallel, parallel_summary) = _messages(outs[1]), _messages(outs[2])
    assert len(serial) == len(parallel)
    assert serial == parallel  # same topics, order, stamps, marker and answer payloads
    assert serial_summary == parallel_summary
    assert serial_summary["frames_processed"] == FRAMES and serial_summary["answers"] == FRAMES * len(QUESTIONS)
    assert serial_summary["answer_errors"] == FRAMES  # the unanswerable question, on every frame
    topics = [m[0] for m in parallel]
    assert topics.count("/joyai/markers") == FRAMES and topics.count(RGB_TOPIC) == FRAMES


def test_default_jobs_follow_the_cores_and_the_preset():
    wm = WorldModel.load("geometric")
    assert default_jobs(wm) == (2 if (os.cpu_count() or 1) >= 2 else 1)
    assert default_jobs(WorldModel(wm.backend)) == 1  # no preset to rebuild it from: in-process


def test_jobs_2_for_a_model_without_a_preset_is_refused(sim_bag, tmp_path):
    wm = WorldModel(WorldModel.load("geometric").backend)
    with pytest.raises(Exception) as info:
        replay(sim_bag, tmp_path / "o.mcap", wm, jobs=2, **TOPICS)
    assert "--jobs" in str(info.value) and not (tmp_path / "o.mcap").exists()


def test_a_bad_frame_under_jobs_2_is_one_line_exit_2(tmp_path, capsys):
    from joyai_embodied.recording import ros_messages as msgs
    from joyai_embodied.recording.bags import McapWriter
    import numpy as np

    path = tmp_path / "bad.mcap"
    k = np.array([[100.0, 0, WIDTH / 2], [0, 100.0, HEIGHT / 2], [0, 0, 1]])
    with McapWriter(path) as writer:
        writer.write("/tf_static", msgs.transform_message(np.eye(4), 0, "world", "cam"), 0)
        for i in range(4):  # the third frame's depth has half the colour image's size
            ns = i * 50_000_000
            size = (HEIGHT // 2, WIDTH // 2) if i == 2 else (HEIGHT, WIDTH)
            writer.write(RGB_TOPIC, msgs.image(np.zeros((HEIGHT, WIDTH, 3), np.uint8), ns, "cam"), ns)
            writer.write(DEPTH_TOPIC, msgs.image(np.ones(size, np.float32), ns, "cam"), ns)
            writer.write(CAMERA_INFO_TOPIC, msgs.camera_info(k, WIDTH, HEIGHT, ns, "cam"), ns)
    out = tmp_path / "out.mcap"
    assert main([str(path), *ARGS[:6], "--jobs", "2", "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("joyai-embodied replay: ") and DEPTH_TOPIC in err, err
    assert not out.exists()


def test_a_worker_that_dies_is_named_with_its_frame_and_leaves_no_output(sim_bag, tmp_path):
    import threading
    import time

    out = tmp_path / "out.mcap"
    killed = []

    def kill_the_worker():  # as soon as it exists: it holds colour frame 0 (the first frame always goes to it)
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            for worker in multiprocessing.active_children():
                os.kill(worker.pid, signal.SIGKILL)
                killed.append(worker.pid)
            time.sleep(0.002)

    killer = threading.Thread(target=kill_the_worker)
    killer.start()
    try:
        with pytest.raises(ReplayWorkerError) as info:
            replay(sim_bag, out, WorldModel.load("geometric"), jobs=2, **TOPICS)
    finally:
        killer.join()
    assert killed and "colour frame" in str(info.value) and "\n" not in str(info.value)
    assert not out.exists()
    assert not multiprocessing.active_children()  # nothing left running


def test_ctrl_c_stops_the_parent_and_its_workers_once(sim_bag, tmp_path):
    import subprocess
    import sys
    import time

    out = tmp_path / "out.mcap"
    command = [sys.executable, "-m", "joyai_embodied.commands", "replay", str(sim_bag), *ARGS, "--jobs", "2",
               "--out", str(out)]
    # a shell's background job inherits an ignored SIGINT: the replay gets the default, as in a terminal
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, start_new_session=True,
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 60
    children: list[str] = []
    while len(children) < 2 and time.monotonic() < deadline:  # both workers started: the replay is under way
        time.sleep(0.02)
        children = subprocess.run(["ps", "--ppid", str(process.pid), "-o", "pid="], capture_output=True,
                                  text=True).stdout.split()
    assert len(children) >= 2
    os.killpg(process.pid, signal.SIGINT)  # Ctrl-C reaches the whole process group
    returncode = process.wait(timeout=60)
    err = process.stderr.read().strip()
    assert returncode != 0 and "interrupted" in err and "Traceback" not in err, err
    assert not out.exists()
    left = [pid for pid in children if os.path.exists(f"/proc/{pid}")]
    while left and time.monotonic() < deadline:  # killed workers are reaped by init after the parent exits
        time.sleep(0.1)
        left = [pid for pid in left if os.path.exists(f"/proc/{pid}")]
    assert not left, [open(f"/proc/{pid}/cmdline").read() for pid in left]  # no worker left behind
