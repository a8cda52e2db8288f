"""From an RGB-D frame to 3D objects: the pipeline, split by job into the modules it calls.

:func:`lift_observation`:

1. Every valid depth pixel becomes a coloured world point (``SceneCloud``), through per-pixel rays cached
   per camera (:func:`_world_rays`).
2. Instance ids come from the segmentation image when there is one (id 0 = table/background; mask-rim
   pixels whose depth is not their object's surface are dropped, :mod:`.mask_rim`), else from
   :mod:`.segmentation` (support plane by RANSAC, DBSCAN clusters of what stands on it, split by hue).
3. The support plane is always estimated (:mod:`.support_plane`: from id-0 points around the objects,
   or the RANSAC above).
4. Each object gets a full 3D box, support and shape (:mod:`.boxes`) and a visible fraction
   (:mod:`.visibility`).

:func:`fit_objects` re-fits the boxes of an edited cloud, judged as its source camera would see it.
Every threshold is a named constant in the module that uses it.
"""

from __future__ import annotations

import functools

import numpy as np

from ...camera import grid_rays
from ...errors import InvalidInputError
from ...types import Observation, SceneObject
from .boxes import fit_all
from .cloud import SceneCloud
from .configuration_geometric import DEPTH_FILTERS  # "auto": clean sensor-like depth only
from .depth_filter import clean_depth, is_sensor_depth
from .mask_rim import drop_rim_bleed
from .segmentation import segment_without_labels
from .support_plane import PlaneFrame, plane_from_background
from .visibility import project_cloud

__all__ = ["PlaneFrame", "fit_objects", "lift_observation", "voxel_downsample"]


#: Support noise: every n-th background point, those within this band of the plane (metres), at least this many.
NOISE_STRIDE = 13
NOISE_BAND_M = 0.02
NOISE_MIN_POINTS = 50


def lift_observation(observation: Observation, voxel_size_m: float = 0.0,
                     depth_filter: str = "auto") -> tuple[SceneCloud, list[SceneObject]]:
    """Lifts an RGB-D observation into a world point cloud and the objects standing in it.

    Args:
        observation: a validated frame with depth. Its segmentation (if any) gives instance ids; its labels
            (if any) give names.
        voxel_size_m: when > 0, keep one point per voxel of this size and instance (a lighter cloud).
        depth_filter: one of :data:`DEPTH_FILTERS`: drop flying pixels and mask-edge pixels
            (:func:`.depth_filter.clean_depth`) before lifting.

    Returns:
        ``(cloud, objects)``: the SceneCloud (ids 0 = support/background, plane always estimated when
        possible) and one SceneObject per instance with enough points, in id order.

    Raises:
        InvalidInputError: the observation has no depth, ``voxel_size_m`` is negative, or (field ``depth``,
            without a segmentation image) the depth shows no support plane to find objects on: too few
            valid pixels (under :data:`~.support_plane.MIN_PLANE_POINTS`) or too noisy.
    """
    if observation.depth is None:
        raise InvalidInputError("depth", "a depth image (the geometric backend lifts RGB-D)", "None")
    if isinstance(voxel_size_m, bool) or not isinstance(voxel_size_m, (int, float)) or not voxel_size_m >= 0:
        raise InvalidInputError("voxel_size_m", "a size in metres >= 0", voxel_size_m)

    if depth_filter not in DEPTH_FILTERS:
        raise InvalidInputError("depth_filter", f"one of {list(DEPTH_FILTERS)}", repr(depth_filter))

    depth = observation.depth
    segmentation = observation.segmentation
    filtered = depth_filter == "on" or (depth_filter == "auto" and is_sensor_depth(depth))
    if filtered:  # sensor depth: clean_depth also erodes every mask's rim
        depth = clean_depth(depth, segmentation)
    elif segmentation is not None:  # exact depth, but a separate segmentation pass bleeds: see mask_rim
        depth = drop_rim_bleed(segmentation, depth)
    valid = np.isfinite(depth) & (depth > 0)
    height, width = depth.shape
    grid = _pixel_grid(height, width)
    every = bool(valid.all())  # simulators: every pixel has depth, so flat views replace any gather
    keep = valid.reshape(-1)

    def gather(values: np.ndarray) -> np.ndarray:
        # np.compress with a boolean mask is ~4x faster than fancy indexing with the same rows.
        return values if every else np.compress(keep, values, axis=0)

    pixels = gather(grid)
    rays = _world_rays(observation.intrinsics, observation.cam_to_world, height, width)
    z = gather(depth.reshape(-1))
    points = np.multiply(gather(rays), z[:, None])
    points += observation.cam_to_world[:3, 3].astype(np.float32)
    colors = gather(observation.rgb.reshape(-1, 3))
    camera = observation.camera

    if segmentation is not None:
        ids = gather(segmentation.reshape(-1)).astype(np.int32, copy=False)
        plane = plane_from_background(points, ids, camera)
    else:
        ids, plane = segment_without_labels(points, colors, camera, depth)
    if every:  # every pixel is a point: the images are views, no copies
        id_image, depth_image = ids.reshape(height, width), depth
    else:
        id_image = np.zeros(height * width, dtype=np.int32)
        np.place(id_image, keep, ids)
        id_image = id_image.reshape(height, width)
        depth_image = depth if filtered else np.where(valid, depth, np.nan)  # clean_depth marks holes NaN

    cloud = SceneCloud(points=points, colors=colors, ids=ids, pixels=pixels, plane=plane, source=camera)
    names = dict(observation.labels) if observation.labels else None
    noise = support_noise(points, ids, plane) if filtered else 0.0
    objects = fit_all(cloud, depth_image, id_image, names, noise_m=noise)
    if voxel_size_m > 0:
        cloud = voxel_downsample(cloud, float(voxel_size_m))
    return cloud, objects


