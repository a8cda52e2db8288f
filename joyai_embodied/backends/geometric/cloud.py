"""The geometric backend's scene state: a coloured, instance-labelled point cloud in the world frame.

Shared contract between perception (observe -> objects), rendering (imagine) and editing (edit).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ...types import CameraPose


@dataclass(frozen=True)
class SceneCloud:
    """Points lifted from one RGB-D frame (and changed by edits).

    Attributes:
        points: (N, 3) float32 world coordinates in metres.
        colors: (N, 3) uint8 RGB.
        ids: (N,) int32 instance ids; 0 = support surface / background.
        pixels: (N, 2) int32 (row, col) of each point in the source image; -1 for points added by edits.
        plane: (4,) float64 support plane (a, b, c, d) with unit normal pointing up: a*x + b*y + c*z + d = 0;
            None when no support plane was found.
        source: the camera the points were seen from.
    """

    points: np.ndarray
    colors: np.ndarray
    ids: np.ndarray
    pixels: np.ndarray
    plane: np.ndarray | None
    source: CameraPose

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def select(self, mask: np.ndarray) -> "SceneCloud":
        return replace(self, points=self.points[mask], colors=self.colors[mask], ids=self.ids[mask],
                       pixels=self.pixels[mask])

    def object_points(self, instance_id: int) -> np.ndarray:
        return self.points[self.ids == instance_id]
