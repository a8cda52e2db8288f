"""ZMQ transport: serve a WorldModel to many robots (`ModelServer`) and reach it (`ModelClient`).

Most users never import this: run ``joyai-embodied serve-model`` on the GPU host and use
``WorldModel.load("remote", address=...)`` elsewhere. See README.md in this folder.

Importing this package needs pyzmq and msgpack; the names below load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "ModelServer": "server", "ModelClient": "client", "generate_keys": "keys", "PROTOCOL_VERSION": "wire",
    "SceneExpiredError": "wire", "WireError": "wire", "encode": "wire", "decode": "wire",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