def support_noise(points: np.ndarray, ids: np.ndarray, plane: np.ndarray | None) -> float:
    """Robust RMS (1.4826 x median absolute residual) of the background points near the support plane."""
    if plane is None:
        return 0.0
    sample = points[::NOISE_STRIDE][ids[::NOISE_STRIDE] == 0]
    residual = np.abs(sample @ plane[:3] + plane[3])
    near = residual[residual < NOISE_BAND_M]
    return float(1.4826 * np.median(near)) if len(near) >= NOISE_MIN_POINTS else 0.0


def fit_objects(cloud: SceneCloud, names: dict[int, str] | None = None) -> list[SceneObject]:
    """Fits one SceneObject per instance id > 0 of ``cloud`` (used after edits change the cloud).

    Visibility is judged by re-projecting the cloud into its source camera, so a moved object reports
    how much of it the original camera would see at its new place.

    Args:
        cloud: the (possibly edited) scene cloud.
        names: ``{id: name}`` to keep; ids not in it are named from colour and shape.

    Returns:
        The objects in id order.
    """
    depth_image, id_image = project_cloud(cloud)
    return fit_all(cloud, depth_image, id_image, names)


def voxel_downsample(cloud: SceneCloud, voxel_size_m: float) -> SceneCloud:
    """Keeps the first point of every (voxel, instance id) cell."""
    keys = np.floor(cloud.points / voxel_size_m).astype(np.int64)
    keyed = np.concatenate([keys, cloud.ids[:, None].astype(np.int64)], axis=1)
    _, keep = np.unique(keyed, axis=0, return_index=True)
    mask = np.zeros(len(cloud), dtype=bool)
    mask[keep] = True
    return cloud.select(mask)


@functools.lru_cache(maxsize=4)
def _pixel_grid(height: int, width: int) -> np.ndarray:
    """(H*W, 2) int32 (row, col) of every pixel, row-major; cached per image size (read-only)."""
    rows, cols = np.divmod(np.arange(height * width, dtype=np.int32), np.int32(width))
    grid = np.stack([rows, cols], axis=1)
    grid.flags.writeable = False
    return grid


def _world_rays(intrinsics: np.ndarray, cam_to_world: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H*W, 3) float32 world direction of every pixel's ray, scaled so that camera z = 1.

    A world point is then ``ray * depth + camera position``. Cached for the last few cameras: a robot's
    or simulator's camera rarely moves between frames, and this is most of the cost of lifting a frame.
    """
    return _world_rays_cached(intrinsics.tobytes(), cam_to_world[:3, :3].tobytes(), height, width)


@functools.lru_cache(maxsize=4)
def _world_rays_cached(k_bytes: bytes, r_bytes: bytes, height: int, width: int) -> np.ndarray:
    k = np.frombuffer(k_bytes, dtype=np.float64).reshape(3, 3)
    pose = np.eye(4)
    pose[:3, :3] = np.frombuffer(r_bytes, dtype=np.float64).reshape(3, 3)
    rays = grid_rays(k, pose, height, width)
    rays.flags.writeable = False
    return rays
