"""Depth as an RGB-D sensor of the RealSense D4xx class delivers it: a seeded, deterministic noise model.

:func:`apply_depth_noise` turns exact simulator depth into what an active/passive stereo depth camera
reports, in this order (each step is one function below):

1. **Range**: depth outside ``[min_range_m, max_range_m]`` reads 0 (invalid), as the sky (20 m) does.
2. **Occlusion shadow**: the band left of a near object that the second imager (``baseline_m`` to the
   right) cannot see: invalid, as wide as the two surfaces' disparity difference (D4xx depth is
   referenced to the left imager, so the band is always on the objects' left).
3. **Edge dropout** and **flying pixels**: at depth discontinuities some pixels read 0 and some read a
   value between the foreground and the background (the matcher's window straddles both).
4. **Invalid patches**: dark pixels (little IR return) and saturated ones (specular) drop out with a
   probability; a few random blobs per frame fail entirely (textureless or shiny spots), plus sparse speckle.
5. **z-dependent Gaussian noise**: added in disparity (``d = f b / z``, sigma ``subpixel_px``), which gives
   the published RMS depth error ``z^2 * subpixel / (f * b)``; part of it is spatially correlated (the
   stereo matcher's window), the rest independent per pixel.
6. **Quantisation** to the 16UC1 depth unit (1 mm), invalid = 0.

Everything random comes from the ``numpy.random.Generator`` passed in, so a seed replays the noise. The
parameters and their published sources are in ``sim_envs/README.md`` ("Depth noise"). The LIBERO env
(``sim_envs/libero``) can call the same function on its frames.
"""

from __future__ import annotations

import dataclasses
from typing import Mapping

import numpy as np

from joyai_embodied.errors import InvalidInputError

#: Names accepted by ``gym.make(..., depth_noise=...)``.
NOISE_MODELS = ("none", "structured_light", "stereo")
#: ITU-R BT.601 luma weights: how bright a pixel is, for the dark/specular dropout.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)
#: Low-resolution grid step (pixels) of the correlated part of the disparity noise: about the size of a
#: D4xx stereo matching window at 640 px wide.
CORRELATION_CELL_PX = 4
#: Widest occlusion shadow modelled (pixels); wider ones (a very near object) are cut here to bound cost.
MAX_SHADOW_PX = 24


@dataclasses.dataclass(frozen=True)
class SensorModel:
    """Parameters of one depth sensor (see ``sim_envs/README.md`` for their sources).

    Attributes:
        name: the model's name.
        baseline_m: stereo baseline (D435: 50 mm).
        subpixel_px: RMS disparity error in pixels (D4xx: ~0.08 with the projector on a textured target).
        correlated_share: share of the disparity noise variance that is spatially correlated.
        focal_px: focal length of the depth imager in pixels; None = the camera's intrinsics (fx).
        min_range_m: nearer depth is invalid (D435 minimum z at 640x480: ~0.2 m at full resolution).
        max_range_m: farther depth is invalid (beyond the useful range).
        edge_jump_m: a neighbour step larger than this (plus 3 sigma of the noise) is a discontinuity.
        edge_dropout: probability that a pixel at a discontinuity reads 0.
        flying_prob: probability that a remaining pixel at a discontinuity reads a mixed depth.
        dark_luma: pixels darker than this (0-255) return little IR light ...
        dark_dropout: ... and read 0 with this probability.
        specular_luma: pixels brighter than this are saturated highlights ...
        specular_dropout: ... and read 0 with this probability (kept low: the simulator's white tops
            saturate in RGB without being shiny in the infrared).
        patches_per_frame: mean number of random invalid blobs per 640x480 frame (Poisson).
        patch_radius_px: (smallest, largest) blob radius at 640 px wide (scaled with the width).
        speckle_dropout: probability that any pixel reads 0 (isolated matching failures).
        depth_unit_m: quantisation step (16UC1 with the D4xx default depth unit: 1 mm).
    """

    name: str
    baseline_m: float
    subpixel_px: float
    correlated_share: float = 0.5
    focal_px: float | None = None
    min_range_m: float = 0.2
    max_range_m: float = 6.0
    edge_jump_m: float = 0.02
    edge_dropout: float = 0.3
    flying_prob: float = 0.4
    dark_luma: float = 25.0
    dark_dropout: float = 0.5
    specular_luma: float = 250.0
    specular_dropout: float = 0.2
    patches_per_frame: float = 2.0
    patch_radius_px: tuple[float, float] = (3.0, 9.0)
    speckle_dropout: float = 0.002
    depth_unit_m: float = 0.001

    def rms_error_m(self, z: np.ndarray | float, focal_px: float) -> np.ndarray:
        """The published RMS depth error ``z^2 * subpixel / (focal * baseline)`` (metres)."""
        return np.asarray(z, dtype=np.float64) ** 2 * self.subpixel_px / (focal_px * self.baseline_m)


