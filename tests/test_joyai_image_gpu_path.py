"""Issue 15 part B on CPU: the joyai-image path as it will meet the real checkpoint on a GPU.

Tiny random checkpoints in the real layout, loaded by the real code: both processor layouts, legacy
transformer configs, the intrinsics of generated views, batching by prompt length, and the img2img
start from the geometric warp (``init="geometric"``, ``strength``).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("transformers")

from PIL import Image  # noqa: E402

from joyai_embodied import CameraMove, CheckpointError, InvalidInputError, RotateObject, WorldModel  # noqa: E402
from joyai_embodied.backends.joyai_image import prompts  # noqa: E402
from joyai_embodied.backends.joyai_image.checkpoint import LEGACY_TRANSFORMER_KEYS  # noqa: E402
from joyai_embodied.backends.joyai_image.geometry import framing_for, resize  # noqa: E402
from joyai_embodied.backends.joyai_image.img2img import steps_for_strength  # noqa: E402
from joyai_embodied.backends.joyai_image.tiny_checkpoint import write_tiny_checkpoint  # noqa: E402
from joyai_embodied.camera import project  # noqa: E402
from joyai_embodied.evaluation import synthetic  # noqa: E402

FAST = dict(device="cpu", dtype="float32", steps=2, resolution=64, max_new_tokens=8)


@pytest.fixture(scope="module")
def checkpoint(tiny_joyai_checkpoint):
    return tiny_joyai_checkpoint


@pytest.fixture(scope="module")
def wm(checkpoint):
    model = WorldModel.load("joyai-image", path=checkpoint, **FAST)
    yield model
    model.close()


@pytest.fixture(scope="module")
def frame():
    return synthetic.observe(synthetic.front_camera(160, 120), synthetic.default_boxes())


@pytest.fixture(scope="module")
def scene(wm, frame):
    return wm.observe(frame)


class TransformerCalls:
    """Records (timestep, hidden_states) of every transformer forward pass inside the block."""

    def __init__(self, wm):
        self.transformer, self.calls = wm.backend.pipe.transformer, []

    def __enter__(self):
        self.handle = self.transformer.register_forward_hook(
            lambda module, args, kwargs, output: self.calls.append(
                (float(kwargs["timestep"][0]), kwargs["hidden_states"].detach().clone())), with_kwargs=True)
        return self.calls

    def __exit__(self, *exc):
        self.handle.remove()


# -- 1. both processor layouts --------------------------------------------------------------------

def test_processor_config_json_layout_loads_like_preprocessor_config(tmp_path, checkpoint, wm, frame):
    plus = write_tiny_checkpoint(tmp_path / "plus", seed=0, processor_file="processor_config.json")
    assert (plus / "processor" / "processor_config.json").is_file()
    assert not (plus / "processor" / "preprocessor_config.json").exists()
    assert (checkpoint / "processor" / "preprocessor_config.json").is_file()
    nested = json.loads((plus / "processor" / "processor_config.json").read_text())
    assert nested["processor_class"] == "Qwen3VLProcessor" and "image_processor" in nested
    with WorldModel.load("joyai-image", path=plus, **FAST) as other:
        mine, theirs = wm.backend.processor.image_processor, other.backend.processor.image_processor
        assert theirs.to_dict() == mine.to_dict()
        assert theirs.size == mine.size and theirs.patch_size == 16 and theirs.merge_size == 2
        plus_scene = other.observe(frame)
        names = plus_scene.object_names()
        # Same weights (seed 0), same processor settings: the same greedy answer.
        assert other.relation(plus_scene, names[0], names[1]).raw_text == \
            wm.relation(wm.observe(frame), names[0], names[1]).raw_text


def test_a_processor_folder_with_neither_file_is_named(tmp_path, checkpoint):
    partial = tmp_path / "partial"
    shutil.copytree(checkpoint, partial)
    (partial / "processor" / "preprocessor_config.json").unlink()
    with pytest.raises(CheckpointError, match="processor/preprocessor_config.json or processor/processor_config"):
        WorldModel.load("joyai-image", path=partial, **FAST)


# -- 2. legacy transformer config keys ------------------------------------------------------------

def test_legacy_transformer_keys_are_refused_with_their_new_names(tmp_path, checkpoint):
    from diffusers import JoyImageEditTransformer3DModel

    legacy = tmp_path / "legacy"
    shutil.copytree(checkpoint, legacy)
    config_path = legacy / "transformer" / "config.json"
    config = json.loads(config_path.read_text())
    # What the check protects against: diffusers ignores the old names and builds its defaults.
    demo = dict(config, mm_double_blocks_depth=config["num_layers"], rope_theta=config["theta"])
    del demo["num_layers"], demo["theta"]
    silent = JoyImageEditTransformer3DModel.from_config(demo)
    assert silent.config.num_layers == 20 and silent.config.theta == 256
    for old, new in LEGACY_TRANSFORMER_KEYS.items():
        config[old] = config.pop(new)
    config_path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError) as caught:
        WorldModel.load("joyai-image", path=legacy, **FAST)
    message = str(caught.value)
    for old, new in LEGACY_TRANSFORMER_KEYS.items():
        assert f"{old!r} -> {new!r}" in message
    assert "rename" in message


# -- 3. intrinsics of what was generated ----------------------------------------------------------

def _blob(width: int, height: int, centre: np.ndarray, sigma_px: float = 2.0) -> np.ndarray:
    rows, cols = np.mgrid[0:height, 0:width]
    value = np.exp(-((cols - centre[0]) ** 2 + (rows - centre[1]) ** 2) / (2 * sigma_px ** 2))
    return np.repeat((255 * value).astype(np.uint8)[..., None], 3, axis=-1)


def _centroid(image: np.ndarray) -> np.ndarray:
    weight = image[..., 0].astype(np.float64)
    rows, cols = np.mgrid[0:image.shape[0], 0:image.shape[1]]
    return np.array([(cols * weight).sum(), (rows * weight).sum()]) / weight.sum()


def test_a_projected_point_lands_where_the_returned_intrinsics_say(wm, scene):
    backend, camera = wm.backend, scene.observation.camera
    backend.resolution = 256  # 4:3 input -> a 13:18 bucket: rows are cropped, as at 1024 px with 640x480
    try:
        processor = backend.pipe.vae_image_processor
        framing = framing_for(processor, Image.fromarray(scene.observation.rgb))
        assert framing.bucket_width / framing.bucket_height != pytest.approx(4 / 3, abs=0.01)
        # A world point seen near the top-left corner, where a crop shows most.
        point = camera.cam_to_world[:3, :3] @ np.linalg.solve(camera.intrinsics, [30.0, 15.0, 1.0]) * 0.9 \
            + camera.cam_to_world[:3, 3]
        [observed_px], _ = project(point[None], camera.intrinsics, camera.cam_to_world)
        marked = Image.fromarray(_blob(camera.width, camera.height, observed_px))
        # The pipeline's own resize-and-crop, then the backend's resize back: a perfectly static "edit".
        bucket = np.asarray(processor.resize_center_crop(marked, (framing.bucket_height, framing.bucket_width)))
        returned = resize(bucket, (camera.width, camera.height))
        view = wm.imagine(scene, CameraMove(), seed=0)
        [predicted], _ = project(point[None], view.intrinsics, camera.cam_to_world)
        [naive], _ = project(point[None], camera.intrinsics, camera.cam_to_world)
        landed = _centroid(returned)
        assert np.abs(landed - predicted).max() < 0.3
        assert np.abs(landed - naive).max() > 1.0  # the input K, as returned before, misses by > 1 px
        assert view.intrinsics[1, 1] / camera.intrinsics[1, 1] == pytest.approx(216 / 120 * 120 / 208)
        edited = wm.edit(scene, RotateObject(scene.object_names()[0], yaw_deg=90), seed=0)
        np.testing.assert_allclose(edited.observation.intrinsics, view.intrinsics)
    finally:
        backend.resolution = FAST["resolution"]


# -- 4. batches of different prompt lengths --------------------------------------------------------

def test_mixed_length_batches_equal_the_views_run_alone(wm, scene):
    short, long_ = CameraMove(yaw_deg=30), CameraMove(yaw_deg=-30.5)
    tokenizer = wm.backend.processor.tokenizer
    lengths = [len(tokenizer(prompts.camera_prompt(m), add_special_tokens=False)["input_ids"])
               for m in (short, long_)]
    assert lengths[0] < lengths[1]
    batch = wm.imagine_batch(scene, [short, long_], seed=3)
    np.testing.assert_array_equal(batch[0].rgb, wm.imagine(scene, short, seed=3).rgb)
    np.testing.assert_array_equal(batch[1].rgb, wm.imagine(scene, long_, seed=4).rgb)


def test_padding_a_prompt_changes_its_image_in_the_raw_pipeline(wm, scene):
    """The measurement behind the grouping: padded prompts are conditioned differently (no mask)."""
    backend = wm.backend
    image = Image.fromarray(scene.observation.rgb)
    short = prompts.camera_prompt(CameraMove(yaw_deg=30))
    same_length = prompts.camera_prompt(CameraMove(yaw_deg=40))
    longer = prompts.rotate_prompt("red cube", 90) + " " + short  # tens of tokens longer

    def first_image(texts):
        generators = [torch.Generator("cpu").manual_seed(3 + i) for i in range(len(texts))]
        with backend._seeded(3):
            return backend.pipe(image=[image] * len(texts), prompt=texts, num_inference_steps=2,
                                guidance_scale=4.0, generator=generators, output_type="np").images[0]

    alone = first_image([short])
    equal_batch = np.abs(first_image([short, same_length]) - alone).max()
    padded_batch = np.abs(first_image([short, longer]) - alone).max()
    assert padded_batch > 10 * max(equal_batch, 1e-7)


# -- 7. img2img start from the geometric warp ------------------------------------------------------

@pytest.mark.parametrize("strength", [0.25, 0.3, 0.5, 1.0])
def test_strength_runs_the_tail_of_the_schedule(wm, scene, strength):
    from diffusers import FlowMatchEulerDiscreteScheduler

    backend = wm.backend
    backend.steps = 10
    try:
        with TransformerCalls(wm) as tail:
            wm.imagine(scene, CameraMove(yaw_deg=20), seed=1, init="geometric", strength=strength)
    finally:
        backend.steps = FAST["steps"]
    kept = {0.25: 3, 0.3: 3, 0.5: 5, 1.0: 10}[strength]
    assert steps_for_strength(10, strength) == kept
    assert len(tail) == 2 * kept  # conditional + unconditional pass per step
    full = FlowMatchEulerDiscreteScheduler.from_config(backend.pipe.scheduler.config)
    full.set_timesteps(10)  # the checkpoint's own 10-step schedule
    assert [t for t, _ in tail[::2]] == pytest.approx(full.timesteps[-kept:].tolist())


def test_strength_one_is_the_noise_path(wm, scene):
    move = CameraMove(yaw_deg=25, pitch_deg=-10)
    plain = wm.imagine(scene, move, seed=5)
    np.testing.assert_array_equal(wm.imagine(scene, move, seed=5, init="geometric", strength=1.0).rgb, plain.rgb)
    assert not np.array_equal(wm.imagine(scene, move, seed=5, init="geometric", strength=0.5).rgb, plain.rgb)


def test_the_start_latent_is_the_warped_view_noised_to_sigma(wm, scene):
    """x_start = (1 - sigma) x0 + sigma * noise: removing each seed's noise leaves the same x0."""
    move, clean, starts = CameraMove(yaw_deg=20), [], []
    for seed in (5, 6):
        with TransformerCalls(wm) as noise_only:
            wm.imagine(scene, move, seed=seed, init="geometric", strength=1.0)
        with TransformerCalls(wm) as started:
            wm.imagine(scene, move, seed=seed, init="geometric", strength=0.5)
        sigma = started[0][0] / 1000.0
        assert 0.0 < sigma < 1.0
        noise, start = noise_only[0][1][:, 1], started[0][1][:, 1]  # slot 1 = the generated image
        clean.append((start - sigma * noise) / (1.0 - sigma))
        starts.append(start)
    torch.testing.assert_close(clean[0], clean[1], rtol=1e-4, atol=1e-4)
    assert clean[0].abs().mean() > 0.05
    with TransformerCalls(wm) as other_view:  # same seed, another camera: another warp, another start
        wm.imagine(scene, CameraMove(yaw_deg=-20), seed=5, init="geometric", strength=0.5)
    assert not torch.allclose(other_view[0][1][:, 1], starts[0], atol=1e-3)


