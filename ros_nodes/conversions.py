"""Conversions between ROS messages and the core's frames and cameras (results: ``ros_nodes.results``).

Reading an image is zero-copy: the returned array is a view of the message's buffer (``np.frombuffer``);
only encodings that need a conversion (``bgr8`` -> RGB, ``16UC1`` millimetres -> metres) copy. Writing
copies the pixels once into the message's ``array('B')``; going through ``bytes`` or a list instead would
make the generated setter check every byte in Python (~100 ms for 640x480).

Every function raises :class:`~joyai_embodied.errors.InvalidInputError` naming the offending message
field, so nodes can return ``str(exc)`` as the response's ``error``.
"""

from __future__ import annotations

from array import array
from typing import Any, Mapping, Sequence

import numpy as np
from geometry_msgs.msg import Pose
from sensor_msgs.msg import CameraInfo, Image

from joyai_embodied.errors import InvalidInputError
from joyai_embodied.types import CameraPose, Observation

# encoding -> (dtype, channels). Multi-byte types are little-endian unless the message says otherwise.
ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "8UC1": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "16SC1": (np.dtype(np.int16), 1),
    "32SC1": (np.dtype(np.int32), 1),
    "32FC1": (np.dtype(np.float32), 1),
}
RGB_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8")
DEPTH_ENCODINGS = ("32FC1", "16UC1")
SEGMENTATION_ENCODINGS = ("32SC1", "16UC1", "mono16", "16SC1", "8UC1", "mono8")
#: Largest image (width x height) a request may carry over ROS: Full HD. Such a frame with 32FC1 depth
#: and 32SC1 ids (11 B/px, ~23 MB; an Imagine result 12 B/px) fits the 32 MiB shared-memory segment of
#: fastdds_profile; a larger one loses fragments and its sender waits for nothing.
MAX_IMAGE_PIXELS = 1920 * 1080
MAX_IMAGE_PIXELS_TEXT = "e.g. 1920x1080"
#: Largest reply the nodes build: the 32 MiB segment less room for headers and the other fields.
MAX_REPLY_BYTES = 28 * 2**20
#: Bytes per pixel of an imagined view on the wire: rgb8 3 + 32FC1 depth 4 + 32SC1 ids 4 + mono8 mask 1.
VIEW_BYTES_PER_PIXEL = 12


def is_empty(msg: Image) -> bool:
    """True for an unset image field (no pixels): the "none given" value of optional images."""
    return msg.width == 0 or msg.height == 0 or len(msg.data) == 0


def image_to_numpy(msg: Image, field: str = "image") -> np.ndarray:
    """Views an Image's pixels as an (H, W) or (H, W, C) array without copying.

    Args:
        msg: a ``sensor_msgs/Image`` with one of :data:`ENCODINGS`.
        field: name used in error messages (``"rgb"``, ``"depth"``...).

    Returns:
        A read-only view of ``msg.data`` (a copy only when the message is big-endian), in the
        message's own encoding: ``bgr8`` stays BGR here; see :func:`rgb_from_image`.

    Raises:
        InvalidInputError: empty image, unknown encoding, or ``step``/size that does not match the data.
    """
    if is_empty(msg):
        raise InvalidInputError(field, "a non-empty image", f"{msg.width}x{msg.height} with {len(msg.data)} bytes")
    if msg.encoding not in ENCODINGS:
        raise InvalidInputError(f"{field}.encoding", "one of " + ", ".join(ENCODINGS), repr(msg.encoding))
    dtype, channels = ENCODINGS[msg.encoding]
    height, width, step = int(msg.height), int(msg.width), int(msg.step)
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise InvalidInputError(f"{field}.step", f">= width * {channels * dtype.itemsize} = {row_bytes} bytes "
                                f"for {msg.encoding}", step)
    if step % dtype.itemsize:
        raise InvalidInputError(f"{field}.step", f"a multiple of {dtype.itemsize} bytes for {msg.encoding}", step)
    if len(msg.data) != step * height:
        raise InvalidInputError(f"{field}.data", f"step * height = {step * height} bytes", f"{len(msg.data)} bytes")
    flat = np.frombuffer(msg.data, dtype=np.uint8)
    # Rows may be padded (step > row_bytes): view each row, then drop the padding without copying.
    rows = flat.reshape(height, step)[:, :row_bytes]
    pixels = rows.view(dtype.newbyteorder(">" if msg.is_bigendian else "<"))
    if msg.is_bigendian and dtype.itemsize > 1:
        pixels = pixels.astype(dtype)  # native byte order for the core; big-endian senders are rare
    shape = (height, width) if channels == 1 else (height, width, channels)
    return pixels.reshape(shape)


