"""Supported objects on real-mesh-like scenes: rim bleed, hidden and uneven supports, labelled names."""

import dataclasses

import numpy as np
import pytest

from joyai_embodied import Observation, SceneObject
from joyai_embodied.backends.geometric.cloud import SceneCloud
from joyai_embodied.backends.geometric.mask_rim import drop_rim_bleed
from joyai_embodied.backends.geometric.perception import fit_objects
from joyai_embodied.backends.geometric.reasoning import on_top_of
from joyai_embodied.evaluation import synthetic
from joyai_embodied.evaluation.synthetic import TABLE_HEIGHT, Box

RED, BLUE, GREEN = (217, 26, 26), (26, 64, 217), (26, 166, 51)


def bleed(observation: Observation, object_id: int, share: float = 0.3, seed: int = 0) -> Observation:
    """The observation with ``share`` of the pixels just outside ``object_id``'s mask given its id (the depth
    stays that of what lies behind), as robosuite's separate segmentation pass does."""
    seg = observation.segmentation
    mask = seg == object_id
    grown = mask.copy()
    grown[1:] |= mask[:-1]
    grown[:-1] |= mask[1:]
    grown[:, 1:] |= mask[:, :-1]
    grown[:, :-1] |= mask[:, 1:]
    rim = np.argwhere(grown & ~mask)
    rng = np.random.default_rng(seed)
    chosen = rim[rng.random(len(rim)) < share]
    out = seg.copy()
    out[chosen[:, 0], chosen[:, 1]] = object_id
    return dataclasses.replace(observation, segmentation=out)


@pytest.fixture(scope="module")
def camera():
    return synthetic.front_camera(320, 240)


def stacked():
    # A wide lid resting across a narrow block: most of the block is hidden under it (a bowl on a cookie box).
    return [Box(1, "green block", (0.0, 0.0, TABLE_HEIGHT + 0.01), (0.05, 0.18, 0.02), GREEN),
            Box(2, "blue lid", (0.0, 0.0, TABLE_HEIGHT + 0.035), (0.12, 0.12, 0.03), BLUE),
            Box(3, "red cube", (0.0, -0.15, TABLE_HEIGHT + 0.02), (0.04, 0.04, 0.04), RED)]


def test_rim_bleed_is_dropped_and_exact_masks_kept(camera):
    obs = synthetic.observe(camera, stacked())
    bled = bleed(obs, 2)
    cleaned = drop_rim_bleed(bled.segmentation, bled.depth)
    changed = bled.segmentation != obs.segmentation
    assert changed.sum() > 20
    assert np.mean(np.isnan(cleaned[changed])) > 0.95  # the bled pixels carry no depth any more
    assert np.isnan(cleaned).sum() <= changed.sum() + 15
    # An exact mask keeps its pixels, but for a few where a grazing face meets what lies behind.
    assert np.isnan(drop_rim_bleed(obs.segmentation, obs.depth)).sum() <= 15


@pytest.mark.parametrize("bleeding", [False, True])
def test_object_on_a_hidden_support_stops_at_it(wm, camera, bleeding):
    obs = synthetic.observe(camera, stacked())
    if bleeding:
        obs = bleed(obs, 2)
    scene = wm.observe(obs)
    lid, block = scene.find("blue lid"), scene.find("green block")
    assert lid.bottom_z == pytest.approx(TABLE_HEIGHT + 0.02, abs=0.006)  # not the table at TABLE_HEIGHT
    assert wm.relation(scene, lid, block).on_top_of
    assert not wm.relation(scene, block, lid).on_top_of
    assert not wm.relation(scene, scene.find("red cube"), block).on_top_of
    assert not wm.relation(scene, lid, scene.find("red cube")).on_top_of


def box(centre, extent, name="x", oid=1):
    return SceneObject(id=oid, name=name, centroid=np.asarray(centre, float), extent=np.asarray(extent, float))


