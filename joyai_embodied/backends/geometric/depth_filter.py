"""Depth as real RGB-D sensors deliver it: flying-pixel removal, mask erosion at depth edges, temporal fusion.

A structured-light or stereo camera (RealSense D4xx class) reports noise growing with z^2, holes at
edges and on dark or shiny surfaces, and *flying pixels*: values between a foreground edge and the
background behind it, which lift into points floating in the gap. Perception cleans a frame before
lifting it (:func:`clean_depth`), only when the frame looks like a sensor's (:func:`is_sensor_depth`: some
pixels without depth; a simulator's exact depth has every pixel valid and is used as it is):

- **flying pixels**: a pixel on a steep ramp (both steps to its neighbours along a row or a column go the
  same way and exceed :func:`jump_threshold`) or standing alone (every valid 4-neighbour differs by more
  than the threshold) is dropped; real surfaces are that steep only within a few degrees of grazing.
- **mask edges** (with a segmentation image): object masks are eroded by one pixel (their rim is where
  the mask and the depth disagree: registration, mixed pixels).
- **smoothing**: on surfaces away from edges and mask borders depth is averaged over 5x5 pixels (3x3
  two pixels from one).

:func:`fuse_depth` fuses the last k frames of a still camera: the per-pixel median of the valid values,
where at least half of the frames have one (noise falls ~sqrt(k); random holes and flying pixels vanish).
"""

from __future__ import annotations

import numpy as np

from ...errors import InvalidInputError
from ...types import Observation

#: Smallest depth step (metres) between neighbours that counts as a discontinuity: above the noise of a
#: D4xx at arm's length (~3 mm RMS at 1 m, so neighbour differences of ~1 cm are 2-3 sigma).
JUMP_BASE_M = 0.008
#: ... plus this times z^2 (metres per m^2): stereo noise grows with the square of the distance.
JUMP_PER_M2 = 0.006
#: Half-size (pixels) of the window depth is averaged over on smooth surfaces: 5x5 pixels cut the
#: independent part of the noise five-fold; edges and mask borders are left as they are.
SMOOTH_RADIUS_PX = 2
#: Camera poses (metres / rotation entries) and intrinsics (pixels) within this are the same camera.
SAME_CAMERA_TOLERANCE = 1e-6


def jump_threshold(z: np.ndarray) -> np.ndarray:
    """Depth step (metres) above which two neighbouring pixels lie on different surfaces."""
    return JUMP_BASE_M + JUMP_PER_M2 * z * z


def is_sensor_depth(depth: np.ndarray) -> bool:
    """Whether ``depth`` looks like a real sensor's (has pixels without depth) rather than exact simulator depth."""
    return not bool(np.all(np.isfinite(depth) & (depth > 0)))


def clean_depth(depth: np.ndarray, segmentation: np.ndarray | None = None) -> np.ndarray:
    """``depth`` with flying pixels (and, given ``segmentation``, mask-edge pixels) set to NaN.

    Args:
        depth: (H, W) float32 metres, 0 or NaN = invalid.
        segmentation: optional (H, W) int32 instance ids registered to the depth.

    Returns:
        A new (H, W) float32 depth, NaN where there is no (trusted) value.
    """
    z = np.where(np.isfinite(depth) & (depth > 0), depth, np.nan).astype(np.float32)
    threshold = jump_threshold(np.nan_to_num(z, nan=0.0))
    padded = np.pad(z, 1, constant_values=np.nan)  # neighbours are views into it: no shifted copies
    up, down = padded[:-2, 1:-1], padded[2:, 1:-1]
    left, right = padded[1:-1, :-2], padded[1:-1, 2:]
    with np.errstate(invalid="ignore"):
        # A ramp: both steps along a row or a column go the same way and exceed the threshold (a mixed
        # pixel between two surfaces). NaN steps compare False.
        a, b = z - up, down - z
        drop = (a * b > 0) & (np.abs(a) > threshold) & (np.abs(b) > threshold)
        c, d = z - left, right - z
        drop |= (c * d > 0) & (np.abs(c) > threshold) & (np.abs(d) > threshold)
        steps = (np.abs(a), np.abs(b), np.abs(c), np.abs(d))
        with_depth = sum(np.isfinite(step).astype(np.uint8) for step in steps)
        beyond = sum((step > threshold).astype(np.uint8) for step in steps)
    # Alone: at least two neighbours with depth and every one of them on another surface.
    drop |= (with_depth >= 2) & (beyond == with_depth)
    edges = beyond > 0
    if segmentation is not None:
        borders = _id_borders(segmentation)
        # Erode every object mask by a pixel: its rim is where a flying pixel keeps the object's id while
        # its depth lies toward the background (pairs of them pass the ramp test).
        drop |= borders & (segmentation > 0)
        edges |= borders
    z[drop] = np.nan
    return smooth_surfaces(z, edges | drop)


