"""How good are imagined views? Imagined vs ground-truth renders at the same camera.

For every seed the scene is observed once from its source camera, then

- for each yaw in ``yaws`` the world model imagines the view orbited by that yaw about the scene pivot,
  and the simulator renders the same camera (``env.unwrapped.render_view``);
- one object is moved to a free spot on the table (``MoveObject``) and the edited scene is imagined from
  the source camera, against the simulator after really moving that object.

Figures per view: PSNR and SSIM of the rgb on the imagined view's valid pixels, depth AbsRel on the same
pixels, coverage (fraction of valid pixels), and the same PSNR / SSIM / AbsRel for the baseline that
returns the source image unchanged (on the same pixels, so the two are comparable).

The simulator is the MuJoCo ``joyai/TabletopSpatial-v0`` env (``simulator="mujoco"``), or the analytic
ray-cast tabletop of :mod:`.synthetic` (``"synthetic"``: exact, no MuJoCo); ``"auto"`` takes MuJoCo when
``sim_envs`` imports.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from ..camera import orbit
from ..errors import InvalidInputError
from ..types import CameraMove, CameraPose, ImaginedView, MoveObject, Observation

#: Gaussian window of SSIM (the usual 11 taps, sigma 1.5) and its stabilising constants for 8-bit images.
SSIM_TAPS, SSIM_SIGMA = 11, 1.5
SSIM_C1, SSIM_C2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
#: A moved object keeps at least this much clearance (metres) from every other object's centre.
MOVE_CLEARANCE_M = 0.12


# -- metrics -------------------------------------------------------------------------------------
def psnr(image: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Peak signal-to-noise ratio (dB) of two uint8 images over ``mask`` (all pixels when None).

    Returns inf for identical pixels and NaN for an empty mask.
    """
    diff = image.astype(np.float64) - truth.astype(np.float64)
    squared = (diff ** 2).mean(axis=-1) if diff.ndim == 3 else diff ** 2
    values = squared if mask is None else squared[mask]
    if values.size == 0:
        return float("nan")
    mse = float(values.mean())
    return float("inf") if mse == 0 else float(10 * np.log10(255.0 ** 2 / mse))


