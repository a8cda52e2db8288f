"""An analytic tabletop that can be rendered exactly from any camera, with no simulator.

Boxes stand on a checkered table (so a misplaced pixel changes its colour) above a darker floor. Ray
casting gives exact rgb, metric z-depth and instance ids, which makes it a ground truth for novel-view
rendering and edits in tests and in ``evaluate_imagination`` when MuJoCo is not installed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import numpy as np

from ..camera import look_at, pixel_rays
from ..types import CameraPose, Observation

if TYPE_CHECKING:
    from ..backends.geometric.cloud import SceneCloud
    from ..types import SceneObject

TABLE_HEIGHT = 0.40
TABLE_HALF_X, TABLE_HALF_Y = 0.45, 0.60
CHECKER_M = 0.05
TABLE_COLORS = ((150, 130, 110), (120, 104, 88))
FLOOR_COLOR = (60, 60, 64)


@dataclass(frozen=True)
class Box:
    """An axis-aligned box standing on the table. ``center`` is the box centre (world, metres)."""

    id: int
    name: str
    center: tuple[float, float, float]
    size: tuple[float, float, float]
    color: tuple[int, int, int]

    def moved(self, base_center: tuple[float, float, float]) -> "Box":
        """The box with the centre of its base at ``base_center``."""
        x, y, z = base_center
        return replace(self, center=(x, y, z + self.size[2] / 2))


def default_boxes() -> list[Box]:
    """Three boxes of distinct colours and sizes, the layout used by the tests and the CPU evaluation."""
    return [
        Box(1, "red cube", (-0.10, -0.08, TABLE_HEIGHT + 0.025), (0.05, 0.05, 0.05), (217, 26, 26)),
        Box(2, "blue box", (0.06, 0.10, TABLE_HEIGHT + 0.04), (0.06, 0.04, 0.08), (26, 64, 217)),
        Box(3, "yellow cube", (0.12, -0.12, TABLE_HEIGHT + 0.02), (0.04, 0.04, 0.04), (235, 209, 26)),
    ]


#: Box colours of random scenes (the simulator's palette, 0-255).
PALETTE = {"red": (217, 26, 26), "green": (26, 166, 51), "blue": (26, 64, 217), "yellow": (235, 209, 26),
           "orange": (242, 128, 13), "purple": (128, 38, 179), "cyan": (26, 191, 204), "white": (235, 235, 235)}


def random_boxes(seed: int, count: int | None = None) -> list[Box]:
    """3-5 boxes (4-8 cm) of distinct colours at least 10 cm apart on the table, from ``seed``."""
    rng = np.random.default_rng(seed)
    count = int(rng.integers(3, 6)) if count is None else count
    colours = rng.permutation(list(PALETTE))[:count]
    boxes: list[Box] = []
    while len(boxes) < count:
        xy = rng.uniform([-0.20, -0.26], [0.20, 0.26])
        if any(np.hypot(xy[0] - b.center[0], xy[1] - b.center[1]) < 0.10 for b in boxes):
            continue
        size = tuple(float(v) for v in rng.uniform(0.04, 0.08, 3))
        colour = str(colours[len(boxes)])
        boxes.append(Box(len(boxes) + 1, f"{colour} box", (float(xy[0]), float(xy[1]), TABLE_HEIGHT + size[2] / 2),
                         size, PALETTE[colour]))
    return boxes


def front_camera(width: int = 320, height: int = 240, yaw_deg: float = 0.0) -> CameraPose:
    """A camera 0.9 m from the table centre looking down at ~45 degrees (the simulator's front camera)."""
    angle = np.radians(yaw_deg)
    eye = np.array([0.75 * np.cos(angle), 0.75 * np.sin(angle), TABLE_HEIGHT + 0.6])
    focal = 0.9 * width
    intrinsics = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1.0]])
    return CameraPose(look_at(eye, np.array([0.0, 0.0, TABLE_HEIGHT])), intrinsics, width, height)


