"""What stands where, from one observation: the heights of observed surface points near a place on the table.

Skills use it to keep fingers off neighbours (a drawer's wall, a cookie box beside a bowl): the world model
gives each object a box, but a drawer or cabinet is one box with hollow parts.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

#: Subsample the image by this stride: 1-cm finger footprints need no more than every other pixel at 256 px.
STRIDE = 2
#: Half width of the strip of a bowl's points that locates its rim on one side.
RIM_STRIP_HALF_WIDTH_M = 0.012
#: Points this close inside the outermost one belong to the rim wall.
RIM_WALL_BAND_M = 0.015
#: Fewer strip points than this and the rim is taken from the object's box instead.
MIN_RIM_POINTS = 5
#: A top face this much longer than wide has a narrow side to grasp across.
NARROW_RATIO = 1.2
#: Points within this of an object's highest point form its top face.
TOP_BAND_M = 0.01
#: A top face shorter than this (its long side, from the spread of its points) is a knob or a cap, not the
#: object's shape: its narrow side says nothing about how to grasp the object (the moka pot's lid knob turned
#: the fingers 20-40 degrees off the pot's narrow side: wedged open at 8 cm, or closing on nothing).
MIN_FACE_LENGTH_M = 0.035
#: Unlabelled points this close (horizontally) to the end effector (hand, wrist, forearm)...
HAND_RADIUS_M = 0.3
#: ...and no lower than this below it are the robot's hand and wrist (the fingertips reach ~1 cm below).
HAND_BELOW_M = 0.03
#: Footprint whose highest observed point is a spot's height in a container.
FREE_FOOTPRINT_M = 0.02
#: Metres of height a spot may give up per metre nearer the container's centre (ties go to the centre).
FREE_CENTRE_WEIGHT = 0.1
#: Percentile of an object's point heights taken as its lowest observed part.
LOW_PERCENTILE = 5.0
#: A mug's rim ring: its points within this of the highest (the handle's top is lower).
RING_BAND_M = 0.012
#: Percentiles of the ring's points that bound it (robust to a few rim-bleed points).
RING_PERCENTILES = (3.0, 97.0)


class HeightMap:
    """World points of an RGB-D observation with their instance ids.

    Args:
        obs: an observation dict with depth, intrinsics, cam_to_world and segmentation.
        hand_at: the end effector's position when the frame was taken (proprioception): unlabelled points
            around and above it are the robot's own hand, not an obstacle (the labels leave the robot out
            as background, so only where it is tells it apart).
    """

    def __init__(self, obs: Mapping[str, np.ndarray], hand_at: np.ndarray | None = None):
        depth = np.asarray(obs["depth"], dtype=np.float64)[::STRIDE, ::STRIDE]
        ids = np.asarray(obs["segmentation"])[::STRIDE, ::STRIDE]
        K, pose = np.asarray(obs["intrinsics"]), np.asarray(obs["cam_to_world"])
        rows, cols = np.mgrid[0:depth.shape[0], 0:depth.shape[1]] * STRIDE
        valid = np.isfinite(depth) & (depth > 0)
        z = depth[valid]
        cam = np.stack([(cols[valid] - K[0, 2]) / K[0, 0] * z, (rows[valid] - K[1, 2]) / K[1, 1] * z, z], axis=1)
        self.points = cam @ pose[:3, :3].T + pose[:3, 3]
        self.ids = ids[valid]
        if hand_at is not None:
            hand = np.asarray(hand_at, dtype=np.float64)
            own = ((self.ids == 0) & (np.hypot(*(self.points[:, :2] - hand[:2]).T) < HAND_RADIUS_M)
                   & (self.points[:, 2] > hand[2] - HAND_BELOW_M))
            self.points, self.ids = self.points[~own], self.ids[~own]

    def top_near(self, xy: np.ndarray, radius_m: float, exclude_id: int) -> float:
        """Highest observed point within ``radius_m`` of ``xy`` that is not object ``exclude_id`` (-inf if none)."""
        near = np.hypot(self.points[:, 0] - xy[0], self.points[:, 1] - xy[1]) < radius_m
        near &= self.ids != exclude_id
        return float(self.points[near, 2].max()) if near.any() else -np.inf

    def rim(self, centre: np.ndarray, axis: np.ndarray, object_id: int,
            half_width_m: float = RIM_STRIP_HALF_WIDTH_M) -> tuple[float, float] | None:
        """Where a bowl's rim is along ``axis`` from ``centre``: (outer distance in m, rim top z), or None.

        Uses the object's own points in a narrow strip through the centre along the axis, so a tilted
        bowl gets the rim height on the side the fingers go to, not its highest point.
        """
        mine = self.points[self.ids == object_id]
        if len(mine) == 0:
            return None
        offset = mine[:, :2] - np.asarray(centre)[:2]
        along = offset @ axis[:2]
        across = np.abs(offset @ np.array([-axis[1], axis[0]]))
        strip = (across < half_width_m) & (along > 0)
        if strip.sum() < MIN_RIM_POINTS:
            return None
        outer = float(along[strip].max())
        near_wall = strip & (along > outer - RIM_WALL_BAND_M)
        return outer, float(mine[near_wall, 2].max())

    def narrow_axis(self, object_id: int, min_ratio: float = NARROW_RATIO) -> np.ndarray | None:
        """Horizontal direction across which the object's observed top is narrowest, or None if it is round.

        Args:
            min_ratio: the long/short spread ratio below which the object counts as round.
        """
        mine = self.points[self.ids == object_id]
        if len(mine) < MIN_RIM_POINTS:
            return None
        top = mine[mine[:, 2] > mine[:, 2].max() - TOP_BAND_M]   # the top face: seen whole from above
        if len(top) < MIN_RIM_POINTS:
            return None
        values, vectors = np.linalg.eigh(np.cov((top[:, :2] - top[:, :2].mean(0)).T))
        if values[0] <= 0 or values[1] / values[0] < min_ratio ** 2:
            return None
        if np.sqrt(12.0 * values[1]) < MIN_FACE_LENGTH_M:   # a uniform face of length L has spread L / sqrt(12)
            return None
        return np.array([vectors[0, 0], vectors[1, 0], 0.0])

    def ring(self, object_id: int) -> tuple[np.ndarray, float, float] | None:
        """A cup-like object's rim as observed: (centre xy, radius, rim z), or None when too little is seen.

        The rim is the band of the object's highest points; a handle below it does not shift the centre.
        """
        mine = self.points[self.ids == object_id]
        if len(mine) < MIN_RIM_POINTS:
            return None
        top = float(np.percentile(mine[:, 2], 99.5))
        ring = mine[(mine[:, 2] > top - RING_BAND_M) & (mine[:, 2] <= top + 0.005)]
        if len(ring) < MIN_RIM_POINTS:
            return None
        low, high = np.percentile(ring[:, :2], RING_PERCENTILES, axis=0)
        return (low + high) / 2, float(np.mean(high - low) / 2), top

    def low_z(self, object_id: int) -> float | None:
        """Height of the object's lowest observed points (5th percentile, robust to rim bleed), or None.

        A lifted object's bottom is seen below the hand even when the hand hides its top (a bottle held by
        its neck), and the world model's box of an object seen above the table reaches down to the table.
        """
        mine = self.points[self.ids == object_id]
        return float(np.percentile(mine[:, 2], LOW_PERCENTILE)) if len(mine) >= MIN_RIM_POINTS else None

    def top_centre(self, object_id: int) -> np.ndarray | None:
        """Middle (xy) of the object's observed top face, or None: where a leaning book's top edge is."""
        mine = self.points[self.ids == object_id]
        if len(mine) < MIN_RIM_POINTS:
            return None
        top = mine[mine[:, 2] > np.percentile(mine[:, 2], 99.0) - TOP_BAND_M]
        return np.median(top[:, :2], axis=0) if len(top) >= MIN_RIM_POINTS else None

    def free_spot(self, container_centre: np.ndarray, half_extent_xy: np.ndarray, keep_in_m: float,
                  exclude_id: int) -> np.ndarray | None:
        """The lowest observed place in a container's opening (xy), where something dropped in lands clear.

        Args:
            container_centre: the container's centre (world m).
            half_extent_xy: half its box's horizontal extent (world axes).
            keep_in_m: candidates stay this far inside its edges (the held object's half width).
            exclude_id: the held object (its own points are not what it lands on).

        Returns:
            The xy with the lowest observed top within a 2 cm footprint, ties to the centre; None when the
            opening is too small or not seen.
        """
        centre = np.asarray(container_centre, dtype=np.float64)[:2]
        reach = np.asarray(half_extent_xy, dtype=np.float64) - keep_in_m
        if np.any(reach <= 0):
            return None
        best = None
        for dx in np.linspace(-reach[0], reach[0], 5):
            for dy in np.linspace(-reach[1], reach[1], 5):
                xy = centre + np.array([dx, dy])
                top = self.top_near(xy, FREE_FOOTPRINT_M, exclude_id)
                if not np.isfinite(top):
                    continue   # not seen: behind the container's near wall
                cost = top + FREE_CENTRE_WEIGHT * float(np.hypot(dx, dy))
                if best is None or cost < best[0]:
                    best = (cost, xy)
        return None if best is None else best[1]