def ssim(image: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean structural similarity of the luma of two uint8 images over ``mask`` (Gaussian 11x11 window).

    The SSIM map is computed on the whole image and averaged over the masked pixels.
    """
    a, b = _luma(image), _luma(truth)
    mu_a, mu_b = _gaussian_blur(a), _gaussian_blur(b)
    var_a = _gaussian_blur(a * a) - mu_a ** 2
    var_b = _gaussian_blur(b * b) - mu_b ** 2
    cov = _gaussian_blur(a * b) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + SSIM_C1) * (2 * cov + SSIM_C2)) / \
        ((mu_a ** 2 + mu_b ** 2 + SSIM_C1) * (var_a + var_b + SSIM_C2))
    values = ssim_map if mask is None else ssim_map[mask]
    return float(values.mean()) if values.size else float("nan")


def depth_absrel(depth: np.ndarray, truth: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean ``|depth - truth| / truth`` over ``mask`` where both are finite and positive."""
    ok = np.isfinite(depth) & np.isfinite(truth) & (truth > 0) & (depth > 0)
    if mask is not None:
        ok &= mask
    if not ok.any():
        return float("nan")
    return float(np.mean(np.abs(depth[ok] - truth[ok]) / truth[ok]))


def _luma(image: np.ndarray) -> np.ndarray:
    rgb = image.astype(np.float64)
    return rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114


def _gaussian_blur(image: np.ndarray) -> np.ndarray:
    """Separable Gaussian filter with edge replication (no scipy here)."""
    offsets = np.arange(SSIM_TAPS) - SSIM_TAPS // 2
    weights = np.exp(-(offsets ** 2) / (2 * SSIM_SIGMA ** 2))
    weights /= weights.sum()
    pad = SSIM_TAPS // 2
    out = image
    for axis in (0, 1):
        padded = np.pad(out, [(pad, pad) if a == axis else (0, 0) for a in range(2)], mode="edge")
        length = out.shape[axis]
        out = sum(w * np.take(padded, np.arange(i, i + length), axis=axis) for i, w in enumerate(weights))
    return out


# -- one comparison ------------------------------------------------------------------------------
@dataclass
class ViewScore:
    """Figures of one imagined view against its ground truth."""

    psnr: float
    ssim: float
    depth_absrel: float
    coverage: float
    baseline_psnr: float
    baseline_ssim: float
    baseline_depth_absrel: float


def score_view(view: ImaginedView, truth: dict[str, np.ndarray], source: Observation) -> ViewScore:
    """Scores ``view`` against ``truth`` (rgb, depth) and the return-the-source-image baseline."""
    mask = np.asarray(view.valid_mask, dtype=bool)
    depth = view.depth if view.depth is not None else np.full(mask.shape, np.nan, np.float32)
    return ViewScore(
        psnr=psnr(view.rgb, truth["rgb"], mask), ssim=ssim(view.rgb, truth["rgb"], mask),
        depth_absrel=depth_absrel(depth, truth["depth"], mask), coverage=float(mask.mean()),
        baseline_psnr=psnr(source.rgb, truth["rgb"], mask), baseline_ssim=ssim(source.rgb, truth["rgb"], mask),
        baseline_depth_absrel=depth_absrel(source.depth, truth["depth"], mask))


# -- ground-truth simulators ----------------------------------------------------------------------
class _Simulator:
    """What the evaluation needs from a simulator: a seeded scene, renders at any camera, moving an object."""

    observation: Observation
    objects: list[dict[str, Any]]  # {"id", "name", "position" (centre), "size", "shape"}

    def reset(self, seed: int) -> None: ...
    def render(self, camera: CameraPose) -> dict[str, np.ndarray]: ...
    def move(self, object_id: int, base: np.ndarray) -> None: ...
    def close(self) -> None: ...


class _MujocoSimulator(_Simulator):
    def __init__(self, width: int, height: int, depth_noise: str = "none"):
        import gymnasium as gym
        import sim_envs  # registers the env

        # The observed frame carries the sensor's depth noise; render() (the ground truth) stays exact.
        self.env = gym.make(sim_envs.ENV_ID, width=width, height=height, depth_noise=depth_noise)

    def reset(self, seed: int) -> None:
        obs, info = self.env.reset(seed=seed)
        self.objects = info["objects"]
        self.observation = Observation.from_dict(obs, labels={int(o["id"]): o["name"] for o in self.objects})

    def render(self, camera: CameraPose) -> dict[str, np.ndarray]:
        return self.env.unwrapped.render_view(camera.cam_to_world, camera.intrinsics, camera.width, camera.height)

    def move(self, object_id: int, base: np.ndarray) -> None:
        obj = next(o for o in self.objects if int(o["id"]) == object_id)
        centre = np.asarray(base, dtype=np.float64) + [0.0, 0.0, float(obj["size"][2]) / 2]
        _teleport_body(self.env.unwrapped.model, self.env.unwrapped.data, np.asarray(obj["position"]), centre)

    def close(self) -> None:
        self.env.close()


def _teleport_body(model, data, position: np.ndarray, centre: np.ndarray) -> None:
    """Puts the free-jointed body now at ``position`` (world) at ``centre``, at rest, and updates the sim."""
    import mujoco

    distance = np.linalg.norm(data.xpos - position, axis=1)
    body = int(np.argmin(distance))
    if distance[body] > 1e-3 or model.body_jntnum[body] != 1 \
            or model.jnt_type[model.body_jntadr[body]] != mujoco.mjtJoint.mjJNT_FREE:
        raise InvalidInputError("object", "a free-jointed body at the object's reported position",
                                f"nearest body {distance[body]:.4f} m away")
    joint = model.body_jntadr[body]
    data.qpos[model.jnt_qposadr[joint]:model.jnt_qposadr[joint] + 3] = centre
    data.qvel[model.jnt_dofadr[joint]:model.jnt_dofadr[joint] + 6] = 0.0
    mujoco.mj_forward(model, data)


class _SyntheticSimulator(_Simulator):
    def __init__(self, width: int, height: int):
        from . import synthetic

        self.synthetic, self.width, self.height = synthetic, width, height

    def reset(self, seed: int) -> None:
        self.boxes = self.synthetic.random_boxes(seed)
        self.observation = self.synthetic.observe(self.synthetic.front_camera(self.width, self.height), self.boxes)
        self.objects = [{"id": b.id, "name": b.name, "position": list(b.center), "size": list(b.size),
                         "shape": "cube"} for b in self.boxes]

    def render(self, camera: CameraPose) -> dict[str, np.ndarray]:
        return self.synthetic.raycast(camera, self.boxes)

    def move(self, object_id: int, base: np.ndarray) -> None:
        self.boxes = [b.moved(tuple(base)) if b.id == object_id else b for b in self.boxes]

    def close(self) -> None:
        pass


def _make_simulator(simulator: str, width: int, height: int, depth_noise: str = "none") -> _Simulator:
    if simulator not in ("auto", "mujoco", "synthetic"):
        raise InvalidInputError("simulator", "'auto', 'mujoco' or 'synthetic'", repr(simulator))
    if simulator == "auto":
        try:
            import sim_envs  # noqa: F401
            simulator = "mujoco"
        except ImportError:
            simulator = "synthetic"
    if depth_noise != "none" and simulator != "mujoco":
        raise InvalidInputError("depth_noise", "'none' with the synthetic simulator (the noise model is sim_envs')",
                                repr(depth_noise))
    return (_MujocoSimulator(width, height, depth_noise) if simulator == "mujoco"
            else _SyntheticSimulator(width, height))


def _free_spot(objects: list[dict[str, Any]], moved_id: int, table_z: float, rng: np.random.Generator
               ) -> np.ndarray | None:
    """A base centre on the table at least MOVE_CLEARANCE_M from every other object, or None."""
    others = np.array([o["position"][:2] for o in objects if int(o["id"]) != moved_id]).reshape(-1, 2)
    for _ in range(200):
        xy = rng.uniform([-0.20, -0.26], [0.20, 0.26])
        if len(others) == 0 or np.min(np.linalg.norm(others - xy, axis=1)) >= MOVE_CLEARANCE_M:
            return np.array([xy[0], xy[1], table_z])
    return None


# -- the benchmark ---------------------------------------------------------------------------------
def evaluate_imagination(wm: Any = None, seeds: Sequence[int] = (0, 1, 2), yaws: Sequence[float] = (10, 20, 30, 45),
                         width: int = 320, height: int = 240, out_png: str | None = None,
                         simulator: str = "auto",
                         progress: Callable[[str], None] | None = None,
                         depth_noise: str = "none") -> dict[str, dict[str, float]]:
    """Imagined views vs simulator ground truth, averaged over ``seeds``.

    Args:
        wm: a WorldModel; the geometric one when None.
        seeds: scene seeds.
        yaws: camera yaws (degrees) about the scene pivot.
        width, height: image size of every render.
        out_png: when given, a grid (rows: views of the first seed; columns source | imagined | truth)
            is written there.
        simulator: ``"auto"``, ``"mujoco"`` or ``"synthetic"`` (see module docstring).
        progress: optional callback receiving one line per scored view.
        depth_noise: the observed frame's sensor model (``"none"``, ``"structured_light"``, ``"stereo"``;
            MuJoCo only); the ground-truth renders stay exact.

    Returns:
        ``{"yaw 10": {"psnr", "ssim", "depth_absrel", "coverage", "baseline_psnr", "baseline_ssim",
        "baseline_depth_absrel", "views"}, ..., "move edit": {...}}``, means over the seeds.

    Raises:
        InvalidInputError: empty ``seeds`` or ``yaws``, or an unknown ``simulator``.
    """
    from ..world_model import WorldModel

    if not list(seeds):
        raise InvalidInputError("seeds", "at least one seed", list(seeds))
    if not list(yaws):
        raise InvalidInputError("yaws", "at least one yaw", list(yaws))
    wm = WorldModel.load("geometric") if wm is None else wm
    sim = _make_simulator(simulator, width, height, depth_noise)
    scores: dict[str, list[ViewScore]] = {}
    grid: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]] = []
    try:
        for seed in seeds:
            sim.reset(int(seed))
            source = sim.observation
            scene = wm.observe(source)
            table_z = min(o["position"][2] - o["size"][2] / 2 for o in sim.objects)
            for yaw in yaws:
                pose = orbit(source.cam_to_world, scene.pivot, CameraMove(yaw_deg=float(yaw)))
                camera = CameraPose(pose, source.intrinsics, width, height)
                view, truth = wm.imagine(scene, camera, seed=int(seed)), sim.render(camera)
                _record(scores, grid, f"yaw {yaw:g}", score_view(view, truth, source), source, view, truth,
                        first=seed == seeds[0], progress=progress, seed=seed)

            movable = [o for o in sim.objects if o.get("shape") != "plate"]
            rng = np.random.default_rng(int(seed))
            target = movable[int(rng.integers(len(movable)))] if movable else None
            spot = _free_spot(sim.objects, int(target["id"]), table_z, rng) if target else None
            if spot is None:
                continue
            edited = wm.edit(scene, MoveObject(target["name"], to=spot), seed=int(seed))
            sim.move(int(target["id"]), spot)
            view, truth = wm.imagine(edited, source.camera, seed=int(seed)), sim.render(source.camera)
            _record(scores, grid, "move edit", score_view(view, truth, source), source, view, truth,
                    first=seed == seeds[0], progress=progress, seed=seed)
    finally:
        sim.close()
    if out_png:
        write_grid(out_png, grid)
    return {name: _mean(rows) for name, rows in scores.items()}


