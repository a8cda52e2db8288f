"""The one service layer every transport calls: typed methods, scene handles, expiry in one place, threads."""

import threading

import numpy as np
import pytest

from joyai_embodied import CameraMove, InvalidInputError, MoveObject, WorldModel
from joyai_embodied.errors import SceneExpiredError
from joyai_embodied.evaluation.synthetic import default_boxes, front_camera
from joyai_embodied.evaluation.synthetic import observe as synthetic_observe
from joyai_embodied.service import ModelService

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(scope="module")
def obs():
    return synthetic_observe(front_camera(160, 120), default_boxes())


@pytest.fixture()
def service():
    return ModelService(WorldModel.load("geometric"), max_scenes=4)


def test_typed_methods_match_the_world_model(service, obs):
    model = WorldModel.load("geometric")
    here = model.observe(obs)
    handle, scene = service.observe(obs)
    assert scene.object_names() == here.object_names()
    assert service.relation(handle, "red cube", "blue box").left_of == model.relation(here, "red cube",
                                                                                      "blue box").left_of
    assert service.ask(handle, "How many objects are there?").value == 3
    view = service.imagine(handle, CameraMove(yaw_deg=20), seed=0)
    np.testing.assert_array_equal(view.rgb, model.imagine(here, CameraMove(yaw_deg=20), seed=0).rgb)
    assert len(service.imagine_batch(handle, [CameraMove(yaw_deg=5), CameraMove(yaw_deg=-5)])) == 2
    edited_handle, edited = service.edit(handle, MoveObject("red cube", [0.15, 0.12, 0.40]))
    assert edited_handle != handle and edited.edits == (MoveObject("red cube", [0.15, 0.12, 0.40]),)
    assert service.relation(edited_handle, "red cube", "blue box").right_of
    assert service.relation(handle, "red cube", "blue box").left_of  # the original is unchanged
    assert service.answer_with_imagination(handle, "Is the red cube left of the blue box?", max_views=1).value
    # run(): the same methods by name, as the ZMQ server calls them
    reply = service.run("observe", {"observation": obs})
    assert set(reply) == {"handle", "objects", "pivot", "backend"}
    assert service.run("release", {"scenes": [reply["handle"]]}) == 1


def test_expiry_is_one_error_from_one_place(service, obs):
    handle, _ = service.observe(obs)
    assert service.release([handle]) == 1
    for call in (lambda: service.relation(handle, "red cube", "blue box"), lambda: service.scene(handle),
                 lambda: service.imagine(handle, CameraMove()), lambda: service.edit(handle, MoveObject("red cube",
                                                                                                  [0, 0, 0.4]))):
        with pytest.raises(SceneExpiredError) as caught:
            call()
        assert caught.value.handle == handle
    first, _ = service.observe(obs)
    for _ in range(4):  # the bound is 4: the least recently used goes first
        service.observe(obs)
    with pytest.raises(SceneExpiredError):
        service.scene(first)
    assert service.stats()["scenes"] == 4 and service.stats()["scenes_evicted"] >= 1


def test_bad_parameters_name_the_field(service, obs):
    with pytest.raises(InvalidInputError) as caught:
        service.run("teleport", {})
    assert caught.value.field == "method"
    with pytest.raises(InvalidInputError) as caught:
        service.run("relation", {"scene": 42, "subject": "a", "reference": "b"})
    assert caught.value.field == "params.scene"
    with pytest.raises(InvalidInputError) as caught:
        service.run("imagine", {"scene": "x"})
    assert caught.value.field == "params.move"
    with pytest.raises(InvalidInputError) as caught:
        service.release("not a list")
    assert caught.value.field == "scenes"


def test_threads_share_one_service_safely(obs):
    service = ModelService(WorldModel.load("geometric"), max_scenes=3)  # small: eviction races with use
    unexpected: list[BaseException] = []

    def job(index: int) -> None:
        try:
            for i in range(15):
                try:
                    handle, _ = service.observe(obs)
                    service.relation(handle, "red cube", "blue box")
                    edited, _ = service.edit(handle, MoveObject("red cube", [0.1, 0.01 * i, 0.4]))
                    service.imagine(edited, CameraMove(yaw_deg=index))
                except SceneExpiredError:  # evicted by another thread in between: the documented outcome
                    pass
        except BaseException as exc:  # anything else is a thread-safety bug
            unexpected.append(exc)

    threads = [threading.Thread(target=job, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(50)
    assert not unexpected, unexpected[:3]
    assert len(service.scenes) <= 3