def test_init_and_strength_errors_name_the_field(wm, scene, frame):
    for kwargs, field in [(dict(init="sketch"), "init"), (dict(init="geometric", strength=0.0), "strength"),
                          (dict(init="geometric", strength=1.5), "strength"),
                          (dict(init="noise", strength=0.5), "strength")]:
        with pytest.raises(InvalidInputError) as caught:
            wm.imagine(scene, CameraMove(yaw_deg=10), **kwargs)
        assert caught.value.field == field
    flat = wm.observe(rgb=frame.rgb, intrinsics=frame.intrinsics, cam_to_world=frame.cam_to_world)
    with pytest.raises(InvalidInputError) as caught:
        wm.imagine(flat, CameraMove(yaw_deg=10), init="geometric", strength=0.5)
    assert caught.value.field == "init"
    geometric = WorldModel.load("geometric")
    with pytest.raises(InvalidInputError) as caught:
        geometric.imagine(geometric.observe(frame), CameraMove(yaw_deg=10), init="geometric")
    assert caught.value.field == "init" and "geometric backend" in str(caught.value)
    with pytest.raises(InvalidInputError) as caught:
        WorldModel.load("joyai-image", path=wm.backend.folder, **FAST, strength=0.5)  # init stays 'noise'
    assert caught.value.field == "strength"
