"""Novel views of a :class:`SceneCloud`: forward warping with a z-buffer, crack repair and hole filling.

What a rendered pixel means (``ImaginedView.valid_mask``):

- **valid** (True): the nearest point along the pixel's ray is an *observed* point (one lifted from the
  source image), splatted to its footprint, or the pixel is a one-pixel crack between two neighbouring
  observed points of the same surface (an interpolation of what was seen, not an invention).
- **filled** (False, but rgb/depth/segmentation set): a hole at most ``2 * hole_fill_px`` pixels wide,
  filled from the farther of the rendered pixels on its two sides (disocclusions show background, not the
  occluder), or a point added by an edit (``pixels == -1``: the support plane a moved object uncovered).
- **unknown** (False, rgb 0, depth NaN, segmentation 0): nothing was observed there. Surfaces the source
  camera never saw (the table behind an object, back sides, outside its frustum) stay unknown: the
  renderer does not extend the support plane into them.

Everything is vectorised numpy; the z-buffer is one ``np.minimum.at`` over packed (depth, point index)
keys, so its cost is linear in the number of points (~15 ms for 640x480 on one core, see
``benchmarks/eval_imagination.py --speed``).
"""

from __future__ import annotations

import numpy as np

from ...errors import InvalidInputError
from ...types import CameraPose, ImaginedView
from .cloud import SceneCloud

#: Points closer to the camera than this (metres) are clipped, as a real camera's near plane would.
NEAR_M = 0.02
#: Depth quantum of the z-buffer keys (metres). Ties inside one quantum go to the lower point index.
DEPTH_QUANTUM_M = 1e-4
#: Largest splat side in pixels; a point seen from more than 4x closer than in the source leaves gaps.
MAX_SPLAT_PX = 4
#: A point spanning up to 1 + this many pixels still gets a 1-pixel splat: the few one-pixel cracks that
#: leaves are closed by crack repair, which is cheaper than a 2x2 splat for every point.
SPLAT_SLACK_PX = 0.25
#: Two pixels belong to one surface when their depths differ by less than this fraction (plus 5 mm).
SAME_SURFACE_REL = 0.03
SAME_SURFACE_ABS_M = 0.005

# Directions checked for "neighbours on both sides": horizontal, vertical and the two diagonals.
_AXES = ((0, 1), (1, 0), (1, 1), (1, -1))


def render_cloud(cloud: SceneCloud, camera: CameraPose, hole_fill_px: int = 2) -> ImaginedView:
    """Renders ``cloud`` as seen by ``camera``.

    Args:
        cloud: the coloured, instance-labelled point cloud (world frame).
        camera: the camera to render from (pose, intrinsics, size).
        hole_fill_px: holes whose pixels each lie within this many pixels of rendered content on two
            opposite sides are filled (and marked invalid); 0 disables hole filling.

    Returns:
        ImaginedView with rgb (0 where unknown), depth (float32 metres, NaN where unknown), segmentation
        (instance ids, 0 where unknown), the camera's intrinsics and pose, ``valid_mask`` (see module
        docstring) and ``source="geometric"``.

    Raises:
        InvalidInputError: ``camera`` is not a CameraPose, or ``hole_fill_px`` is not in [0, 16].
    """
    if not isinstance(camera, CameraPose):
        raise InvalidInputError("camera", "a CameraPose", type(camera).__name__)
    if isinstance(hole_fill_px, bool) or not isinstance(hole_fill_px, (int, np.integer)) \
            or not 0 <= hole_fill_px <= 16:
        raise InvalidInputError("hole_fill_px", "an integer in [0, 16]", hole_fill_px)

    height, width = camera.height, camera.width
    index, depth = _zbuffer(cloud, camera, splat=True)
    hit = index >= 0
    observed = np.zeros((height, width), dtype=bool)
    observed[hit] = cloud.pixels[index[hit], 0] >= 0

    _repair_cracks(index, depth, observed, np.where(index >= 0, cloud.ids[np.maximum(index, 0)], -1))
    filled = _fill_holes(index, depth, int(hole_fill_px))

    hit = index >= 0
    rgb = np.zeros((height, width, 3), dtype=np.uint8)
    segmentation = np.zeros((height, width), dtype=np.int32)
    rgb[hit] = cloud.colors[index[hit]]
    segmentation[hit] = cloud.ids[index[hit]]
    depth[~hit] = np.nan
    return ImaginedView(rgb=rgb, depth=depth, segmentation=segmentation, intrinsics=camera.intrinsics.copy(),
                        cam_to_world=camera.cam_to_world.copy(), valid_mask=observed & hit & ~filled,
                        source="geometric")


