"""Understanding half of the joyai-image backend: the Qwen3-VL MLLM answering about images.

:class:`UnderstandingMixin` is mixed into :class:`~.backend.JoyAIImageBackend`, which provides the
attributes used here: ``processor``, ``mllm``, ``pipe`` (for its execution device), ``device``,
``offload``, ``seed``, ``temperature``, ``top_p``, ``max_new_tokens`` and ``imagine`` (for CameraPose frames).
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

import numpy as np
import torch
from PIL import Image

from ...errors import BackendUnavailableError, InvalidInputError
from ...types import Answer, CameraPose, Relation, Scene
from ..base import Frame
from . import prompts


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


class UnderstandingMixin:
    """Relations, questions and free text from the MLLM; answers parsed, never trusted blindly."""

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
