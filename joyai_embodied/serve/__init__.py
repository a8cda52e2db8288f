"""Serving side: the transports that put a :class:`~joyai_embodied.service.ModelService` on a network.

- ``zmq_server``: :class:`ModelServer`, ``joyai-embodied serve-model`` (the ``remote`` backend's peer).

The client side lives below the WorldModel, in ``joyai_embodied/backends/remote/``. See README.md here.
Importing this package needs nothing; ``ModelServer`` needs pyzmq and msgpack.
"""

from __future__ import annotations

from typing import Any

__all__ = ["ModelServer"]


def __getattr__(name: str) -> Any:
    if name == "ModelServer":
        from .zmq_server import ModelServer

        return ModelServer
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
