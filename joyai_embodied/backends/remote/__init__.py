"""The ``remote`` backend: the WorldModel API over ZMQ to ``joyai-embodied serve-model``.

- ``backend``: :class:`RemoteBackend`, shaped like every other backend.
- ``client``: :class:`ModelClient`, requests with ids, timeouts and retries.
- ``wire``: the protocol (a msgpack header frame + raw array frames), shared with the server.
- ``keys``: CURVE key pairs for encrypted, authenticated serving beyond this machine.

Importing this package needs nothing; ``RemoteBackend`` needs pyzmq and msgpack once constructed.
"""

from .backend import RemoteBackend

__all__ = ["RemoteBackend"]
