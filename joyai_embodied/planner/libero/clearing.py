"""Keeping a drawer's path clear: what stands where an opening drawer (and the hand pulling it) will be.

"Open the top drawer and put the bowl inside": a bowl standing in front of the cabinet ends up under the
opened drawer, where no hand can reach its rim. LIBERO checks only the final state, so the planner may
set the bowl aside first. Everything here comes from the observation: the cabinet's box, the handle
found in the depth image (``drawers.find_handle``) and the observed surface points (``HeightMap``).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ...types import SceneObject
from .drawers import DRAWER_CENTRE_BEHIND_HANDLE_M, PULL_M, Handle
from .drawer_put import on_the_way
from .heights import HeightMap

#: The pulled drawer, the hand holding it and its retreat reach this far in front of the closed handle.
SWEEP_AHEAD_M = PULL_M + 0.09
#: Keep this much room between a set-aside object and the drawer's swept volume (the hand is ~6 cm thick).
SWEEP_MARGIN_M = 0.03
#: Candidate spots for setting an object aside lie on a grid of this pitch...
SPOT_GRID_M = 0.02
#: ...within this distance of where it stands (a short carry: a few control steps).
SPOT_RADIUS_M = 0.30
#: A spot is free when nothing else is observed higher than this above the table within the object's radius.
FREE_ABOVE_TABLE_M = 0.01
#: ...plus this margin around it (neighbours' rims, finger room for the second grasp).
FREE_MARGIN_M = 0.04
#: A spot needs this many observed table points under it (an unseen spot, behind a cabinet, is not free).
MIN_TABLE_POINTS = 15
#: An object this much taller than the one carried makes the arm climb over it...
TALL_ABOVE_M = 0.04
#: ...which costs about as many steps as this much more way.
TALL_ON_THE_WAY_COST_M = 0.25
#: A spot farther from the arm's start than the handle costs this much more way: the arm, stretched out
#: there, could not turn its hand to face the drawer afterwards (measured: stuck at 2.5 cm for 60 steps).
FAR_REACH_COST_M = 0.3
#: Spots farther than this from the robot's start (xy) are out of comfortable reach.
MAX_REACH_M = 0.75


def _sweep_coords(xy: np.ndarray, cabinet: SceneObject, handle: Handle) -> tuple[np.ndarray, np.ndarray]:
    """(distance ahead of the closed handle along the drawer's front, lateral offset from the cabinet's centre)."""
    front = np.asarray(handle.front, dtype=np.float64)[:2]
    lateral = np.array([-front[1], front[0]])
    offset = np.atleast_2d(xy) - np.asarray(handle.centre, dtype=np.float64)[:2]
    ahead = offset @ front
    side = (np.atleast_2d(xy) - np.asarray(cabinet.centroid, dtype=np.float64)[:2]) @ lateral
    return ahead, side


def _half_width(cabinet: SceneObject, handle: Handle) -> float:
    axes = np.asarray(cabinet.obb_rotation, dtype=np.float64)[:2, :2]
    lateral = np.array([-handle.front[1], handle.front[0]])
    return float(sum(abs(axes[:, i] @ lateral) * cabinet.extent[i] / 2 for i in range(2)))


def in_drawer_sweep(obj: SceneObject, cabinet: SceneObject, handle: Handle, margin_m: float = 0.0) -> bool:
    """Whether ``obj``'s footprint overlaps what the opening drawer and the pulling hand will cover."""
    radius = float(max(obj.extent[0], obj.extent[1])) / 2 + margin_m
    ahead, side = _sweep_coords(np.asarray(obj.centroid)[:2], cabinet, handle)
    return bool(ahead[0] - radius < SWEEP_AHEAD_M and abs(side[0]) - radius < _half_width(cabinet, handle))


def aside_spot(obj: SceneObject, cabinet: SceneObject, handle: Handle, heights: HeightMap,
               home_xy: np.ndarray, others: Sequence[SceneObject] = ()) -> np.ndarray | None:
    """The free table spot (xy, world m) for ``obj`` outside the drawer's sweep with the shortest round trip.

    Free: observed table there (enough points at the table's height), nothing else higher than the table
    within the object's radius plus a margin, outside the sweep with a margin, within reach of the arm.
    Round trip: from the object to the spot, then from the spot into the opened drawer; a way past a
    tall object among ``others`` (a bottle, a rack: the arm climbs over it) costs extra.
    """
    centre = np.asarray(obj.centroid, dtype=np.float64)[:2]
    radius = float(max(obj.extent[0], obj.extent[1])) / 2
    table_z = float(obj.bottom_z)
    steps = np.arange(-SPOT_RADIUS_M, SPOT_RADIUS_M + 1e-9, SPOT_GRID_M)
    grid = np.array([(centre[0] + dx, centre[1] + dy) for dx in steps for dy in steps
                     if 0.08 < np.hypot(dx, dy) <= SPOT_RADIUS_M])
    ahead, side = _sweep_coords(grid, cabinet, handle)
    reach = radius + SWEEP_MARGIN_M
    outside = (ahead - reach >= SWEEP_AHEAD_M) | (np.abs(side) - reach >= _half_width(cabinet, handle))
    outside &= np.hypot(*(grid - np.asarray(home_xy)[:2]).T) < MAX_REACH_M
    points = heights.points[heights.ids != obj.id]
    interior = np.asarray(handle.centre)[:2] + np.asarray(handle.front)[:2] * (PULL_M - DRAWER_CENTRE_BEHIND_HANDLE_M)
    home = np.asarray(home_xy, dtype=np.float64)[:2]
    handle_reach = float(np.linalg.norm(np.asarray(handle.centre)[:2] - home))
    tall = [o for o in others if o.id not in (obj.id, cabinet.id) and o.top_z > obj.top_z + TALL_ABOVE_M]
    best, best_distance = None, np.inf
    for xy in grid[outside]:
        near = np.hypot(points[:, 0] - xy[0], points[:, 1] - xy[1])
        around = points[near < radius + FREE_MARGIN_M]
        if len(around) < MIN_TABLE_POINTS or float(around[:, 2].max()) > table_z + FREE_ABOVE_TABLE_M:
            continue
        distance = float(np.linalg.norm(xy - centre) + np.linalg.norm(xy - interior))
        if np.linalg.norm(xy - home) > handle_reach:
            distance += FAR_REACH_COST_M
        if on_the_way(tall, centre, xy) or on_the_way(tall, xy, interior):
            distance += TALL_ON_THE_WAY_COST_M
        if distance < best_distance:
            best, best_distance = xy, distance
    return best
