"""The ``joyai-image`` backend: JD's JoyAI-Image world model on transformers + diffusers.

One checkpoint folder in the diffusers layout (``model_index.json`` + processor, scheduler, text_encoder,
tokenizer, transformer, vae) holds both halves of the model:

* understanding: the pipeline's ``text_encoder`` is the spatially tuned Qwen3-VL MLLM. It is loaded once
  with ``Qwen3VLForConditionalGeneration`` and handed to the pipeline, so the ~17 GB encoder is shared by
  question answering and by the editing pipeline's prompt encoding instead of being loaded twice;
* imagination: diffusers' ``JoyImageEditPipeline`` (MMDiT + Wan VAE) for camera moves and object edits.

Structured questions (relations, distances, counts, yes/no) use prompts whose answers can be parsed
(:mod:`.prompts`); off-format answers give low confidence, never an exception. Nothing is
ever downloaded: ``path`` is a local folder, or a hub id already present in the local cache.
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw

from ...camera import orbit, project
from ...config import resolve_config
from ...errors import BackendUnavailableError, CheckpointError, ImpossibleCameraMoveError, InvalidInputError
from ...types import (Answer, CameraMove, CameraPose, Edit, ImaginedView, MoveObject, Observation, Relation,
                     Scene, SceneObject)
from . import prompts
from ..base import Backend, Frame
from .configuration_joyai_image import JoyAIImageConfig
from .tiny_checkpoint import write_tiny_checkpoint

__all__ = ["JoyAIImageBackend", "write_tiny_checkpoint", "check_checkpoint", "resolve_checkpoint"]

#: Files that must exist in each component folder (weights are checked separately).
REQUIRED_FILES = {
    "processor": ("preprocessor_config.json",),
    "scheduler": ("scheduler_config.json",),
    "text_encoder": ("config.json",),
    "tokenizer": ("tokenizer_config.json",),
    "transformer": ("config.json",),
    "vae": ("config.json",),
}
WEIGHTED = ("text_encoder", "transformer", "vae")
OFFLOAD_MODES = ("none", "model", "group")
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
#: Spatial size granularity of the pipeline: VAE downsampling (8) x transformer patch (2).
SIZE_MULTIPLE = 16
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


# -- checkpoint -------------------------------------------------------------------------------------

def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """Turns ``path`` (a folder, or a hub id already in the local cache) into a checkpoint folder.

    Raises:
        CheckpointError: the folder does not exist, or ``path`` is a hub id with no local copy.
    """
    text = os.path.expandvars(os.path.expanduser(str(path)))
    folder = Path(text)
    if folder.is_dir():
        return folder
    if _HUB_ID.match(text) and not text.startswith((".", "/")):
        try:
            from huggingface_hub import snapshot_download

            return Path(snapshot_download(text, local_files_only=True))  # cache lookup only, never fetches
        except Exception as exc:
            raise CheckpointError(
                f"checkpoint {text!r} looks like a hub id, but no local copy was found. Weights are never "
                f"downloaded at run time: download them first (see models/README.md) and pass the folder "
                f"as path=") from exc
    raise CheckpointError(f"checkpoint folder {text!r} does not exist (see models/README.md for the layout)")


def check_checkpoint(folder: Path) -> None:
    """Checks that ``folder`` holds every component of the diffusers layout.

    Raises:
        CheckpointError: listing every missing file or folder at once.
    """
    missing = [] if (folder / "model_index.json").is_file() else ["model_index.json"]
    for component, files in REQUIRED_FILES.items():
        if not (folder / component).is_dir():
            missing.append(f"{component}/")
            continue
        missing += [f"{component}/{name}" for name in files if not (folder / component / name).is_file()]
        if component in WEIGHTED and not any((folder / component).glob("*.safetensors")):
            missing.append(f"{component}/*.safetensors (weights)")
    if missing:
        raise CheckpointError(f"checkpoint {str(folder)!r} is incomplete; missing: {', '.join(missing)}. "
                              f"Expected the diffusers layout: model_index.json + {'/, '.join(REQUIRED_FILES)}/")


def _image_only_processor(folder: Path):
    """Qwen3-VL processor without its video part (that part needs torchvision, which is not required here)."""
    from transformers import AutoTokenizer, Qwen3VLProcessor
    from transformers.models.qwen2_vl import Qwen2VLImageProcessorPil

    class ImageOnlyQwen3VLProcessor(Qwen3VLProcessor):
        def check_argument_for_proper_class(self, argument_name, argument):
            if argument_name == "video_processor" and argument is None:
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    image_processor = Qwen2VLImageProcessorPil.from_pretrained(folder, local_files_only=True)
    return ImageOnlyQwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer, video_processor=None,
                                     chat_template=tokenizer.chat_template)


def _bucket_processor(resolution: int, vae_scale_factor: int):
    """The pipeline's resize-and-crop processor with its 1024-px aspect buckets scaled to ``resolution``.

    diffusers only ships buckets for a 1024 base; the same aspect ratios scaled down keep small test
    images (and faster 512-px runs) on sizes the VAE and the transformer patches divide.
    """
    from diffusers.pipelines.joyimage.image_processor import JoyImageEditImageProcessor

    class ScaledBucketProcessor(JoyImageEditImageProcessor):
        def get_default_height_width(self, image, height=None, width=None):
            bucket = super().get_default_height_width(image, height, width)
            scale = self.resolution / 1024.0
            return tuple(max(SIZE_MULTIPLE, int(round(side * scale / SIZE_MULTIPLE)) * SIZE_MULTIPLE)
                         for side in bucket)

    processor = ScaledBucketProcessor(vae_scale_factor=vae_scale_factor)
    processor.resolution = resolution
    return processor


@contextlib.contextmanager
def out_of_memory_hint(offload: str) -> Iterator[None]:
    """Re-raises an accelerator out-of-memory error with the offload option to try next."""
    try:
        yield
    except torch.OutOfMemoryError as exc:
        next_mode = {"none": "offload='model'", "model": "offload='group'"}.get(offload, "a smaller resolution")
        raise BackendUnavailableError(
            f"out of accelerator memory with offload={offload!r}; try {next_mode} (see models/README.md, "
            f"'Memory plan')") from exc


# -- backend ----------------------------------------------------------------------------------------

class JoyAIImageBackend(Backend):
    """Understanding with the Qwen3-VL MLLM, imagination with the JoyAI-Image edit pipeline.

    Args:
        config: the options (:class:`JoyAIImageConfig`, fields below); or give them as keywords.
        path: checkpoint folder in the diffusers layout, or a hub id already in the local cache.
        device: ``"cuda"``, ``"cuda:1"``, ``"cpu"`` or ``"auto"`` (CUDA when available).
        dtype: ``"bfloat16"`` (GPU default), ``"float16"`` or ``"float32"``.
        offload: ``"none"`` (all on the device), ``"model"`` (one component on the GPU at a time) or
            ``"group"`` (layer groups streamed to the GPU; least memory, slowest).
        attention: ``"auto"`` (flash-attn when installed, else SDPA), ``"flash_attention_2"`` or ``"sdpa"``.
        steps: denoising steps per imagined image.
        guidance: classifier-free guidance scale (1 disables the negative pass).
        seed: default seed of imagination and sampled answers.
        resolution: pixel base of the generation buckets (1024 is what the model was trained at).
        max_new_tokens: longest free-text answer; structured answers are capped at 256 tokens.
        temperature: sampling temperature of free-text answers (0 = greedy); structured ones are greedy.
        top_p: nucleus sampling of free-text answers.

    Raises:
        CheckpointError: missing/partial checkpoint or a hub id with no local copy.
        InvalidInputError: an unknown option, or one of the wrong type or outside its allowed values
            (the message names it).
    """

    name = "joyai-image"

    config_class = JoyAIImageConfig

    def __init__(self, config: JoyAIImageConfig | None = None, **options: Any):
        # Types, choices and ranges are checked by the config; what is left needs torch or the filesystem.
        self.config = resolve_config(JoyAIImageConfig, config, options, "joyai-image backend")
        path, device, dtype, offload = self.config.path, self.config.device, self.config.dtype, self.config.offload
        attention, steps, resolution = self.config.attention, self.config.steps, self.config.resolution
        guidance, seed, max_new_tokens = self.config.guidance, self.config.seed, self.config.max_new_tokens
        temperature, top_p = self.config.temperature, self.config.top_p
        if path is None:
            path = os.environ.get("JOYAI_IMAGE_PATH")
            if not path:
                raise CheckpointError("no checkpoint given: pass path= or set JOYAI_IMAGE_PATH")
        device = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else str(device)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(f"device={device!r} but torch sees no CUDA device; use device='cpu'")
        if offload != "none" and not device.startswith("cuda"):
            raise InvalidInputError("offload", "'none' on a CPU device (offloading moves weights to a GPU)",
                                    offload)
        if attention == "auto":
            attention = "flash_attention_2" if _flash_attn_installed() and device.startswith("cuda") else "sdpa"

        self.folder = resolve_checkpoint(path)
        check_checkpoint(self.folder)
        self.device, self.dtype, self.offload, self.attention = device, DTYPES[dtype], offload, attention
        self.steps, self.guidance, self.seed, self._resolution = steps, float(guidance), int(seed), resolution
        self.max_new_tokens, self.temperature, self.top_p = int(max_new_tokens), float(temperature), float(top_p)
        started = time.perf_counter()
        with out_of_memory_hint(offload):
            self._load()
        self.load_seconds = time.perf_counter() - started

    def _load(self) -> None:
        from diffusers import JoyImageEditPipeline
        from transformers import Qwen3VLForConditionalGeneration

        self.processor = _image_only_processor(self.folder / "processor")
        # The understanding model is the pipeline's text encoder: load it once, share it.
        self.mllm = Qwen3VLForConditionalGeneration.from_pretrained(
            self.folder / "text_encoder", dtype=self.dtype, attn_implementation=self.attention,
            local_files_only=True).eval()
        tokenizer = self.processor.tokenizer
        self.pipe = JoyImageEditPipeline.from_pretrained(
            self.folder, text_encoder=self.mllm, processor=self.processor, tokenizer=tokenizer,
            dtype=self.dtype, local_files_only=True)
        self.pipe.set_progress_bar_config(disable=True)
        self.pipe.vae_image_processor = _bucket_processor(self._resolution, self.pipe.vae_scale_factor_spatial)
        if self.attention == "flash_attention_2":
            self.pipe.transformer.set_attention_backend("flash")
        if self.offload == "model":
            self.pipe.enable_model_cpu_offload(device=self.device)
        elif self.offload == "group":
            self.pipe.enable_group_offload(onload_device=torch.device(self.device), offload_type="leaf_level",
                                           use_stream=True)
        else:
            self.pipe.to(self.device)

    @property
    def resolution(self) -> int:
        """Pixel base of the generation buckets; settable between calls (e.g. 512 for faster previews)."""
        return self._resolution

    @resolution.setter
    def resolution(self, value: int) -> None:
        if isinstance(value, bool) or not isinstance(value, int) or not 64 <= value <= 2048:
            raise InvalidInputError("resolution", "an integer in [64, 2048]", value)
        self._resolution = self.pipe.vae_image_processor.resolution = value

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "path": str(self.folder), "device": self.device,
                "dtype": str(self.dtype).replace("torch.", ""), "offload": self.offload,
                "attention": self.attention, "steps": self.steps, "resolution": self.resolution,
                "load_seconds": round(self.load_seconds, 3)}

    def close(self) -> None:
        self.pipe = self.mllm = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- understanding ------------------------------------------------------------------------------

    def observe(self, observation: Observation) -> Scene:
        """Keeps the image for the MLLM; with depth, also lifts objects to 3D (needed by MoveObject)."""
        objects = _lift_objects(observation)
        located = [o.centroid for o in objects if np.all(np.isfinite(o.centroid))]
        if located:
            pivot = np.mean(located, axis=0)
        else:  # no geometry: orbit about a point on the optical axis (median depth, else 1 m away)
            distance = 1.0
            if observation.depth is not None:
                valid = observation.depth[np.isfinite(observation.depth) & (observation.depth > 0)]
                distance = float(np.median(valid))
            pivot = observation.cam_to_world[:3, 3] + distance * observation.cam_to_world[:3, 2]
        return Scene(observation=observation, objects=objects, pivot=pivot, backend=self.name)

    def generate_text(self, images: Sequence[np.ndarray], text: str, structured: bool) -> tuple[str, float]:
        """Runs the MLLM on ``images`` + ``text``; returns the answer and its mean token probability."""
        content = [{"type": "image"} for _ in images] + [{"type": "text", "text": text}]
        messages = [{"role": "system", "content": prompts.SYSTEM_PROMPT}, {"role": "user", "content": content}]
        chat = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(text=[chat], images=[Image.fromarray(i) for i in images] or None,
                                return_tensors="pt").to(self.pipe._execution_device)
        sample = not structured and self.temperature > 0
        options = dict(do_sample=sample, max_new_tokens=min(self.max_new_tokens, 256) if structured
                       else self.max_new_tokens, return_dict_in_generate=True, output_scores=True)
        if sample:
            options.update(temperature=self.temperature, top_p=self.top_p)
        with out_of_memory_hint(self.offload), torch.no_grad(), self._seeded(self.seed):
            out = self.mllm.generate(**inputs, **options)
        new_tokens = out.sequences[:, inputs["input_ids"].shape[1]:]
        scores = self.mllm.compute_transition_scores(out.sequences, out.scores, normalize_logits=True)
        confidence = float(torch.exp(scores.float().mean())) if scores.numel() else 0.0
        answer = self.processor.batch_decode(new_tokens, skip_special_tokens=True)[0].strip()
        return answer, confidence if math.isfinite(confidence) else 0.0

    @contextlib.contextmanager
    def _seeded(self, seed: int) -> Iterator[None]:
        """Seeds torch's global RNG for one call without disturbing the caller's random state."""
        devices = [torch.device(self.device).index or 0] if self.device.startswith("cuda") else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield

    def _view_images(self, scene: Scene, frame: Frame) -> tuple[list[np.ndarray], str]:
        """The image(s) the MLLM reasons on for ``frame``, and the frame's name."""
        if frame == "camera":
            return [scene.observation.rgb], "camera"
        if isinstance(frame, CameraPose):
            return [self.imagine(scene, frame).rgb], "camera:imagined"
        raise InvalidInputError("frame", "'camera' or a CameraPose (joyai-image reasons in image space, not "
                                "in the world frame)", repr(frame))

    def relation(self, scene: Scene, subject: str, reference: str, frame: Frame = "camera") -> Relation:
        """Asks the MLLM for the relation as JSON; ``confidence`` is 0 when nothing could be parsed."""
        subject_name, reference_name = (self._object_name(scene, n, "subject") for n in (subject, reference))
        images, frame_name = self._view_images(scene, frame)
        raw, token_confidence = self.generate_text(
            images, prompts.relation_prompt(subject_name, reference_name), structured=True)
        parsed = prompts.parse_relation(raw)
        flags = {key: bool(value) for key, value in parsed.flags.items()}
        return Relation(subject=subject_name, reference=reference_name, left_of=flags["left_of"],
                        right_of=flags["right_of"], in_front_of=flags["in_front_of"], behind=flags["behind"],
                        above=flags["above"], below=flags["below"], on_top_of=flags["on_top_of"],
                        distance_m=parsed.distance_m if parsed.distance_m is not None else float("nan"),
                        frame=frame_name, confidence=parsed.score * token_confidence, raw_text=raw)

    def ask(self, scene: Scene, question: str, frame: Frame = "camera") -> Answer:
        """Free text goes through as is; distance/count/yes-no questions get an answer-format instruction."""
        images, frame_name = self._view_images(scene, frame)
        return self._answer(images, question, prompts.question_prompt(question, prompts.question_kind(question)),
                            frame_name)

    def _answer(self, images: Sequence[np.ndarray], question: str, text: str, frame: str,
                views: tuple = ()) -> Answer:
        kind = prompts.question_kind(question)
        raw, token_confidence = self.generate_text(images, text, structured=kind != "free")
        value, unit = prompts.parse_answer(raw, kind)
        parsed = kind == "free" or value is not None
        return Answer(text=raw, value=value, unit=unit, confidence=token_confidence if parsed else 0.0,
                      supported=parsed, frame=frame, views=views, raw_text=raw)

    def _object_name(self, scene: Scene, name: str, field: str) -> str:
        """The scene's name for ``name`` when the scene knows its objects, else the name as given."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError(field, "a non-empty object name", repr(name))
        return scene.find(name).name if scene.objects else " ".join(name.split())

    # -- imagination ----------------------------------------------------------------------------------

    def _generate(self, images: Sequence[np.ndarray], texts: Sequence[str], seed: int | None) -> list[np.ndarray]:
        """One pipeline call for all requests; image ``i`` is edited by prompt ``i``."""
        seed = self.seed if seed is None else int(seed)
        generators = [torch.Generator("cpu").manual_seed(seed + i) for i in range(len(texts))]
        # The generators fix the initial noise; the VAE samples its posterior from the global RNG.
        with out_of_memory_hint(self.offload), self._seeded(seed):
            result = self.pipe(image=[Image.fromarray(i) for i in images], prompt=list(texts),
                               num_inference_steps=self.steps, guidance_scale=self.guidance,
                               generator=generators, output_type="np")
        return [np.clip(np.rint(i * 255.0), 0, 255).astype(np.uint8) for i in result.images]

    def _camera_request(self, scene: Scene, move: CameraMove | CameraPose) -> tuple[str, CameraPose]:
        """The prompt for a view request and the camera the imagined view is meant to show."""
        observed = scene.observation.camera
        if isinstance(move, CameraPose):
            target, move = move, move_towards(observed, move, scene.pivot)
        else:
            target = CameraPose(orbit(observed.cam_to_world, scene.pivot, move), observed.intrinsics,
                                observed.width, observed.height)
        prompts.check_camera_move(move)
        return prompts.camera_prompt(move), target

    def imagine(self, scene: Scene, move: CameraMove | CameraPose, seed: int | None = None) -> ImaginedView:
        return self.imagine_batch(scene, [move], seed=seed)[0]

    def imagine_batch(self, scene: Scene, moves: Sequence[CameraMove | CameraPose],
                      seed: int | None = None) -> list[ImaginedView]:
        """All views in one pipeline call. Moves beyond the trained range raise ImpossibleCameraMoveError.

        ``depth`` and ``segmentation`` are None (the model predicts only colour); ``valid_mask`` is all
        True because every pixel is generated content, none is known to be missing.
        """
        requests = [self._camera_request(scene, move) for move in moves]
        if not requests:
            return []
        images = self._generate([scene.observation.rgb] * len(requests), [p for p, _ in requests], seed)
        return [_view(image, camera, text, self.name) for image, (text, camera) in zip(images, requests)]

    def edit(self, scene: Scene, edit: Edit, seed: int | None = None) -> Scene:
        """Edits the image; the new scene's observation is the edited image (no depth: it would be stale)."""
        rgb = scene.observation.rgb
        if isinstance(edit, MoveObject):
            obj = self._object_with_extent(scene, edit.object)
            text, rgb = prompts.move_prompt(obj.name), draw_target_box(scene.observation, obj, edit.to)
            objects = [_moved(o, edit.to) if o.id == obj.id else o for o in scene.objects]
        else:
            name = self._object_name(scene, edit.object, "edit.object")
            text, objects = prompts.rotate_prompt(name, edit.yaw_deg), list(scene.objects)
        edited = self._generate([rgb], [text], seed)[0]
        size = (scene.observation.width, scene.observation.height)
        observation = Observation(rgb=_resize(edited, size), intrinsics=scene.observation.intrinsics,
                                  cam_to_world=scene.observation.cam_to_world, labels=scene.observation.labels)
        return Scene(observation=observation, objects=objects, pivot=scene.pivot, backend=self.name,
                     data={"prompt": text}, edits=scene.edits + (edit,))

    def _object_with_extent(self, scene: Scene, name: str) -> SceneObject:
        if not scene.objects:
            raise InvalidInputError("edit.object", "an object of a scene observed with depth (MoveObject needs "
                                    "its 3D box to draw the target)", f"{name!r} in a scene without objects")
        obj = scene.find(name)
        if not np.all(np.asarray(obj.extent) > 0):
            raise InvalidInputError("edit.object", "an object with a 3D extent (observe with depth)", obj.name)
        return obj

    # -- loop -----------------------------------------------------------------------------------------

    def answer_with_imagination(self, scene: Scene, question: str, max_views: int = 4) -> Answer:
        """Imagines up to ``max_views`` views (one batch), then asks with the real and imagined images."""
        moves = prompts.helpful_moves(question)[:max_views]
        views = tuple(self.imagine_batch(scene, moves)) if moves else ()
        kind = prompts.question_kind(question)
        text = prompts.evidence_prompt(moves, prompts.question_prompt(question, kind))
        return self._answer([scene.observation.rgb, *(v.rgb for v in views)], question, text, "camera", views)


