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
Questions are answered by :class:`.understanding.UnderstandingMixin`; checkpoint checks live in
:mod:`.checkpoint`, bucket/intrinsics geometry in :mod:`.geometry`, the img2img start
(``init="geometric"``) in :mod:`.img2img`.
"""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image

from ...spatial import orbit_scene
from ...config import resolve_config
from ...errors import BackendUnavailableError, CheckpointError, InvalidInputError
from ...spatial import scene_pivot
from ...types import (Answer, CameraMove, CameraPose, Edit, ImaginedView, MoveObject, Observation, Scene,
                      SceneObject)
from . import prompts
from ..base import Backend
from .checkpoint import REQUIRED_FILES, check_checkpoint, image_only_processor, resolve_checkpoint
from .configuration_joyai_image import JoyAIImageConfig
from .geometry import Framing, bucket_processor, draw_target_box, framing_for, move_towards, moved, resize
from .img2img import TailScheduler, check_init, fill_unknown, init_latents, steps_for_strength
from .tiny_checkpoint import write_tiny_checkpoint
from .understanding import UnderstandingMixin, out_of_memory_hint

__all__ = ["JoyAIImageBackend", "write_tiny_checkpoint", "check_checkpoint", "resolve_checkpoint",
           "REQUIRED_FILES", "draw_target_box", "move_towards", "out_of_memory_hint"]

OFFLOAD_MODES = ("none", "model", "group")
DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
#: Added to a call's seed before seeding the VAE's posterior sample, so that sample never replays the
#: initial-noise stream of a generator seeded with the same number (the two were equal before).
POSTERIOR_SEED_OFFSET = 2**32


# -- backend ----------------------------------------------------------------------------------------

class JoyAIImageBackend(UnderstandingMixin, Backend):
    """Understanding with the Qwen3-VL MLLM, imagination with the JoyAI-Image edit pipeline.

    Args:
        config: the options (:class:`JoyAIImageConfig`: checkpoint path, device, dtype, offload, attention,
            steps, guidance, seed, resolution, sampling, ``init``/``strength``; each documented there); or give
            them as keywords.

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
        self.init, self.strength = _check_init_pair(self.config.init, self.config.strength)
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

        self.processor = image_only_processor(self.folder / "processor")
        # The understanding model is the pipeline's text encoder: load it once, share it.
        self.mllm = Qwen3VLForConditionalGeneration.from_pretrained(
            self.folder / "text_encoder", dtype=self.dtype, attn_implementation=self.attention,
            local_files_only=True).eval()
        tokenizer = self.processor.tokenizer
        self.pipe = JoyImageEditPipeline.from_pretrained(
            self.folder, text_encoder=self.mllm, processor=self.processor, tokenizer=tokenizer,
            dtype=self.dtype, local_files_only=True)
        self.pipe.set_progress_bar_config(disable=True)
        self.pipe.vae_image_processor = bucket_processor(self._resolution, self.pipe.vae_scale_factor_spatial)
        # Same schedule as the checkpoint's scheduler, plus the img2img tail (init="geometric").
        self.pipe.scheduler = TailScheduler.from_config(self.pipe.scheduler.config)
        if self.attention == "flash_attention_2":
            self.pipe.transformer.set_attention_backend("flash")
        if self.offload == "model":
            self.pipe.enable_model_cpu_offload(device=self.device)
        elif self.offload == "group":
            # Only the 32.5 GB MMDiT streams. The MLLM (17 GB) stays resident: generate() runs it once per
            # answer token, and streaming it over PCIe each time would cost ~0.7 s a token. The VAE is small.
            self.pipe.enable_group_offload(onload_device=torch.device(self.device), offload_type="leaf_level",
                                           use_stream=True, exclude_modules=["text_encoder", "vae"])
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
                "init": self.init, "strength": self.strength,
                "load_seconds": round(self.load_seconds, 3)}

    def close(self) -> None:
        self.pipe = self.mllm = None
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    # -- understanding (questions: UnderstandingMixin) ---------------------------------------------

    def observe(self, observation: Observation) -> Scene:
        """Keeps the image for the MLLM; with depth, also lifts objects and the coloured point cloud to 3D.

        The cloud (``scene.data["cloud"]``) is what ``init="geometric"`` warps; the 3D boxes are what
        MoveObject draws. The pivot is :func:`joyai_embodied.spatial.scene_pivot`, as in every backend.
        """
        cloud, objects = _lift(observation)
        pivot = scene_pivot(objects, observation.cam_to_world, plane=getattr(cloud, "plane", None),
                            depth=observation.depth)
        return Scene(observation=observation, objects=objects, pivot=pivot, backend=self.name,
                     data={"cloud": cloud} if cloud is not None else None)

    # -- imagination ----------------------------------------------------------------------------------

    def _length_groups(self, images: Sequence[np.ndarray], texts: Sequence[str]) -> list[list[int]]:
        """Request indices grouped so that each group's conditioning sequences have equal length.

        The diffusers transformer attends to every text position and gets no padding mask, so a prompt
        padded to a longer neighbour's length is conditioned differently than when run alone (measured
        in models/README.md, 'Batching'). Images of one size give the same number of vision tokens and
        each prompt sits between special tokens, so its token count decides the sequence length.
        """
        tokenizer = self.processor.tokenizer
        groups: dict[tuple, list[int]] = {}
        for i, (image, text) in enumerate(zip(images, texts)):
            length = len(tokenizer(text, add_special_tokens=False)["input_ids"])
            groups.setdefault((image.shape, length), []).append(i)
        return list(groups.values())

    def _generate(self, images: Sequence[np.ndarray], texts: Sequence[str], seed: int | None,
                  init_images: Sequence[np.ndarray] | None = None, strength: float = 1.0
                  ) -> list[tuple[np.ndarray, Framing]]:
        """Image ``i`` edited by prompt ``i``: one pipeline call per group of equal-length prompts.

        Request ``i`` draws its noise from seed ``seed + i``; each call seeds the VAE's posterior sample
        from ``seed`` + the first index of its group (+ :data:`POSTERIOR_SEED_OFFSET`), so a request alone
        in its group gives exactly what ``imagine(..., seed=seed + i)`` gives. With ``init_images`` the
        diffusion starts from them, noised to ``strength``, and runs ``ceil(strength * steps)`` steps
        (:mod:`.img2img`).

        Returns:
            ``(image at the bucket size, its Framing)`` per request, in request order.
        """
        seed = self.seed if seed is None else int(seed)
        pil = [Image.fromarray(i) for i in images]
        framings = [framing_for(self.pipe.vae_image_processor, p) for p in pil]
        keep = None if init_images is None else steps_for_strength(self.steps, strength)
        outputs: list[Any] = [None] * len(texts)
        for group in self._length_groups(images, texts):
            generators = [torch.Generator("cpu").manual_seed(seed + i) for i in group]
            with out_of_memory_hint(self.offload), self._seeded(seed + group[0] + POSTERIOR_SEED_OFFSET), \
                    self.pipe.scheduler.keeping(keep):
                latents = None
                if init_images is not None:
                    framing = framings[group[0]]
                    latents = init_latents(self.pipe, [Image.fromarray(init_images[i]) for i in group],
                                           (framing.bucket_height, framing.bucket_width),
                                           self.pipe.scheduler.start_sigma(self.steps, keep), generators)
                result = self.pipe(image=[pil[i] for i in group], prompt=[texts[i] for i in group],
                                   num_inference_steps=self.steps, guidance_scale=self.guidance,
                                   generator=generators, latents=latents, output_type="np")
            for i, image in zip(group, result.images):
                outputs[i] = (np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8), framings[i])
        return outputs

    def _camera_request(self, scene: Scene, move: CameraMove | CameraPose) -> tuple[str, CameraPose]:
        """The prompt for a view request and the camera the imagined view is meant to show."""
        observed = scene.observation.camera
        if isinstance(move, CameraPose):
            target, move = move, move_towards(observed, move, scene.pivot)
        else:
            cloud = scene.data.get("cloud") if isinstance(scene.data, dict) else None
            plane = getattr(cloud, "plane", None)  # the lifted cloud's support plane, when there was depth
            target = orbit_scene(scene, move, plane=plane)
        prompts.check_camera_move(move)
        return prompts.camera_prompt(move), target

    def imagine(self, scene: Scene, move: CameraMove | CameraPose, seed: int | None = None,
                init: str | None = None, strength: float | None = None) -> ImaginedView:
        """One view; see :meth:`imagine_batch` (``init`` / ``strength`` default to the preset's)."""
        return self.imagine_batch(scene, [move], seed=seed, init=init, strength=strength)[0]

    def imagine_batch(self, scene: Scene, moves: Sequence[CameraMove | CameraPose], seed: int | None = None,
                      init: str | None = None, strength: float | None = None) -> list[ImaginedView]:
        """All views, batched by equal prompt length; moves beyond the trained range raise
        ImpossibleCameraMoveError.

        ``init="geometric"`` starts each view from the geometric backend's forward warp of the observed
        RGB-D into its camera (unseen pixels filled with the mean colour) and runs only
        ``ceil(strength * steps)`` steps; ``strength=1`` gives exactly the ``init="noise"`` result.

        ``depth`` and ``segmentation`` are None (the model predicts only colour); ``valid_mask`` is all
        True because every pixel is generated content, none is known to be missing. ``intrinsics`` are
        those of the returned image: the input camera through the bucket crop and the resizes
        (:class:`.geometry.Framing`); the model keeps the input's field of view, so a CameraPose's own
        intrinsics only set the output size.

        Raises:
            InvalidInputError: ``init``/``strength`` invalid, or ``init="geometric"`` on a scene without depth.
        """
        init, strength = _check_init_pair(self.init if init is None else init,
                                          self.strength if strength is None else strength)
        requests = [self._camera_request(scene, move) for move in moves]
        if not requests:
            return []
        warped = self._warped_views(scene, [c for _, c in requests]) if init == "geometric" else None
        images = self._generate([scene.observation.rgb] * len(requests), [p for p, _ in requests], seed,
                                init_images=warped, strength=strength)
        observed = scene.observation.intrinsics
        return [_view(image, framing, observed, camera, text, self.name)
                for (image, framing), (text, camera) in zip(images, requests)]

    def _warped_views(self, scene: Scene, cameras: Sequence[CameraPose]) -> list[np.ndarray]:
        """The geometric backend's forward warp of the scene cloud into each camera, holes filled."""
        from ..geometric.render import render_cloud

        cloud = scene.data.get("cloud") if isinstance(scene.data, dict) else None
        if cloud is None:
            raise InvalidInputError("init", "'noise' for a scene without depth ('geometric' warps the observed "
                                    "RGB-D; edited scenes drop their depth)", "geometric")
        observed = scene.observation
        views = []
        for camera in cameras:  # the model keeps the input's field of view: warp with the input intrinsics
            view = render_cloud(cloud, CameraPose(camera.cam_to_world, observed.intrinsics, observed.width,
                                                  observed.height))
            views.append(fill_unknown(view.rgb, np.isfinite(view.depth)))
        return views

    def edit(self, scene: Scene, edit: Edit, seed: int | None = None) -> Scene:
        """Edits the image; the new scene's observation is the edited image (no depth: it would be stale).

        Its intrinsics are those of the edited image (the bucket crop accounted for, see ``imagine_batch``).
        """
        rgb = scene.observation.rgb
        if isinstance(edit, MoveObject):
            obj = self._object_with_extent(scene, edit.object)
            text, rgb = prompts.move_prompt(obj.name), draw_target_box(scene.observation, obj, edit.to)
            objects = [moved(o, edit.to) if o.id == obj.id else o for o in scene.objects]
        else:
            name = self._object_name(scene, edit.object, "edit.object")
            text, objects = prompts.rotate_prompt(name, edit.yaw_deg), list(scene.objects)
        (edited, framing), = self._generate([rgb], [text], seed)
        size = (scene.observation.width, scene.observation.height)
        observation = Observation(rgb=resize(edited, size),
                                  intrinsics=framing.generated_intrinsics(scene.observation.intrinsics, *size),
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


def _check_init_pair(init: str, strength: float) -> tuple[str, float]:
    """:func:`.img2img.check_init`, plus: a strength below 1 needs an init image to start from."""
    init, strength = check_init(init, strength)
    if init == "noise" and strength != 1.0:
        raise InvalidInputError("strength", "1.0 with init='noise' (strength < 1 needs init='geometric')",
                                strength)
    return init, strength


def _view(image: np.ndarray, framing: Framing, observed_intrinsics: np.ndarray, camera: CameraPose,
          prompt: str, source: str) -> ImaginedView:
    rgb = resize(image, (camera.width, camera.height))
    intrinsics = framing.generated_intrinsics(observed_intrinsics, camera.width, camera.height)
    return ImaginedView(rgb=rgb, depth=None, segmentation=None, intrinsics=intrinsics,
                        cam_to_world=camera.cam_to_world, valid_mask=np.ones(rgb.shape[:2], dtype=bool),
                        source=source, prompt=prompt)


def _lift(observation: Observation) -> tuple[Any, list[SceneObject]]:
    """(cloud, objects) from depth (+ segmentation/labels) via the geometric perception, or names only."""
    if observation.depth is not None:
        from ..geometric.perception import lift_observation

        try:
            cloud, objects = lift_observation(observation)
            return cloud, list(objects)
        except InvalidInputError as exc:  # depth is optional here: unusable depth leaves the names only
            if exc.field != "depth":
                raise
    if observation.labels:  # names without geometry: relations and rotations work, MoveObject does not
        return None, [SceneObject(id=i, name=name, centroid=np.full(3, np.nan), extent=np.zeros(3))
                      for i, name in sorted(observation.labels.items())]
    return None, []
