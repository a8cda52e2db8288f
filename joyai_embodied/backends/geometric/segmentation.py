"""Instance ids without a segmentation image: the support plane, then clusters of what stands on it.

:func:`segment_without_labels` finds the table (:func:`.support_plane.table_plane`), clusters the points
above it with Open3D DBSCAN on a voxel grid in plane coordinates, splits clusters that hold several hue
classes, drops clusters hanging in the air, and numbers the rest 1..n, largest first (0 = table and
background). With a segmentation image none of this runs: its ids are the objects.
"""

from __future__ import annotations

import numpy as np

from ...camera import image_pixels
from ...types import CameraPose
from .colors import HUE_CLASSES, hue_classes
from .support_plane import PLANE_THRESHOLD_M, PlaneFrame, table_plane

#: Smaller clusters are dropped (slivers of faces seen edge-on, depth noise).
MIN_CLUSTER_POINTS = 40
#: Voxel size (metres) clustered instead of every pixel: same clusters at a fraction of the cost.
CLUSTER_VOXEL_M = 0.006
#: Smallest DBSCAN radius (metres): neighbouring voxels of one surface, with a voxel of slack.
CLUSTER_EPS_M = 0.011
#: The radius grows to this many pixel footprints on coarse images, whose pixels lie further apart.
CLUSTER_EPS_PX = 4.0
#: DBSCAN core points need this many neighbours (two voxels make a surface patch).
CLUSTER_MIN_NEIGHBOURS = 2
#: Clusters whose lowest point is higher than this above the plane are not standing on it (metres).
MAX_FLOAT_M = 0.03
#: Voxels up to this height are the "low band" where plates lie (metres): a plate is ~1 cm tall.
LOW_BAND_M = 0.02
#: Things taller than this above the plane are not tabletop objects (walls, the robot's upper arm).
MAX_OBJECT_HEIGHT_M = 0.5
#: Points outside this percentile range of the table's inliers are off the table (floor, walls).
TABLE_PERCENTILES = (0.5, 99.5)
#: At most this many points are given to Open3D's plane search (a plane needs few; a frame has 300k).
PLANE_SAMPLE_POINTS = 30000
#: A hue class splits its cluster when it holds this share of it (and MIN_CLUSTER_POINTS): fewer are edges.
MIN_HUE_SHARE = 0.03
#: A support pixel is hidden when something nearer than it by this much (metres) shows there.
OCCLUDER_DEPTH_M = 0.01
#: A floating cluster is kept when this share of the support under it is hidden (it peeks over an occluder).
HIDDEN_BELOW_SHARE = 0.8
#: Points per cluster dropped to the plane to test what hides the support under it ...
HIDDEN_BELOW_SAMPLES = 100
#: ... and the shares of their height they are dropped by (half-way: the lower part of a tall occluder).
HIDDEN_BELOW_DROPS = (0.5, 1.0)


