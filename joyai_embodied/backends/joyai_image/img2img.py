"""Starting the diffusion from a guess (img2img): ``imagine(..., init="geometric", strength=s)``.

The geometric backend forward-warps the observed RGB-D into the target camera: everything the input
camera saw lands where it belongs, only disoccluded regions are missing. That warped view is encoded by
the VAE, noised to the flow-matching level sigma of step ``steps - k`` of the usual schedule
(``x = (1 - sigma) * x0 + sigma * noise``) and only the last ``k = ceil(strength * steps)`` denoising
steps run. ``strength=1`` is exactly the usual path (sigma = 1: pure noise, every step); lower strengths
keep more of the warped geometry and cost proportionally less transformer time.
"""

from __future__ import annotations

import contextlib
import math
from typing import Iterator, Sequence

import numpy as np
import torch
from diffusers import FlowMatchEulerDiscreteScheduler
from PIL import Image

from ...errors import InvalidInputError

INIT_MODES = ("noise", "geometric")
#: strength * steps is rounded to this many decimals before ceil(), so 0.3 * 10 runs 3 steps, not 4.
_STEP_DECIMALS = 6


def check_init(init: str, strength: float) -> tuple[str, float]:
    """Validates an ``init`` / ``strength`` pair.

    Raises:
        InvalidInputError: naming ``init`` (not one of :data:`INIT_MODES`) or ``strength`` (not in (0, 1]).
    """
    if init not in INIT_MODES:
        raise InvalidInputError("init", f"one of {', '.join(repr(m) for m in INIT_MODES)}", init)
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0.0 < strength <= 1.0:
        raise InvalidInputError("strength", "a number in (0, 1]", strength)
    return init, float(strength)


def steps_for_strength(steps: int, strength: float) -> int:
    """Denoising steps an img2img start at ``strength`` runs: ``ceil(strength * steps)``, at least 1."""
    return max(1, math.ceil(round(strength * steps, _STEP_DECIMALS)))


class TailScheduler(FlowMatchEulerDiscreteScheduler):
    """The pipeline's flow-matching scheduler, able to keep only the last ``keep_last`` steps.

    The full schedule (same shift, same sigmas) is computed as usual and its tail kept, so an img2img
    run visits exactly the timesteps the last ``k`` steps of a full run would. ``keep_last=None``
    behaves exactly like the parent class.
    """

    keep_last: int | None = None

    def set_timesteps(self, *args, **kwargs) -> None:
        super().set_timesteps(*args, **kwargs)
        keep = self.keep_last
        if keep is not None and keep < len(self.timesteps):
            self.timesteps = self.timesteps[-keep:]
            self.sigmas = self.sigmas[-(keep + 1):]  # the terminal sigma (0) stays last
            self.num_inference_steps = keep

    @contextlib.contextmanager
    def keeping(self, keep: int | None) -> Iterator[None]:
        """Keeps the last ``keep`` steps for the calls inside the block."""
        previous, self.keep_last = self.keep_last, keep
        try:
            yield
        finally:
            self.keep_last = previous

    def start_sigma(self, steps: int, keep: int) -> float:
        """The noise level at which the last ``keep`` of ``steps`` steps begin."""
        probe = FlowMatchEulerDiscreteScheduler.from_config(self.config)
        probe.set_timesteps(steps)
        return float(probe.sigmas[steps - keep])


def fill_unknown(rgb: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``rgb`` with pixels outside ``known`` set to the mean colour of the known ones (mid grey if none).

    Black holes would pull the start latent towards black; the mean colour is a neutral guess that the
    remaining denoising steps repaint.
    """
    out = rgb.copy()
    fill = rgb[known].mean(axis=0) if known.any() else np.full(3, 127.0)
    out[~known] = np.clip(np.rint(fill), 0, 255).astype(np.uint8)
    return out


def init_latents(pipe, images: Sequence[Image.Image], bucket_hw: tuple[int, int], sigma: float,
                 generators: Sequence[torch.Generator]) -> torch.Tensor:
    """Noised VAE latents of ``images`` for the pipeline's target slot, shape (B, 1, C, T, H', W').

    The images go through the pipeline's own resize-and-crop so they line up with the conditioning
    image; the posterior mean (not a sample) is used, so no random state is consumed besides the
    ``generators``, which draw the same noise the pipeline would draw itself.
    """
    from diffusers.utils.torch_utils import randn_tensor

    device, dtype = pipe._execution_device, pipe.text_encoder.dtype
    processed = pipe.vae_image_processor.resize_center_crop(list(images), bucket_hw)
    pixels = torch.stack([torch.from_numpy(np.array(i.convert("RGB"))) for i in processed])
    pixels = (pixels.to(device=device, dtype=dtype) / 127.5 - 1.0).permute(0, 3, 1, 2).unsqueeze(2)
    with torch.no_grad():
        clean = pipe.normalize_latents(pipe.vae.encode(pixels).latent_dist.mode()).unsqueeze(1)
    noise = randn_tensor(tuple(clean.shape), generator=list(generators), device=device, dtype=dtype)
    return (1.0 - sigma) * clean.to(dtype) + sigma * noise
