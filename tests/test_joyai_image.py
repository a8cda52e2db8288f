"""The joyai-image backend end to end on CPU, with a tiny random checkpoint in the real layout.

The checkpoint is written once per module and loaded with the real loading code. Random weights produce
noise images and garbage text, so the tests check what the backend controls: shapes, cameras, prompts,
batching, determinism, parsing that degrades to low confidence, and the errors.
"""

from __future__ import annotations

import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from joyai_embodied import (Answer, CameraMove, CameraPose, CheckpointError, ImaginedView,  # noqa: E402
                            ImpossibleCameraMoveError, InvalidInputError, MoveObject, Relation, RotateObject,
                            UnknownObjectError, WorldModel)
from joyai_embodied.backends.joyai_image import prompts  # noqa: E402
from joyai_embodied.backends.joyai_image.backend import (draw_target_box, move_towards,  # noqa: E402
                                                 out_of_memory_hint, write_tiny_checkpoint)
from joyai_embodied.camera import orbit, project  # noqa: E402
from joyai_embodied.errors import BackendUnavailableError  # noqa: E402

FAST = dict(device="cpu", dtype="float32", steps=2, resolution=64, max_new_tokens=24)


@pytest.fixture(scope="module")
def checkpoint(tiny_joyai_checkpoint):
    return tiny_joyai_checkpoint


@pytest.fixture(scope="module")
def wm(checkpoint):
    model = WorldModel.load("joyai-image", path=checkpoint, **FAST)
    yield model
    model.close()


def _frame():
    """A simulator frame (sim_envs) when the simulator is installed, else the analytic tabletop."""
    import gymnasium as gym

    try:
        import sim_envs  # noqa: F401  (registers the env)

        env = gym.make("joyai/TabletopSpatial-v0", width=160, height=120)
    except (ImportError, gym.error.Error):
        from joyai_embodied.evaluation import synthetic

        return synthetic.observe(synthetic.front_camera(160, 120), synthetic.default_boxes())
    obs, _ = env.reset(seed=3)
    env.close()
    return obs


@pytest.fixture(scope="module")
def scene(wm):
    return wm.observe(_frame())


@pytest.fixture(scope="module")
def frame(scene):
    """(scene, subject, reference): two graspable objects the scene found."""
    names = [o.name for o in scene.objects if o.shape != "plate"]
    assert len(names) >= 2, f"expected at least two objects, found {scene.object_names()}"
    return scene, names[0], names[1]


def test_loads_the_diffusers_layout_once_and_shares_the_mllm(wm, checkpoint):
    info = wm.info()
    assert info["backend"] == "joyai-image" and info["device"] == "cpu" and info["attention"] == "sdpa"
    # The understanding model is the pipeline's text encoder, loaded once.
    assert wm.backend.pipe.text_encoder is wm.backend.mllm
    assert (checkpoint / "model_index.json").is_file()
    for component in ("processor", "scheduler", "text_encoder", "tokenizer", "transformer", "vae"):
        assert (checkpoint / component).is_dir()


def test_observe_lifts_objects_from_depth(frame):
    scene, subject, _ = frame
    obj = scene.find(subject)
    assert np.all(obj.extent > 0) and np.all(np.isfinite(obj.centroid))
    assert np.all(np.isfinite(scene.pivot))


def test_relation_keeps_raw_text_and_never_trusts_garbage(wm, scene, frame):
    _, subject, reference = frame
    relation = wm.relation(scene, subject, reference)
    assert isinstance(relation, Relation) and relation.frame == "camera"
    assert isinstance(relation.raw_text, str)
    parsed = prompts.parse_relation(relation.raw_text)
    assert relation.confidence <= parsed.score  # random weights: nothing (or little) parseable
    with pytest.raises(UnknownObjectError):
        wm.relation(scene, "green teapot", reference)
    with pytest.raises(InvalidInputError, match="frame"):
        wm.relation(scene, subject, reference, frame="world")


