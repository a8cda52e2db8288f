"""``RosConfig``: the options of the ``ros`` backend (``WorldModel.load("ros", ...)``), typed and checked once."""

from __future__ import annotations

import dataclasses
import math
from typing import Literal

from joyai_embodied.config import TypedConfig
from joyai_embodied.errors import InvalidInputError

#: A day: longer waits are a mistake (milliseconds given as seconds), not a slow model.
MAX_TIMEOUT_S = 86400.0


@dataclasses.dataclass(frozen=True)
class RosConfig(TypedConfig):
    """Options of :class:`~ros_nodes.clients.ros_backend.RosBackend`.

    Attributes:
        preset: the preset the nodes load when this backend has to start them (``joyai-embodied ros --preset``).
        address: model server address passed to those nodes (``remote`` preset); None keeps the preset's.
        device: device passed to those nodes (learned backends); None keeps the preset's.
        start_nodes: "auto" starts the nodes when none answer within ``wait_s``; True always starts
            them; False only connects.
        timeout_s: per-call timeout, seconds.
        wait_s: how long to wait for running nodes before starting our own (discovery of a running
            process takes ~0.5 s on an idle machine, seconds on a loaded one; starting a second set of
            nodes in the same domain would split the requests between two services).
    """

    preset: str = "geometric"
    address: str | None = None
    device: str | None = None
    start_nodes: bool | Literal["auto"] = "auto"
    timeout_s: float = 60.0
    wait_s: float = 5.0

    def check(self) -> None:
        if self.preset.strip() in ("", "ros"):
            raise InvalidInputError("preset", "the preset the nodes serve (not 'ros' itself)", repr(self.preset))
        for name in ("timeout_s", "wait_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0 < value <= MAX_TIMEOUT_S):
                raise InvalidInputError(name, f"seconds in (0, {MAX_TIMEOUT_S:g}]", value)