# -- helpers ----------------------------------------------------------------------------------------

def _flash_attn_installed() -> bool:
    import importlib.util

    return importlib.util.find_spec("flash_attn") is not None


def move_towards(observed: CameraPose, target: CameraPose, pivot: np.ndarray) -> CameraMove:
    """The orbit (yaw, pitch, zoom about ``pivot``) that best takes ``observed`` to ``target``.

    Yaw is the change of the camera's azimuth about the vertical through the pivot, pitch the change of
    its elevation, zoom the ratio of distances. Roll and look-at offsets are not expressible in the
    model's camera prompt and are ignored.
    """
    def polar(pose: CameraPose) -> tuple[float, float, float]:
        offset = pose.position - pivot
        distance = float(np.linalg.norm(offset))
        if distance < 1e-6:
            raise ImpossibleCameraMoveError("camera", "a camera away from the scene pivot", "at the pivot")
        return (math.degrees(math.atan2(offset[1], offset[0])),
                math.degrees(math.asin(np.clip(offset[2] / distance, -1, 1))), distance)

    azimuth0, elevation0, distance0 = polar(observed)
    azimuth1, elevation1, distance1 = polar(target)
    yaw = (azimuth1 - azimuth0 + 180.0) % 360.0 - 180.0
    pitch = float(np.clip(elevation1 - elevation0, -89.0, 89.0))
    return CameraMove(yaw_deg=yaw, pitch_deg=pitch, zoom=float(np.clip(distance0 / distance1, 0.1, 10.0)))