def test_ask_structured_and_free_questions(wm, scene, frame):
    _, subject, reference = frame
    distance = wm.ask(scene, f"How far is the {subject} from the {reference}?")
    assert isinstance(distance, Answer) and distance.unit == "m" and distance.raw_text == distance.text
    assert distance.supported == (distance.value is not None)
    if distance.value is None:
        assert distance.confidence == 0.0
    free = wm.ask(scene, "Describe the table.")
    assert free.supported and 0.0 <= free.confidence <= 1.0 and free.value is None


def test_understanding_is_deterministic(wm, scene):
    first = wm.ask(scene, "Describe the table.")
    assert wm.ask(scene, "Describe the table.").text == first.text


def test_parsers_read_good_answers_and_survive_garbage():
    good = prompts.parse_relation('Sure:\n```json\n{"left_of": true, "right_of": false, "in_front_of": "no", '
                                  '"behind": "yes", "above": false, "below": false, "on_top_of": false, '
                                  '"distance_m": "0.21"}\n```')
    assert good.flags["left_of"] is True and good.flags["behind"] is True and good.flags["in_front_of"] is False
    assert good.distance_m == pytest.approx(0.21) and good.score == 1.0
    loose = prompts.parse_relation("left_of: yes, right_of: yes, above = false")
    assert loose.flags["left_of"] is None and loose.flags["right_of"] is None and loose.flags["above"] is False
    garbage = prompts.parse_relation("{{{ \x00 ]] not json")
    assert garbage.score == 0.0 and garbage.distance_m is None
    assert prompts.parse_distance("about 25 cm") == pytest.approx(0.25)
    assert prompts.parse_count("There are three cubes.") == 3
    assert prompts.parse_yes_no("No, it is not.") is False and prompts.parse_yes_no("maybe") is None
    assert prompts.question_kind("How many cubes are there?") == "count"
    assert prompts.question_kind("Is the red cube left of the plate?") == "yes_no"


def test_exact_prompts():
    assert prompts.camera_prompt(CameraMove(yaw_deg=30, pitch_deg=-12.5, zoom=1.5)) == (
        "Move the camera.\n- Camera rotation: Yaw 30°, Pitch -12.5°.\n- Camera zoom: in.\n"
        "- Keep the 3D scene static; only change the viewpoint.")
    assert "Camera zoom: out." in prompts.camera_prompt(CameraMove(zoom=0.7))
    assert "Camera zoom: unchanged." in prompts.camera_prompt(CameraMove(zoom=1.02))
    assert prompts.move_prompt("red cube") == "Move the red cube into the red box and finally remove the red box."
    assert prompts.rotate_prompt("mug", 90) == "Rotate the mug to show the right side view."
    assert prompts.rotation_view(170) == "rear" and prompts.rotation_view(-30) == "front left"
    assert prompts.rotation_view(-100) == "left" and prompts.rotation_view(400) == "front right"


def test_imagine_camera_move(wm, scene):
    move = CameraMove(yaw_deg=30, pitch_deg=-10, zoom=1.2)
    view = wm.imagine(scene, move, seed=1)
    assert isinstance(view, ImaginedView) and view.source == "joyai-image"
    assert view.rgb.shape == scene.observation.rgb.shape and view.rgb.dtype == np.uint8
    assert view.depth is None and view.segmentation is None and view.valid_mask.all()
    assert view.prompt == prompts.camera_prompt(move)
    np.testing.assert_allclose(view.cam_to_world, orbit(scene.observation.cam_to_world, scene.pivot, move))


