"""``RemoteConfig``: the options of the remote backend (``models/remote.yaml``), typed and checked once.

The server's preset picks its device and model: a remote client has no ``device`` option.
"""

from __future__ import annotations

import dataclasses
import math
import os

from ...config import TypedConfig
from ...errors import InvalidInputError

#: A day: longer waits are a mistake (seconds given as milliseconds), not a slow model.
MAX_TIMEOUT_S = 86400.0
#: Retries reuse the request id; more than this only hides a server that is down.
MAX_RETRIES = 100


@dataclasses.dataclass(frozen=True)
class RemoteConfig(TypedConfig):
    """Options of :class:`~joyai_embodied.backends.remote.RemoteBackend`.

    Attributes:
        address: the server's ZMQ endpoint, e.g. ``tcp://127.0.0.1:5555``.
        timeout_s: seconds to wait for each attempt's reply (imagination on a large model can take minutes).
        retries: further attempts after a timeout; safe for edits (the server never runs one id twice).
        server_key: the server's CURVE public key file or Z85 text; required when the server uses ``--keys``.
        client_key: this client's ``.key_secret`` file; required with ``server_key``.

    Raises:
        InvalidInputError: a wrongly typed or out-of-range option (the message names it).
    """

    address: str = "tcp://127.0.0.1:5555"
    timeout_s: float = 60.0
    retries: int = 2
    server_key: str | os.PathLike | None = None
    client_key: str | os.PathLike | None = None

    def check(self) -> None:
        if "://" not in self.address:
            raise InvalidInputError("address", "a ZMQ endpoint such as tcp://127.0.0.1:5555", repr(self.address))
        if not (math.isfinite(self.timeout_s) and 0 < self.timeout_s <= MAX_TIMEOUT_S):
            raise InvalidInputError("timeout_s", f"seconds in (0, {MAX_TIMEOUT_S:g}]", self.timeout_s)
        if not 0 <= self.retries <= MAX_RETRIES:
            raise InvalidInputError("retries", f"an integer in [0, {MAX_RETRIES}]", self.retries)
        if (self.server_key is None) != (self.client_key is None):
            raise InvalidInputError("client_key" if self.client_key is None else "server_key",
                                    "server_key and client_key together (CURVE needs both), or neither")