def rgb_from_image(msg: Image, field: str = "rgb") -> np.ndarray:
    """HxWx3 uint8 RGB from an rgb8 (zero-copy), bgr8, rgba8 or bgra8 Image."""
    if not is_empty(msg) and msg.encoding not in RGB_ENCODINGS:
        raise InvalidInputError(f"{field}.encoding", "one of " + ", ".join(RGB_ENCODINGS), repr(msg.encoding))
    pixels = image_to_numpy(msg, field)
    if msg.encoding == "rgb8":
        return pixels
    order = [2, 1, 0] if msg.encoding.startswith("bgr") else [0, 1, 2]
    return np.ascontiguousarray(pixels[:, :, order])


def depth_from_image(msg: Image, field: str = "depth") -> np.ndarray:
    """HxW float32 metres from a 32FC1 (metres, zero-copy) or 16UC1 (millimetres, 0 = invalid) Image."""
    if not is_empty(msg) and msg.encoding not in DEPTH_ENCODINGS:
        raise InvalidInputError(f"{field}.encoding", "32FC1 (metres) or 16UC1 (millimetres)", repr(msg.encoding))
    pixels = image_to_numpy(msg, field)
    if msg.encoding == "16UC1":
        return pixels.astype(np.float32) / np.float32(1000.0)
    return pixels


def segmentation_from_image(msg: Image, field: str = "segmentation") -> np.ndarray:
    """HxW int32 instance ids (0 = background) from an integer single-channel Image."""
    if not is_empty(msg) and msg.encoding not in SEGMENTATION_ENCODINGS:
        raise InvalidInputError(f"{field}.encoding", "one of " + ", ".join(SEGMENTATION_ENCODINGS),
                                repr(msg.encoding))
    return image_to_numpy(msg, field).astype(np.int32, copy=False)