def smooth_surfaces(z: np.ndarray, edges: np.ndarray, radius: int = SMOOTH_RADIUS_PX) -> np.ndarray:
    """Mean of the valid depth in the widest window (up to (2r+1)^2) that reaches no edge.

    Box filters by shifted adds (a few ms at 640x480): 5x5 where no edge lies within 2 px, 3x3 where one
    lies 2 px away (the rim of a small object is most of it). Surfaces never blend into each other, and
    a linear ramp (a tilted table) is averaged without bias.
    """
    valid = np.isfinite(z)
    values = np.where(valid, z, np.float32(0.0))
    weights = valid.astype(np.float32)
    out = z
    done = ~valid
    near = _dilate(edges, 1)
    for r in range(1, radius + 1):  # 3x3 first, then 5x5 overrides it where no edge lies within 2 px
        if r > 1:
            near = _dilate(near, 1)
        total, count = _box_sum(values, r), _box_sum(weights, r)
        smooth = ~done & ~near & (count >= (2 * r + 1) ** 2 / 2)
        # Whole-image arithmetic and np.where: cheaper than boolean gathers of a few hundred thousand pixels.
        out = np.where(smooth, total / np.maximum(count, np.float32(1.0)), out)
    return out.astype(np.float32, copy=False)


def _box_sum(image: np.ndarray, radius: int) -> np.ndarray:
    """Sum over the (2r+1)^2 window around every pixel (zero outside the image), separable, in float32."""
    return _box_1d(_box_1d(image.astype(np.float32, copy=False), radius, 1), radius, 0)


def _box_1d(image: np.ndarray, radius: int, axis: int) -> np.ndarray:
    """Sum over ``2 radius + 1`` neighbours along ``axis`` (zero outside the image), by shifted adds.

    For a small radius, 2r vectorised adds beat a running sum (numpy's cumsum is not vectorised) and keep
    full float32 precision.
    """
    size = image.shape[axis]
    out = image.copy()
    for k in range(1, radius + 1):
        if k >= size:
            break
        if axis == 0:
            out[k:] += image[:-k]
            out[:-k] += image[k:]
        else:
            out[:, k:] += image[:, :-k]
            out[:, :-k] += image[:, k:]
    return out


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """``mask`` grown by ``radius`` pixels (a square window), by shifted ORs: boolean ops are cheap."""
    out = mask.copy()
    for axis in (0, 1):
        for _ in range(radius):
            grown = out.copy()
            if axis == 0:
                grown[1:] |= out[:-1]
                grown[:-1] |= out[1:]
            else:
                grown[:, 1:] |= out[:, :-1]
                grown[:, :-1] |= out[:, 1:]
            out = grown
    return out


def _id_borders(ids: np.ndarray) -> np.ndarray:
    """Pixels with a 4-neighbour of another id: depth is not averaged across two objects."""
    border = np.zeros(ids.shape, dtype=bool)
    border[1:] |= ids[1:] != ids[:-1]
    border[:-1] |= ids[:-1] != ids[1:]
    border[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    border[:, :-1] |= ids[:, :-1] != ids[:, 1:]
    return border


def fuse_depth(depths: list[np.ndarray]) -> np.ndarray:
    """Per-pixel median of the valid values of several frames of one still camera.

    A pixel keeps a value when at least half of the frames (rounded up) have one there; a value seen
    once in three frames is more likely a flying pixel or a flicker at an edge than a surface.

    Returns:
        (H, W) float32 metres, NaN where too few frames had depth.
    """
    stack = np.stack([np.where(np.isfinite(d) & (d > 0), d, np.nan) for d in depths]).astype(np.float32)
    count = np.isfinite(stack).sum(axis=0)
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns: no value, by design
            fused = np.nanmedian(stack, axis=0)
    fused[count < -(-len(depths) // 2)] = np.nan
    return fused.astype(np.float32)


def fuse_observations(observations: list[Observation]) -> Observation:
    """One observation from the last k frames of a still camera: fused depth, the latest colour and ids.

    Args:
        observations: frames, the latest first, all from the same camera (pose, intrinsics, size).

    Returns:
        An Observation with the first frame's rgb, segmentation and labels and the fused depth.

    Raises:
        InvalidInputError: no frames, a frame without depth, or frames from different cameras (field
            ``observations[i]``): the fusion is per pixel, it does not register moving views.
    """
    if not observations:
        raise InvalidInputError("observations", "at least one frame", "none")
    first = observations[0]
    for i, obs in enumerate(observations):
        if obs.depth is None:
            raise InvalidInputError(f"observations[{i}].depth", "a depth image (fusion is of depth)", "None")
        if (obs.depth.shape != first.depth.shape
                or not np.allclose(obs.cam_to_world, first.cam_to_world, atol=SAME_CAMERA_TOLERANCE)
                or not np.allclose(obs.intrinsics, first.intrinsics, atol=SAME_CAMERA_TOLERANCE)):
            raise InvalidInputError(f"observations[{i}]", "a frame from the same still camera as observations[0] "
                                    "(same pose, intrinsics and size)", "another camera")
    if len(observations) == 1:
        return first
    fused = fuse_depth([obs.depth for obs in observations])
    fused = np.where(np.isfinite(fused), fused, 0.0).astype(np.float32)
    return Observation(rgb=first.rgb, depth=fused, intrinsics=first.intrinsics, cam_to_world=first.cam_to_world,
                       segmentation=first.segmentation, labels=first.labels)