def _record(scores, grid, name, score, source, view, truth, first, progress, seed) -> None:
    scores.setdefault(name, []).append(score)
    if first:
        grid.append((name, source.rgb, view.rgb, truth["rgb"]))
    if progress is not None:
        progress(f"seed {seed} {name}: PSNR {score.psnr:.2f} dB (baseline {score.baseline_psnr:.2f}), "
                 f"SSIM {score.ssim:.3f} (baseline {score.baseline_ssim:.3f}), coverage {score.coverage:.2f}")


def _mean(rows: list[ViewScore]) -> dict[str, float]:
    fields = list(ViewScore.__dataclass_fields__)
    result = {f: float(np.nanmean([getattr(r, f) for r in rows])) for f in fields}
    result["views"] = len(rows)
    return result


def write_grid(path: str, rows: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]]) -> str:
    """Writes a PNG with one row per view: label, then source | imagined | truth."""
    from PIL import Image, ImageDraw

    if not rows:
        raise InvalidInputError("rows", "at least one view to draw", 0)
    height, width = rows[0][1].shape[:2]
    label_h = 18
    sheet = Image.new("RGB", (3 * width, len(rows) * (height + label_h)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for r, (name, *images) in enumerate(rows):
        top = r * (height + label_h)
        for c, (title, image) in enumerate(zip(("source", "imagined", "truth"), images)):
            draw.text((c * width + 4, top + 3), f"{name}: {title}", fill=(0, 0, 0))
            sheet.paste(Image.fromarray(image), (c * width, top + label_h))
    sheet.save(path)
    return path