def test_resting_on_an_uneven_support_is_on_top_of():
    # A stove whose knobs rise above the burner a bowl sits on: the bowl's bottom is under the stove's top.
    stove = box((0.0, 0.0, 0.92), (0.3, 0.2, 0.08))
    bowl = box((0.0, 0.0, 0.95), (0.11, 0.11, 0.05))
    assert on_top_of(bowl, stove) and not on_top_of(stove, bowl)
    # A bowl inside a drawer (under the cabinet's top) is in it, not on top of it.
    cabinet = box((0.0, 0.0, 1.02), (0.3, 0.3, 0.22))
    assert not on_top_of(box((0.0, 0.0, 1.09), (0.11, 0.11, 0.05)), cabinet)
    # A bowl tilted on a ramekin: its centre beyond the ramekin's rim, still resting on it.
    ramekin = box((0.0, 0.0, 0.92), (0.09, 0.09, 0.045))
    assert on_top_of(box((-0.06, 0.01, 0.97), (0.11, 0.11, 0.065)), ramekin)
    # Beside it on the table: not on it.
    assert not on_top_of(box((0.2, 0.0, 0.93), (0.11, 0.11, 0.05)), ramekin)


def test_labels_name_the_objects(wm, camera):
    obs = synthetic.observe(camera, stacked())
    named = dataclasses.replace(obs, labels={1: "cookie box", 2: "black bowl", 3: "ramekin"})
    scene = wm.observe(named)
    assert sorted(scene.object_names()) == ["black bowl", "cookie box", "ramekin"]


def elliptic_slab(a_m: float, b_m: float, height_m: float, camera) -> SceneCloud:
    """A cloud of a flat elliptic object (semi-axes a, b) on the table at the origin: top face and rim."""
    step = 0.003
    xs, ys = np.meshgrid(np.arange(-a_m, a_m, step), np.arange(-b_m, b_m, step))
    inside = (xs / a_m) ** 2 + (ys / b_m) ** 2 <= 1
    top = np.column_stack([xs[inside], ys[inside], np.full(inside.sum(), TABLE_HEIGHT + height_m)])
    angle = np.linspace(0, 2 * np.pi, 400, endpoint=False)
    rim = np.concatenate([np.column_stack([a_m * np.cos(angle), b_m * np.sin(angle), np.full(400, TABLE_HEIGHT + h)])
                          for h in np.linspace(0.006, height_m, 5)])
    tx, ty = np.meshgrid(np.arange(-0.3, 0.3, 0.01), np.arange(-0.3, 0.3, 0.01))
    table = np.column_stack([tx.ravel(), ty.ravel(), np.full(tx.size, TABLE_HEIGHT)])
    points = np.concatenate([top, rim, table]).astype(np.float32)
    ids = np.concatenate([np.ones(len(top) + len(rim)), np.zeros(len(table))]).astype(np.int32)
    colors = np.where(ids[:, None] > 0, np.array(GREEN), np.array((150, 130, 110))).astype(np.uint8)
    return SceneCloud(points=points, colors=colors, ids=ids, pixels=np.full((len(points), 2), -1, np.int32),
                      plane=np.array([0.0, 0.0, 1.0, -TABLE_HEIGHT]), source=camera)


def test_a_label_that_names_no_round_shape_keeps_an_elongated_footprint(camera):
    # A flat, elongated, rounded mesh (a stove) comes out "plate" from the primitive classifier.
    cloud = elliptic_slab(0.08, 0.14, 0.02, camera)
    unlabelled = fit_objects(cloud)[0]
    assert unlabelled.shape == "plate"  # whose round prior squares it to its long side
    labelled = fit_objects(cloud, {1: "flat stove"})[0]
    assert labelled.name == "flat stove"
    assert sorted(labelled.extent[:2]) == pytest.approx([0.16, 0.28], abs=0.015)
    assert labelled.centroid[:2] == pytest.approx([0.0, 0.0], abs=0.01)
    # A label naming the shape keeps the prior.
    assert fit_objects(cloud, {1: "green plate"})[0].shape == "plate"
