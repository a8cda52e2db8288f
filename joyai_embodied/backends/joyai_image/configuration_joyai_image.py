"""``JoyAIImageConfig``: the options of the joyai-image backend (``models/joyai-image-edit.yaml``).

Importing this module needs no torch: a preset is checked before the model libraries load.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Literal

from ...config import TypedConfig
from ...errors import InvalidInputError

#: Generation buckets below this lose the objects (a few latent pixels each); above it memory explodes.
RESOLUTION_RANGE = (64, 2048)


@dataclasses.dataclass(frozen=True)
class JoyAIImageConfig(TypedConfig):
    """Options of :class:`~joyai_embodied.backends.joyai_image.JoyAIImageBackend`.

    Attributes:
        path: checkpoint folder in the diffusers layout, or a hub id already in the local cache; None reads
            the ``JOYAI_IMAGE_PATH`` variable.
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
        init: how imagination starts: ``"noise"`` (every step from pure noise) or ``"geometric"`` (from the
            geometric backend's warped view; img2img).
        strength: img2img strength in (0, 1]: ``init="geometric"`` runs ``ceil(strength * steps)`` steps;
            must be 1 with ``init="noise"``.

    Raises:
        InvalidInputError: a wrongly typed or out-of-range option (the message names it).
    """

    path: str | os.PathLike | None = None
    device: str = "auto"
    dtype: Literal["bfloat16", "float16", "float32"] = "bfloat16"
    offload: Literal["none", "model", "group"] = "none"
    attention: Literal["auto", "flash_attention_2", "sdpa"] = "auto"
    steps: int = 40
    guidance: float = 4.0
    seed: int = 0
    resolution: int = 1024
    max_new_tokens: int = 2048
    temperature: float = 0.7
    top_p: float = 0.8
    init: Literal["noise", "geometric"] = "noise"
    strength: float = 1.0

    def check(self) -> None:
        if self.steps < 1:
            raise InvalidInputError("steps", "a positive integer", self.steps)
        low, high = RESOLUTION_RANGE
        if not low <= self.resolution <= high:
            raise InvalidInputError("resolution", f"an integer in [{low}, {high}]", self.resolution)
        if self.max_new_tokens < 1:
            raise InvalidInputError("max_new_tokens", "a positive integer", self.max_new_tokens)
        if not self.guidance >= 0:  # also refuses NaN
            raise InvalidInputError("guidance", "a scale >= 0", self.guidance)
        if not self.temperature >= 0:
            raise InvalidInputError("temperature", "a temperature >= 0 (0 = greedy)", self.temperature)
        if not 0 < self.top_p <= 1:
            raise InvalidInputError("top_p", "a probability in (0, 1]", self.top_p)
        if not 0 < self.strength <= 1:
            raise InvalidInputError("strength", "a number in (0, 1]", self.strength)
        if self.init == "noise" and self.strength != 1:
            raise InvalidInputError("strength", "1.0 with init='noise' (strength < 1 needs init='geometric')",
                                    self.strength)
        if not self.device.strip():
            raise InvalidInputError("device", "'auto', 'cpu', 'cuda' or 'cuda:N'", repr(self.device))
