"""The sim_bridge node end to end: `joyai-embodied ros --with-sim-bridge` in its own process, clients here.

Loopback only: tests/conftest.py sets ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST and this run's own
ROS_DOMAIN_ID; the node process inherits both. What the bridge publishes and does is checked against
the simulator's ground truth and against the in-process env.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("joyai_interfaces")  # a build without SimReset/SimPick/SimPlace fails loudly: rebuild it
pytest.importorskip("mujoco")

from joyai_embodied.camera import project, to_camera, unproject  # noqa: E402
from ros_nodes.child_process import start_launcher, stop_process  # noqa: E402

WIDTH, HEIGHT, FIRST_SEED = 320, 240, 3
MARGIN_M = 0.04  # pairs closer than this along camera x are not asserted (borderline relation)


@pytest.fixture(scope="module")
def bridge_process():
    """The world-model nodes and the sim bridge in one process, started once for the module."""
    process = start_launcher(
        ["--preset", "geometric", "--with-sim-bridge", "--sim-width", str(WIDTH), "--sim-height", str(HEIGHT),
         "--sim-seed", str(FIRST_SEED), "--sim-rate", "5"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    rclpy.init()
    yield process
    rclpy.try_shutdown()
    stop_process(process)


@pytest.fixture(scope="module")
def sim(bridge_process):
    from ros_nodes.clients.sim_client import SimBridgeClient

    client = SimBridgeClient("test_sim_client")
    try:
        client.wait_until_ready(timeout_s=60)
    except Exception:
        bridge_process.terminate()
        pytest.fail("sim bridge did not come up:\n" + bridge_process.communicate(timeout=10)[0][-3000:])
    yield client
    client.destroy_node()


@pytest.fixture(scope="module")
def world_model(bridge_process):
    from ros_nodes.clients.world_model_client import WorldModelClient

    client = WorldModelClient("test_wm_client")
    client.wait_until_ready(timeout_s=60)
    yield client
    client.destroy_node()


def _reset(sim, seed):
    response = sim.reset(seed)
    assert response.success, response.error
    return response


def _truth(response):
    return {o.id: o for o in response.objects}


def _position(obj):
    return np.array([obj.centroid.x, obj.centroid.y, obj.centroid.z])


def test_services_and_topics_are_on_the_graph(sim):
    services = dict(sim.get_service_names_and_types())
    assert services["/joyai/sim/reset"] == ["joyai_interfaces/srv/SimReset"]
    assert services["/joyai/sim/pick"] == ["joyai_interfaces/srv/SimPick"]
    assert services["/joyai/sim/place"] == ["joyai_interfaces/srv/SimPlace"]
    topics = dict(sim.get_topic_names_and_types())
    assert topics["/camera/color/image_raw"] == ["sensor_msgs/msg/Image"]
    assert topics["/camera/pose"] == ["geometry_msgs/msg/PoseStamped"]


def test_camera_topics_show_the_scene_the_services_describe(sim):
    reset = _reset(sim, 5)
    msgs = sim.frame_messages(after=reset.stamp)
    assert (msgs["rgb"].encoding, msgs["depth"].encoding, msgs["segmentation"].encoding) == ("rgb8", "32FC1", "16UC1")
    assert (msgs["rgb"].width, msgs["rgb"].height) == (WIDTH, HEIGHT)
    assert msgs["camera_pose"].header.frame_id == "world"
    assert msgs["rgb"].header.frame_id == msgs["camera_info"].header.frame_id == "camera_color_optical_frame"
    obs = sim.observation(after=reset.stamp)
    assert obs["rgb"].shape == (HEIGHT, WIDTH, 3) and obs["depth"].dtype == np.float32
    assert obs["segmentation"].shape == (HEIGHT, WIDTH)

    truth = _truth(reset)
    assert set(np.unique(obs["segmentation"])) - {0} <= set(truth)
    # The top centre of each object, projected with the published K and pose, lands on that object's id
    # (unless another object hides it: then the published depth there is nearer than the point).
    tops = np.array([_position(o) + [0.0, 0.0, o.extent.z / 2 - 0.002] for o in truth.values()])
    pixels, depths = project(tops, obs["intrinsics"], obs["cam_to_world"])
    hits = 0
    for object_id, (u, v), z in zip(truth, np.round(pixels).astype(int), depths):
        seen = obs["segmentation"][v, u]
        if seen == object_id:
            hits += 1
        else:
            assert obs["depth"][v, u] < z - 0.005, (object_id, seen)
    assert hits >= len(truth) - 1


def test_pick_and_place_really_moves_the_object_and_solves_the_task(sim):
    reset = _reset(sim, FIRST_SEED)
    truth = _truth(reset)
    pick, plate = truth[reset.target_pick_id], truth[reset.target_place_id]
    before = sim.observation(after=reset.stamp)

    picked = sim.pick(pick.id)
    assert picked.success and picked.holding and not picked.task_success, picked.error
    lifted = _truth(picked)[pick.id]
    assert lifted.centroid.z > pick.centroid.z + 0.1  # carried up to travel height

    goal = _position(plate) + [0.0, 0.0, plate.extent.z / 2]
    placed = sim.place(goal)
    assert placed.success and placed.task_success and not placed.holding, placed.error
    moved = _position(_truth(placed)[pick.id])
    assert np.linalg.norm(moved[:2] - goal[:2]) < 0.02

    # The cameras saw it move: the object's pixels, lifted to 3D, are now over the plate.
    after = sim.observation(after=placed.stamp)
    for obs, expected in ((before, _position(pick)), (after, moved)):
        points = unproject(obs["depth"], obs["intrinsics"], obs["cam_to_world"])[obs["segmentation"] == pick.id]
        assert len(points) > 20
        assert np.linalg.norm(np.nanmedian(points, axis=0)[:2] - expected[:2]) < 0.03


def test_bad_requests_fail_clearly_and_the_node_keeps_serving(sim):
    reset = _reset(sim, FIRST_SEED)
    unused = next(i for i in range(1, 9) if i not in _truth(reset))
    cases = [(sim.pick(42), "object_id", "InvalidInputError"),
             (sim.pick(unused), f"no object with id {unused}", "ActionError"),
             (sim.place([0.0, 0.0, 0.8]), "nothing is held", "ActionError"),
             (sim.place([float("nan"), 0.0, 0.8]), "position", "InvalidInputError"),
             (sim.reset(-7), "seed", "InvalidInputError")]
    plate = _truth(reset)[reset.target_place_id]
    cases.append((sim.pick(plate.id), "cannot be picked", "ActionError"))
    for response, words, error_type in cases:
        assert not response.success
        assert words in response.error and response.error_type == error_type, response.error
    # Still serving, and nothing moved: the scene is the one the last good reset made.
    again = sim.pick(reset.target_pick_id)
    assert again.success and again.holding, again.error


def test_use_latest_spatial_query_answers_about_the_live_sim(sim, world_model):
    reset = _reset(sim, 8)
    truth = _truth(reset)
    obs = sim.observation(after=reset.stamp)
    labels = {o.id: o.name for o in truth.values()}
    cam = {i: to_camera(_position(o), obs["cam_to_world"])[0] for i, o in truth.items()}
    pairs = [(a, b) for a, b in itertools.permutations(truth, 2) if abs(cam[a][0] - cam[b][0]) > MARGIN_M]
    assert pairs

    # The node may still hold the previous episode's frame for a moment: wait until it sees this one.
    deadline = time.monotonic() + 10
    while True:
        result = world_model.spatial_query(None, labels=labels)
        assert result.success, result.error
        found = {o.id: o for o in result.objects}
        if set(found) == set(truth) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert set(found) == set(truth)
    for object_id, obj in found.items():
        assert np.linalg.norm(obj.centroid[:2] - _position(truth[object_id])[:2]) < 0.03, obj.name

    for a, b in pairs[:4]:
        result = world_model.spatial_query(None, subject=labels[a], reference=labels[b], labels=labels)
        assert result.success, result.error
        left = bool(cam[a][0] < cam[b][0])
        assert (result.relation.left_of, result.relation.right_of) == (left, not left), (labels[a], labels[b])


def test_planner_through_the_bridge_matches_the_in_process_env(sim):
    """The planner acting over ROS (RosSimEnv) picks the same object with the same outcome as in process."""
    import gymnasium as gym

    import sim_envs  # noqa: F401
    from joyai_embodied import WorldModel
    from joyai_embodied.planner import Planner
    from ros_nodes.clients.sim_client import RosSimEnv

    planner = Planner(WorldModel.load("geometric"))
    ros_env = RosSimEnv(WIDTH, HEIGHT, start_bridge=False, timeout_s=30)
    local_env = gym.make("joyai/TabletopSpatial-v0", width=WIDTH, height=HEIGHT, action_mode="primitive")
    try:
        over_ros = planner.run_episode(ros_env, seed=FIRST_SEED)
        local = planner.run_episode(local_env, seed=FIRST_SEED)
    finally:
        ros_env.close()
        local_env.close()
    assert over_ros.plan.instruction == local.plan.instruction
    assert over_ros.plan.ok and over_ros.act is not None and over_ros.act.error is None, over_ros.plan.error
    assert over_ros.plan.pick.id == local.plan.pick.id
    assert over_ros.success == local.success
    assert over_ros.target == local.target


def test_demo_via_ros_uses_the_running_nodes_and_bridge(sim, tmp_path):
    """`joyai-embodied demo --via ros` plans over the world-model nodes and acts through the bridge."""
    import json

    done = subprocess.run([sys.executable, "-m", "joyai_embodied.cli", "demo", "--via", "ros", "--episodes", "1",
                           "--seed", str(FIRST_SEED), "--width", str(WIDTH), "--height", str(HEIGHT),
                           "--out", str(tmp_path)], env=dict(os.environ), capture_output=True, text=True, timeout=120)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    # It found the module's nodes and bridge, so it started neither (each prints a banner when started).
    assert "joyai-embodied ros: serving" not in output and "[sim_bridge_node]" not in output, output[-3000:]
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["meta"]["via"] == "ros" and report["episodes"] == 1
    episode = report["episodes_detail"][0]
    assert episode["status"] != "cannot plan" and [a["action_error"] for a in episode["actions"]] == [None, None]
    assert episode["success"] == (episode["status"] == "success")


def test_ros_sim_env_raises_for_bad_fields_and_reports_refused_primitives(sim):
    from joyai_embodied.errors import InvalidInputError
    from ros_nodes.clients.sim_client import RosSimEnv
    from sim_envs.tabletop import PICK, PLACE

    env = RosSimEnv(WIDTH, HEIGHT, start_bridge=False, timeout_s=30)
    try:
        obs, info = env.reset(seed=FIRST_SEED)
        assert obs["rgb"].shape == (HEIGHT, WIDTH, 3) and info["instruction"]
        with pytest.raises(InvalidInputError, match="object_id"):
            env.step({"primitive": PICK, "object_id": 99, "position": np.zeros(3)})
        with pytest.raises(InvalidInputError, match="seed"):
            env.reset(seed=-3)
        _, reward, terminated, _, info = env.step({"primitive": PLACE, "object_id": 0, "position": [0.0, 0.0, 0.8]})
        assert "nothing is held" in info["action_error"] and (reward, terminated) == (0.0, False)
    finally:
        env.close()
    with pytest.raises(InvalidInputError, match="width/height"):
        RosSimEnv(WIDTH * 2, HEIGHT * 2, start_bridge=False, timeout_s=10)


def test_ros_sim_env_needs_no_simulator_calibration_comes_with_reset(sim):
    """RosSimEnv's cameras are the simulator's (sent in SimReset); its module imports neither sim_envs nor MuJoCo."""
    from ros_nodes.clients import sim_client
    from ros_nodes.clients.sim_client import RosSimEnv
    from sim_envs import tabletop
    from sim_envs.cameras import CAMERAS, camera_intrinsics, camera_to_world

    assert (sim_client.NOOP, sim_client.PICK, sim_client.PLACE) == (tabletop.NOOP, tabletop.PICK, tabletop.PLACE)
    probe = ("import sys, ros_nodes.clients.sim_client; "
             "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('sim_envs', 'mujoco', 'gymnasium')); "
             "print(bad); sys.exit(1 if bad else 0)")
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr[-2000:]

    env = RosSimEnv(WIDTH, HEIGHT, start_bridge=False, timeout_s=30)
    try:
        _, info = env.reset(seed=FIRST_SEED)
        for name in CAMERAS:
            cam_to_world, intrinsics = env.camera_pose(name)
            np.testing.assert_array_equal(cam_to_world, camera_to_world(name))
            np.testing.assert_array_equal(intrinsics, camera_intrinsics(name, WIDTH, HEIGHT))
        with pytest.raises(Exception, match="camera"):
            env.camera_pose("nowhere")
        local = gym_env_objects(FIRST_SEED)
        assert [o["name"] for o in info["objects"]] == [o["name"] for o in local]
        for over_ros, here in zip(info["objects"], local):
            assert abs((over_ros["yaw"] - here["yaw"] + np.pi) % (2 * np.pi) - np.pi) < 1e-9
    finally:
        env.close()


def gym_env_objects(seed: int) -> list[dict]:
    import gymnasium as gym

    import sim_envs  # noqa: F401

    env = gym.make("joyai/TabletopSpatial-v0", width=WIDTH, height=HEIGHT, action_mode="primitive")
    try:
        return env.reset(seed=seed)[1]["objects"]
    finally:
        env.close()
