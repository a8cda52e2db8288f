"""Fixed facts of the tabletop world that other packages rely on (the simulator contract).

World frame: z up, origin on the floor below the table centre, metres.
"""

from __future__ import annotations

#: Height of the table top above the floor (m).
TABLE_HEIGHT = 0.40
#: Half extents of the table top in x and y (m).
TABLE_HALF_SIZE = (0.35, 0.45)
#: Range of object centres on the table: x in [-0.22, 0.22], y in [-0.30, 0.30].
PLACE_X_RANGE = (-0.22, 0.22)
PLACE_Y_RANGE = (-0.30, 0.30)

#: Object colours, name -> RGB in [0, 1]; every scene uses each colour at most once.
COLORS: dict[str, tuple[float, float, float]] = {
    "red": (0.85, 0.10, 0.10),
    "green": (0.10, 0.65, 0.20),
    "blue": (0.10, 0.25, 0.85),
    "yellow": (0.92, 0.82, 0.10),
    "orange": (0.95, 0.50, 0.05),
    "purple": (0.50, 0.15, 0.70),
    "cyan": (0.10, 0.75, 0.80),
    "white": (0.92, 0.92, 0.92),
}
TABLE_COLOR = (0.55, 0.49, 0.42)
FLOOR_COLOR = (0.26, 0.24, 0.23)

#: Shapes; "plate" is the flat place target, the others can be picked.
SHAPES = ("cube", "cylinder", "sphere", "plate")
GRASPABLE_SHAPES = ("cube", "cylinder", "sphere")

#: Most objects in a scene; segmentation ids run 1..MAX_OBJECTS.
MAX_OBJECTS = 8