def raycast(camera: CameraPose, boxes: list[Box]) -> dict[str, np.ndarray]:
    """Renders the tabletop exactly: ``{"rgb", "depth", "segmentation"}`` like a simulator observation."""
    height, width = camera.height, camera.width
    pose = camera.cam_to_world
    rows, cols = np.divmod(np.arange(height * width), width)
    rays = pixel_rays(rows, cols, camera.intrinsics, pose)  # world directions; camera z component is 1
    origin = pose[:3, 3]

    t_best = np.full(rays.shape[0], np.inf)
    rgb = np.zeros((rays.shape[0], 3), dtype=np.uint8)
    ids = np.zeros(rays.shape[0], dtype=np.int32)

    def hit_plane(z_plane: float, limit_xy: tuple[float, float] | None) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (z_plane - origin[2]) / rays[:, 2]
        t = np.where(t > 1e-6, t, np.inf)
        points = origin + rays * np.where(np.isfinite(t), t, 0)[:, None]
        if limit_xy is not None:
            outside = (np.abs(points[:, 0]) > limit_xy[0]) | (np.abs(points[:, 1]) > limit_xy[1])
            t = np.where(outside, np.inf, t)
        return t, points

    t_floor, _ = hit_plane(0.0, None)
    closer = t_floor < t_best
    t_best[closer], rgb[closer] = t_floor[closer], FLOOR_COLOR

    t_table, points = hit_plane(TABLE_HEIGHT, (TABLE_HALF_X, TABLE_HALF_Y))
    closer = t_table < t_best
    checker = ((np.floor(points[:, 0] / CHECKER_M) + np.floor(points[:, 1] / CHECKER_M)) % 2).astype(int)
    t_best[closer] = t_table[closer]
    rgb[closer] = np.asarray(TABLE_COLORS, dtype=np.uint8)[checker[closer]]

    for box in boxes:
        lo = np.asarray(box.center) - np.asarray(box.size) / 2
        hi = np.asarray(box.center) + np.asarray(box.size) / 2
        with np.errstate(divide="ignore", invalid="ignore"):
            t1, t2 = (lo - origin) / rays, (hi - origin) / rays
        t_near = np.nanmax(np.minimum(t1, t2), axis=1)
        t_far = np.nanmin(np.maximum(t1, t2), axis=1)
        hit = (t_near <= t_far) & (t_near > 1e-6) & (t_near < t_best)
        # Shade faces differently (top brightest) so the box's 3D shape shows in the colour.
        normal_axis = np.argmax(np.isclose(np.minimum(t1, t2), t_near[:, None]), axis=1)
        shade = np.array([0.8, 0.65, 1.0])[normal_axis]
        t_best[hit], ids[hit] = t_near[hit], box.id
        rgb[hit] = np.clip(np.asarray(box.color)[None, :] * shade[hit, None], 0, 255).astype(np.uint8)

    depth = t_best.astype(np.float32)  # rays have camera z = 1, so the ray parameter t is the z-depth
    return {"rgb": rgb.reshape(height, width, 3), "depth": depth.reshape(height, width),
            "segmentation": ids.reshape(height, width)}


def observe(camera: CameraPose, boxes: list[Box]) -> Observation:
    """An Observation of the tabletop from ``camera``, with labels for every box."""
    frame = raycast(camera, boxes)
    return Observation(rgb=frame["rgb"], depth=frame["depth"], intrinsics=camera.intrinsics,
                       cam_to_world=camera.cam_to_world, segmentation=frame["segmentation"],
                       labels={b.id: b.name for b in boxes})


def lift(observation: Observation) -> SceneCloud:
    """Every valid pixel of ``observation`` as a SceneCloud, ids from its segmentation, plane = the table.

    A stand-in for the geometric backend's perception that knows the table height exactly, so rendering
    and editing can be tested in isolation from plane fitting.
    """
    from ..backends.geometric.cloud import SceneCloud
    from ..camera import unproject

    depth = observation.depth
    valid = np.isfinite(depth) & (depth > 0)
    rows, cols = np.nonzero(valid)
    points = unproject(depth, observation.intrinsics, observation.cam_to_world)[rows, cols]
    seg = observation.segmentation if observation.segmentation is not None else np.zeros(depth.shape, np.int32)
    return SceneCloud(points=points.astype(np.float32), colors=observation.rgb[rows, cols],
                      ids=seg[rows, cols].astype(np.int32), pixels=np.stack([rows, cols], 1).astype(np.int32),
                      plane=np.array([0.0, 0.0, 1.0, -TABLE_HEIGHT]), source=observation.camera)


def scene_objects(boxes: list[Box]) -> list[SceneObject]:
    """Exact SceneObjects for ``boxes``."""
    from ..types import SceneObject

    return [SceneObject(id=b.id, name=b.name, centroid=np.asarray(b.center, dtype=np.float64),
                        extent=np.asarray(b.size, dtype=np.float64)) for b in boxes]
