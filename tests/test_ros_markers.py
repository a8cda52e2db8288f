"""The ROS nodes draw what they know: MarkerArray of the scene and its cameras, PointCloud2 of the lifted cloud.

`joyai-embodied ros` runs in its own process; this process calls it and subscribes to its topics as RViz
would (reliable, transient-local). Markers are checked against the same frame observed in-process.
"""

from __future__ import annotations

import subprocess
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
pytest.importorskip("joyai_interfaces")
pytest.importorskip("visualization_msgs")
gym = pytest.importorskip("gymnasium")

from joyai_embodied import CameraMove, MoveObject, WorldModel, drawing  # noqa: E402
from joyai_embodied.types import Observation  # noqa: E402
from ros_helpers import connect_client  # noqa: E402
from ros_nodes.child_process import start_launcher, start_node, stop_process  # noqa: E402

WAIT_S = 20.0  # a marker array or cloud must arrive within this after the request that caused it
QUIET_S = 0.5  # requests about an already drawn scene must publish nothing for this long
WORLD_FRAME = "table"  # a non-default world_frame, to see that the parameter reaches every message


def _geometric_available() -> bool:
    try:
        from joyai_embodied.backends.geometric import GeometricBackend  # noqa: F401
        import sim_envs  # noqa: F401
    except ImportError:
        return False
    return True


pytestmark = pytest.mark.skipif(not _geometric_available(), reason="needs the geometric backend and sim_envs")


class Listener:
    """A node of this process subscribed to the scene topics, keeping every message in arrival order."""

    def __init__(self, markers_topic: str, cloud_topic: str, name: str):
        from rclpy.executors import SingleThreadedExecutor
        from sensor_msgs.msg import PointCloud2
        from visualization_msgs.msg import MarkerArray

        from ros_nodes.topics import SCENE_QOS

        self.node = rclpy.create_node(name)
        self.arrays: list = []
        self.clouds: list = []
        self.node.create_subscription(MarkerArray, markers_topic, self.arrays.append, SCENE_QOS)
        self.node.create_subscription(PointCloud2, cloud_topic, self.clouds.append, SCENE_QOS)
        self.executor = SingleThreadedExecutor()
        self.executor.add_node(self.node)

    def wait(self, kept: list, count: int, timeout_s: float = WAIT_S):
        """Spins until ``kept`` holds ``count`` messages; returns the last."""
        deadline = time.monotonic() + timeout_s
        while len(kept) < count and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
        assert len(kept) >= count, f"{len(kept)} message(s) within {timeout_s} s, expected {count}"
        return kept[count - 1]

    def spin_for(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)

    def close(self) -> None:
        self.executor.remove_node(self.node)
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.fixture(scope="module")
def frame():
    import sim_envs  # noqa: F401  (registers the env)

    env = gym.make("joyai/TabletopSpatial-v0", width=320, height=240)
    try:
        obs, info = env.reset(seed=5)
    finally:
        env.close()
    return Observation.from_dict(obs, labels={o["id"]: o["name"] for o in info["objects"]})


@pytest.fixture(scope="module")
def local_scene(frame):
    return WorldModel.load("geometric").observe(frame)