def zbuffer(cloud: SceneCloud, camera: CameraPose, splat: bool = True) -> np.ndarray:
    """Index of the nearest point at every pixel of ``camera`` (HxW int64, -1 where no point lands).

    Each point covers a square of side ``ceil(s)`` pixels, ``s`` being how many target pixels one source
    pixel spans at that point (larger when the camera moved closer or zoomed in), so surfaces stay closed.

    Args:
        cloud: points to render.
        camera: target camera.
        splat: False writes each point to one pixel only (used to find what a camera sees of a cloud).

    Returns:
        HxW int64 array of point indices into ``cloud``.
    """
    return _zbuffer(cloud, camera, splat)[0]


def _zbuffer(cloud: SceneCloud, camera: CameraPose, splat: bool) -> tuple[np.ndarray, np.ndarray]:
    """:func:`zbuffer`, plus the depth of the winning point at every pixel (inf where none)."""
    height, width = camera.height, camera.width
    index = np.full(height * width, -1, dtype=np.int64)
    depth = np.full(height * width, np.inf, dtype=np.float32)
    if len(cloud) == 0:
        return index.reshape(height, width), depth.reshape(height, width)

    cam = _to_camera(cloud.points, camera.cam_to_world)
    x, y, z = cam[:, 0], cam[:, 1], cam[:, 2]
    in_front = z > NEAR_M
    if in_front.all():  # the usual case: skip three boolean gathers
        point_ids = np.arange(len(cloud), dtype=np.int64)
    else:
        point_ids = np.flatnonzero(in_front)
        x, y, z = x[in_front], y[in_front], z[in_front]
    k = camera.intrinsics
    inv_z = 1.0 / z
    u = (k[0, 0] * x) * inv_z + k[0, 2]
    v = (k[1, 1] * y) * inv_z + k[1, 2]

    # Key = quantised depth in the high bits, point index in the low bits: the minimum per pixel is the
    # nearest point, and decoding the low bits says which point it was (one ufunc.at, no sort).
    index_bits = max(int(len(cloud)).bit_length(), 1)
    depth_q = np.minimum(np.round(z / DEPTH_QUANTUM_M), 2 ** (62 - index_bits) - 1).astype(np.int64)
    keys = (depth_q << index_bits) | point_ids
    empty_key = np.iinfo(np.int64).max
    buffer = np.full(height * width, empty_key, dtype=np.int64)

    if splat:
        side = np.clip(np.ceil(_footprint_px(cloud, camera, point_ids, inv_z) - SPLAT_SLACK_PX), 1, MAX_SPLAT_PX
                       ).astype(np.int64)
    else:
        side = np.ones(z.shape, dtype=np.int64)
    for size in range(1, MAX_SPLAT_PX + 1):
        chosen = side == size
        if not chosen.any():
            continue
        # The square of `size` pixels centred on the point's continuous position (u, v).
        col0 = np.floor(u[chosen] - (size - 1) / 2.0 + 0.5).astype(np.int64)
        row0 = np.floor(v[chosen] - (size - 1) / 2.0 + 0.5).astype(np.int64)
        chosen_keys = keys[chosen]
        for dr in range(size):
            for dc in range(size):
                rows, cols = row0 + dr, col0 + dc
                inside = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
                np.minimum.at(buffer, rows[inside] * width + cols[inside], chosen_keys[inside])

    written = np.flatnonzero(buffer != empty_key)
    index[written] = buffer[written] & ((1 << index_bits) - 1)
    z_of_point = np.empty(len(cloud), dtype=np.float32)
    z_of_point[point_ids] = z
    depth[written] = z_of_point[index[written]]
    return index.reshape(height, width), depth.reshape(height, width)