def _box_corners(centre: np.ndarray, extent: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    signs = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    return centre + (signs * extent) @ np.asarray(rotation).T


def draw_target_box(observation: Observation, obj: SceneObject, to: Sequence[float]) -> np.ndarray:
    """The image with a red rectangle around where ``obj`` would appear with its base centre at ``to``.

    Raises:
        InvalidInputError: (``edit.to``) the target is behind the camera or its box leaves the image.
    """
    extent = np.asarray(obj.extent, dtype=np.float64)
    centre = np.asarray(to, dtype=np.float64) + np.array([0.0, 0.0, extent[2] / 2])
    pixels, depth = project(_box_corners(centre, extent, obj.obb_rotation), observation.intrinsics,
                            observation.cam_to_world)
    if np.any(depth <= 1e-3):
        raise InvalidInputError("edit.to", "a target in front of the camera", list(to))
    left, top = np.floor(pixels.min(axis=0)).astype(int)
    right, bottom = np.ceil(pixels.max(axis=0)).astype(int)
    if left < 0 or top < 0 or right >= observation.width or bottom >= observation.height:
        raise InvalidInputError("edit.to", f"a target whose box projects inside the {observation.width}x"
                                f"{observation.height} image", f"box ({left}, {top})-({right}, {bottom}) px")
    image = Image.fromarray(observation.rgb.copy())
    line = max(2, min(observation.width, observation.height) // 100)
    ImageDraw.Draw(image).rectangle([left, top, right, bottom], outline=(255, 0, 0), width=line)
    return np.asarray(image)


def _moved(obj: SceneObject, to: Sequence[float]) -> SceneObject:
    """``obj`` with its base centre at ``to`` (what the edit asked for, not what the model drew)."""
    centroid = np.asarray(to, dtype=np.float64) + np.array([0.0, 0.0, obj.extent[2] / 2])
    return SceneObject(id=obj.id, name=obj.name, centroid=centroid, extent=obj.extent,
                       obb_rotation=obj.obb_rotation, pixel_count=obj.pixel_count,
                       visible_fraction=obj.visible_fraction, color=obj.color, shape=obj.shape)


def _resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    if (image.shape[1], image.shape[0]) == size:
        return image
    return np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))


def _view(image: np.ndarray, camera: CameraPose, prompt: str, source: str) -> ImaginedView:
    rgb = _resize(image, (camera.width, camera.height))
    return ImaginedView(rgb=rgb, depth=None, segmentation=None, intrinsics=camera.intrinsics,
                        cam_to_world=camera.cam_to_world, valid_mask=np.ones(rgb.shape[:2], dtype=bool),
                        source=source, prompt=prompt)


def _lift_objects(observation: Observation) -> list[SceneObject]:
    """3D objects from depth (+ segmentation/labels) via the geometric backend's perception, or names only."""
    if observation.depth is not None:
        from ..geometric.perception import lift_observation

        return list(lift_observation(observation)[1])
    if observation.labels:  # names without geometry: relations and rotations work, MoveObject does not
        return [SceneObject(id=i, name=name, centroid=np.full(3, np.nan), extent=np.zeros(3))
                for i, name in sorted(observation.labels.items())]
    return []