def test_imagine_to_a_camera_pose_uses_its_size(wm, scene):
    observed = scene.observation.camera
    move = CameraMove(yaw_deg=-40, pitch_deg=15, zoom=0.8)
    intrinsics = observed.intrinsics * np.array([[0.5], [0.5], [1.0]])
    pose = CameraPose(orbit(observed.cam_to_world, scene.pivot, move), intrinsics, 80, 60)
    # Yaw and zoom alone are recovered exactly; with pitch, azimuth/elevation approximate the orbit.
    pure = CameraPose(orbit(observed.cam_to_world, scene.pivot, CameraMove(yaw_deg=-40, zoom=0.8)), intrinsics, 80, 60)
    recovered = move_towards(observed, pure, scene.pivot)
    assert recovered.yaw_deg == pytest.approx(-40, abs=1e-6) and recovered.zoom == pytest.approx(0.8, rel=1e-6)
    assert recovered.pitch_deg == pytest.approx(0.0, abs=1e-6)
    recovered = move_towards(observed, pose, scene.pivot)
    assert recovered.yaw_deg == pytest.approx(-40, abs=2.0) and recovered.pitch_deg == pytest.approx(15, abs=2.0)
    view = wm.imagine(scene, pose)
    assert view.rgb.shape == (60, 80, 3)
    # Half size with pixel centres at integers: f / 2, (c + 0.5) / 2 - 0.5 (the 64x48 bucket crops nothing).
    half = observed.intrinsics * np.array([[0.5], [0.5], [1.0]])
    half[:2, 2] = (observed.intrinsics[:2, 2] + 0.5) / 2 - 0.5
    np.testing.assert_allclose(view.intrinsics, half, atol=1e-9)


def test_moves_beyond_the_trained_range_are_refused(wm, scene):
    for move, field in [(CameraMove(yaw_deg=120), "move.yaw_deg"), (CameraMove(pitch_deg=60), "move.pitch_deg"),
                        (CameraMove(zoom=3.0), "move.zoom")]:
        with pytest.raises(ImpossibleCameraMoveError) as caught:
            wm.imagine(scene, move)
        assert caught.value.field == field


def test_seeds_give_identical_images(wm, scene):
    move = CameraMove(yaw_deg=20)
    first = wm.imagine(scene, move, seed=7).rgb
    np.testing.assert_array_equal(first, wm.imagine(scene, move, seed=7).rgb)
    assert not np.array_equal(first, wm.imagine(scene, move, seed=8).rgb)


def test_imagine_batch_is_one_pipeline_call_per_prompt_length(wm, scene):
    calls = []
    handle = wm.backend.pipe.transformer.register_forward_hook(
        lambda module, args, kwargs, output: calls.append(kwargs["hidden_states"].shape[0]), with_kwargs=True)
    try:
        # "Yaw 30°, Pitch 0°" and "Yaw 0°, Pitch 20°" tokenize to equal lengths; "Yaw -30°..." is one longer.
        moves = [CameraMove(yaw_deg=-30), CameraMove(yaw_deg=30), CameraMove(pitch_deg=20)]
        views = wm.imagine_batch(scene, moves, seed=3)
    finally:
        handle.remove()
    assert [v.prompt for v in views] == [prompts.camera_prompt(m) for m in moves]
    # One call per equal-length group, in request order: steps x (conditional + unconditional) passes each.
    steps = wm.backend.steps
    assert calls == [1] * (2 * steps) + [2] * (2 * steps)


def test_draw_target_box_marks_the_projected_target(scene, frame):
    obj = scene.find(frame[1])
    target = (float(obj.centroid[0]), float(obj.centroid[1]) + 0.05, obj.bottom_z)
    drawn = draw_target_box(scene.observation, obj, target)
    red = (drawn[..., 0] == 255) & (drawn[..., 1] == 0) & (drawn[..., 2] == 0)
    before = (scene.observation.rgb == [255, 0, 0]).all(axis=-1)
    assert red.sum() > before.sum() + 8
    rows, cols = np.nonzero(red & ~before)
    [(u, v)], _ = project(np.array(target) + [0, 0, obj.extent[2] / 2], scene.observation.intrinsics,
                        scene.observation.cam_to_world)
    assert cols.min() <= u <= cols.max() and rows.min() <= v <= rows.max()


