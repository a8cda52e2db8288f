"""Articulation skills on LIBERO: parsing, handle/knob/push geometry from observations, episodes by LIBERO's check.

The episode tests need the ``libero`` extra (skipped without it); each is ~90 control steps.
"""

from types import SimpleNamespace

import numpy as np
import pytest

from joyai_embodied.errors import InvalidInputError
from joyai_embodied.planner.libero.articulation import ArticulationGoal, IntoDrawerGoal, parse_articulation, push_goal
from joyai_embodied.planner.libero.drawer_put import on_the_way
from joyai_embodied.planner.libero.drawers import (Handle, close_rotation, closed_plane, drawer_front, facing_rotation,
                                                   find_handle, handle_out_m, under_drawer_target)
from joyai_embodied.planner.libero.clearing import aside_spot, in_drawer_sweep
from joyai_embodied.types import SceneObject


def test_parses_the_libero_goal_articulations():
    assert parse_articulation("open the middle drawer of the cabinet") == [
        ArticulationGoal("open the middle drawer of the cabinet", "open_drawer", "cabinet", level="middle")]
    opened, inside = parse_articulation("Open the top drawer and put the bowl inside")
    assert (opened.action, opened.level) == ("open_drawer", "top")
    assert isinstance(inside, IntoDrawerGoal) and inside.subject == "bowl"
    (turn,) = parse_articulation("turn on the stove")
    assert (turn.action, turn.obj) == ("turn_on", "stove")
    (push,) = parse_articulation("push the plate to the front of the stove")
    assert (push.action, push.obj, push.where, push.reference) == ("push", "plate", "front", "stove")
    turn, onto = parse_articulation("turn on the stove and put the moka pot on it")
    assert turn.action == "turn_on" and (onto.subject, onto.target, onto.preposition) == ("moka pot", "stove", "on")
    with pytest.raises(InvalidInputError, match="^instruction: "):
        parse_articulation("put the bowl inside")      # inside what: no drawer opened before it
    located, inside, close = parse_articulation("put the black bowl in the bottom drawer of the cabinet and close it")
    assert (located.action, located.level, inside.subject) == ("locate_drawer", "bottom", "black bowl")
    assert (close.action, close.level, close.obj) == ("close_drawer", "bottom", "cabinet")
    with pytest.raises(InvalidInputError, match="^instruction: "):
        parse_articulation("put the moka pot on it")   # on what: nothing turned before it
    with pytest.raises(InvalidInputError, match="^instruction: "):
        parse_articulation("close it")                 # close what: nothing put into a drawer before it
    with pytest.raises(InvalidInputError, match="^instruction: "):
        parse_articulation("juggle the stove")


def _box(obj_id, name, centre, extent):
    return SceneObject(id=obj_id, name=name, centroid=np.asarray(centre, float), extent=np.asarray(extent, float))


def test_drawer_front_faces_the_scene_centre_and_the_hand_faces_it():
    cabinet = _box(2, "wooden cabinet", (0.02, -0.245, 1.01), (0.25, 0.25, 0.23))
    assert np.allclose(drawer_front(cabinet, np.array([-0.05, 0.05, 0.95])), [0, 1, 0])
    assert np.allclose(drawer_front(cabinet, np.array([0.40, -0.20, 0.95])), [1, 0, 0])
    hand = facing_rotation(np.array([0.0, 1.0, 0.0]))
    assert np.allclose(hand @ hand.T, np.eye(3)) and np.isclose(np.linalg.det(hand), 1.0)
    assert np.allclose(hand[:, 2], [0, -1, 0]) and np.allclose(hand[:, 1], [0, 0, 1])   # into it, fingers vertical


def _cabinet_front(bottom_out_m):
    """Observed points of a cabinet facing +y: its face at y=-0.12, handles 3 cm proud, the bottom one pulled out."""
    xs = np.arange(-0.08, 0.081, 0.01)
    face = [(x, -0.12, z) for x in xs for z in np.arange(0.90, 1.12, 0.01)]
    handles = [(x, -0.09 + (bottom_out_m if level == 0.941 else 0.0), level + dz)
               for level in (0.941, 1.01, 1.086) for x in xs for dz in (-0.005, 0.0, 0.005)]
    points = np.array(face + handles)
    return SimpleNamespace(points=points, ids=np.full(len(points), 2))


def test_the_closed_plane_is_where_the_other_drawers_handles_are_seen():
    cabinet = _box(2, "wooden cabinet", (0.0, -0.245, 1.01), (0.25, 0.25, 0.23))
    pivot = np.array([0.0, 0.2, 0.95])
    for out in (0.14, 0.0):
        heights = _cabinet_front(out)
        plane = closed_plane(cabinet, "bottom", heights, pivot)
        handle = find_handle(cabinet, "bottom", heights, pivot)
        assert abs(handle_out_m(cabinet, handle, plane) - out) < 0.005
    assert np.isnan(handle_out_m(cabinet, handle, None))


def test_a_bowl_for_the_bottom_drawer_comes_down_in_front_of_the_closed_handles():
    cabinet = _box(2, "wooden cabinet", (0.0, -0.245, 1.01), (0.25, 0.25, 0.23))
    heights = _cabinet_front(0.15)
    pivot = np.array([0.0, 0.2, 0.95])
    plane = closed_plane(cabinet, "bottom", heights, pivot)
    handle = find_handle(cabinet, "bottom", heights, pivot)
    handles_front_y = -0.09
    beside = under_drawer_target(cabinet, handle, plane, radius_m=0.055, hand_behind_m=0.0)
    assert beside.centroid[1] - 0.055 > handles_front_y                  # its far rim clears the handles
    assert beside.centroid[1] < handle.centre[1]                          # inside the pulled-out part
    far_hand = under_drawer_target(cabinet, handle, plane, radius_m=0.055, hand_behind_m=0.05)
    assert far_hand.centroid[1] - 0.06 > handles_front_y                 # and so does the finger behind it
    assert np.isclose(beside.top_z, handle.centre[2] - 0.025, atol=0.006)  # at the drawer's floor


