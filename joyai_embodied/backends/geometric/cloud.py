"""The geometric backend's scene state: a coloured, instance-labelled point cloud in the world frame.

Shared contract between perception (observe -> objects), rendering (imagine) and editing (edit).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

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

    The arrays are treated as immutable: derived per-point data (see :meth:`derived`) is computed once per
    cloud and reused by every render of it. Edits build a new cloud (``dataclasses.replace``), which starts
    with an empty cache.
    """

    points: np.ndarray
    colors: np.ndarray
    ids: np.ndarray
    pixels: np.ndarray
    plane: np.ndarray | None
    source: CameraPose
    # Per-cloud derived arrays (``derived``); not part of the value (excluded from init, repr and ==).
    _derived: dict = field(default_factory=dict, init=False, repr=False, compare=False)

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def select(self, mask: np.ndarray) -> "SceneCloud":
        return replace(self, points=self.points[mask], colors=self.colors[mask], ids=self.ids[mask],
                       pixels=self.pixels[mask])

    def object_points(self, instance_id: int) -> np.ndarray:
        return self.points[self.ids == instance_id]

    def __getstate__(self) -> dict:
        # The cache is recomputed on demand: copies and pickles carry only the value.
        return {key: value for key, value in self.__dict__.items() if key != "_derived"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self.__dict__["_derived"] = {}

    def derived(self, name: str, compute) -> np.ndarray:
        """``compute(self)``, computed on first use and cached on this cloud under ``name``.

        Args:
            name: cache key (one per kind of derived data, e.g. ``"points_t"``).
            compute: function of the cloud returning the array; called at most once per cloud and name.

        Returns:
            The cached array (read-only: callers must not modify it).
        """
        value = self._derived.get(name)
        if value is None:
            value = compute(self)
            value.flags.writeable = False
            self._derived[name] = value
        return value
