"""Faults on the ROS side: signals with requests in flight, standalone nodes, bad launcher options.

Issue 12 item 1: one SIGTERM or SIGINT ends ``joyai-embodied ros`` (and a standalone node) within 2 s with exit
code 0, with requests in flight or not, without an RCLError traceback; every request in flight is answered or
refused (the client sees a clear error quickly, never its timeout). The race this guards against hit 1 run in 7,
so the launcher is stopped :data:`RUNS` times, alternating the two signals. Loopback only (tests/conftest.py).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("joyai_interfaces")
pytest.importorskip("gymnasium")

from ros_nodes.child_process import start_launcher, start_node  # noqa: E402

#: Launcher runs stopped by a signal with requests in flight: misses a 1-in-7 race with probability (6/7)^14 ~ 12%.
RUNS = 14
#: What issue 12 asks: exit within 2 s of the signal.
EXIT_WITHIN_S = 2.0
#: A client must learn the fate of its request this soon after the signal (answer, refusal or "went away").
CLIENT_KNOWS_WITHIN_S = 4.0
#: How long a child gets to come up (imports, model load) on a loaded 2-core machine.
START_S = 90.0
#: Small frames: the point is the shutdown, not the model.
WIDTH, HEIGHT = 160, 120


@pytest.fixture(scope="module")
def frame():
    import gymnasium as gym

    import sim_envs  # noqa: F401
    from joyai_embodied.types import Observation

    env = gym.make("joyai/TabletopSpatial-v0", width=WIDTH, height=HEIGHT)
    try:
        obs, info = env.reset(seed=4)
    finally:
        env.close()
    return Observation.from_dict(obs, labels={o["id"]: o["name"] for o in info["objects"]}), info["objects"]


def _wait_exit(process: subprocess.Popen, timeout_s: float) -> tuple[int | None, float]:
    """(exit code or None when still running, seconds waited). Never kills: a hang must show as a failure."""
    started = time.monotonic()
    try:
        return process.wait(timeout=timeout_s), time.monotonic() - started
    except subprocess.TimeoutExpired:
        return None, time.monotonic() - started


def _kill(process: subprocess.Popen) -> None:
    """Clean-up after a failed assertion only (the assertion has already recorded the hang)."""
    if process.poll() is None:
        process.kill()
        process.wait()


def _wait_until_gone(present, timeout_s: float = 10.0) -> None:
    """Waits until the stopped process's endpoints left the graph, so the next run cannot talk to it."""
    deadline = time.monotonic() + timeout_s
    while present() and time.monotonic() < deadline:
        time.sleep(0.05)


def _fire_requests(client, observation, objects, outcomes: list, lock: threading.Lock) -> list[threading.Thread]:
    """Starts a few blocking requests in threads (one client each); each records how it ended and when."""
    from ros_nodes.clients.world_model_client import WorldModelClient

    def worker(index: int) -> None:
        own = WorldModelClient(f"fault_client_{os.getpid()}_{index}_{time.monotonic_ns()}")
        try:
            own.wait_until_ready(timeout_s=20)
            names = [o["name"] for o in objects]
            while True:
                try:
                    if index % 2:
                        result = own.imagine(observation, yaw_deg=15.0 * index, timeout_s=30)
                    else:
                        result = own.spatial_query(observation, subject=names[0], reference=names[1], timeout_s=30)
                    outcome = "answered" if result.success else f"refused:{result.error_type}"
                except Exception as exc:  # what a client sees when the node goes away
                    outcome = f"raised:{type(exc).__name__}"
                with lock:
                    outcomes.append((index, outcome, time.monotonic()))
                if not outcome == "answered":
                    return
        finally:
            own.destroy_node()

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(3)]
    for thread in threads:
        thread.start()
    return threads