def _to_camera(points: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    # Written out per row: an (N, 3) @ (3, 3) matmul goes through BLAS and is several times slower here.
    world_to_cam = np.linalg.inv(cam_to_world).astype(np.float32)
    p = np.asarray(points, dtype=np.float32)
    r, t = world_to_cam[:3, :3], world_to_cam[:3, 3]
    out = np.empty_like(p)
    for axis in range(3):
        out[:, axis] = p[:, 0] * r[axis, 0] + p[:, 1] * r[axis, 1] + p[:, 2] * r[axis, 2] + t[axis]
    return out


def _camera_depth(points: np.ndarray, camera: CameraPose) -> np.ndarray:
    world_to_cam = np.linalg.inv(camera.cam_to_world)
    r, t = world_to_cam[2, :3], world_to_cam[2, 3]
    p = np.asarray(points, dtype=np.float64)
    return (p[:, 0] * r[0] + p[:, 1] * r[1] + p[:, 2] * r[2] + t).astype(np.float32)


def _footprint_px(cloud: SceneCloud, camera: CameraPose, point_ids: np.ndarray, inv_z_target: np.ndarray
                  ) -> np.ndarray:
    """Target pixels spanned by one source pixel at each point: f_t * (z_s / f_s) / z_t."""
    source = cloud.source
    world_to_source = np.linalg.inv(source.cam_to_world).astype(np.float32)
    r, t = world_to_source[2, :3], world_to_source[2, 3]
    p = np.asarray(cloud.points, dtype=np.float32)
    z_source = p[:, 0] * r[0] + p[:, 1] * r[1] + p[:, 2] * r[2] + t
    if len(point_ids) != len(z_source):
        z_source = z_source[point_ids]
    scale = np.float32(camera.intrinsics[0, 0] / source.intrinsics[0, 0])
    return scale * np.maximum(z_source, NEAR_M) * inv_z_target


def _shift(image: np.ndarray, dr: int, dc: int, fill) -> np.ndarray:
    """``out[r, c] = image[r + dr, c + dc]`` with ``fill`` outside the image."""
    out = np.full_like(image, fill)
    height, width = image.shape
    src_r = slice(max(dr, 0), height + min(dr, 0))
    dst_r = slice(max(-dr, 0), height + min(-dr, 0))
    src_c = slice(max(dc, 0), width + min(dc, 0))
    dst_c = slice(max(-dc, 0), width + min(-dc, 0))
    out[dst_r, dst_c] = image[src_r, src_c]
    return out


def _same_surface(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # inf - inf where both sides are empty: not one surface
        return np.abs(a - b) <= SAME_SURFACE_REL * np.minimum(a, b) + SAME_SURFACE_ABS_M


def _repair_cracks(index: np.ndarray, depth: np.ndarray, observed: np.ndarray, ids: np.ndarray) -> None:
    """Closes one-pixel cracks inside observed surfaces, in place.

    Oblique surfaces stretch under a new viewpoint, so a pixel can fall between two neighbouring points
    of one surface and show nothing, or show a farther surface through the gap ("bleed-through"). Such a
    pixel takes the nearer of its two neighbours when they are one surface (same instance id, close
    depths), and counts as observed when both of them were.
    """
    for dr, dc in _AXES:
        depth_a, depth_b = _shift(depth, dr, dc, np.inf), _shift(depth, -dr, -dc, np.inf)
        same_id = _shift(ids, dr, dc, -1) == _shift(ids, -dr, -dc, -2)
        bounded = same_id & np.isfinite(depth_a) & np.isfinite(depth_b) & _same_surface(depth_a, depth_b)
        nearer = np.minimum(depth_a, depth_b)
        crack = bounded & (depth > nearer * (1 + SAME_SURFACE_REL) + SAME_SURFACE_ABS_M)
        if not crack.any():
            continue
        rows, cols = np.nonzero(crack)
        use_a = depth_a[rows, cols] <= depth_b[rows, cols]
        src_r = np.where(use_a, rows + dr, rows - dr)
        src_c = np.where(use_a, cols + dc, cols - dc)
        index[rows, cols] = index[src_r, src_c]
        depth[rows, cols] = depth[src_r, src_c]
        ids[rows, cols] = ids[src_r, src_c]
        observed[rows, cols] = observed[rows + dr, cols + dc] & observed[rows - dr, cols - dc]


def _fill_holes(index: np.ndarray, depth: np.ndarray, radius: int) -> np.ndarray:
    """Fills empty pixels bounded on two opposite sides within ``radius``; returns the mask of filled pixels.

    The fill copies the *farther* bounding pixel: a hole next to an object's silhouette is a
    disocclusion, where the background continues behind the object.
    """
    filled = np.zeros(index.shape, dtype=bool)
    if radius <= 0:
        return filled
    hit = index >= 0
    if hit.all() or not hit.any():
        return filled
    # Cheap boolean pass first: only holes with content within `radius` on two opposite sides qualify.
    bounded = np.zeros(index.shape, dtype=bool)
    for dr, dc in _AXES:
        ahead, behind = np.zeros_like(hit), np.zeros_like(hit)
        for step in range(1, radius + 1):
            ahead |= _shift(hit, dr * step, dc * step, False)
            behind |= _shift(hit, -dr * step, -dc * step, False)
        bounded |= ahead & behind
    rows, cols = np.nonzero(bounded & ~hit)
    if len(rows) == 0:
        return filled
    height, width = index.shape
    best_depth = np.full(rows.shape, -np.inf, dtype=np.float32)
    best_r, best_c = rows.copy(), cols.copy()
    for dr, dc in _AXES:
        sides = []
        for sign in (1, -1):
            # Nearest rendered pixel along this direction within `radius` (inf depth when none).
            found_depth = np.full(rows.shape, np.inf, dtype=np.float32)
            found_r, found_c = rows.copy(), cols.copy()
            for step in range(radius, 0, -1):
                r, c = rows + sign * dr * step, cols + sign * dc * step
                inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
                r_in, c_in = np.where(inside, r, 0), np.where(inside, c, 0)
                present = inside & (index[r_in, c_in] >= 0)
                found_depth = np.where(present, depth[r_in, c_in], found_depth)
                found_r, found_c = np.where(present, r, found_r), np.where(present, c, found_c)
            sides.append((found_depth, found_r, found_c))
        (depth_a, r_a, c_a), (depth_b, r_b, c_b) = sides
        bounded = np.isfinite(depth_a) & np.isfinite(depth_b)
        farther_a = depth_a >= depth_b
        candidate = np.where(farther_a, depth_a, depth_b)
        better = bounded & (candidate > best_depth)
        best_depth = np.where(better, candidate, best_depth)
        best_r = np.where(better, np.where(farther_a, r_a, r_b), best_r)
        best_c = np.where(better, np.where(farther_a, c_a, c_b), best_c)
    chosen = np.isfinite(best_depth)
    rows, cols = rows[chosen], cols[chosen]
    index[rows, cols] = index[best_r[chosen], best_c[chosen]]
    depth[rows, cols] = depth[best_r[chosen], best_c[chosen]]
    filled[rows, cols] = True
    return filled
