"""Objects of one category told apart: numbered names left to right, and ids / SceneObjects wherever a name goes."""

import numpy as np
import pytest

from joyai_embodied import InvalidInputError, MoveObject, RotateObject, UnknownObjectError, WorldModel
from joyai_embodied.evaluation.synthetic import default_boxes, front_camera
from joyai_embodied.evaluation.synthetic import observe as synthetic_observe


@pytest.fixture(scope="module")
def world():
    wm = WorldModel.load("geometric")
    obs = synthetic_observe(front_camera(320, 240), default_boxes())
    # Every object gets the same category word, as LIBERO's two "black bowl"s do.
    labels = {int(i): "black bowl" for i in np.unique(obs.segmentation) if i > 0}
    scene = wm.observe(rgb=obs.rgb, depth=obs.depth, intrinsics=obs.intrinsics, cam_to_world=obs.cam_to_world,
                       segmentation=obs.segmentation, labels=labels)
    return wm, scene


def _image_column(scene, obj) -> float:
    k, pose = scene.observation.intrinsics, scene.observation.cam_to_world
    p = np.linalg.inv(pose) @ np.append(obj.centroid, 1.0)
    return float(k[0, 0] * p[0] / p[2] + k[0, 2])


def test_one_label_on_several_objects_is_numbered_left_to_right(world):
    _, scene = world
    names = [o.name for o in scene.objects]
    assert len(set(names)) == len(names) >= 2
    ordered = sorted(scene.objects, key=lambda o: _image_column(scene, o))
    assert [o.name for o in ordered] == [f"black bowl {i}" for i in range(1, len(ordered) + 1)]


def test_relation_takes_ids_and_scene_objects_like_names(world):
    wm, scene = world
    a, b = scene.objects[0], scene.objects[1]
    by_name = wm.relation(scene, a.name, b.name)
    assert wm.relation(scene, a.id, b.id) == by_name
    assert wm.relation(scene, a, b) == by_name
    assert by_name.subject == a.name and by_name.reference == b.name


def test_edits_take_ids_and_scene_objects(world):
    wm, scene = world
    obj = scene.objects[0]
    target = [float(obj.centroid[0]), float(obj.centroid[1]) + 0.05, float(obj.centroid[2] - obj.extent[2] / 2)]
    by_name = wm.edit(scene, MoveObject(obj.name, to=target))
    by_id = wm.edit(scene, MoveObject(obj.id, to=target))
    by_object = wm.edit(scene, MoveObject(obj, to=target))
    moved = [s.resolve(obj.id).centroid for s in (by_name, by_id, by_object)]
    np.testing.assert_allclose(moved[1], moved[0])
    np.testing.assert_allclose(moved[2], moved[0])
    assert by_id.edits[-1].object == obj.name  # what the backend (and every transport) received
    rotated = wm.edit(scene, RotateObject(obj.id, yaw_deg=30))
    assert rotated.edits[-1].object == obj.name


def test_unknown_ids_and_wrong_types_name_the_field(world):
    wm, scene = world
    with pytest.raises(UnknownObjectError, match="id 999"):
        wm.relation(scene, 999, scene.objects[0].id)
    with pytest.raises(InvalidInputError, match="edit.object"):
        MoveObject(True, to=[0, 0, 0])
    with pytest.raises(InvalidInputError, match="reference"):
        wm.relation(scene, scene.objects[0].id, 1.5)
