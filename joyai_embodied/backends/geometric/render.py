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
keys, so its cost is linear in the number of points. Where the time goes (a whole 640x480 frame, ~15 ms
at best on this 2-core machine, see ``benchmarks/speed.py``): projecting and keying the points (~40%),
crack repair (~20%), the per-pixel lookups and outputs (~25%), hole filling (~10%). Per-cloud data
(coordinate rows, source depths, padded colour/id tables) is computed on the first render of a cloud
and cached on it (``SceneCloud.derived``); crack repair and hole filling run their exact tests only on
the candidate pixels a cheap whole-image comparison leaves.
"""

from __future__ import annotations

import numpy as np

from ...camera import projection_matrix, world_to_camera
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
    index, z_of_point = _rasterise(cloud, camera, splat=True)
    index = index.reshape(height, width)
    # Per-pixel lookups through the nearest point's index. Each per-point table has one extra entry
    # last, which the index of an empty pixel (N) selects: no masking needed.
    depth = np.take(np.append(z_of_point, np.float32(np.inf)), index)
    observed = np.take(cloud.derived("observed_padded", _observed_padded), index)
    ids_of_point = cloud.derived("ids_padded", _ids_padded)

    _repair_cracks(index, depth, observed, ids_of_point)
    filled = _fill_holes(index, depth, int(hole_fill_px))

    hit = np.isfinite(depth)
    rgb = np.take(cloud.derived("colors_padded", _colors_padded), index, axis=0)
    segmentation = np.take(ids_of_point, index)
    depth[~hit] = np.nan
    return ImaginedView(rgb=rgb, depth=depth, segmentation=segmentation, intrinsics=camera.intrinsics.copy(),
                        cam_to_world=camera.cam_to_world.copy(), valid_mask=observed & ~filled,
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
    index = _rasterise(cloud, camera, splat)[0]
    index[index == len(cloud)] = -1
    return index.reshape(camera.height, camera.width)


# -- per-cloud data, computed once per SceneCloud and cached on it (SceneCloud.derived) -------------------

def _points_by_axis(cloud: SceneCloud) -> np.ndarray:
    """(3, N) float32: x, y and z rows, each contiguous (fast elementwise transforms)."""
    return np.ascontiguousarray(np.asarray(cloud.points, dtype=np.float32).T)


def _source_depth(cloud: SceneCloud) -> np.ndarray:
    """(N,) float32 depth of every point in the source camera, at least NEAR_M (the splat size's numerator)."""
    depth_row = world_to_camera(cloud.source.cam_to_world)[2:3].astype(np.float32)  # camera z of a world point
    z = _transform(depth_row, cloud.derived("points_by_axis", _points_by_axis))[0]
    return np.maximum(z, NEAR_M, out=z)


def _observed_padded(cloud: SceneCloud) -> np.ndarray:
    """(N + 1,) bool: the point was lifted from the source image (not added by an edit); False last."""
    return np.append(np.asarray(cloud.pixels)[:, 0] >= 0, False)


def _ids_padded(cloud: SceneCloud) -> np.ndarray:
    """(N + 1,) int32 instance ids, 0 last (the segmentation of an empty pixel)."""
    return np.append(np.asarray(cloud.ids, dtype=np.int32), np.int32(0))


def _colors_padded(cloud: SceneCloud) -> np.ndarray:
    """(N + 1, 3) uint8 colours, black last."""
    return np.concatenate([np.asarray(cloud.colors, dtype=np.uint8), np.zeros((1, 3), dtype=np.uint8)])


# -- z-buffer -----------------------------------------------------------------------------------------------

def _rasterise(cloud: SceneCloud, camera: CameraPose, splat: bool) -> tuple[np.ndarray, np.ndarray]:
    """The z-buffer of ``cloud`` in ``camera`` (see :func:`zbuffer` for the splat sizes).

    Returns:
        ``(index, z_of_point)``: the nearest point's index at every pixel, (H*W,) int64 holding N where no
        point lands (one past the last point, so per-point tables padded with one entry serve empty pixels
        without masking; negative indices would take numpy's slower gather path), and every point's camera
        depth, (N,) float32 (meaningless for points behind the near plane, which never win a pixel).
    """
    height, width = camera.height, camera.width
    if len(cloud) == 0:
        return np.zeros(height * width, dtype=np.int64), np.zeros(0, dtype=np.float32)

    # One float32 3x4 projection (intrinsics @ world-to-camera, with the +0.5 of round-to-nearest folded
    # in): rows give ((u + 0.5) z, (v + 0.5) z, z) for every point in a single small matrix product.
    projected = _transform(_projection(camera), cloud.derived("points_by_axis", _points_by_axis))
    z = projected[2]
    with np.errstate(divide="ignore", invalid="ignore"):  # points at or behind the camera: masked below
        inv_z = np.float32(1.0) / z
        col = projected[0]
        col *= inv_z
        row = projected[1]
        row *= inv_z
        # A one-pixel splat lands on floor(u + 0.5): inside the image iff 0 <= u + 0.5 < width (then the
        # truncating cast below is the floor). NaN (a point at the camera centre) compares False.
        inside = z > NEAR_M
        inside &= col >= 0
        inside &= col < width
        inside &= row >= 0
        inside &= row < height
    large = None
    if splat:
        # Most points cover one pixel; only the few larger splats go through the per-offset loop below.
        footprint = _footprint_px(cloud, camera, inv_z)
        large = footprint > 1 + SPLAT_SLACK_PX  # ceil(footprint - slack) > 1
        large &= z > NEAR_M
        inside &= ~large

    index_bits = max(int(len(cloud)).bit_length(), 1)
    buffer = np.full(height * width, _EMPTY_KEY, dtype=np.int64)
    chosen = np.flatnonzero(inside)
    flat = row[chosen].astype(np.int32) * np.int32(width) + col[chosen].astype(np.int32)
    np.minimum.at(buffer, flat, _keys(z[chosen], chosen, index_bits))

    if large is not None and large.any():
        chosen = np.flatnonzero(large)
        side = np.minimum(np.ceil(footprint[chosen] - SPLAT_SLACK_PX), MAX_SPLAT_PX).astype(np.int32)
        col_c, row_c, keys = col[chosen], row[chosen], _keys(z[chosen], chosen, index_bits)
        for size in range(2, MAX_SPLAT_PX + 1):
            sized = side == size
            if not sized.any():
                continue
            # The square of `size` pixels centred on the point's continuous position (u, v):
            # columns floor(u - (size - 1) / 2 + 0.5) onwards, and col_c is u + 0.5.
            col0 = np.floor(col_c[sized] - (size - 1) / 2.0).astype(np.int64)
            row0 = np.floor(row_c[sized] - (size - 1) / 2.0).astype(np.int64)
            sized_keys = keys[sized]
            for dr in range(size):
                for dc in range(size):
                    rows, cols = row0 + dr, col0 + dc
                    ok = (rows >= 0) & (rows < height) & (cols >= 0) & (cols < width)
                    np.minimum.at(buffer, rows[ok] * width + cols[ok], sized_keys[ok])

    # Decode in place. An empty pixel decodes to all index bits set, which no point index reaches
    # (indices are < N < 2**index_bits, so at most 2**index_bits - 2).
    index_mask = (1 << index_bits) - 1
    np.bitwise_and(buffer, index_mask, out=buffer)
    buffer[buffer == index_mask] = len(cloud)
    return buffer, z


_EMPTY_KEY = np.iinfo(np.int64).max


def _keys(z: np.ndarray, point_ids: np.ndarray, index_bits: int) -> np.ndarray:
    """Z-buffer keys: quantised depth in the high bits, point index in the low bits.

    The minimum per pixel is the nearest point, and decoding the low bits says which point it was (one
    ufunc.at, no sort). Depths beyond the key range saturate (they still lose to anything nearer).
    """
    depth_q = z * np.float32(1.0 / DEPTH_QUANTUM_M)
    depth_q += np.float32(0.5)  # round half up: the cast below truncates (depths are positive)
    np.minimum(depth_q, np.float32(2 ** (62 - index_bits - 1)), out=depth_q)
    keys = depth_q.astype(np.int64)
    keys <<= index_bits
    keys |= point_ids
    return keys


def _transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``matrix[:, :3] @ points + matrix[:, 3:]`` for (3, N) float32 points, written out row by row.

    Not ``@``: BLAS threads waking up for this thin product cost more than the product itself on a busy
    machine; in-place row updates touch the least memory.
    """
    out = np.empty((len(matrix), points.shape[1]), dtype=np.float32)
    scratch = np.empty(points.shape[1], dtype=np.float32)
    for i, row in enumerate(out):
        np.multiply(points[0], matrix[i, 0], out=row)
        for j in (1, 2):
            np.multiply(points[j], matrix[i, j], out=scratch)
            row += scratch
        row += matrix[i, 3]
    return out


def _projection(camera: CameraPose) -> np.ndarray:
    """3x4 float32 matrix taking homogeneous world points to ((u + 0.5) z, (v + 0.5) z, z)."""
    shift = np.array([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5], [0.0, 0.0, 1.0]])
    return (shift @ projection_matrix(camera.intrinsics, camera.cam_to_world)).astype(np.float32)


def _footprint_px(cloud: SceneCloud, camera: CameraPose, inv_z_target: np.ndarray) -> np.ndarray:
    """Target pixels spanned by one source pixel at each point: f_t * (z_s / f_s) / z_t."""
    z_source = cloud.derived("source_depth", _source_depth)
    scale = np.float32(camera.intrinsics[0, 0] / cloud.source.intrinsics[0, 0])
    footprint = z_source * inv_z_target
    footprint *= scale
    return footprint


def _same_surface(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):  # inf - inf where both sides are empty: not one surface
        return np.abs(a - b) <= SAME_SURFACE_REL * np.minimum(a, b) + SAME_SURFACE_ABS_M


def _repair_cracks(index: np.ndarray, depth: np.ndarray, observed: np.ndarray, ids_of_point: np.ndarray) -> None:
    """Closes one-pixel cracks inside observed surfaces, in place.

    Oblique surfaces stretch under a new viewpoint, so a pixel can fall between two neighbouring points
    of one surface and show nothing, or show a farther surface through the gap ("bleed-through"). Such a
    pixel takes the nearer of its two neighbours when they are one surface (same instance id, close
    depths), and counts as observed when both of them were.

    ``index`` holds N at empty pixels, where ``depth`` is inf; ``ids_of_point`` is the (N + 1,) instance
    id of every point (any value last, for empty pixels).
    """
    height, width = depth.shape
    # Flat views: the neighbours of pixel p along (dr, dc) are p +- (dr * width + dc), contiguous slices.
    index_f, depth_f, observed_f = (a.reshape(-1) for a in (index, depth, observed))
    candidate = np.empty(height * width, dtype=bool)
    # A crack lies farther than the nearer of its two neighbours by more than SAME_SURFACE_ABS_M, and
    # (its neighbours being one surface) farther than both of them. Two whole-image comparisons with
    # looser margins (robust to float32 rounding at any depth below ~1 km) find a superset of the
    # cracks; the full test then runs on those candidate pixels only.
    near_margin, far_margin = np.float32(0.8 * SAME_SURFACE_ABS_M), np.float32(0.2 * SAME_SURFACE_ABS_M)
    for dr, dc in _AXES:
        offset = dr * width + dc
        lo, hi = abs(offset), height * width - abs(offset)
        if lo >= hi:
            continue  # an image too small to have a pixel with both neighbours (and slices would wrap)
        centre, forward, backward = (depth_f[lo:hi], depth_f[lo + offset:hi + offset],
                                     depth_f[lo - offset:hi - offset])
        candidate[:lo] = False
        candidate[hi:] = False
        np.greater(centre, np.minimum(forward, backward) + near_margin, out=candidate[lo:hi])
        candidate[lo:hi] &= centre > np.maximum(forward, backward) - far_margin
        if dc:  # pixels in the first and last columns lack a neighbour along this axis (no wrap-around)
            candidate.reshape(height, width)[:, [0, -1]] = False
        pixels = np.flatnonzero(candidate)
        if len(pixels) == 0:
            continue
        ahead, behind = pixels + offset, pixels - offset
        depth_a, depth_b = depth_f[ahead], depth_f[behind]
        bounded = ((ids_of_point[index_f[ahead]] == ids_of_point[index_f[behind]])
                   & np.isfinite(depth_a) & np.isfinite(depth_b) & _same_surface(depth_a, depth_b))
        nearer = np.minimum(depth_a, depth_b)
        crack = bounded & (depth_f[pixels] > nearer * (1 + SAME_SURFACE_REL) + SAME_SURFACE_ABS_M)
        if not crack.any():
            continue
        pixels, ahead, behind = pixels[crack], ahead[crack], behind[crack]
        source = np.where(depth_a[crack] <= depth_b[crack], ahead, behind)
        index_f[pixels] = index_f[source]
        depth_f[pixels] = depth_f[source]
        observed_f[pixels] = observed_f[ahead] & observed_f[behind]


def _fill_holes(index: np.ndarray, depth: np.ndarray, radius: int) -> np.ndarray:
    """Fills empty pixels bounded on two opposite sides within ``radius``; returns the mask of filled pixels.

    The fill copies the *farther* bounding pixel (its point index and depth): a hole next to an object's
    silhouette is a disocclusion, where the background continues behind the object.
    """
    filled = np.zeros(index.shape, dtype=bool)
    if radius <= 0:
        return filled
    hit = np.isfinite(depth)  # empty pixels have inf depth
    if hit.all() or not hit.any():
        return filled
    height, width = index.shape
    # Cheap boolean pass first: only holes with content within `radius` on two opposite sides qualify.
    # Slices instead of shifted copies: ahead[p] |= hit[p + step * d] where p + step * d is inside.
    bounded = np.zeros(index.shape, dtype=bool)
    ahead, behind = np.empty_like(hit), np.empty_like(hit)
    for dr, dc in _AXES:
        ahead[:] = False
        behind[:] = False
        for step in range(1, radius + 1):
            sr, sc = step * dr, step * dc
            if step * abs(dr) >= height or step * abs(dc) >= width:
                break  # the shift leaves the image (and a slice would wrap around)
            ahead[_span(-sr, height), _span(-sc, width)] |= hit[_span(sr, height), _span(sc, width)]
            behind[_span(sr, height), _span(sc, width)] |= hit[_span(-sr, height), _span(-sc, width)]
        bounded |= ahead & behind
    bounded &= ~hit
    pixels = np.flatnonzero(bounded)
    if len(pixels) == 0:
        return filled
    rows, cols = np.divmod(pixels, width)
    index_f, depth_f, hit_f = index.reshape(-1), depth.reshape(-1), hit.reshape(-1)
    best_depth = np.full(pixels.shape, -np.inf, dtype=np.float32)
    best = pixels.copy()  # flat index of the pixel to copy from
    for dr, dc in _AXES:
        sides = []
        for sign in (1, -1):
            # Nearest rendered pixel along this direction within `radius` (inf depth when none).
            found_depth = np.full(pixels.shape, np.inf, dtype=np.float32)
            found = pixels.copy()
            for step in range(radius, 0, -1):
                r, c = rows + sign * dr * step, cols + sign * dc * step
                inside = (r >= 0) & (r < height) & (c >= 0) & (c < width)
                there = np.where(inside, pixels + sign * step * (dr * width + dc), 0)
                present = inside & hit_f[there]
                found_depth = np.where(present, depth_f[there], found_depth)
                found = np.where(present, there, found)
            sides.append((found_depth, found))
        (depth_a, found_a), (depth_b, found_b) = sides
        both = np.isfinite(depth_a) & np.isfinite(depth_b)
        farther_a = depth_a >= depth_b
        candidate = np.where(farther_a, depth_a, depth_b)
        better = both & (candidate > best_depth)
        best_depth = np.where(better, candidate, best_depth)
        best = np.where(better, np.where(farther_a, found_a, found_b), best)
    chosen = np.isfinite(best_depth)
    pixels, source = pixels[chosen], best[chosen]
    index_f[pixels] = index_f[source]
    depth_f[pixels] = depth_f[source]
    filled.reshape(-1)[pixels] = True
    return filled


def _span(offset: int, size: int) -> slice:
    """Source slice of a shift by ``offset`` along an axis of ``size``: ``out[i] = in[i + offset]`` reads
    ``in[_span(offset, size)]`` and writes ``out[_span(-offset, size)]`` (``|offset| < size``)."""
    return slice(max(offset, 0), size + min(offset, 0))