@pytest.fixture(scope="module")
def launcher(ros_context, tmp_path_factory):
    """`joyai-embodied ros` with the cloud on and a world frame of its own (one params file for both nodes)."""
    params = tmp_path_factory.mktemp("ros") / "params.yaml"
    params.write_text(f'/**:\n  ros__parameters:\n    publish_cloud: true\n    world_frame: "{WORLD_FRAME}"\n')
    process = start_launcher(["--preset", "geometric", "--params-file", str(params)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
    yield process
    assert stop_process(process) == 0


@pytest.fixture(scope="module")
def client(launcher):
    client = connect_client(launcher, "markers_test_client")
    yield client
    client.destroy_node()


@pytest.fixture(scope="module")
def listener(client):
    listener = Listener("/joyai/scene_markers", "/joyai/scene_cloud", "markers_test_listener")
    yield listener
    listener.close()


def _by_namespace(array) -> dict[str, list]:
    groups: dict[str, list] = {}
    for marker in array.markers[1:]:
        groups.setdefault(marker.ns, []).append(marker)
    return groups


def _xyz(point) -> np.ndarray:
    return np.array([point.x, point.y, point.z])


def _check_objects(array, scene, frame_id: str) -> None:
    from visualization_msgs.msg import Marker

    assert array.markers[0].action == Marker.DELETEALL  # stale boxes of the previous scene vanish
    assert all(m.header.frame_id == frame_id for m in array.markers)
    groups = _by_namespace(array)
    boxes, labels = groups["objects"], groups["objects/labels"]
    assert len(boxes) == len(labels) == len(scene.objects) > 0
    assert all(m.type == Marker.CUBE for m in boxes) and all(m.type == Marker.TEXT_VIEW_FACING for m in labels)
    assert [m.text.rsplit(" #", 1)[0] for m in labels] == scene.object_names()
    assert [m.text for m in labels] == [f"{o.name} #{o.id}" for o in scene.objects]
    for box, label, obj in zip(boxes, labels, scene.objects):
        np.testing.assert_allclose(_xyz(box.pose.position), obj.centroid, atol=1e-9)
        np.testing.assert_allclose(_xyz(box.scale), obj.extent, atol=1e-9)
        np.testing.assert_allclose(_xyz(label.pose.position),
                                   [obj.centroid[0], obj.centroid[1], obj.top_z + drawing.LABEL_LIFT_M], atol=1e-9)


def _camera_origins(array) -> list[np.ndarray]:
    """The apex of each camera frustum (a LINE_LIST's first point), in marker id order."""
    frusta = sorted(_by_namespace(array).get("cameras", []), key=lambda m: m.id)
    assert all(len(m.points) == 16 for m in frusta)
    return [_xyz(m.points[0]) for m in frusta]


def test_one_scene_publisher_per_process(client, listener):
    deadline = time.monotonic() + WAIT_S
    while listener.node.count_publishers("/joyai/scene_markers") == 0 and time.monotonic() < deadline:
        listener.spin_for(0.1)  # discovery of the node process's publishers
    listener.spin_for(0.3)
    assert listener.node.count_publishers("/joyai/scene_markers") == 1  # both nodes share one
    assert listener.node.count_publishers("/joyai/scene_cloud") == 1


def test_observe_publishes_the_scene_objects_and_the_cloud(client, listener, frame, local_scene):
    arrays, clouds = len(listener.arrays), len(listener.clouds)
    result = client.observe(frame)
    assert result.success, result.error
    array = listener.wait(listener.arrays, arrays + 1)
    _check_objects(array, local_scene, WORLD_FRAME)
    # the same objects the response carries, and exactly one camera: the observer's
    assert [m.text.rsplit(" #", 1)[0] for m in _by_namespace(array)["objects/labels"]] == \
        [o.name for o in result.objects]
    [observer] = _camera_origins(array)
    np.testing.assert_allclose(observer, frame.cam_to_world[:3, 3], atol=1e-9)

    cloud = listener.wait(listener.clouds, clouds + 1)
    points, colors = drawing.lift_point_cloud(frame)
    assert cloud.header.frame_id == WORLD_FRAME
    assert [(f.name, f.offset, f.datatype) for f in cloud.fields] == list(drawing.CLOUD_FIELDS)
    assert (cloud.height, cloud.width, cloud.point_step) == (1, len(points), drawing.CLOUD_POINT_STEP)
    got_points, got_colors = drawing.unpack_cloud(cloud.data, cloud.width)
    np.testing.assert_allclose(got_points, points, atol=1e-6)
    np.testing.assert_array_equal(got_colors, colors)


def _observe_and_wait(client, listener, frame) -> str:
    """Observes ``frame`` over the service and waits for its markers and its cloud; returns the scene_id."""
    arrays, clouds = len(listener.arrays), len(listener.clouds)
    result = client.observe(frame)
    assert result.success, result.error
    listener.wait(listener.arrays, arrays + 1)
    listener.wait(listener.clouds, clouds + 1)  # a new observation: a new cloud too
    return result.scene_id


def test_questions_about_a_drawn_scene_publish_nothing(client, listener, frame, local_scene):
    scene_id = _observe_and_wait(client, listener, frame)
    drawn, clouds = len(listener.arrays), len(listener.clouds)
    first, second = local_scene.object_names()[:2]
    for _ in range(3):
        assert client.spatial_query(scene_id=scene_id, subject=first, reference=second).success
    listener.spin_for(QUIET_S)
    assert (len(listener.arrays), len(listener.clouds)) == (drawn, clouds)


def test_imagined_cameras_are_added_and_an_edit_redraws(client, listener, frame, local_scene):
    scene_id = _observe_and_wait(client, listener, frame)
    count = len(listener.arrays)
    views = []
    for yaw in (30.0, -40.0):
        outcome = client.imagine(scene_id=scene_id, yaw_deg=yaw)
        assert outcome.success, outcome.error
        views.append(outcome.view)
        count += 1
        array = listener.wait(listener.arrays, count)
    _check_objects(array, local_scene, WORLD_FRAME)
    origins = _camera_origins(array)
    assert len(origins) == 3  # the observer, then the imagined cameras in order
    for origin, view in zip(origins[1:], views):
        np.testing.assert_allclose(origin, view.cam_to_world[:3, 3], atol=1e-9)
    texts = sorted(m.text for m in _by_namespace(array)["cameras/labels"])
    assert texts == ["imagined 1", "imagined 2", "observer"]

    clouds = len(listener.clouds)
    name = local_scene.objects[0].name
    target = np.asarray(local_scene.objects[0].centroid) + [0.0, 0.08, 0.0]
    edited = client.imagine(scene_id=scene_id, edit="move", object_name=name, target=list(target), edit_only=True)
    assert edited.success, edited.error
    array = listener.wait(listener.arrays, count + 1)
    local_edit = WorldModel.load("geometric").edit(local_scene, MoveObject(name, to=target))
    _check_objects(array, local_edit, WORLD_FRAME)
    assert len(_camera_origins(array)) == 1  # a new scene: its imagined cameras start again
    listener.spin_for(QUIET_S)
    assert len(listener.clouds) == clouds  # an edit keeps the observed frame: no new cloud


def test_standalone_node_defaults_markers_on_world_and_no_cloud(ros_context, frame, local_scene):
    """A node alone, no parameters: markers on joyai/scene_markers in frame 'world'; no cloud publisher."""
    from joyai_interfaces.srv import SpatialQuery

    from ros_nodes import conversions

    # A namespace of its own for the topics, and its service remapped away from the launcher's (absolute) one.
    namespace, query = "/markers_alone", "/markers_alone/spatial_query"
    process = start_node("ros_nodes.nodes.spatial_reasoning",
                         ["-p", "preset:=geometric", "-r", f"__ns:={namespace}", "-r", f"/joyai/spatial_query:={query}"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    listener = Listener(f"{namespace}/joyai/scene_markers", f"{namespace}/joyai/scene_cloud", "markers_alone_listener")
    try:
        service = listener.node.create_client(SpatialQuery, query)
        assert service.wait_for_service(timeout_sec=60), "the standalone node did not come up"
        request = SpatialQuery.Request()
        conversions.fill_scene_fields(request, frame)
        future = service.call_async(request)
        listener.executor.spin_until_future_complete(future, timeout_sec=WAIT_S)
        assert future.result() is not None and future.result().success, future.result()
        _check_objects(listener.wait(listener.arrays, 1), local_scene, "world")
        assert listener.node.count_publishers(f"{namespace}/joyai/scene_cloud") == 0
        assert listener.clouds == []
    finally:
        listener.close()
        assert stop_process(process) == 0


def test_rclpy_markers_equal_the_recorders_and_skip_boxes_without_geometry(local_scene):
    """The node's rclpy MarkerArray and the MCAP recorder's rosbags one carry the same markers, field by field."""
    import dataclasses

    from std_msgs.msg import Header

    from ros_nodes.nodes.scene_publisher import scene_marker_array

    msgs = pytest.importorskip("joyai_embodied.recording.ros_messages")
    nameless = dataclasses.replace(local_scene.objects[0], name="ghost", centroid=np.full(3, np.nan))
    scene = dataclasses.replace(local_scene, objects=[*local_scene.objects, nameless])
    cameras = [("imagined 1", WorldModel.load("geometric").imagine(local_scene, CameraMove(yaw_deg=25.0)))]
    ours = scene_marker_array(scene, Header(frame_id="world"), cameras).markers
    theirs = msgs.scene_markers(scene, 0, "world", cameras).markers

    def fields(m):
        return (m.ns, m.id, m.type, m.action, m.text, _xyz(m.pose.position).round(9).tolist(),
                [round(v, 9) for v in (m.pose.orientation.x, m.pose.orientation.y, m.pose.orientation.z,
                                       m.pose.orientation.w)],
                _xyz(m.scale).round(9).tolist(), [round(v, 9) for v in (m.color.r, m.color.g, m.color.b, m.color.a)],
                [_xyz(p).round(9).tolist() for p in m.points])

    assert ours[0].action == theirs[0].action == 3  # DELETEALL first (its other fields mean nothing)
    assert [fields(m) for m in ours[1:]] == [fields(m) for m in theirs[1:]]
    texts = [m.text for m in ours]
    assert not any("ghost" in t for t in texts)  # a NaN box is left out (RViz refuses NaN poses)
    assert len([m for m in ours if m.ns == "objects"]) == len(local_scene.objects)
    assert all(np.isfinite(_xyz(m.pose.position)).all() for m in ours)