#: The models by name. "structured_light": a D435 with its IR pattern projector on (active stereo, the
#: D4xx default indoors). "stereo": the same optics with the projector off or a passive stereo pair:
#: about twice the disparity error and more holes on textureless, dark and shiny surfaces.
SENSORS: dict[str, SensorModel] = {
    "structured_light": SensorModel(name="structured_light", baseline_m=0.050, subpixel_px=0.08),
    "stereo": SensorModel(name="stereo", baseline_m=0.050, subpixel_px=0.15, edge_dropout=0.5, flying_prob=0.5,
                          dark_luma=40.0, dark_dropout=0.8, specular_dropout=0.4, patches_per_frame=5.0, patch_radius_px=(4.0, 14.0),
                          speckle_dropout=0.005),
}


def check_noise_model(model: str) -> str:
    """Returns ``model`` if it names a noise model; raises InvalidInputError listing them otherwise."""
    if not isinstance(model, str) or model not in NOISE_MODELS:
        raise InvalidInputError("depth_noise", f"one of {list(NOISE_MODELS)}", repr(model))
    return model


def apply_depth_noise(depth: np.ndarray, model: str | SensorModel, rng: np.random.Generator,
                      intrinsics: np.ndarray | None = None, rgb: np.ndarray | None = None) -> np.ndarray:
    """Exact metric depth -> depth as the sensor reports it (float32 metres, 0 = invalid).

    Args:
        depth: (H, W) exact z-depth in metres (the simulator's; non-finite or <= 0 = nothing there).
        model: a name from :data:`NOISE_MODELS` or a :class:`SensorModel`. ``"none"`` returns a copy.
        rng: the generator every random draw comes from (seed it to replay the noise).
        intrinsics: 3x3 K of the depth image; its fx is the focal length unless the model fixes one.
            Required unless ``model.focal_px`` is set.
        rgb: optional (H, W, 3) uint8 image registered to the depth, for dark/specular dropout.

    Returns:
        (H, W) float32 depth, quantised to the model's depth unit, 0 where the sensor has no value.

    Raises:
        InvalidInputError: an unknown model name, a depth that is not (H, W), rgb of another size, or no
            focal length (field ``intrinsics``).
    """
    depth = np.asarray(depth)
    if depth.ndim != 2:
        raise InvalidInputError("depth", "an (H, W) depth image in metres", f"shape {depth.shape}")
    if isinstance(model, str):
        if check_noise_model(model) == "none":
            return depth.astype(np.float32, copy=True)
        model = SENSORS[model]
    if not isinstance(model, SensorModel):
        raise InvalidInputError("depth_noise", f"one of {list(NOISE_MODELS)} or a SensorModel", type(model).__name__)
    focal = model.focal_px
    if focal is None:
        k = None if intrinsics is None else np.asarray(intrinsics, dtype=np.float64)
        if k is None or k.shape != (3, 3) or not k[0, 0] > 0:
            raise InvalidInputError("intrinsics", "a 3x3 K with fx > 0 (the focal length sets the noise)",
                                    None if k is None else k.shape)
        focal = float(k[0, 0])
    if rgb is not None and np.asarray(rgb).shape[:2] != depth.shape:
        raise InvalidInputError("rgb", f"an image of {depth.shape} registered to the depth", np.asarray(rgb).shape)

    z = depth.astype(np.float64)
    valid = np.isfinite(z) & (z >= model.min_range_m) & (z <= model.max_range_m)
    z = np.where(valid, z, 0.0)
    fb = focal * model.baseline_m
    scale = depth.shape[1] / 640.0  # blob sizes and counts are given for a 640 px wide frame

    valid &= ~occlusion_shadow(z, valid, fb)
    z, valid = edge_artifacts(z, valid, model, focal, rng)
    valid &= ~dropout_mask(depth.shape, model, rng, scale, rgb)
    z = disparity_noise(z, valid, model, fb, rng)
    out = np.where(valid, np.round(z / model.depth_unit_m) * model.depth_unit_m, 0.0)
    return np.clip(out, 0.0, None).astype(np.float32)


def occlusion_shadow(z: np.ndarray, valid: np.ndarray, fb: float) -> np.ndarray:
    """Pixels the right imager cannot see: a nearer surface to their right covers them in its view.

    Pixel u is seen by the right imager at ``u - d(u)``; a pixel u' > u with ``d(u') - d(u) >= u' - u`` lands
    on or past it there, so u is occluded. Checked for shifts up to :data:`MAX_SHADOW_PX`.
    """
    disparity = np.where(valid, fb / np.where(valid, z, 1.0), 0.0)
    shadow = np.zeros(z.shape, dtype=bool)
    width = z.shape[1]
    reach = int(min(MAX_SHADOW_PX, np.ceil(disparity.max() - disparity[valid].min()) if valid.any() else 0))
    for k in range(1, min(reach, width - 1) + 1):
        shadow[:, :-k] |= valid[:, k:] & (disparity[:, k:] - disparity[:, :-k] >= k)
    return shadow & valid


