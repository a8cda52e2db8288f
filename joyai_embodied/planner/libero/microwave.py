"""A hinged door (LIBERO's microwave) from the observation: where its hinge, its open panel and its closed plane are.

Everything comes from the depth image and the appliance's instance mask (one label covers body and door): seen
from above, the open door is a thin panel (a line of points), the body a solid block. The panel's end next to the
body is the hinge; the door closes onto the body's side that starts at the hinge. Nothing here reads simulator
poses or joint positions.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from ...errors import InvalidInputError

#: Top-down grid cell for telling the thin door from the solid body.
CELL_M = 0.01
#: A solid block survives an erosion by this many cells; a door panel (~2.5 cm thick) does not.
ERODE_CELLS = 2
#: Door cells are those farther than this from the (opened) body.
DOOR_OFF_BODY_M = 0.02
#: Points this far above the appliance's observed bottom count (the table under it bleeds into the mask's rim).
ABOVE_BOTTOM_M = 0.03
#: Fewer door points than this: no open door seen.
MIN_DOOR_POINTS = 30
#: Appliance points farther than this out of the opening's plane belong to a door not shut (a shut one is flush).
PROUD_M = 0.04


@dataclass(frozen=True)
class Door:
    """A hinged door seen from above (world m, xy only; heights separately).

    hinge: the hinge's position (xy); open_dir: unit direction from the hinge to the door's free edge now;
    closed_dir: the same direction once the door is shut (along the body's front); length: hinge to free edge;
    outward: unit normal of the opening, pointing out of the cavity; bottom/top: the appliance's observed heights.
    """

    hinge: np.ndarray
    open_dir: np.ndarray
    closed_dir: np.ndarray
    length: float
    outward: np.ndarray
    bottom: float
    top: float

    @property
    def open_rad(self) -> float:
        """How far the door stands open (rad, unsigned angle from its closed direction)."""
        return float(np.arccos(np.clip(self.open_dir @ self.closed_dir, -1.0, 1.0)))

    @property
    def closing_sign(self) -> float:
        """+1 when closing turns the door counter-clockwise seen from above, else -1."""
        cross = self.open_dir[0] * self.closed_dir[1] - self.open_dir[1] * self.closed_dir[0]
        return 1.0 if cross >= 0 else -1.0


def object_points(obs: Mapping[str, np.ndarray], object_id: int) -> np.ndarray:
    """World points (N, 3) of one instance at full image resolution (the door's panel is a few pixels wide)."""
    depth = np.asarray(obs["depth"], dtype=np.float64)
    mask = (np.asarray(obs["segmentation"]) == object_id) & np.isfinite(depth) & (depth > 0)
    rows, cols = np.nonzero(mask)
    z = depth[rows, cols]
    K, pose = np.asarray(obs["intrinsics"]), np.asarray(obs["cam_to_world"])
    cam = np.stack([(cols - K[0, 2]) / K[0, 0] * z, (rows - K[1, 2]) / K[1, 1] * z, z], axis=1)
    return cam @ pose[:3, :3].T + pose[:3, 3]


def _grid(xy: np.ndarray, origin: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    grid = np.zeros(shape, dtype=bool)
    cells = np.floor((xy - origin) / CELL_M).astype(int)
    grid[cells[:, 0], cells[:, 1]] = True
    return grid


def _erode(grid: np.ndarray, cells: int) -> np.ndarray:
    out = grid.copy()
    for dx in range(-cells, cells + 1):
        for dy in range(-cells, cells + 1):
            out &= np.roll(np.roll(grid, dx, 0), dy, 1)
    return out


def _dilate(grid: np.ndarray, cells: int) -> np.ndarray:
    out = grid.copy()
    for dx in range(-cells, cells + 1):
        for dy in range(-cells, cells + 1):
            out |= np.roll(np.roll(grid, dx, 0), dy, 1)
    return out


def _min_area_axes(xy: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Axes (2 unit vectors), low and high extents along them of the smallest box around ``xy``."""
    best = None
    for angle in np.radians(np.arange(0.0, 90.0, 1.0)):
        axes = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        local = xy @ axes.T
        low, high = np.percentile(local, 1, axis=0), np.percentile(local, 99, axis=0)
        area = float(np.prod(high - low))
        if best is None or area < best[0]:
            best = (area, axes, low, high)
    return best[1][0], best[1][1], best[2], best[3]


def find_door(points: np.ndarray) -> Door:
    """The door of a hinged appliance from its observed points (N, 3, world m).

    Raises:
        InvalidInputError: (field "microwave") no open door panel is seen beside a body.
    """
    points = np.asarray(points, dtype=np.float64)
    if len(points) < MIN_DOOR_POINTS:
        raise InvalidInputError("microwave", f">= {MIN_DOOR_POINTS} observed points", len(points))
    bottom, top = float(np.percentile(points[:, 2], 1)), float(np.percentile(points[:, 2], 99.5))
    upper = points[points[:, 2] > bottom + ABOVE_BOTTOM_M]
    xy = upper[:, :2]
    origin = xy.min(axis=0) - 4 * CELL_M
    shape = tuple(int(s) for s in np.ceil((xy.max(axis=0) - origin) / CELL_M) + 5)
    occupied = _grid(xy, origin, shape)
    body = _dilate(_erode(occupied, ERODE_CELLS), ERODE_CELLS)
    if not body.any():
        raise InvalidInputError("microwave", "a solid body seen from above", "only thin parts")
    near_body = _dilate(body, int(round(DOOR_OFF_BODY_M / CELL_M)))
    cells = np.floor((xy - origin) / CELL_M).astype(int)
    on_door = ~near_body[cells[:, 0], cells[:, 1]]
    door_xy = xy[on_door]
    if len(door_xy) < MIN_DOOR_POINTS:
        raise InvalidInputError("microwave", "an open door panel beside the body", f"{len(door_xy)} door points")
    body_xy = xy[body[cells[:, 0], cells[:, 1]]]
    mean = door_xy.mean(axis=0)
    _, vectors = np.linalg.eigh(np.cov((door_xy - mean).T))
    along = vectors[:, 1]
    t = (door_xy - mean) @ along
    ends = [mean + along * np.percentile(t, 1), mean + along * np.percentile(t, 99)]
    gaps = [float(np.min(np.linalg.norm(body_xy - end, axis=1))) for end in ends]
    hinge_end, free_end = (ends[0], ends[1]) if gaps[0] <= gaps[1] else (ends[1], ends[0])
    # The hinge sits where the panel meets the body: its end carried on to the body's nearest point.
    nearest = body_xy[np.argmin(np.linalg.norm(body_xy - hinge_end, axis=1))]
    open_dir = free_end - hinge_end
    length = float(np.linalg.norm(free_end - nearest))
    open_dir /= max(float(np.linalg.norm(open_dir)), 1e-9)
    hinge = hinge_end + open_dir * float((nearest - hinge_end) @ open_dir)
    # The door closes along one of the two sides of the body's box that meet at the hinge: the one it turns
    # less than half a turn to reach (it opens at most ~120 degrees; the other side is then ~150+ away).
    a1, a2, low, high = _min_area_axes(body_xy)
    axes = (a1, a2)
    local = np.array([hinge @ a1, hinge @ a2])
    centre_local = (low + high) / 2
    candidates = [(axes[i] * np.sign(centre_local[i] - local[i]), axes[1 - i] * np.sign(local[1 - i]
                   - centre_local[1 - i])) for i in (0, 1)]
    closed_dir, outward = max(candidates, key=lambda c: float(c[0] @ open_dir))
    return Door(hinge=hinge, open_dir=open_dir, closed_dir=closed_dir, length=length, outward=outward,
                bottom=bottom, top=top)


def door_closed(points: np.ndarray, door: Door) -> bool:
    """Whether the door is seen shut: almost no part of the appliance stands out in front of its opening.

    An open panel stands up to its width (~25 cm) out of the opening's plane; a closed one lies within ~2 cm of it.

    Args:
        points: the appliance's observed points now (N, 3, world m).
        door: the door as found at the start (its hinge and opening's plane).
    """
    points = np.asarray(points, dtype=np.float64)
    upper = points[points[:, 2] > door.bottom + ABOVE_BOTTOM_M]
    proud = (upper[:, :2] - door.hinge) @ door.outward > PROUD_M
    return int(proud.sum()) < MIN_DOOR_POINTS
