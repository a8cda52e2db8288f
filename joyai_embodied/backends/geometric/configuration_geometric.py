"""``GeometricConfig``: the options of the geometric backend (``models/geometric.yaml``), typed and checked once."""

from __future__ import annotations

import dataclasses
from typing import Mapping

from ...config import TypedConfig
from ...errors import InvalidInputError
from ...types import CameraPose
from .reasoning import RELATION_MARGIN_M

#: ``depth_filter`` values (see perception.DEPTH_FILTERS; repeated here so the config imports no numpy code).
DEPTH_FILTERS = ("auto", "on", "off")

#: A voxel larger than this merges neighbouring tabletop objects (they are a few cm apart).
MAX_VOXEL_SIZE_M = 0.1
#: Filling holes wider than this smears foreground over the background in imagined views.
MAX_HOLE_FILL_PX = 16
#: A margin wider than half a metre makes every relation on a table "neither".
MAX_RELATION_MARGIN_M = 0.5


@dataclasses.dataclass(frozen=True)
class GeometricConfig(TypedConfig):
    """Options of :class:`~joyai_embodied.backends.geometric.GeometricBackend`.

    Attributes:
        voxel_size_m: when > 0, the scene cloud keeps one point per voxel of this size (lighter imagine/edit).
        hole_fill_px: radius of holes filled in imagined views (0 disables filling).
        relation_margin_m: differences at or under this along an axis are neither left nor right
            (in front nor behind).
        cameras: named camera poses for questions such as "from the side camera, is A left of B?".
        depth_filter: ``"auto"`` (default: clean depth that looks like a real sensor's, i.e. with pixels
            without depth; exact simulator depth is used as it is), ``"on"`` or ``"off"``: flying-pixel
            removal, mask erosion at depth edges and surface smoothing (``depth_filter.py``).

    Raises:
        InvalidInputError: a wrongly typed or out-of-range option (the message names it).
    """

    voxel_size_m: float = 0.0
    hole_fill_px: int = 2
    relation_margin_m: float = RELATION_MARGIN_M
    cameras: Mapping[str, CameraPose] | None = None
    depth_filter: str = "auto"

    def check(self) -> None:
        if not 0 <= self.voxel_size_m <= MAX_VOXEL_SIZE_M:
            raise InvalidInputError("voxel_size_m", f"a size in metres in [0, {MAX_VOXEL_SIZE_M}]", self.voxel_size_m)
        if not 0 <= self.hole_fill_px <= MAX_HOLE_FILL_PX:
            raise InvalidInputError("hole_fill_px", f"an integer in [0, {MAX_HOLE_FILL_PX}]", self.hole_fill_px)
        if not 0 <= self.relation_margin_m <= MAX_RELATION_MARGIN_M:
            raise InvalidInputError("relation_margin_m", f"a margin in metres in [0, {MAX_RELATION_MARGIN_M}]",
                                    self.relation_margin_m)
        if self.depth_filter not in DEPTH_FILTERS:
            raise InvalidInputError("depth_filter", f"one of {list(DEPTH_FILTERS)}", repr(self.depth_filter))
        for name, pose in (self.cameras or {}).items():
            if not isinstance(name, str) or not name.strip():
                raise InvalidInputError("cameras name", "a non-empty camera name", repr(name))
            if not isinstance(pose, CameraPose):
                raise InvalidInputError(f"cameras[{name!r}]", "a CameraPose", type(pose).__name__)
