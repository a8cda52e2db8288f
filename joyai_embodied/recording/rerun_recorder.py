"""Rerun recorder: a ``.rrd`` file that opens with ``rerun PATH.rrd``.

Entity tree (world frame z up, cameras in the OpenCV RDF convention)::

    world/objects                 Boxes3D: every scene object, with its name and id as label
    world/cloud                   Points3D: the coloured cloud lifted from depth
    world/observer                Transform3D (cam_to_world) + Pinhole; rgb / depth / segmentation below it
    world/imagined/<label>        the same for each imagined camera, with its imagined image
    world/edits/<label>/before    Boxes3D: objects before an edit (faint) ... /after (solid)
    world/poses/<name>            Transform3D + axes: robot / end-effector poses
    log/<kind>                    TextLog: queries and answers, instructions, status

Timelines: ``step`` (sequence) and ``time`` (timestamp).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..drawing import FRUSTUM_DEPTH_M, object_color
from ..types import SceneObject
from .base import Recorder
from .rotations import quaternion_from_matrix

try:
    import rerun as rr
except ImportError as exc:  # pragma: no cover - the `record` extra is missing
    raise ImportError("recording to .rrd needs the 'record' extra: pip install -e .[record]") from exc

APPLICATION_ID = "joyai_embodied"
#: Length of the axes drawn at a pose (metres): visible next to 5 cm objects.
AXIS_LENGTH_M = 0.05


class RerunRecorder(Recorder):
    """Writes a Rerun recording to ``path`` (a ``.rrd`` file; streamed as it is logged).

    Args:
        path: the ``.rrd`` file.
        recording_name: shown in the viewer's recording list (default: the file name).
    """

    def __init__(self, path: str | Path, recording_name: str | None = None):
        super().__init__(path)
        self._calibrations: dict[str, bytes] = {}  # camera entity -> the pose and pinhole last logged
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rec = rr.RecordingStream(APPLICATION_ID)
        self.rec.save(str(self.path))
        self.rec.send_recording_name(recording_name or self.path.stem)
        self.rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        self._set_time()

    def _set_time(self) -> None:
        # Rerun's time is per thread: this runs in the thread that logs.
        self.rec.set_time("step", sequence=self.write_step)
        self.rec.set_time("time", timestamp=np.datetime64(self.write_stamp_ns, "ns"))

    def _log_camera(self, name: str, rgb: np.ndarray, depth: np.ndarray | None, segmentation: np.ndarray | None,
                    intrinsics: np.ndarray, cam_to_world: np.ndarray) -> None:
        base = f"world/{name}"
        height, width = rgb.shape[:2]
        calibration = intrinsics.tobytes() + cam_to_world.tobytes() + bytes(f"{width}x{height}", "ascii")
        if self._calibrations.get(base) != calibration:  # a still camera's pose and pinhole: logged once
            self._calibrations[base] = calibration
            self.rec.log(base, rr.Transform3D(translation=cam_to_world[:3, 3], mat3x3=cam_to_world[:3, :3]))
            self.rec.log(base, rr.Pinhole(image_from_camera=intrinsics, width=width, height=height,
                                          camera_xyz=rr.ViewCoordinates.RDF, image_plane_distance=FRUSTUM_DEPTH_M))
        self.rec.log(f"{base}/rgb", rr.Image(rgb))
        if depth is not None:
            self.rec.log(f"{base}/depth", rr.DepthImage(np.nan_to_num(depth, nan=0.0), meter=1.0))
        if segmentation is not None:
            if segmentation.size and 0 <= segmentation.min() and segmentation.max() < 2**16:
                segmentation = segmentation.astype(np.uint16)  # half the bytes to encode and store
            self.rec.log(f"{base}/segmentation", rr.SegmentationImage(segmentation))

    def _log_cloud(self, points: np.ndarray, colors: np.ndarray) -> None:
        self.rec.log("world/cloud", rr.Points3D(points, colors=colors, radii=0.002))

    def _log_objects(self, name: str, objects: list[SceneObject], alpha: float = 0.6) -> None:
        if not objects:
            self.rec.log(f"world/{name}", rr.Clear(recursive=False))
            return
        colors = [(*(np.array(object_color(o)) * 255).astype(int), int(alpha * 255)) for o in objects]
        self.rec.log(f"world/{name}", rr.Boxes3D(
            centers=[o.centroid for o in objects], half_sizes=[np.asarray(o.extent) / 2 for o in objects],
            quaternions=[rr.Quaternion(xyzw=quaternion_from_matrix(o.obb_rotation)) for o in objects],
            labels=[f"{o.name} #{o.id}" for o in objects], colors=colors, class_ids=[int(o.id) for o in objects]))

    def _log_text(self, kind: str, text: str) -> None:
        self.rec.log(f"log/{kind}", rr.TextLog(text, level="INFO"))

    def _log_pose(self, name: str, matrix: np.ndarray) -> None:
        self.rec.log(f"world/poses/{name}", rr.Transform3D(translation=matrix[:3, 3], mat3x3=matrix[:3, :3]))
        self.rec.log(f"world/poses/{name}", rr.TransformAxes3D(axis_length=AXIS_LENGTH_M))

    def _close(self) -> None:
        self.rec.flush()
        self.rec.disconnect()


def warm_up() -> None:
    """Converts one tiny sample of each archetype the recorder logs (first conversions load pyarrow's kernels),
    so that :func:`~.recorders.preload_recorder` pays for them before the run needs them."""
    pixels = np.zeros((2, 2, 3), np.uint8)
    rr.Image(pixels), rr.DepthImage(np.zeros((2, 2), np.float32), meter=1.0)
    rr.SegmentationImage(np.zeros((2, 2), np.uint16)), rr.Points3D(np.zeros((1, 3)), colors=pixels[0, :1], radii=0.002)
    rr.Boxes3D(centers=[[0, 0, 0]], half_sizes=[[1, 1, 1]], quaternions=[rr.Quaternion(xyzw=[0, 0, 0, 1])],
               labels=["a"], colors=[(1, 2, 3, 4)], class_ids=[1])
    rr.Transform3D(translation=[0, 0, 0], mat3x3=np.eye(3)), rr.TextLog("", level="INFO")
    rr.Pinhole(image_from_camera=np.eye(3), width=2, height=2, camera_xyz=rr.ViewCoordinates.RDF)

