"""MCAP recorder: the same content as the Rerun recording, as ROS 2-typed messages in one ``.mcap`` file.

Topics (frame ``world`` is z up; each camera has an optical frame ``joyai_<name>_optical`` on ``/tf``)::

    /joyai/<camera>/rgb            sensor_msgs/Image (rgb8)         camera = observer | imagined/<label>
    /joyai/<camera>/depth          sensor_msgs/Image (32FC1, metres)
    /joyai/<camera>/segmentation   sensor_msgs/Image (32SC1 instance ids)
    /joyai/<camera>/camera_info    sensor_msgs/CameraInfo
    /joyai/<camera>/pose           geometry_msgs/PoseStamped (cam_to_world)
    /joyai/markers/<name>          visualization_msgs/MarkerArray: objects, edits/<label>/before|after, cameras
    /joyai/cloud                   sensor_msgs/PointCloud2 (x y z rgb, world frame)
    /joyai/poses/<name>            geometry_msgs/PoseStamped (end effector...)
    /joyai/log/<kind>              std_msgs/String (queries and answers, instruction, status)
    /tf                            tf2_msgs/TFMessage (world -> each camera's optical frame)

Foxglove opens the file as it is; ``ros2 bag play PATH.mcap`` replays it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..types import SceneObject
from . import ros_messages as msgs
from .bags import McapWriter
from .base import Recorder

WORLD_FRAME = "world"


class McapRecorder(Recorder):
    """Writes ROS 2 messages to a single ``.mcap`` file.

    Args:
        path: the ``.mcap`` file.
        compression: ``"lz4"`` (default), ``"zstd"`` or ``"none"``.
    """

    def __init__(self, path: str | Path, compression: str = "lz4"):
        super().__init__(path)
        self.writer = McapWriter(self.path, compression=compression)
        self._cameras: dict[str, int] = {}  # camera name -> marker id, so each keeps its frustum's id
        self._frusta: dict[str, bytes] = {}  # camera name -> the calibration its last frustum was drawn from

    def _set_time(self) -> None:
        pass  # every message carries self.stamp_ns

    def _write(self, topic: str, msg: object) -> None:
        self.writer.write(topic, msg, self.write_stamp_ns)

    def _log_camera(self, name: str, rgb: np.ndarray, depth: np.ndarray | None, segmentation: np.ndarray | None,
                    intrinsics: np.ndarray, cam_to_world: np.ndarray) -> None:
        frame = f"joyai_{name.replace('/', '_')}_optical"
        prefix, ns = f"/joyai/{name}", self.write_stamp_ns
        height, width = rgb.shape[:2]
        self._write("/tf", msgs.transform_message(cam_to_world, ns, WORLD_FRAME, frame))
        self._write(f"{prefix}/rgb", msgs.image(rgb, ns, frame))
        if depth is not None:
            self._write(f"{prefix}/depth", msgs.image(depth, ns, frame))
        if segmentation is not None:
            self._write(f"{prefix}/segmentation", msgs.image(segmentation, ns, frame))
        self._write(f"{prefix}/camera_info", msgs.camera_info(intrinsics, width, height, ns, frame))
        self._write(f"{prefix}/pose", msgs.pose_stamped(cam_to_world, ns, WORLD_FRAME))
        marker_id = self._cameras.setdefault(name, len(self._cameras))
        calibration = intrinsics.tobytes() + cam_to_world.tobytes() + bytes(f"{width}x{height}", "ascii")
        if self._frusta.get(name) == calibration:
            return  # the frustum marker stays in the viewer until it changes (a still camera: drawn once)
        self._frusta[name] = calibration
        label = name.split("/")[-1]
        color = (1.0, 0.8, 0.1) if name == "observer" else (0.3, 0.8, 1.0)
        markers = msgs.camera_marker(intrinsics, cam_to_world, width, height, ns, marker_id, label, WORLD_FRAME,
                                     rgb=color)
        self._write(f"/joyai/markers/cameras/{name}", msgs.T[msgs.MARKER_ARRAY](markers=markers))

    def _log_cloud(self, points: np.ndarray, colors: np.ndarray) -> None:
        self._write("/joyai/cloud", msgs.point_cloud(points, colors, self.write_stamp_ns, WORLD_FRAME))

    def _log_objects(self, name: str, objects: list[SceneObject], alpha: float = 0.6) -> None:
        markers = [msgs.delete_all(self.write_stamp_ns, WORLD_FRAME)]
        markers += msgs.object_markers(objects, self.write_stamp_ns, WORLD_FRAME, namespace=name, alpha=alpha)
        self._write(f"/joyai/markers/{name}", msgs.T[msgs.MARKER_ARRAY](markers=markers))

    def _log_text(self, kind: str, text: str) -> None:
        self._write(f"/joyai/log/{kind}", msgs.string(text))

    def _log_pose(self, name: str, matrix: np.ndarray) -> None:
        self._write(f"/joyai/poses/{name}", msgs.pose_stamped(matrix, self.write_stamp_ns, WORLD_FRAME))

    def _close(self) -> None:
        self.writer.close()


def warm_up() -> None:
    """Builds rosbags' CDR serializers of every message type the recorder writes (they are generated on first
    use: ~0.2 s), so that :func:`~.recorders.preload_recorder` can pay for them before the run needs them."""
    samples = [msgs.image(np.zeros((1, 1, 3), np.uint8), 0, WORLD_FRAME), msgs.camera_info(np.eye(3), 1, 1, 0, WORLD_FRAME),
               msgs.point_cloud(np.zeros((1, 3), np.float32), np.zeros((1, 3), np.uint8), 0, WORLD_FRAME),
               msgs.T[msgs.MARKER_ARRAY](markers=[msgs.delete_all(0, WORLD_FRAME)]),
               msgs.pose_stamped(np.eye(4), 0, WORLD_FRAME), msgs.transform_message(np.eye(4), 0, WORLD_FRAME, "c"),
               msgs.string("")]
    for sample in samples:
        msgs.TYPESTORE.serialize_cdr(sample, sample.__msgtype__)
        msgs.TYPESTORE.generate_msgdef(sample.__msgtype__, ros_version=2)