def numpy_to_image(pixels: np.ndarray, encoding: str, header: Any = None) -> Image:
    """Packs an array into a ``sensor_msgs/Image`` (one copy, dense rows).

    Args:
        pixels: (H, W) or (H, W, C) array whose dtype and channels match ``encoding``.
        encoding: one of :data:`ENCODINGS`.
        header: optional ``std_msgs/Header`` to copy in.

    Raises:
        InvalidInputError: the array does not fit the encoding.
    """
    if encoding not in ENCODINGS:
        raise InvalidInputError("encoding", "one of " + ", ".join(ENCODINGS), repr(encoding))
    dtype, channels = ENCODINGS[encoding]
    pixels = np.asarray(pixels)
    expected_ndim = 2 if channels == 1 else 3
    if pixels.ndim != expected_ndim or (channels > 1 and pixels.shape[2] != channels):
        raise InvalidInputError("pixels", f"{'HxW' if channels == 1 else f'HxWx{channels}'} for {encoding}",
                                f"shape {pixels.shape}")
    pixels = np.ascontiguousarray(pixels, dtype=dtype.newbyteorder("<"))
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(pixels.shape[0]), int(pixels.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = 0
    msg.step = msg.width * channels * dtype.itemsize
    data = array("B")
    data.frombytes(pixels.data.cast("B"))
    msg.data = data
    return msg


def intrinsics_from_camera_info(info: CameraInfo, width: int, height: int, field: str = "camera_info") -> np.ndarray:
    """The 3x3 K of a CameraInfo, checked against the image size it describes."""
    if (info.width, info.height) != (0, 0) and (info.width, info.height) != (width, height):
        raise InvalidInputError(f"{field}.width/height", f"the image size {width}x{height}",
                                f"{info.width}x{info.height}")
    k = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
    if not np.any(k):
        raise InvalidInputError(f"{field}.k", "the 3x3 intrinsics (row-major fx 0 cx 0 fy cy 0 0 1)", "all zeros")
    return k


def camera_info_from_intrinsics(intrinsics: np.ndarray, width: int, height: int, header: Any = None) -> CameraInfo:
    """A plumb-bob CameraInfo with no distortion for an ideal pinhole K."""
    info = CameraInfo()
    if header is not None:
        info.header = header
    info.width, info.height = int(width), int(height)
    k = np.asarray(intrinsics, dtype=np.float64)
    info.k = k.reshape(-1).tolist()
    info.r = np.eye(3).reshape(-1).tolist()
    info.p = np.hstack([k, np.zeros((3, 1))]).reshape(-1).tolist()
    info.distortion_model = "plumb_bob"
    info.d = [0.0] * 5
    return info


def pose_to_matrix(pose: Pose, field: str = "camera_pose") -> np.ndarray:
    """4x4 transform from a Pose; the quaternion must be unit length (within 1e-3)."""
    q = np.array([pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w])
    t = np.array([pose.position.x, pose.position.y, pose.position.z])
    if not (np.all(np.isfinite(q)) and np.all(np.isfinite(t))):
        raise InvalidInputError(field, "finite position and orientation", "NaN or inf")
    norm = float(np.linalg.norm(q))
    if abs(norm - 1.0) > 1e-3:
        raise InvalidInputError(f"{field}.orientation", "a unit quaternion", f"norm {norm:.4f}")
    x, y, z, w = q / norm
    matrix = np.eye(4)
    matrix[:3, :3] = [[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                      [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                      [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]]
    matrix[:3, 3] = t
    return matrix


def matrix_to_pose(matrix: np.ndarray) -> Pose:
    """Pose of a 4x4 rigid transform (quaternion with w >= 0)."""
    m = np.asarray(matrix, dtype=np.float64)
    r = m[:3, :3]
    # Shepperd's method: pivot on the largest diagonal term for numerical stability.
    trace = np.trace(r)
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        w, x, y, z = 0.25 * s, (r[2, 1] - r[1, 2]) / s, (r[0, 2] - r[2, 0]) / s, (r[1, 0] - r[0, 1]) / s
    elif r[0, 0] > r[1, 1] and r[0, 0] > r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[0, 0] - r[1, 1] - r[2, 2])
        w, x, y, z = (r[2, 1] - r[1, 2]) / s, 0.25 * s, (r[0, 1] + r[1, 0]) / s, (r[0, 2] + r[2, 0]) / s
    elif r[1, 1] > r[2, 2]:
        s = 2.0 * np.sqrt(1.0 + r[1, 1] - r[0, 0] - r[2, 2])
        w, x, y, z = (r[0, 2] - r[2, 0]) / s, (r[0, 1] + r[1, 0]) / s, 0.25 * s, (r[1, 2] + r[2, 1]) / s
    else:
        s = 2.0 * np.sqrt(1.0 + r[2, 2] - r[0, 0] - r[1, 1])
        w, x, y, z = (r[1, 0] - r[0, 1]) / s, (r[0, 2] + r[2, 0]) / s, (r[1, 2] + r[2, 1]) / s, 0.25 * s
    q = np.array([x, y, z, w])
    q = q / np.linalg.norm(q) * (1.0 if w >= 0 else -1.0)
    pose = Pose()
    pose.position.x, pose.position.y, pose.position.z = (float(v) for v in m[:3, 3])
    pose.orientation.x, pose.orientation.y, pose.orientation.z, pose.orientation.w = (float(v) for v in q)
    return pose


def matrix_values(matrix: np.ndarray) -> list[float]:
    """The 16 row-major values of a 4x4 pose, for the exact ``*cam_to_world`` fields."""
    return [float(v) for v in np.asarray(matrix, dtype=np.float64).reshape(16)]


def pose_from_fields(values: Sequence[float], pose: Pose, field: str, pose_field: str) -> np.ndarray:
    """The 4x4 pose of a message: the exact 16 ``values`` when given, else the (quaternion) ``pose``.

    A quaternion round trip changes the matrix in its last bits; the exact values keep results over
    ROS identical to in-process ones on the same frame.

    Raises:
        InvalidInputError: ``values`` is neither empty nor 16 finite numbers (``field`` names it), or
            the Pose is not a valid one (``pose_field``).
    """
    if len(values) == 0:
        return pose_to_matrix(pose, pose_field)
    matrix = np.array(values, dtype=np.float64)
    if matrix.shape != (16,) or not np.all(np.isfinite(matrix)):
        raise InvalidInputError(field, "16 finite row-major values of a 4x4 pose, or none", f"{len(values)} values")
    return matrix.reshape(4, 4)


def camera_from_fields(info: CameraInfo, pose: Pose, values: Sequence[float] = (),
                       field: str = "viewpoint") -> CameraPose:
    """A core CameraPose from a CameraInfo (k, width, height) and a cam_to_world (exact values or Pose)."""
    if info.width == 0 or info.height == 0:
        raise InvalidInputError(f"{field}_info.width/height", "the viewpoint's image size", "0x0")
    k = intrinsics_from_camera_info(info, int(info.width), int(info.height), f"{field}_info")
    cam_to_world = pose_from_fields(values, pose, f"{field}_cam_to_world", f"{field}_pose")
    return CameraPose(cam_to_world, k, int(info.width), int(info.height))


def fill_camera_fields(message: Any, prefix: str, camera: CameraPose) -> None:
    """Writes a core CameraPose into ``<prefix>_info``, ``<prefix>_pose`` and ``<prefix>_cam_to_world``."""
    info = camera_info_from_intrinsics(camera.intrinsics, camera.width, camera.height)
    setattr(message, f"{prefix}_info", info)
    setattr(message, f"{prefix}_pose", matrix_to_pose(camera.cam_to_world))
    setattr(message, f"{prefix}_cam_to_world", matrix_values(camera.cam_to_world))


def labels_from_fields(ids: Sequence[int], names: Sequence[str]) -> dict[int, str] | None:
    """``{id: name}`` from the parallel ``label_ids``/``label_names`` arrays (None when both are empty)."""
    if len(ids) != len(names):
        raise InvalidInputError("label_names", f"one name per label id ({len(ids)})", f"{len(names)} names")
    return {int(i): str(n) for i, n in zip(ids, names)} if len(ids) else None


def check_image_size(width: int, height: int, field: str = "rgb") -> None:
    """Refuses images beyond :data:`MAX_IMAGE_PIXELS` (before any pixel is converted).

    Raises:
        InvalidInputError: ``width * height`` exceeds the limit; the message gives it.
    """
    if int(width) * int(height) > MAX_IMAGE_PIXELS:
        raise InvalidInputError(f"{field}.width/height", f"at most {MAX_IMAGE_PIXELS} pixels over ROS "
                                f"({MAX_IMAGE_PIXELS_TEXT}; the shared-memory segment holds one such frame)",
                                f"{width}x{height}")


def check_views_fit(views: int, width: int, height: int, field: str = "max_views") -> None:
    """Refuses, before any work, ``views`` imagined views of ``width x height`` beyond :data:`MAX_REPLY_BYTES`.

    Raises:
        InvalidInputError: too many views of that size for one reply (the message gives how many fit).
    """
    per_view = int(width) * int(height) * VIEW_BYTES_PER_PIXEL
    fit = MAX_REPLY_BYTES // per_view if per_view else views
    if views > fit:
        raise InvalidInputError(field, f"at most {fit} imagined view(s) of {width}x{height} in one ROS reply "
                                f"({per_view / 2**20:.1f} MiB each, {MAX_REPLY_BYTES // 2**20} MiB per reply)", views)


def observation_from_messages(rgb: Image, depth: Image, segmentation: Image, camera_info: CameraInfo,
                              camera_pose: Pose, labels: Mapping[int, str] | None = None,
                              cam_to_world: Sequence[float] = ()) -> Observation:
    """Builds a validated Observation from the scene fields of a SpatialQuery request or Imagine goal.

    Empty ``depth`` and ``segmentation`` mean "none given". Depth pixels that are 0 or NaN are invalid;
    a frame with no valid depth at all is refused by :class:`Observation`. ``cam_to_world`` (16 exact
    values) wins over ``camera_pose`` when given.

    Raises:
        InvalidInputError: any field is malformed, or the image is larger than :data:`MAX_IMAGE_PIXELS`.
    """
    check_image_size(rgb.width, rgb.height, "rgb")
    rgb_array = rgb_from_image(rgb, "rgb")
    height, width = rgb_array.shape[:2]
    depth_array = None if is_empty(depth) else depth_from_image(depth, "depth")
    seg_array = None if is_empty(segmentation) else segmentation_from_image(segmentation, "segmentation")
    for name, arr in (("depth", depth_array), ("segmentation", seg_array)):
        if arr is not None and arr.shape != (height, width):
            raise InvalidInputError(f"{name}.width/height", f"the rgb size {width}x{height}",
                                    f"{arr.shape[1]}x{arr.shape[0]}")
    return Observation(rgb=rgb_array, depth=depth_array, segmentation=seg_array,
                       intrinsics=intrinsics_from_camera_info(camera_info, width, height),
                       cam_to_world=pose_from_fields(cam_to_world, camera_pose, "cam_to_world", "camera_pose"),
                       labels=labels)


def observation_from_request(request: Any) -> Observation:
    """Observation from any message with the shared scene fields (SpatialQuery request, Imagine goal)."""
    return observation_from_messages(request.rgb, request.depth, request.segmentation, request.camera_info,
                                     request.camera_pose, labels_from_fields(request.label_ids, request.label_names),
                                     request.cam_to_world)


def fill_scene_fields(target: Any, observation: Observation, header: Any = None) -> Any:
    """Writes an Observation into a message's scene fields (rgb8, 32FC1, 16UC1/32SC1 ids, camera_info, pose).

    Raises:
        InvalidInputError: the image is larger than :data:`MAX_IMAGE_PIXELS` (refused before sending).
    """
    check_image_size(observation.width, observation.height, "observation.rgb")
    target.rgb = numpy_to_image(observation.rgb, "rgb8", header)
    if observation.depth is not None:
        target.depth = numpy_to_image(observation.depth, "32FC1", header)
    if observation.segmentation is not None:
        seg = observation.segmentation
        # ids usually fit 16 bits: half the bytes on the wire (the node widens to int32 again)
        small = seg.size and int(seg.min()) >= 0 and int(seg.max()) < 65536
        target.segmentation = numpy_to_image(seg, "16UC1", header) if small else numpy_to_image(seg, "32SC1", header)
    target.camera_info = camera_info_from_intrinsics(observation.intrinsics, observation.width,
                                                     observation.height, header)
    target.camera_pose = matrix_to_pose(observation.cam_to_world)
    target.cam_to_world = matrix_values(observation.cam_to_world)
    if observation.labels:
        target.label_ids = array("i", list(observation.labels))
        target.label_names = list(observation.labels.values())
    return target
