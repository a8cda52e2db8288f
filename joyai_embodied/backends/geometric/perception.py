"""From an RGB-D frame to 3D objects: lift pixels to a world point cloud, find the support plane, fit boxes.

Pipeline (:func:`lift_observation`):

1. Every valid depth pixel becomes a coloured world point (``SceneCloud``).
2. Instance ids come from the segmentation image when there is one (id 0 = table/background). Without
   one, the support plane is found by RANSAC (Open3D ``segment_plane``) and what stands on it is clustered
   (Open3D DBSCAN on a 6 mm voxel grid); clusters holding several hue classes are split by hue (stacks,
   objects just behind others), giving ids 1..n, largest first.
3. The support plane is always estimated (from id-0 points around the objects, or the RANSAC above).
4. Each object gets a full 3D box (:func:`fit_objects`): its footprint is the minimum-area rectangle of its
   points projected on the plane, its bottom is the plane (or the top of the object it stands on), its top
   is its highest point. A camera sees only the near faces, so the visible-surface mean is biased toward
   the camera; the box centre is not. Footprints cut short by an occluder or the image border are completed
   with a shape prior (cubes are square, round things are round), extended toward the hidden side.
5. Shapes are named once the support is known (:func:`_classify`): heights count from the support, and
   the side walls (straight faces or an arc) tell cubes from cylinders even with the top hidden.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ...types import CameraPose, Observation, SceneObject
from .cloud import SceneCloud
from .colors import HUE_CLASSES, color_name, hue_classes, representative_rgb
from .shapes import (FLAT_RATIO, Rectangle, WallFit, classify_shape, fit_sphere, fit_walls, min_area_rectangle,
                     rectangle_at)

#: Objects with fewer points than this are ignored (noise, slivers at the image border).
MIN_OBJECT_POINTS = 10
#: Without segmentation, smaller clusters are dropped (slivers of faces seen edge-on, noise).
MIN_CLUSTER_POINTS = 40
#: Points within this height of the support plane belong to it (metres) when clustering without segmentation.
PLANE_THRESHOLD_M = 0.006
#: Object points within this height of the support plane are left out of box fitting (metres).
SUPPORT_BAND_M = 0.005
#: Clustering without segmentation: voxel size and smallest DBSCAN radius (metres); the radius grows to
#: four pixel footprints on coarse images.
CLUSTER_VOXEL_M = 0.006
CLUSTER_EPS_M = 0.011
#: Clusters whose lowest point is higher than this above the plane are not standing on it (metres).
MAX_FLOAT_M = 0.03
#: Without segmentation, voxels up to this height are the "low band" where plates lie (metres).
LOW_BAND_M = 0.02
#: Things taller than this above the plane are not tabletop objects (walls, the robot's upper arm).
MAX_OBJECT_HEIGHT_M = 0.5
#: A footprint shorter than this share of the shape prior's expected side is completed.
_COMPLETE_BELOW = 0.85
#: Without an occluder, only a footprint this thin (a lone side face) is completed.
_SIDE_ONLY_BELOW = 0.4
_RNG_SEED = 0


@dataclass(frozen=True)
class PlaneFrame:
    """Orthonormal frame on a support plane: in-plane axes ``e1``, ``e2`` and the up ``normal``."""

    plane: np.ndarray
    e1: np.ndarray
    e2: np.ndarray

    @classmethod
    def from_plane(cls, plane: np.ndarray) -> "PlaneFrame":
        normal = np.asarray(plane[:3], dtype=np.float64)
        # e1 follows world x as closely as possible, so on a level table (a, b) are world (x, y).
        e1 = np.array([1.0, 0.0, 0.0]) - normal[0] * normal
        if np.linalg.norm(e1) < 1e-6:
            e1 = np.array([0.0, 1.0, 0.0]) - normal[1] * normal
        e1 /= np.linalg.norm(e1)
        return cls(np.asarray(plane, dtype=np.float64), e1, np.cross(normal, e1))

    @property
    def normal(self) -> np.ndarray:
        return self.plane[:3]

    def to_plane(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """World (N, 3) -> in-plane (N, 2) coordinates and height above the plane (N,)."""
        p = np.asarray(points, dtype=np.float64)
        return np.stack([p @ self.e1, p @ self.e2], axis=1), p @ self.normal + self.plane[3]

    def to_world(self, ab: np.ndarray, h: float | np.ndarray) -> np.ndarray:
        """In-plane coordinates (..., 2) and height -> world points (..., 3)."""
        ab = np.asarray(ab, dtype=np.float64)
        origin = -self.plane[3] * self.normal  # the plane point closest to the world origin
        return (origin + ab[..., :1] * self.e1 + ab[..., 1:2] * self.e2
                + np.asarray(h, dtype=np.float64)[..., None] * self.normal)


def lift_observation(observation: Observation, voxel_size_m: float = 0.0) -> tuple[SceneCloud, list[SceneObject]]:
    """Lifts an RGB-D observation into a world point cloud and the objects standing in it.

    Args:
        observation: a validated frame with depth. Its segmentation (if any) gives instance ids; its labels
            (if any) give names.
        voxel_size_m: when > 0, keep one point per voxel of this size and instance (a lighter cloud).

    Returns:
        ``(cloud, objects)``: the SceneCloud (ids 0 = support/background, plane always estimated when
        possible) and one SceneObject per instance with enough points, in id order.

    Raises:
        InvalidInputError: the observation has no depth, or ``voxel_size_m`` is negative.
    """
    from ...errors import InvalidInputError

    if observation.depth is None:
        raise InvalidInputError("depth", "a depth image (the geometric backend lifts RGB-D)", "None")
    if isinstance(voxel_size_m, bool) or not isinstance(voxel_size_m, (int, float)) or not voxel_size_m >= 0:
        raise InvalidInputError("voxel_size_m", "a size in metres >= 0", voxel_size_m)

    depth = observation.depth
    valid = np.isfinite(depth) & (depth > 0)
    height, width = depth.shape
    grid = _pixel_grid(height, width)
    if valid.all():  # simulators: every pixel has depth, so flat views replace fancy indexing
        index = slice(None)
    else:
        index = np.flatnonzero(valid)
    pixels = grid[index]
    rays = _world_rays(observation.intrinsics, observation.cam_to_world, height, width)
    z = depth.reshape(-1)[index]
    points = np.multiply(rays[index], z[:, None])
    points += observation.cam_to_world[:3, 3].astype(np.float32)
    colors = observation.rgb.reshape(-1, 3)[index]
    camera = observation.camera

    if observation.segmentation is not None:
        ids = observation.segmentation.reshape(-1)[index].astype(np.int32, copy=False)
        plane = _support_plane_from_background(points, ids, camera)
    else:
        ids, plane = _segment_without_labels(points, colors, camera, depth)
    if isinstance(index, slice):  # every pixel is a point: the images are views, no copies
        id_image, depth_image = ids.reshape(height, width), depth
    else:
        id_image = np.zeros(height * width, dtype=np.int32)
        id_image[index] = ids
        id_image = id_image.reshape(height, width)
        depth_image = np.where(valid, depth, np.nan)

    cloud = SceneCloud(points=points, colors=colors, ids=ids, pixels=pixels, plane=plane, source=camera)
    names = dict(observation.labels) if observation.labels else None
    objects = _fit_all(cloud, depth_image, id_image, names, fixed_names=False)
    if voxel_size_m > 0:
        cloud = voxel_downsample(cloud, float(voxel_size_m))
    return cloud, objects


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
    depth_image, id_image = _project_cloud(cloud)
    return _fit_all(cloud, depth_image, id_image, names, fixed_names=True)


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
    rotation = np.frombuffer(r_bytes, dtype=np.float64).reshape(3, 3)
    grid = _pixel_grid(height, width)
    rays_cam = np.empty((height * width, 3), dtype=np.float64)
    rays_cam[:, 0] = (grid[:, 1] - k[0, 2]) / k[0, 0]
    rays_cam[:, 1] = (grid[:, 0] - k[1, 2]) / k[1, 1]
    rays_cam[:, 2] = 1.0
    rays = (rays_cam @ rotation.T).astype(np.float32)
    rays.flags.writeable = False
    return rays


# -- support plane and clustering -----------------------------------------------------------------------

def _orient_up(plane: np.ndarray, camera: CameraPose) -> np.ndarray:
    """Normalises (a, b, c, d) and flips it so the camera is on the positive ("up") side."""
    plane = np.asarray(plane, dtype=np.float64) / np.linalg.norm(plane[:3])
    if plane[:3] @ camera.position + plane[3] < 0:
        plane = -plane
    return plane


def _ransac_plane(points: np.ndarray, threshold: float, iterations: int = 64) -> np.ndarray | None:
    """Numpy RANSAC plane (seeded, deterministic), refined by least squares on its inliers."""
    if len(points) < 3:
        return None
    rng = np.random.default_rng(_RNG_SEED)
    sample = points[rng.choice(len(points), size=min(len(points), 2000), replace=False)]
    triples = sample[rng.integers(0, len(sample), size=(iterations, 3))]
    normals = np.cross(triples[:, 1] - triples[:, 0], triples[:, 2] - triples[:, 0])
    norms = np.linalg.norm(normals, axis=1)
    usable = norms > 1e-9
    if not usable.any():
        return None
    normals = normals[usable] / norms[usable, None]
    offsets = -np.einsum("ij,ij->i", normals, triples[usable, 0])
    counts = np.count_nonzero(np.abs(sample @ normals.T + offsets) < threshold, axis=0)
    best = int(np.argmax(counts))
    inliers = sample[np.abs(sample @ normals[best] + offsets[best]) < threshold]
    centre = inliers.mean(axis=0)
    normal = np.linalg.svd(inliers - centre, full_matrices=False)[2][-1]
    return np.append(normal, -normal @ centre)


def _support_plane_from_background(points: np.ndarray, ids: np.ndarray, camera: CameraPose) -> np.ndarray | None:
    """The support plane from the id-0 points under and around the objects."""
    # Every 11th point is plenty for a plane and keeps this cheap on a full frame.
    points, ids = points[::11], ids[::11]
    background = ids == 0
    candidates = points[background]
    if not background.all():
        # Around the objects in 3D: the table they stand on, not the floor or the far wall.
        on_objects = points[~background]
        lo, hi = on_objects.min(axis=0), on_objects.max(axis=0)
        margin = 0.1 + 0.25 * np.maximum(hi - lo, 0)
        near = np.all((candidates >= lo - margin) & (candidates <= hi + margin), axis=1)
        if np.count_nonzero(near) >= 50:
            candidates = candidates[near]
    plane = _ransac_plane(candidates, threshold=0.005)
    return None if plane is None else _orient_up(plane, camera)


def _table_plane(o3d, sample: np.ndarray, camera: CameraPose) -> tuple[np.ndarray, np.ndarray]:
    """The support plane among the largest planes of ``sample``, and its inlier points.

    The largest plane in view is often the floor. Up to three planes are peeled off by RANSAC; of those
    parallel to the largest and holding at least 5% of the points, the one nearest the camera (the
    table top rather than the floor under it) is the support.
    """
    o3d.utility.random.seed(_RNG_SEED)
    remaining = sample
    planes: list[tuple[np.ndarray, np.ndarray]] = []
    for _ in range(3):
        if len(remaining) < max(50, 0.05 * len(sample)):
            break
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(remaining))
        model, inliers = pcd.segment_plane(distance_threshold=PLANE_THRESHOLD_M, ransac_n=3, num_iterations=200)
        inliers = np.asarray(inliers, dtype=np.int64)
        if len(inliers) < 0.05 * len(sample):
            break
        planes.append((_orient_up(np.asarray(model), camera), remaining[inliers]))
        remaining = np.delete(remaining, inliers, axis=0)
    largest = planes[0][0]
    parallel = [(plane, pts) for plane, pts in planes if abs(plane[:3] @ largest[:3]) > 0.95]
    # Signed height of the camera above each plane: the smallest is the plane nearest the camera.
    return min(parallel, key=lambda item: item[0][:3] @ camera.position + item[0][3])


def _segment_without_labels(points: np.ndarray, colors: np.ndarray, camera: CameraPose,
                            depth_image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Support plane by Open3D RANSAC, then DBSCAN clusters of what stands on it (ids 1..n, largest first).

    Clusters holding more than one hue are split by hue (:func:`_split_by_hue`): objects that touch (a
    stack) or stand closer than the clustering radius (a small object just behind a tall one) merge in
    DBSCAN, but rarely share a colour.
    """
    import open3d as o3d

    ids = np.zeros(len(points), dtype=np.int32)
    if len(points) < 3:
        return ids, None
    sample = points[:: max(1, len(points) // 30000)].astype(np.float64)
    plane, inliers = _table_plane(o3d, sample, camera)
    frame = PlaneFrame.from_plane(plane)
    ab, h = frame.to_plane(points)
    inlier_ab = frame.to_plane(inliers)[0]
    lo, hi = np.percentile(inlier_ab, [0.5, 99.5], axis=0)
    above = (h > PLANE_THRESHOLD_M) & (h < MAX_OBJECT_HEIGHT_M) & np.all((ab >= lo) & (ab <= hi), axis=1)
    if not above.any():
        return ids, plane

    # Cluster voxels in plane coordinates (a, b, height) rather than every pixel: same result at a
    # fraction of the cost, and a voxel's column says what stands where.
    keys = np.floor(np.column_stack([ab[above], h[above]]) / CLUSTER_VOXEL_M).astype(np.int64)
    voxels, voxel_of_point = np.unique(keys, axis=0, return_inverse=True)
    # Neighbouring pixels of one surface must stay within reach: a coarse image spaces them further apart.
    depth = np.median((points[above] - camera.position) @ camera.cam_to_world[:3, 2])
    eps = max(CLUSTER_EPS_M, 4.0 * depth / camera.intrinsics[0, 0])
    point_labels = _cluster_voxels(o3d, voxels, eps)[voxel_of_point.reshape(-1)]
    heights = h[above]
    # A tabletop object reaches down to the table (or stands on one that does); a cluster hanging in
    # the air above it is something else (the robot's gripper). Judged before the hue split, so the
    # upper object of a stack stays grounded through the one under it.
    grounded = _lowest_per_label(point_labels, heights) < MAX_FLOAT_M
    point_labels, parent = _split_by_hue(point_labels, hue_classes(colors[above]), heights)
    clustered = point_labels >= 0
    counts = np.bincount(point_labels[clustered], minlength=len(parent)) if clustered.any() else np.zeros(0, int)
    grounded = grounded[parent]
    for label in np.flatnonzero(~grounded & (counts >= MIN_CLUSTER_POINTS)):
        # Only the top of a small object behind a taller one shows: what would be under it is hidden.
        members = points[above][point_labels == label]
        grounded[label] = _hidden_below(members, heights[point_labels == label], frame, camera, depth_image)
    order = [label for label in np.argsort(-counts, kind="stable")
             if counts[label] >= MIN_CLUSTER_POINTS and grounded[label]]
    relabel = np.zeros(len(counts) + 1, dtype=np.int32)  # index -1 (noise) maps to the last slot = 0
    for new_id, label in enumerate(order, start=1):
        relabel[label] = new_id
    ids[above] = relabel[point_labels]
    return ids, plane


def _hidden_below(points: np.ndarray, heights: np.ndarray, frame: PlaneFrame, camera: CameraPose,
                  depth_image: np.ndarray) -> bool:
    """Whether the camera's view of the support under ``points`` is blocked by something nearer.

    The points are dropped onto the plane (a few heights on the way down) and projected into the frame;
    a gripper hanging in the air has table in view under it, an object peeking over an occluder does not.
    """
    sample = points[:: max(1, len(points) // 100)].astype(np.float64)
    drop = heights[:: max(1, len(points) // 100)].astype(np.float64)
    below = np.concatenate([sample - (f * drop)[:, None] * frame.normal for f in (0.5, 1.0)])
    world_to_cam = np.linalg.inv(camera.cam_to_world)
    cam = below @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    k = camera.intrinsics
    z = cam[:, 2]
    in_front = z > 1e-3
    u = np.round(k[0, 0] * cam[:, 0] / np.where(in_front, z, 1.0) + k[0, 2]).astype(np.int64)
    v = np.round(k[1, 1] * cam[:, 1] / np.where(in_front, z, 1.0) + k[1, 2]).astype(np.int64)
    inside = in_front & (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
    if not inside.any():
        return False
    seen = depth_image[v[inside], u[inside]]
    blocked = np.isfinite(seen) & (seen > 0) & (seen < z[inside] - 0.01)
    return bool(np.mean(blocked) > 0.8)


def _lowest_per_label(labels: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """The lowest height of every label 0..max (inf for a label without points); -1 (noise) is ignored."""
    clustered = labels >= 0
    lowest = np.full(int(labels.max()) + 1 if clustered.any() else 0, np.inf)
    np.minimum.at(lowest, labels[clustered], heights[clustered])
    return lowest


def _split_by_hue(labels: np.ndarray, hues: np.ndarray, heights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Splits every cluster that holds several hue classes into one cluster per class.

    A class counts when it has at least ``MIN_CLUSTER_POINTS`` points and 3% of its cluster; stray pixels
    of other classes (edges between two objects) become noise. A class whose points all lie in the low
    band is the plate under a standing object (its column joined the object): noise too, the plate keeps
    its own cluster from the rest of its pixels.

    Args:
        labels: (N,) cluster label per point, -1 = noise.
        hues: (N,) :func:`~.colors.hue_classes` per point.
        heights: (N,) height above the support plane (metres).

    Returns:
        ``(labels, parent)``: new (N,) labels (-1 = noise; unsplit clusters keep theirs) and, per new
        label, the cluster it came from.
    """
    clustered = labels >= 0
    if not clustered.any():
        return labels, np.zeros(0, dtype=np.int64)
    n_classes = len(HUE_CLASSES)
    combined = labels[clustered] * n_classes + hues[clustered]
    counts = np.bincount(combined, minlength=(int(labels.max()) + 1) * n_classes).reshape(-1, n_classes)
    highest = np.full(counts.size, -np.inf)
    np.maximum.at(highest, combined, heights[clustered])
    highest = highest.reshape(counts.shape)
    totals = counts.sum(axis=1, keepdims=True)
    significant = (counts >= MIN_CLUSTER_POINTS) & (counts >= 0.03 * totals)
    split = significant.sum(axis=1) >= 2
    parent = list(range(len(counts)))
    if not split.any():
        return labels, np.asarray(parent, dtype=np.int64)
    # Every (cluster, class) cell gets a label: unsplit clusters map all their classes to their old label.
    table = np.repeat(np.arange(len(counts))[:, None], n_classes, axis=1)
    next_label = len(counts)
    for cluster in np.flatnonzero(split):
        for hue in range(n_classes):
            if significant[cluster, hue] and highest[cluster, hue] > LOW_BAND_M:
                table[cluster, hue] = next_label
                parent.append(cluster)
                next_label += 1
            else:
                table[cluster, hue] = -1
    out = labels.copy()
    out[clustered] = table.reshape(-1)[combined]
    return out, np.asarray(parent, dtype=np.int64)


def _cluster_voxels(o3d, voxels: np.ndarray, eps: float) -> np.ndarray:
    """DBSCAN labels (-1 = noise) of occupied voxels given as integer (a, b, height) cells.

    Plates are barely taller than a voxel and things stand next to or on them, so one DBSCAN would merge
    them. Voxels above the low band are clustered first; a low voxel joins a tall cluster only when it
    lies in a column that cluster occupies (the lower part of that object), and the rest of the low band
    is clustered on its own (the plates).
    """
    centres = (voxels + 0.5) * CLUSTER_VOXEL_M
    tall = centres[:, 2] > LOW_BAND_M
    labels = np.full(len(voxels), -1, dtype=np.int64)

    def dbscan(mask: np.ndarray) -> np.ndarray:
        pcd = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(centres[mask]))
        return np.asarray(pcd.cluster_dbscan(eps=eps, min_points=2), dtype=np.int64)

    next_label = 0
    if tall.any():
        labels[tall] = dbscan(tall)
        next_label = int(labels.max()) + 1
        owner: dict[tuple[int, int], int] = {}
        for column, label in zip(map(tuple, voxels[tall, :2].tolist()), labels[tall].tolist()):
            if label >= 0:
                owner.setdefault(column, label)
        for i in np.flatnonzero(~tall):
            labels[i] = owner.get((int(voxels[i, 0]), int(voxels[i, 1])), -1)
    low = ~tall & (labels < 0)
    if low.any():
        low_labels = dbscan(low)
        labels[low] = np.where(low_labels >= 0, low_labels + next_label, -1)
    return labels


# -- object fitting -------------------------------------------------------------------------------------

def _project_cloud(cloud: SceneCloud) -> tuple[np.ndarray, np.ndarray]:
    """Depth and id images of ``cloud`` seen from its source camera (nearest point per pixel)."""
    camera = cloud.source
    depth = np.full(camera.height * camera.width, np.nan)  # NaN: no point lands there, nothing known
    ids = np.zeros(camera.height * camera.width, dtype=np.int32)
    if len(cloud) == 0:
        return depth.reshape(camera.height, camera.width), ids.reshape(camera.height, camera.width)
    world_to_cam = np.linalg.inv(camera.cam_to_world)
    cam = cloud.points.astype(np.float64) @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    z = cam[:, 2]
    front = z > 1e-3
    k = camera.intrinsics
    u = np.round(k[0, 0] * cam[front, 0] / z[front] + k[0, 2]).astype(np.int64)
    v = np.round(k[1, 1] * cam[front, 1] / z[front] + k[1, 2]).astype(np.int64)
    inside = (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
    flat = v[inside] * camera.width + u[inside]
    zs, point_ids = z[front][inside], cloud.ids[front][inside]
    order = np.argsort(-zs, kind="stable")  # write far to near: the nearest point wins each pixel
    depth[flat[order]] = zs[order]
    ids[flat[order]] = point_ids[order]
    return depth.reshape(camera.height, camera.width), ids.reshape(camera.height, camera.width)


@dataclass
class _Footprint:
    """Intermediate fit of one object in plane coordinates."""

    id: int
    rect: Rectangle  # the footprint (padded, completed)
    seen: Rectangle  # the rectangle of the points as seen, for shape classification
    low: float  # lowest visible height above the plane
    top: float
    shape: str
    color: str
    pixel_count: int
    sphere: tuple[np.ndarray, float, float] | None = None  # (centre (a, b), radius, RMS residual / radius)
    support: float = 0.0
    ab: np.ndarray | None = None  # the points in plane coordinates
    pixel_m: float = 0.0  # one pixel's footprint at the object's depth
    top_rect: Rectangle | None = None  # rectangle of the top face's points
    walls: WallFit | None = None  # fit of the side walls' points


def _fit_all(cloud: SceneCloud, depth_image: np.ndarray, id_image: np.ndarray, names: dict[int, str] | None,
             fixed_names: bool) -> list[SceneObject]:
    plane = cloud.plane
    if plane is None:
        # No support found: fall back to a level plane under the lowest point, so boxes still close.
        lowest = float(np.min(cloud.points[:, 2])) if len(cloud) else 0.0
        plane = np.array([0.0, 0.0, 1.0, -lowest])
    frame = PlaneFrame.from_plane(plane)
    on_objects = np.flatnonzero(cloud.ids > 0)
    _, heights = frame.to_plane(cloud.points[on_objects])
    # Points at support height carry no shape information (the box reaches the plane anyway), and they
    # are where a mask that is a pixel off its depth image leaks onto the table behind the object.
    keep = on_objects[heights > SUPPORT_BAND_M]
    kept_ids = cloud.ids[keep]
    pixel_counts = np.bincount(cloud.ids[on_objects])  # every point of each instance, support band included
    footprints = []
    for instance_id in np.unique(kept_ids):
        members = keep[kept_ids == instance_id]
        if len(members) < MIN_OBJECT_POINTS:
            continue
        footprints.append(_fit_footprint(int(instance_id), cloud.points[members], cloud.colors[members], frame,
                                         cloud.source))
        footprints[-1].pixel_count = int(pixel_counts[instance_id])
    _resolve_supports(footprints)
    for fp in footprints:
        _classify(fp)

    objects, used = [], set()
    for fp in footprints:
        _complete_footprint(fp, frame, cloud.source, depth_image, id_image)
        if names and fp.id in names:
            name = names[fp.id]
        else:
            name = _unique(f"{fp.color} {fp.shape}".strip(), used)
        used.add(name.lower())
        objects.append(_to_scene_object(fp, name, frame, cloud.source, depth_image, id_image))
    return objects


def _unique(name: str, used: set[str]) -> str:
    if name.lower() not in used:
        return name
    n = 2
    while f"{name} {n}".lower() in used:
        n += 1
    return f"{name} {n}"


def _fit_footprint(instance_id: int, points: np.ndarray, colors: np.ndarray, frame: PlaneFrame,
                   camera: CameraPose) -> _Footprint:
    """Measures one object's points; its shape is named later, once its support is known."""
    ab, h = frame.to_plane(points)
    low, top = (float(value) for value in np.percentile(h, [0.5, 99.5]))
    seen = min_area_rectangle(ab)
    # Points are pixel centres: the surface reaches half a pixel beyond the outermost ones on each side.
    depth = float(np.median((points - camera.position) @ camera.cam_to_world[:3, 2]))
    pixel_m = depth / camera.intrinsics[0, 0]
    rect = Rectangle(seen.center, seen.size + pixel_m, seen.axes, seen.hull_area)
    sphere = None
    if len(points) >= 20:
        centre, radius, residual = fit_sphere(points)
        if radius > 1e-3:
            sphere = (frame.to_plane(centre[None])[0][0], radius, residual / radius)
    top_band = max(0.004, 0.08 * max(top - low, 1e-3))
    top_face = ab[h >= top - top_band]
    return _Footprint(id=instance_id, rect=rect, seen=seen, low=low, top=top, shape="object",
                      color=color_name(representative_rgb(colors)), pixel_count=int(len(points)),
                      sphere=sphere, ab=ab, pixel_m=pixel_m,
                      top_rect=min_area_rectangle(top_face) if len(top_face) >= 20 else None,
                      walls=fit_walls(ab[h < top - top_band]))


def _classify(fp: _Footprint) -> None:
    """Names the shape from the height above its support; fits the box of cubes and cylinders to their walls.

    The height counts from the support: a sphere resting on a plate is as tall as it is round only above the
    plate. A cube whose top is hidden (something stands on it) shows only its side faces, whose minimum-area
    rectangle is tilted, so its footprint is re-fitted square to the faces. A cylinder's wall arc gives its
    centre and radius even when half of it is hidden.
    """
    height = max(fp.top - fp.support, 1e-3)
    sphere = fp.sphere
    fp.shape = classify_shape(fp.seen, height, sphere[2] if sphere else None,
                              sphere_diameter=2 * sphere[1] if sphere else None, top=fp.top_rect, walls=fp.walls)
    if fp.shape != "sphere":
        fp.sphere = None
    if fp.walls is None:
        return
    if fp.shape == "cube" and fp.walls.flat:
        seen = rectangle_at(fp.ab, fp.walls.edge_angle)
        fp.seen = seen
        fp.rect = Rectangle(seen.center, seen.size + fp.pixel_m, seen.axes, seen.hull_area)
    elif fp.shape == "cylinder" and fp.walls.round:
        centre, radius, _ = fp.walls.circle
        if radius < 0.75 * float(np.max(fp.rect.size)):  # not a stray arc bigger than the object
            fp.rect = Rectangle(centre, np.full(2, 2 * radius), np.eye(2), fp.rect.hull_area)


def _resolve_supports(footprints: list[_Footprint]) -> None:
    """Bottom of each object: the plane, or the top of an object under it (stacked objects)."""
    for fp in sorted(footprints, key=lambda f: f.low):
        below = [other for other in footprints if other is not fp and other.top <= fp.low + 0.015
                 and _over(fp.rect.center, other)]
        support = max((other.top for other in below), default=0.0)
        # Only something that lifts it counts: a plate's rim under a cube's edge is not a support.
        if support > SUPPORT_BAND_M and fp.low > support - SUPPORT_BAND_M:
            fp.support = support


def _over(point: np.ndarray, base: _Footprint, tolerance: float = 0.01) -> bool:
    """Whether an in-plane point lies over ``base``'s footprint (within ``tolerance`` metres).

    Flat bases are plates, round: their rectangle's corners are table, where a sphere beside the plate
    stands (its lowest visible point is well above the table, so height alone does not tell).
    """
    if not base.rect.contains(point, tolerance=tolerance):
        return False
    if base.top - base.support >= FLAT_RATIO * float(np.max(base.rect.size)):
        return True
    local = base.rect.axes.T @ (np.asarray(point, dtype=np.float64) - base.rect.center)
    return bool(np.linalg.norm(local / (base.rect.size / 2 + tolerance)) <= 1.0)


def _occluded_direction(fp: _Footprint, frame: PlaneFrame, camera: CameraPose, depth_image: np.ndarray,
                        id_image: np.ndarray) -> np.ndarray | None:
    """In-plane unit direction toward the part of the object hidden by an occluder or the image border."""
    rows, cols = np.nonzero(id_image == fp.id)
    if len(rows) == 0:
        return None
    full_height, full_width = id_image.shape
    # Work on the object's bounding box plus a 2-pixel ring, not the whole frame.
    r0, r1 = max(rows.min() - 2, 0), min(rows.max() + 3, full_height)
    c0, c1 = max(cols.min() - 2, 0), min(cols.max() + 3, full_width)
    ids, depth = id_image[r0:r1, c0:c1], depth_image[r0:r1, c0:c1]
    mask = ids == fp.id
    height, width = mask.shape
    pull = np.zeros(2)
    count = 0
    for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        for step in (1, 2):
            shifted_ids = np.full_like(ids, -1)
            shifted_depth = np.full(depth.shape, np.inf)
            rs = slice(max(step * dr, 0), height + min(step * dr, 0))
            rd = slice(max(-step * dr, 0), height + min(-step * dr, 0))
            cs = slice(max(step * dc, 0), width + min(step * dc, 0))
            cd = slice(max(-step * dc, 0), width + min(-step * dc, 0))
            shifted_ids[rd, cd] = ids[rs, cs]
            shifted_depth[rd, cd] = depth[rs, cs]
            # A neighbour of another object, nearer to the camera, hides this object's continuation.
            occluder = mask & (shifted_ids > 0) & (shifted_ids != fp.id) & (shifted_depth < depth - 0.01)
            n = int(np.count_nonzero(occluder))
            pull += n * np.array([dc, dr], dtype=np.float64)
            count += n
    border = [(cols == 0).sum(), (cols == full_width - 1).sum(), (rows == 0).sum(),
              (rows == full_height - 1).sum()]
    pull += np.array([-border[0] + border[1], -border[2] + border[3]], dtype=np.float64)
    count += int(sum(border))
    if count < 4 or np.linalg.norm(pull) < 1e-9:
        return None
    # Map the image direction (du, dv) to the plane through the Jacobian of the projection at the object.
    centre = frame.to_world(fp.rect.center, fp.top)
    delta = 0.01
    samples = np.stack([centre, centre + delta * frame.e1, centre + delta * frame.e2])
    world_to_cam = np.linalg.inv(camera.cam_to_world)
    cam = samples @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    k = camera.intrinsics
    uv = np.stack([k[0, 0] * cam[:, 0] / cam[:, 2], k[1, 1] * cam[:, 1] / cam[:, 2]], axis=1)
    jacobian = np.stack([uv[1] - uv[0], uv[2] - uv[0]], axis=1)
    if abs(np.linalg.det(jacobian)) < 1e-9:
        return None
    direction = np.linalg.solve(jacobian, pull / count)
    norm = np.linalg.norm(direction)
    return direction / norm if norm > 1e-9 else None


def _complete_footprint(fp: _Footprint, frame: PlaneFrame, camera: CameraPose, depth_image: np.ndarray,
                        id_image: np.ndarray) -> None:
    """Extends a footprint cut short by occlusion to the shape prior's size, toward the hidden side."""
    if fp.shape not in ("cube", "cylinder", "plate", "sphere") or fp.sphere is not None:
        return
    side = float(np.max(fp.rect.size))
    short = fp.rect.size < _COMPLETE_BELOW * side
    if not short.any():
        return
    hidden = _occluded_direction(fp, frame, camera, depth_image, id_image)
    if hidden is None:
        cam_ab, cam_h = frame.to_plane(camera.position[None])
        reach = float(np.linalg.norm(fp.rect.center - cam_ab[0]))
        sees_top = cam_h[0] - fp.top > 0.15 * reach  # looking down on it by more than ~9 degrees
        if sees_top or not (fp.rect.size < _SIDE_ONLY_BELOW * side).any():
            return  # nothing hides it: the footprint seen is what the object is
        # Only a side face was seen (a camera level with the top): the unseen depth lies away from it.
        hidden = fp.rect.center - cam_ab[0]
    centre, size = fp.rect.center.copy(), fp.rect.size.copy()
    for axis in np.flatnonzero(short):
        direction = fp.rect.axes[:, axis]
        sign = 1.0 if direction @ hidden >= 0 else -1.0
        centre += sign * direction * (side - size[axis]) / 2
        size[axis] = side
    fp.rect = Rectangle(centre, size, fp.rect.axes, fp.rect.hull_area)


def _to_scene_object(fp: _Footprint, name: str, frame: PlaneFrame, camera: CameraPose,
                     depth_image: np.ndarray, id_image: np.ndarray) -> SceneObject:
    height = max(fp.top - fp.support, 1e-3)
    if fp.sphere is not None:
        centre_ab = fp.sphere[0]
        diameter = float(np.clip(2 * fp.sphere[1], 0.8 * height, 1.25 * height))
        size_ab = np.array([diameter, diameter])
        axes = np.eye(2)
    elif fp.shape in ("cylinder", "plate"):
        centre_ab, axes = fp.rect.center, np.eye(2)
        diameter = float(np.max(fp.rect.size))
        size_ab = np.array([diameter, diameter])
    else:
        centre_ab, size_ab, axes = fp.rect.center, fp.rect.size, fp.rect.axes
    centroid = frame.to_world(centre_ab, fp.support + height / 2)
    rotation = np.stack([axes[0, 0] * frame.e1 + axes[1, 0] * frame.e2,
                         axes[0, 1] * frame.e1 + axes[1, 1] * frame.e2, frame.normal], axis=1)
    extent = np.array([size_ab[0], size_ab[1], height])
    visible = _visible_fraction(fp.id, fp.shape, centroid, extent, rotation, camera, depth_image, id_image)
    return SceneObject(id=fp.id, name=name, centroid=centroid, extent=extent, obb_rotation=rotation,
                       pixel_count=fp.pixel_count, visible_fraction=visible, color=fp.color, shape=fp.shape)


@functools.lru_cache(maxsize=8)
def _surface_samples(shape: str) -> tuple[np.ndarray, np.ndarray]:
    """Points and outward normals on a unit shape centred at 0 with half-size 0.5 (slightly inset).

    Cached per shape word: the returned arrays are shared and read-only.
    """
    points, normals = _build_surface_samples(shape)
    points.flags.writeable = False
    normals.flags.writeable = False
    return points, normals


def _build_surface_samples(shape: str) -> tuple[np.ndarray, np.ndarray]:
    if shape == "sphere":
        n = 300
        i = np.arange(n) + 0.5
        polar, azimuth = np.arccos(1 - 2 * i / n), np.pi * (1 + 5 ** 0.5) * i
        normals = np.stack([np.cos(azimuth) * np.sin(polar), np.sin(azimuth) * np.sin(polar), np.cos(polar)], 1)
        return 0.45 * normals, normals
    grid = (np.arange(8) + 0.5) / 8 * 0.9 - 0.45
    g1, g2 = [a.ravel() for a in np.meshgrid(grid, grid)]
    if shape in ("cylinder", "plate"):
        angles = np.linspace(0, 2 * np.pi, 32, endpoint=False)
        heights = (np.arange(6) + 0.5) / 6 * 0.9 - 0.45
        ang, hh = [a.ravel() for a in np.meshgrid(angles, heights)]
        side_n = np.stack([np.cos(ang), np.sin(ang), np.zeros_like(ang)], 1)
        side_p = np.stack([0.5 * np.cos(ang), 0.5 * np.sin(ang), hh], 1)
        disc = np.stack([g1, g2], 1)
        disc = disc[np.linalg.norm(disc, axis=1) < 0.45]
        top_p = np.hstack([disc, np.full((len(disc), 1), 0.5)])
        top_n = np.tile([0.0, 0.0, 1.0], (len(disc), 1))
        return np.vstack([side_p, top_p]), np.vstack([side_n, top_n])
    points, normals = [], []
    for axis in range(3):
        for sign in (1.0, -1.0):
            if axis == 2 and sign < 0:
                continue  # the bottom face rests on its support: never visible
            face = np.zeros((len(g1), 3))
            others = [a for a in range(3) if a != axis]
            face[:, others[0]], face[:, others[1]], face[:, axis] = g1, g2, 0.5 * sign
            normal = np.zeros((len(g1), 3))
            normal[:, axis] = sign
            points.append(face)
            normals.append(normal)
    return np.vstack(points), np.vstack(normals)


def _visible_fraction(instance_id: int, shape: str, centroid: np.ndarray, extent: np.ndarray,
                      rotation: np.ndarray, camera: CameraPose, depth_image: np.ndarray,
                      id_image: np.ndarray) -> float:
    """Share of the fitted shape's camera-facing surface that is not hidden, weighted by projected area.

    A surface sample is hidden when it falls outside the image, on a pixel without depth (nothing known
    there), or behind something else (a nearer depth with another id). Samples landing just off the
    object's silhouette (pixel rounding) see background behind them and count as visible.
    """
    local_points, local_normals = _surface_samples(shape)
    points = centroid + (local_points * extent) @ rotation.T
    normals = (local_normals / np.maximum(extent, 1e-6)) @ rotation.T  # a scaled shape's normals
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    to_camera = camera.position - points
    facing_cos = np.einsum("ij,ij->i", normals, to_camera) / np.linalg.norm(to_camera, axis=1)
    facing = facing_cos > 0
    if shape == "sphere":
        facing &= local_points[:, 2] > -0.3  # the underside near the support is hidden by the support
    if not facing.any():
        return 0.0
    weights = facing_cos[facing]
    world_to_cam = np.linalg.inv(camera.cam_to_world)
    cam = points[facing] @ world_to_cam[:3, :3].T + world_to_cam[:3, 3]
    k = camera.intrinsics
    with np.errstate(divide="ignore", invalid="ignore"):
        u = np.round(k[0, 0] * cam[:, 0] / cam[:, 2] + k[0, 2])
        v = np.round(k[1, 1] * cam[:, 1] / cam[:, 2] + k[1, 2])
    inside = (cam[:, 2] > 0) & (u >= 0) & (u < camera.width) & (v >= 0) & (v < camera.height)
    rows, cols = v[inside].astype(int), u[inside].astype(int)
    seen = np.zeros(len(cam), dtype=bool)
    tolerance = 0.01 + 2.0 * cam[inside, 2] / k[0, 0]
    pixel_depth = depth_image[rows, cols]
    own = id_image[rows, cols] == instance_id
    # Seen: the pixel shows this object, or something farther (the sample's own pixel, rounded off the
    # silhouette). Hidden: something nearer, no depth at all (unknown), or outside the image.
    seen[inside] = own | (np.isfinite(pixel_depth) & (pixel_depth >= cam[inside, 2] - tolerance))
    return float(np.sum(weights[seen]) / np.sum(weights))
