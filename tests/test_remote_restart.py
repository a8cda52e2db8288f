"""A model server process killed mid-request: the client gets a clear error, and works after a restart."""

import os
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from joyai_embodied import MoveObject, RequestTimeoutError, WorldModel
from joyai_embodied.evaluation.synthetic import default_boxes, front_camera
from joyai_embodied.evaluation.synthetic import observe as synthetic_observe
from joyai_embodied.errors import SceneExpiredError

pytestmark = pytest.mark.timeout(90)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(address: str) -> subprocess.Popen:
    """`joyai-embodied serve-model` in its own process; returns once it is serving."""
    process = subprocess.Popen(
        [sys.executable, "-m", "joyai_embodied.cli", "serve-model", "--preset", "geometric", "--bind", address],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    seen = []
    for line in process.stdout:  # "serving ... on ADDRESS" once ready; library warnings may come first
        seen.append(line)
        if line.startswith("serving"):
            return process
    process.kill()
    pytest.fail("server did not start:\n" + "".join(seen))


def test_server_killed_mid_request_then_restarted(tmp_path):
    address = f"tcp://127.0.0.1:{free_port()}"
    obs = synthetic_observe(front_camera(160, 120), default_boxes())
    server = start_server(address)
    remote = WorldModel.load("remote", address=address, timeout_s=1.5, retries=0)
    try:
        scene = remote.observe(obs)
        expected = remote.relation(scene, "red cube", "blue box")

        # Freeze the server so the request is certainly in flight, then kill it before it can answer.
        os.kill(server.pid, signal.SIGSTOP)
        outcome = {}

        def ask_relation():
            try:
                remote.relation(scene, "red cube", "blue box")
            except Exception as exc:  # recorded for the assertion below
                outcome["error"] = exc

        caller = threading.Thread(target=ask_relation)
        caller.start()
        time.sleep(0.3)
        server.kill()
        server.wait(10)
        caller.join(10)
        error = outcome.get("error")
        assert isinstance(error, RequestTimeoutError), error
        assert address in str(error) and "serve-model" in str(error)

        server = start_server(address)
        # Same client object, no reconnect call: the old scene is gone with the old process...
        with pytest.raises(SceneExpiredError, match="observe"):
            remote.relation(scene, "red cube", "blue box")
        # ...and observing again works as before.
        assert remote.relation(remote.observe(obs), "red cube", "blue box") == expected
    finally:
        remote.close()
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()


def test_an_edit_retried_after_a_timeout_is_applied_once():
    address = f"tcp://127.0.0.1:{free_port()}"
    obs = synthetic_observe(front_camera(160, 120), default_boxes())
    server = start_server(address)
    remote = WorldModel.load("remote", address=address, timeout_s=1.0, retries=3)
    try:
        scene = remote.observe(obs)
        # A stalled server: the first attempt times out, the client retries with the same request id.
        os.kill(server.pid, signal.SIGSTOP)
        resume = threading.Timer(1.5, os.kill, args=(server.pid, signal.SIGCONT))
        resume.start()
        edited = remote.edit(scene, MoveObject("red cube", [0.15, 0.12, 0.40]))
        resume.join()
        assert remote.relation(edited, "red cube", "blue box").distance_m > 0
        info = remote.info()["server"]
        assert info["scenes"] == 2  # the observed scene and exactly one edited scene
    finally:
        remote.close()
        os.kill(server.pid, signal.SIGCONT)
        server.terminate()
        server.wait(10)