def edge_artifacts(z: np.ndarray, valid: np.ndarray, model: SensorModel, focal: float,
                   rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Edge dropout and flying pixels at depth discontinuities (4-neighbourhood steps)."""
    near = np.where(valid, z, np.inf)
    far = np.where(valid, z, -np.inf)
    lo, hi = near.copy(), far.copy()
    for axis in (0, 1):
        for shift in (1, -1):
            lo = np.minimum(lo, _shifted(near, shift, axis, np.inf))
            hi = np.maximum(hi, _shifted(far, shift, axis, -np.inf))
    sigma = model.rms_error_m(z, focal)
    lo, hi = np.where(np.isfinite(lo), lo, z), np.where(np.isfinite(hi), hi, z)  # lone pixels: no step
    edge = valid & (hi - lo > model.edge_jump_m + 3 * sigma)
    draw = rng.random(z.shape)
    dropped = edge & (draw < model.edge_dropout)
    flying = edge & ~dropped & (draw < model.edge_dropout + (1 - model.edge_dropout) * model.flying_prob)
    alpha = rng.uniform(0.15, 0.85, size=z.shape)
    z = np.where(flying, lo + alpha * (hi - lo), z)
    return z, valid & ~dropped


def dropout_mask(shape: tuple[int, int], model: SensorModel, rng: np.random.Generator, scale: float,
                 rgb: np.ndarray | None) -> np.ndarray:
    """Pixels without depth: dark and specular pixels (by chance), random blobs, sparse speckle."""
    height, width = shape
    drop = rng.random(shape) < model.speckle_dropout
    if rgb is not None:
        luma = np.asarray(rgb, dtype=np.float32) @ LUMA
        chance = rng.random(shape)
        drop |= (luma < model.dark_luma) & (chance < model.dark_dropout)
        drop |= (luma > model.specular_luma) & (chance < model.specular_dropout)
    count = rng.poisson(model.patches_per_frame * (height * width) / (640.0 * 480.0))  # per unit of image area
    if count:
        rows = np.arange(height)[:, None]
        cols = np.arange(width)[None, :]
        centres = rng.uniform([0, 0], [height, width], size=(count, 2))
        radii = rng.uniform(*model.patch_radius_px, size=count) * scale
        axes = rng.uniform(0.5, 1.0, size=count)  # elliptic blobs, not perfect discs
        for (r, c), radius, squash in zip(centres, radii, axes):
            r0, r1 = int(max(r - radius, 0)), int(min(r + radius + 1, height))
            c0, c1 = int(max(c - radius, 0)), int(min(c + radius + 1, width))
            block = ((rows[r0:r1] - r) / (radius * squash)) ** 2 + ((cols[:, c0:c1] - c) / radius) ** 2 <= 1.0
            drop[r0:r1, c0:c1] |= block
    return drop


def disparity_noise(z: np.ndarray, valid: np.ndarray, model: SensorModel, fb: float,
                    rng: np.random.Generator) -> np.ndarray:
    """Gaussian noise of ``subpixel_px`` RMS added in disparity: depth error grows with z^2."""
    height, width = z.shape
    white = rng.standard_normal(z.shape)
    cell = CORRELATION_CELL_PX
    coarse = rng.standard_normal((-(-height // cell), -(-width // cell)))
    correlated = np.repeat(np.repeat(coarse, cell, axis=0), cell, axis=1)[:height, :width]
    share = model.correlated_share
    noise = model.subpixel_px * (np.sqrt(1 - share) * white + np.sqrt(share) * correlated)
    disparity = fb / np.where(valid, z, 1.0) + noise
    # A disparity pushed to or below zero would be "infinitely far": the sensor reports nothing there.
    ok = valid & (disparity > 1e-3)
    return np.where(ok, fb / np.where(ok, disparity, 1.0), 0.0)


def _shifted(image: np.ndarray, shift: int, axis: int, fill: float) -> np.ndarray:
    """``image`` moved by ``shift`` pixels along ``axis``; the uncovered border gets ``fill``."""
    out = np.full_like(image, fill)
    if axis == 0:
        if shift > 0:
            out[shift:] = image[:-shift]
        else:
            out[:shift] = image[-shift:]
    elif shift > 0:
        out[:, shift:] = image[:, :-shift]
    else:
        out[:, :shift] = image[:, -shift:]
    return out


def noise_options(options: Mapping[str, object]) -> dict[str, object]:
    """The ``depth_noise`` / ``noise_seed`` pair of an env's keyword options, checked."""
    model = check_noise_model(options.get("depth_noise", "none"))  # type: ignore[arg-type]
    seed = options.get("noise_seed", 0)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInputError("noise_seed", "a non-negative integer", repr(seed))
    return {"depth_noise": model, "noise_seed": int(seed)}
