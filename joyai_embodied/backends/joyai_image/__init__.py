"""The ``joyai-image`` backend: JoyAI-Image (Qwen3-VL understanding + JoyImageEdit MMDiT) on a GPU.

- ``backend``: :class:`JoyAIImageBackend`, loading, observing and imagination over transformers + diffusers.
- ``understanding``: the MLLM half (relations, questions), mixed into the backend.
- ``configuration_joyai_image``: :class:`JoyAIImageConfig`, the typed preset options.
- ``checkpoint``: finding and checking a checkpoint folder before anything loads.
- ``geometry``: generation buckets and the intrinsics of what was generated; orbits; the MoveObject box.
- ``img2img``: ``init="geometric"`` / ``strength``: diffusion started from the geometric warp.
- ``prompts``: the prompt strings the model was trained on, and parsing of its answers.
- ``tiny_checkpoint``: :func:`write_tiny_checkpoint`, random weights in the real checkpoint layout (tests).

See models/README.md for presets, memory plans and weights.
"""

from .backend import JoyAIImageBackend, check_checkpoint
from .tiny_checkpoint import write_tiny_checkpoint

__all__ = ["JoyAIImageBackend", "check_checkpoint", "write_tiny_checkpoint"]
