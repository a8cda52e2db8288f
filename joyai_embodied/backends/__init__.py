"""World-model backends: one module (or package) per backend, picked by name through the registry.

- ``geometric``: exact RGB-D geometry on any CPU (default).
- ``joyai-image``: JoyAI-Image (Qwen3-VL understanding + JoyImageEdit MMDiT) on a GPU.
- ``remote``: the same API over ZMQ to ``joyai-embodied serve-model``.
"""

from .base import Backend, available_backends, create_backend, register_backend

__all__ = ["Backend", "available_backends", "create_backend", "register_backend"]
