"""Several objects "on" one support: its observed flat top and the spots side by side on it (pure geometry)."""

from types import SimpleNamespace

import numpy as np

from joyai_embodied.planner.libero.placement import flat_top, on_usable_top, shared_spot
from joyai_embodied.types import SceneObject

STOVE = 7


def _stove_points(rng):
    """A 19 cm plate at z 0.925 centred at (0, 0), a sparse 4 cm knob strip level with it on the -x side,
    and its front face below."""
    plate = np.column_stack([rng.uniform(-0.095, 0.095, 1500), rng.uniform(-0.095, 0.095, 1500),
                             np.full(1500, 0.925)])
    knob = np.column_stack([rng.uniform(-0.135, -0.095, 120), rng.uniform(-0.03, 0.03, 120), np.full(120, 0.926)])
    side = np.column_stack([np.full(300, 0.095), rng.uniform(-0.095, 0.095, 300), rng.uniform(0.9, 0.92, 300)])
    return np.vstack([plate, knob, side])


def _heights(points, ids):
    return SimpleNamespace(points=points, ids=ids)


def _pot(centroid_xy, long_axis):
    extent = np.array([0.146, 0.078, 0.153]) if long_axis == 0 else np.array([0.078, 0.146, 0.153])
    return SceneObject(id=3, name="moka pot 1", centroid=np.array([*centroid_xy, 0.98]), extent=extent)


def test_flat_top_is_the_plate_not_the_knob_strip_beside_it():
    points = _stove_points(np.random.default_rng(0))
    top = flat_top(_heights(points, np.full(len(points), STOVE)), STOVE)
    assert top is not None
    assert np.allclose(top.centre, [0.0, 0.0], atol=0.008)
    assert np.allclose(top.half, [0.095, 0.095], atol=0.008)
    assert abs(top.z - 0.925) < 0.003


def test_second_object_goes_beside_the_first_with_its_handle_clear():
    points = _stove_points(np.random.default_rng(1))
    top = flat_top(_heights(points, np.full(len(points), STOVE)), STOVE)
    # The first pot (handle along -y, its box centre 3.4 cm past its body) goes across its handle's side.
    body = np.array([0.3, 0.3])
    first = shared_spot(top, _pot(body + [0.0, -0.034], 1), body, np.empty((0, 2)))
    assert 0.04 < np.hypot(*(first - top.centre)) < 0.05 and abs(first[1] - top.centre[1]) < 0.01
    assert on_usable_top(top, first, 0.93)
    # What the camera then sees of it: a body disc and a handle to -y.
    rng = np.random.default_rng(2)
    angle, radius = rng.uniform(0, 2 * np.pi, 400), 0.039 * np.sqrt(rng.uniform(0, 1, 400))
    disc = first + np.column_stack([radius * np.cos(angle), radius * np.sin(angle)])
    handle = first + np.column_stack([np.zeros(40), np.linspace(-0.04, -0.105, 40)])
    placed = np.vstack([disc, handle])
    # The second pot's handle points +y: wherever it goes, body and handle keep clear of the first pot.
    second = shared_spot(top, _pot(body + [0.0, 0.034], 1), body, placed)
    assert np.hypot(*(second - first)) > 0.078
    tip = second + np.array([0.0, 0.105])
    assert np.min(np.hypot(*(placed - tip).T)) > 0.02
    assert on_usable_top(top, second, 0.93)


def test_a_body_off_the_usable_top_or_on_another_object_is_not_on_it():
    points = _stove_points(np.random.default_rng(3))
    top = flat_top(_heights(points, np.full(len(points), STOVE)), STOVE)
    assert not on_usable_top(top, np.array([0.085, 0.0]), 0.93)     # past the usable margin
    assert not on_usable_top(top, np.array([0.0, 0.0]), 1.06)       # stacked on the first pot
    assert not on_usable_top(top, None, 0.93)                       # not seen
