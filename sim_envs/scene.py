"""Seeded scene layouts: which objects, their sizes, colours and initial poses.

Pure numpy; the env turns a layout into MJCF (``mjcf.py``) and lets physics settle it. About a quarter of
the layouts stack one object on another, and about a quarter hide a small object behind a tall one as
seen from the "front" camera, so that spatial questions are not all about fully visible objects.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .cameras import CAMERAS
from .constants import COLORS, GRASPABLE_SHAPES, MAX_OBJECTS, PLACE_X_RANGE, PLACE_Y_RANGE, TABLE_HEIGHT

PLATE_HEIGHT = 0.015
#: Clearance between footprints of objects standing on the table (m).
GAP = 0.015


@dataclass
class ObjectSpec:
    """One object of a layout. ``size`` is the full box extent (sx, sy, sz); ``position`` the box centre."""

    id: int
    color: str
    shape: str
    size: tuple[float, float, float]
    position: np.ndarray
    yaw: float = 0.0
    stacked_on: int | None = None  # id of the object it was placed on, if any
    tags: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.color} {self.shape}"

    @property
    def rgb(self) -> tuple[float, float, float]:
        return COLORS[self.color]

    @property
    def footprint_radius(self) -> float:
        """Radius of a circle that contains the object's footprint (cubes: their half diagonal)."""
        if self.shape == "cube":
            return self.size[0] * math.sqrt(2.0) / 2.0
        return self.size[0] / 2.0


def _draw_size(rng: np.random.Generator, shape: str) -> tuple[float, float, float]:
    if shape == "cube":
        side = rng.uniform(0.04, 0.06)
        return (side, side, side)
    if shape == "cylinder":
        radius, height = rng.uniform(0.02, 0.03), rng.uniform(0.04, 0.06)
        return (2 * radius, 2 * radius, height)
    if shape == "sphere":
        radius = rng.uniform(0.02, 0.03)
        return (2 * radius,) * 3
    radius = rng.uniform(0.07, 0.09)  # plate
    return (2 * radius, 2 * radius, PLATE_HEIGHT)


def _fits(candidate: ObjectSpec, placed: list[ObjectSpec]) -> bool:
    x, y = candidate.position[:2]
    if not (PLACE_X_RANGE[0] <= x <= PLACE_X_RANGE[1] and PLACE_Y_RANGE[0] <= y <= PLACE_Y_RANGE[1]):
        return False
    for other in placed:
        if other.stacked_on is not None:
            continue  # it sits on an object that is in the list itself
        limit = candidate.footprint_radius + other.footprint_radius + GAP
        if np.hypot(*(candidate.position[:2] - other.position[:2])) < limit:
            return False
    return True


def _on_table(spec: ObjectSpec, x: float, y: float) -> None:
    spec.position = np.array([x, y, TABLE_HEIGHT + spec.size[2] / 2.0])


def generate_scene(rng: np.random.Generator, max_tries: int = 200) -> list[ObjectSpec]:
    """Draws a layout: 1-2 plates and 2-6 other objects (3-8 in all), distinct colours, no overlaps.

    Args:
        rng: the episode's random generator (the env passes ``self.np_random``).
        max_tries: rejection-sampling attempts per layout before the whole layout is redrawn.

    Returns:
        The objects, ids 1..N in order (plates first).
    """
    while True:
        layout = _try_layout(rng, max_tries)
        if layout is not None:
            return layout


def _try_layout(rng: np.random.Generator, max_tries: int) -> list[ObjectSpec] | None:
    n_plates = int(rng.integers(1, 3))
    n_others = int(rng.integers(2, min(6, MAX_OBJECTS - n_plates) + 1))
    colors = [str(c) for c in rng.permutation(list(COLORS))[: n_plates + n_others]]
    shapes = ["plate"] * n_plates + [str(rng.choice(GRASPABLE_SHAPES)) for _ in range(n_others)]
    mode = str(rng.choice(["spread", "spread", "stack", "occlude"]))
    specs = [ObjectSpec(i + 1, colors[i], shapes[i], (0, 0, 0), np.zeros(3)) for i in range(len(shapes))]
    for spec in specs:
        spec.size = _draw_size(rng, spec.shape)
        spec.yaw = float(rng.uniform(0.0, math.pi / 2))

    others = specs[n_plates:]
    stack_pair = occlude_pair = None
    if mode == "stack":
        bases = [s for s in others if s.shape in ("cube", "cylinder")]
        if len(bases) >= 2:
            stack_pair = (bases[0], bases[1])
    elif mode == "occlude":
        # A 6 cm occluder in front of a 4 cm object, seen from the front camera.
        occluder = next((s for s in others if s.shape in ("cube", "cylinder")), None)
        later = others[others.index(occluder) + 1:] if occluder is not None else []
        hidden = later[0] if later else None  # placed after its occluder
        if occluder is not None and hidden is not None:
            occluder.size = (occluder.size[0], occluder.size[1], 0.06) if occluder.shape == "cylinder" else (0.06,) * 3
            hidden.size = (0.04,) * 3 if hidden.shape != "cylinder" else (0.04, 0.04, 0.04)
            occlude_pair = (occluder, hidden)

    placed: list[ObjectSpec] = []
    for spec in specs:
        if stack_pair and spec is stack_pair[1]:
            base = stack_pair[0]
            offset = rng.uniform(-0.004, 0.004, size=2)
            spec.position = np.array([*(base.position[:2] + offset), base.position[2] + base.size[2] / 2
                                      + spec.size[2] / 2 + 0.001])
            spec.stacked_on = base.id
            spec.tags.append("stacked")
            placed.append(spec)
            continue
        if occlude_pair and spec is occlude_pair[1]:
            occluder = occlude_pair[0]
            eye = np.array(CAMERAS["front"][0][:2])
            away = occluder.position[:2] - eye
            away /= np.linalg.norm(away)
            xy = occluder.position[:2] + away * (occluder.footprint_radius + spec.footprint_radius + 0.008)
            _on_table(spec, *xy)
            if not _fits(spec, [p for p in placed if p is not occluder]):
                return None
            spec.tags.append("occluded")
            placed.append(spec)
            continue
        for _ in range(max_tries):
            _on_table(spec, rng.uniform(*PLACE_X_RANGE), rng.uniform(*PLACE_Y_RANGE))
            if _fits(spec, placed):
                break
        else:
            return None
        placed.append(spec)
    return specs