def test_move_edit_feeds_back_into_understanding(wm, scene, frame):
    _, subject, reference = frame
    obj = scene.find(subject)
    target = (float(obj.centroid[0]), float(obj.centroid[1]) + 0.05, obj.bottom_z)
    edited = wm.edit(scene, MoveObject(subject, to=target), seed=0)
    assert edited.data["prompt"] == prompts.move_prompt(subject)
    assert edited.edits == (MoveObject(subject, to=target),)
    assert edited.observation.rgb.shape == scene.observation.rgb.shape
    assert not np.array_equal(edited.observation.rgb, scene.observation.rgb)
    np.testing.assert_allclose(edited.find(subject).centroid[:2], target[:2])
    assert isinstance(wm.relation(edited, subject, reference), Relation)
    assert scene.find(subject).centroid[1] == pytest.approx(obj.centroid[1])  # input scene unchanged


def test_move_edit_refusals(wm, scene, frame):
    _, subject, _ = frame
    with pytest.raises(UnknownObjectError):
        wm.edit(scene, MoveObject("green teapot", to=(0, 0, 0.4)))
    with pytest.raises(InvalidInputError) as caught:
        wm.edit(scene, MoveObject(subject, to=(0.0, 3.0, 0.4)))  # far off to the side: outside the image
    assert caught.value.field == "edit.to"
    flat = wm.observe(rgb=scene.observation.rgb, intrinsics=scene.observation.intrinsics,
                      cam_to_world=scene.observation.cam_to_world)  # no depth, no labels: no objects
    with pytest.raises(InvalidInputError) as caught:
        wm.edit(flat, MoveObject(subject, to=(0, 0, 0.4)))
    assert caught.value.field == "edit.object"


def test_rotate_edit_uses_the_nearest_view(wm, scene, frame):
    _, subject, _ = frame
    edited = wm.edit(scene, RotateObject(subject, yaw_deg=100), seed=0)
    assert edited.data["prompt"] == f"Rotate the {subject} to show the right side view."
    assert edited.observation.rgb.shape == scene.observation.rgb.shape


def test_answer_with_imagination_sends_all_views(wm, scene, frame):
    _, subject, reference = frame
    answer = wm.answer_with_imagination(scene, f"Is the {subject} behind the {reference}?", max_views=2)
    assert len(answer.views) == 2 and answer.unit == "bool"
    assert answer.views[0].prompt == prompts.camera_prompt(CameraMove(pitch_deg=30))  # depth question: above first
    assert answer.raw_text is not None
    assert wm.answer_with_imagination(scene, "Describe the table.", max_views=0).views == ()


def test_checkpoint_errors_name_what_is_missing(checkpoint, tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        WorldModel.load("joyai-image", path=tmp_path / "nowhere", **FAST)
    partial = tmp_path / "partial"
    shutil.copytree(checkpoint, partial)
    shutil.rmtree(partial / "vae")
    for weights in (partial / "transformer").glob("*.safetensors"):
        weights.unlink()
    with pytest.raises(CheckpointError) as caught:
        WorldModel.load("joyai-image", path=partial, **FAST)
    assert "vae/" in str(caught.value) and "transformer/*.safetensors" in str(caught.value)
    with pytest.raises(CheckpointError, match="downloaded"):
        WorldModel.load("joyai-image", path="nobody-here/no-such-model", **FAST)


def test_bad_options_are_named(checkpoint):
    with pytest.raises(InvalidInputError) as caught:
        WorldModel.load("joyai-image", path=checkpoint, **{**FAST, "dtype": "int8"})
    assert caught.value.field == "dtype"
    with pytest.raises(InvalidInputError) as caught:
        WorldModel.load("joyai-image", path=checkpoint, **{**FAST, "offload": "model"})  # offload needs a GPU
    assert caught.value.field == "offload"


def test_out_of_memory_names_the_offload_to_try():
    with pytest.raises(BackendUnavailableError, match="offload='model'"):
        with out_of_memory_hint("none"):
            raise torch.OutOfMemoryError("CUDA out of memory")
    with pytest.raises(BackendUnavailableError, match="offload='group'"):
        with out_of_memory_hint("model"):
            raise torch.OutOfMemoryError("CUDA out of memory")