def test_launcher_stops_within_2s_with_exit_0_on_every_signal_with_requests_in_flight(ros_context, frame):
    from ros_nodes.clients.world_model_client import WorldModelClient

    observation, objects = frame
    client = WorldModelClient("fault_probe")
    failures: list[str] = []
    try:
        for run in range(RUNS):
            signum = signal.SIGTERM if run % 2 == 0 else signal.SIGINT
            process = start_launcher(["--preset", "geometric", "--threads", "4"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
            try:
                client.wait_until_ready(timeout_s=START_S)
                outcomes: list = []
                lock = threading.Lock()
                threads = _fire_requests(client, observation, objects, outcomes, lock)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline:  # it has served requests, and more are in flight
                    with lock:
                        if sum(o[1] == "answered" for o in outcomes) >= 2:
                            break
                    time.sleep(0.02)
                time.sleep(0.01 * (run % 5))  # vary the moment within a request
                signalled = time.monotonic()
                process.send_signal(signum)
                code, waited = _wait_exit(process, EXIT_WITHIN_S + 1.0)
                for thread in threads:
                    thread.join(timeout=CLIENT_KNOWS_WITHIN_S + 2)
                output = process.stdout.read() if code is not None else ""
                name = signal.Signals(signum).name
                if code is None or waited > EXIT_WITHIN_S:
                    failures.append(f"run {run} ({name}): still running {waited:.2f} s after the signal")
                elif code != 0:
                    failures.append(f"run {run} ({name}): exit code {code}\n{output[-1500:]}")
                if "Traceback" in output or "RCLError" in output:
                    failures.append(f"run {run} ({name}): traceback in the output\n{output[-1500:]}")
                if any(thread.is_alive() for thread in threads):
                    failures.append(f"run {run} ({name}): a client still waits {CLIENT_KNOWS_WITHIN_S + 2} s later")
                late = [(i, o) for i, o, t in outcomes if o != "answered" and t - signalled > CLIENT_KNOWS_WITHIN_S]
                timeouts = [(i, o) for i, o, _ in outcomes if "Timeout" in o]
                if late or timeouts:
                    failures.append(f"run {run} ({name}): clients learned too late or timed out: {late + timeouts}")
                unclear = [(i, o) for i, o, _ in outcomes
                           if o not in ("answered", "refused:ServerBusyError", "raised:BackendUnavailableError")]
                if unclear:
                    failures.append(f"run {run} ({name}): unexpected outcomes {unclear}")
            finally:
                _kill(process)
            _wait_until_gone(lambda: client._query_client.service_is_ready())
    finally:
        client.destroy_node()
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("module", ["ros_nodes.nodes.spatial_reasoning", "ros_nodes.nodes.imagination"])
def test_a_standalone_node_stops_within_2s_with_exit_0(ros_context, frame, module):
    from ros_nodes.clients.world_model_client import WorldModelClient

    observation, objects = frame
    client = WorldModelClient(f"standalone_probe_{module.rsplit('.', 1)[1]}")
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            process = start_node(module, ["-p", "preset:=geometric"], stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True)
            try:
                if module.endswith("spatial_reasoning"):
                    assert client._query_client.wait_for_service(timeout_sec=START_S)
                    served = client.spatial_query(observation, subject=objects[0]["name"],
                                                  reference=objects[1]["name"], timeout_s=30)
                else:
                    assert client._imagine_client.wait_for_server(timeout_sec=START_S)
                    served = client.imagine(observation, yaw_deg=10.0, timeout_s=30)
                assert served.success, served.error
                process.send_signal(signum)
                code, waited = _wait_exit(process, EXIT_WITHIN_S + 1.0)
                output = process.stdout.read() if code is not None else ""
                assert code == 0 and waited <= EXIT_WITHIN_S, (signum, code, waited, output[-1500:])
                assert "Traceback" not in output, output[-1500:]
            finally:
                _kill(process)
            _wait_until_gone(lambda: client._query_client.service_is_ready()
                             or client._imagine_client.server_is_ready())
    finally:
        client.destroy_node()


@pytest.mark.parametrize("arguments, field", [
    (["--threads", "0"], "--threads"),
    (["--params-file", "/nonexistent/params.yaml"], "--params-file"),
    (["--domain-id", "999"], "--domain-id"),
    (["--max-scenes", "0"], "--max-scenes"),
])
def test_bad_launcher_options_end_in_one_line_and_exit_2(arguments, field, tmp_path):
    done = subprocess.run([sys.executable, "-m", "joyai_embodied.cli", "ros", *arguments], capture_output=True,
                          text=True, timeout=60, env=dict(os.environ))
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2, done.stdout + done.stderr
    assert len(lines) == 1 and field in lines[0] and "Traceback" not in done.stderr, done.stderr


def test_a_params_file_that_is_not_yaml_ends_in_one_line_and_exit_2(tmp_path):
    bad = tmp_path / "params.yaml"
    bad.write_text("/**: [unclosed\n")
    done = subprocess.run([sys.executable, "-m", "joyai_embodied.cli", "ros", "--params-file", str(bad)],
                          capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1, done.stderr
    assert "--params-file" in done.stderr


def test_observation_arrays_are_views_of_the_request_not_copies(frame):
    """The size limit is checked before any pixel is converted: a refused request costs no copy."""
    from joyai_interfaces.srv import SpatialQuery

    from joyai_embodied.errors import InvalidInputError
    from ros_nodes import conversions

    observation, _ = frame
    request = conversions.fill_scene_fields(SpatialQuery.Request(), observation)
    rgb = conversions.rgb_from_image(request.rgb)
    assert not rgb.flags.owndata and np.shares_memory(rgb, np.frombuffer(request.rgb.data, np.uint8))
    request.rgb.width, request.rgb.height = 4000, 4000
    with pytest.raises(InvalidInputError, match=f"at most {conversions.MAX_IMAGE_PIXELS} pixels"):
        conversions.observation_from_request(request)


#: A node killed without a goodbye leaves the graph after the participant lease of fastdds_profile (5 s).
KILLED_NOTICED_WITHIN_S = 10.0


def test_a_killed_launcher_is_reported_to_a_waiting_client_not_timed_out(ros_context, frame):
    """kill -9 with a goal in flight: BackendUnavailableError within ~lease + 1 s, far from the 60 s timeout."""
    from joyai_embodied.errors import BackendUnavailableError
    from ros_nodes.clients.world_model_client import WorldModelClient

    observation, _ = frame
    process = start_launcher(["--preset", "geometric"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = WorldModelClient("kill_probe")
    try:
        client.wait_until_ready(timeout_s=START_S)
        assert client.imagine(observation, yaw_deg=5.0, timeout_s=30).success
        threading.Timer(0.02, process.kill).start()
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError):  # "went away", "was replaced" or (re-sent view) "not sent"
            for _ in range(50):  # until one call is caught by the kill (a fast one may finish first)
                client.imagine(observation, yaw_deg=30.0, timeout_s=60)
        assert time.monotonic() - started < KILLED_NOTICED_WITHIN_S
    finally:
        _kill(process)
        client.destroy_node()


def test_replies_that_would_not_fit_the_transport_are_refused_before_any_work():
    """An imagined view bigger than the limit, or more views than one reply holds: refused, naming the limit."""
    from joyai_embodied.errors import InvalidInputError
    from ros_nodes import conversions

    conversions.check_views_fit(7, 640, 480)  # 7 x 3.5 MiB fit in 28 MiB
    with pytest.raises(InvalidInputError, match=r"max_views: expected at most 7 imagined view\(s\) of 640x480"):
        conversions.check_views_fit(8, 640, 480)
    with pytest.raises(InvalidInputError, match="at most 1 imagined"):
        conversions.check_views_fit(2, 1920, 1080)
    with pytest.raises(InvalidInputError, match="viewpoint_info.width/height"):
        conversions.check_image_size(2500, 2500, "viewpoint_info")


#: A call made while the launcher restarts must end this soon (answer or BackendUnavailableError), not at its timeout.
RESTART_CALL_ENDS_WITHIN_S = 3.5
#: The timeout each of those calls is given: a call that waits for a request that went nowhere shows as >= this.
RESTART_CALL_TIMEOUT_S = 12.0


def test_calls_around_a_kill_and_restart_end_quickly_never_at_their_timeout(ros_context, frame):
    """kill -9, restart, and calls back to back from the restart on (issue H12 item 1).

    The call in flight when the new node appears was sent to no server; before the fix it waited its whole
    12 s timeout (the node was missing for less than 0.75 s of its wait). Now every call ends within ~3 s: a
    query waits for the new node and is sent to it, an edit made while no node is there is not sent at all.
    """
    from joyai_embodied.errors import BackendUnavailableError
    from ros_nodes.clients.world_model_client import WorldModelClient
    from ros_nodes.topics import SPATIAL_QUERY_SERVICE

    observation, objects = frame
    process = start_launcher(["--preset", "geometric"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    client = WorldModelClient(f"restart_probe_{os.getpid()}")
    try:
        client.wait_until_ready(timeout_s=START_S)
        scene_id = client.observe(observation).scene_id
        process.kill()
        process.wait()
        _wait_until_gone(lambda: client.server_gids(SPATIAL_QUERY_SERVICE), timeout_s=15.0)
        started = time.monotonic()
        with pytest.raises(BackendUnavailableError, match="not sent"):
            client.imagine(scene_id=scene_id, edit="move", object_name=objects[0]["name"], target=(0.0, 0.0, 0.4),
                           edit_only=True, timeout_s=RESTART_CALL_TIMEOUT_S)
        assert time.monotonic() - started < 0.5  # an edit is never sent to nobody, nor waits for a server

        process = start_launcher(["--preset", "geometric"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        calls: list[tuple[str, float]] = []
        deadline = time.monotonic() + START_S
        while time.monotonic() < deadline and not (calls and calls[-1][0] == "answered"):
            started = time.monotonic()
            try:
                result = client.observe(observation, timeout_s=RESTART_CALL_TIMEOUT_S)
                outcome = "answered" if result.success else f"refused:{result.error_type}"
            except BackendUnavailableError:
                outcome = "unavailable"
            calls.append((outcome, time.monotonic() - started))
            time.sleep(0.02)
        assert calls and calls[-1][0] == "answered", calls
        assert max(seconds for _, seconds in calls) < RESTART_CALL_ENDS_WITHIN_S, calls
        assert client.spatial_query(scene_id=scene_id, subject=objects[0]["name"],
                                    reference=objects[1]["name"]).error_type == "SceneExpiredError"
    finally:
        _kill(process)
        client.destroy_node()