def test_a_way_leading_away_from_an_object_does_not_count_it():
    rack = _box(4, "wine rack", (0.0, 0.0, 1.05), (0.1, 0.1, 0.3))
    assert on_the_way([rack], np.array([-0.2, 0.0]), np.array([0.2, 0.0])) == [rack]    # across it
    assert on_the_way([rack], np.array([-0.1, 0.0]), np.array([-0.4, 0.0])) == []       # leaving it
    assert on_the_way([rack], np.array([0.0, 0.02]), np.array([-0.4, 0.0])) == [rack]   # starting over it


def test_the_closing_hand_points_into_the_cabinet_turned_across_the_push():
    down = np.diag([1.0, -1.0, -1.0])   # LIBERO's start: fingers down, closing along world -y
    arm = SimpleNamespace(down=down, closing_axis=np.array([0.0, -1.0, 0.0]))
    front = np.array([0.0, 1.0, 0.0])
    hand = close_rotation(arm, front)
    assert np.allclose(hand @ hand.T, np.eye(3)) and np.isclose(np.linalg.det(hand), 1.0)
    assert hand[:, 2] @ front < -0.5 and hand[2, 2] < -0.5      # fingers point down and into the cabinet
    assert abs(hand[:, 1] @ front) < 1e-9 and abs(hand[2, 1]) < 1e-9   # closing axis across the push, level


def test_push_goal_is_in_front_of_the_reference_as_the_camera_sees_it():
    # LIBERO's agentview: camera at +x looking back along -x and down; its x axis is world +y.
    cam = np.eye(4)
    cam[:3, :3] = np.array([[0.0, 0.628, -0.778], [1.0, 0.0, 0.0], [0.0, -0.778, -0.628]])
    stove = _box(5, "flat stove", (-0.31, 0.21, 0.93), (0.29, 0.29, 0.06))
    plate = _box(3, "plate", (0.04, -0.02, 0.91), (0.14, 0.14, 0.02))
    goal = push_goal(plate, stove, "front", cam)
    assert goal[0] > -0.31 + 0.145 + 0.07            # past the stove's near edge, toward the camera
    assert abs(goal[1] - 0.21) < 0.29 / 2 * 0.25 + 1e-9  # in line with it
    right = push_goal(plate, stove, "right", cam)
    assert right[1] > 0.21 + 0.145 + 0.07


def _table_points(xy_range, z, obj_id=0, step=0.01):
    xs = np.arange(xy_range[0], xy_range[1], step)
    grid = np.array([(x, y, z) for x in xs for y in xs])
    return grid, np.full(len(grid), obj_id)


def test_a_bowl_in_front_of_the_drawer_is_set_aside_outside_its_sweep_on_free_table():
    # Cabinet at y < -0.12 with its drawers facing +y; a bowl right in front; a box standing at +y.
    cabinet = _box(2, "wooden cabinet", (0.0, -0.245, 1.01), (0.25, 0.25, 0.23))
    bowl = _box(6, "black bowl", (-0.05, 0.0, 0.925), (0.11, 0.11, 0.05))
    handle = Handle(np.array([0.0, -0.15, 1.10]), np.array([0.0, 1.0, 0.0]))
    assert in_drawer_sweep(bowl, cabinet, handle)
    assert not in_drawer_sweep(_box(7, "plate", (0.35, 0.0, 0.91), (0.14, 0.14, 0.02)), cabinet, handle)
    table, ids = _table_points((-0.5, 0.5), 0.90)
    box_points = np.array([(x, y, 0.95) for x in np.arange(-0.30, 0.30, 0.01) for y in np.arange(0.18, 0.30, 0.01)])
    heights = SimpleNamespace(points=np.vstack([table, box_points]),
                              ids=np.concatenate([ids, np.full(len(box_points), 9)]))
    spot = aside_spot(bowl, cabinet, handle, heights, home_xy=np.array([-0.2, 0.0]))
    assert spot is not None
    moved = _box(6, "black bowl", (*spot, 0.925), (0.11, 0.11, 0.05))
    assert not in_drawer_sweep(moved, cabinet, handle, margin_m=0.02)   # out of the drawer's way
    assert spot[1] < 0.18 - 0.055 or spot[1] > 0.30 + 0.055 or abs(spot[0]) > 0.30 + 0.055   # not on the box


libero = pytest.importorskip("libero.libero", reason="needs the libero extra")

from libero_helpers import run_libero_episode  # noqa: E402


@pytest.mark.parametrize("suite, task_id, init_state, max_steps",
                         [("libero_goal", 7, 0, 300), ("libero_goal", 0, 0, 300), ("libero_goal", 3, 1, 300),
                          ("libero_goal", 5, 0, 300), ("libero_10", 3, 1, 520)],
                         ids=["turn on the stove", "open the middle drawer", "open the top drawer, bowl inside",
                              "push the plate to the front of the stove",
                              # the bowl comes down in front of the closed handles, the tilted push closes the drawer
                              "bowl into the open bottom drawer and closed"])
def test_articulation_episode_passes_liberos_own_check(wm, suite, task_id, init_state, max_steps):
    episode, _, success = run_libero_episode(wm, suite, task_id, init_state, max_steps)
    assert episode.success and episode.failure == "none", episode
    assert success