def segment_without_labels(points: np.ndarray, colors: np.ndarray, camera: CameraPose,
                           depth_image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Support plane by Open3D RANSAC, then DBSCAN clusters of what stands on it (ids 1..n, largest first).

    Clusters holding more than one hue are split by hue (:func:`split_by_hue`): objects that touch (a
    stack) or stand closer than the clustering radius (a small object just behind a tall one) merge in
    DBSCAN, but rarely share a colour.

    Returns:
        ``(ids, plane)``: (N,) int32 instance id per point (0 = support/background) and the plane.

    Raises:
        InvalidInputError: (field ``depth``) no support plane in the depth (too few or too noisy pixels).
    """
    import open3d as o3d

    ids = np.zeros(len(points), dtype=np.int32)
    sample = points[:: max(1, len(points) // PLANE_SAMPLE_POINTS)].astype(np.float64)
    plane, inliers = table_plane(o3d, sample, camera)
    frame = PlaneFrame.from_plane(plane)
    ab, h = frame.to_plane(points)
    inlier_ab = frame.to_plane(inliers)[0]
    lo, hi = np.percentile(inlier_ab, TABLE_PERCENTILES, axis=0)
    above = (h > PLANE_THRESHOLD_M) & (h < MAX_OBJECT_HEIGHT_M) & np.all((ab >= lo) & (ab <= hi), axis=1)
    if not above.any():
        return ids, plane

    # Cluster voxels in plane coordinates (a, b, height) rather than every pixel: same result at a
    # fraction of the cost, and a voxel's column says what stands where.
    keys = np.floor(np.column_stack([ab[above], h[above]]) / CLUSTER_VOXEL_M).astype(np.int64)
    voxels, voxel_of_point = np.unique(keys, axis=0, return_inverse=True)
    # Neighbouring pixels of one surface must stay within reach: a coarse image spaces them further apart.
    depth = np.median((points[above] - camera.position) @ camera.cam_to_world[:3, 2])
    eps = max(CLUSTER_EPS_M, CLUSTER_EPS_PX * depth / camera.intrinsics[0, 0])
    point_labels = cluster_voxels(o3d, voxels, eps)[voxel_of_point.reshape(-1)]
    heights = h[above]
    # A tabletop object reaches down to the table (or stands on one that does); a cluster hanging in
    # the air above it is something else (the robot's gripper). Judged before the hue split, so the
    # upper object of a stack stays grounded through the one under it.
    grounded = lowest_per_label(point_labels, heights) < MAX_FLOAT_M
    point_labels, parent = split_by_hue(point_labels, hue_classes(colors[above]), heights)
    clustered = point_labels >= 0
    counts = np.bincount(point_labels[clustered], minlength=len(parent)) if clustered.any() else np.zeros(0, int)
    grounded = grounded[parent]
    for label in np.flatnonzero(~grounded & (counts >= MIN_CLUSTER_POINTS)):
        # Only the top of a small object behind a taller one shows: what would be under it is hidden.
        members = points[above][point_labels == label]
        grounded[label] = hidden_below(members, heights[point_labels == label], frame, camera, depth_image)
    order = [label for label in np.argsort(-counts, kind="stable")
             if counts[label] >= MIN_CLUSTER_POINTS and grounded[label]]
    relabel = np.zeros(len(counts) + 1, dtype=np.int32)  # index -1 (noise) maps to the last slot = 0
    for new_id, label in enumerate(order, start=1):
        relabel[label] = new_id
    ids[above] = relabel[point_labels]
    return ids, plane


def hidden_below(points: np.ndarray, heights: np.ndarray, frame: PlaneFrame, camera: CameraPose,
                 depth_image: np.ndarray) -> bool:
    """Whether the camera's view of the support under ``points`` is blocked by something nearer.

    The points are dropped onto the plane (a few heights on the way down) and projected into the frame;
    a gripper hanging in the air has table in view under it, an object peeking over an occluder does not.
    """
    stride = max(1, len(points) // HIDDEN_BELOW_SAMPLES)
    sample = points[::stride].astype(np.float64)
    drop = heights[::stride].astype(np.float64)
    below = np.concatenate([sample - (f * drop)[:, None] * frame.normal for f in HIDDEN_BELOW_DROPS])
    rows, cols, z, inside = image_pixels(below, camera)
    if not inside.any():
        return False
    seen = depth_image[rows[inside], cols[inside]]
    blocked = np.isfinite(seen) & (seen > 0) & (seen < z[inside] - OCCLUDER_DEPTH_M)
    return bool(np.mean(blocked) > HIDDEN_BELOW_SHARE)


def lowest_per_label(labels: np.ndarray, heights: np.ndarray) -> np.ndarray:
    """The lowest height of every label 0..max (inf for a label without points); -1 (noise) is ignored."""
    clustered = labels >= 0
    lowest = np.full(int(labels.max()) + 1 if clustered.any() else 0, np.inf)
    np.minimum.at(lowest, labels[clustered], heights[clustered])
    return lowest


def split_by_hue(labels: np.ndarray, hues: np.ndarray, heights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Splits every cluster that holds several hue classes into one cluster per class.

    A class counts when it has at least :data:`MIN_CLUSTER_POINTS` points and :data:`MIN_HUE_SHARE` of its
    cluster; stray pixels of other classes (edges between two objects) become noise. A class whose points
    all lie in the low band is the plate under a standing object (its column joined the object): noise
    too, the plate keeps its own cluster from the rest of its pixels.

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
    significant = (counts >= MIN_CLUSTER_POINTS) & (counts >= MIN_HUE_SHARE * totals)
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


def cluster_voxels(o3d, voxels: np.ndarray, eps: float) -> np.ndarray:
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
        return np.asarray(pcd.cluster_dbscan(eps=eps, min_points=CLUSTER_MIN_NEIGHBOURS), dtype=np.int64)

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
