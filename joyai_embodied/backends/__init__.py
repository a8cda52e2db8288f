"""World-model backends: one folder per backend, picked by name through the registry (``base.py``).

- ``geometric``: exact RGB-D geometry on any CPU (default).
- ``joyai-image``: JoyAI-Image (Qwen3-VL understanding + JoyImageEdit MMDiT) on a GPU.
- ``remote``: the same API over ZMQ to ``joyai-embodied serve-model``.

Each folder has ``backend.py`` (the Backend subclass) and ``configuration_<name>.py`` (its options as a
frozen dataclass, checked once). Other packages add backends through entry points of group
``joyai_embodied.backends``.
"""

from .base import ENTRY_POINT_GROUP, Backend, available_backends, backend_class, create_backend, register_backend

__all__ = ["ENTRY_POINT_GROUP", "Backend", "available_backends", "backend_class", "create_backend",
           "register_backend"]
