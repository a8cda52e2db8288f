"""A hinged door (LIBERO's microwave) from observed points, and the mug-in-and-close episode by LIBERO's own check.

The episode test needs the ``libero`` extra (skipped without it); it is ~380 control steps.
"""

import numpy as np
import pytest

from joyai_embodied.errors import InvalidInputError
from joyai_embodied.planner.libero.articulation import ArticulationGoal, parse_articulation
from joyai_embodied.planner.libero.microwave import door_closed, find_door

HINGE = np.array([-0.17, 0.26])


def _microwave(door_deg: float) -> np.ndarray:
    """Points of a microwave body (x -0.17..0.17, y 0.26..0.45, z 0.92..1.11) seen from above and its front,
    with a 25 cm door hinged at its front-left corner, opened ``door_deg`` degrees toward -y."""
    body = [(x, y, 1.108) for x in np.arange(-0.17, 0.171, 0.008) for y in np.arange(0.26, 0.45, 0.008)]
    body += [(x, 0.26, z) for x in np.arange(-0.17, 0.171, 0.008) for z in np.arange(0.93, 1.10, 0.01)]
    angle = np.radians(door_deg)
    along = np.array([np.cos(angle), -np.sin(angle)])   # 0 deg: shut along +x; 90 deg: out along -y
    door = [(*(HINGE + along * s), z) for s in np.arange(0.0, 0.25, 0.004) for z in np.arange(0.93, 1.11, 0.01)]
    return np.array(body + door)


@pytest.mark.parametrize("door_deg", [81.0, 95.0, 118.0])
def test_the_open_door_its_hinge_and_the_side_it_closes_onto_come_from_the_points(door_deg):
    door = find_door(_microwave(door_deg))
    assert np.linalg.norm(door.hinge - HINGE) < 0.02
    assert abs(np.degrees(door.open_rad) - door_deg) < 5.0
    assert np.allclose(door.closed_dir, [1.0, 0.0], atol=0.05)      # shut along the body's front
    assert np.allclose(door.outward, [0.0, -1.0], atol=0.05)        # the opening faces -y
    assert abs(door.length - 0.25) < 0.02
    assert door.closing_sign > 0                                     # -y -> +x: counter-clockwise from above
    assert not door_closed(_microwave(door_deg), door)
    assert door_closed(_microwave(0.0), door)


def test_a_body_without_a_panel_is_no_open_door():
    with pytest.raises(InvalidInputError, match="^microwave: "):
        find_door(_microwave(0.0))
    with pytest.raises(InvalidInputError, match="^microwave: "):
        find_door(np.zeros((3, 3)))


def test_parses_the_microwave_instruction():
    into, close = parse_articulation("put the yellow and white mug in the microwave and close it")
    assert into == ArticulationGoal(into.instruction, "into_door", "microwave", reference="yellow and white mug")
    assert (close.action, close.obj) == ("close_door", "microwave")


libero = pytest.importorskip("libero.libero", reason="needs the libero extra")

from libero_helpers import run_libero_episode  # noqa: E402


def test_the_mug_goes_into_the_microwave_and_the_door_is_shut(wm):
    episode, _, success = run_libero_episode(wm, "libero_10", 9, 0, 520)
    assert episode.success and episode.failure == "none", episode
    assert success
