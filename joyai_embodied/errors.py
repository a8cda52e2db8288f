"""Exceptions raised by joyai-embodied.

Every error a caller can fix names the offending field and what was expected, so a ROS node or the
model server can send it back verbatim as ``error`` text.
"""

from __future__ import annotations

from typing import Any, Iterable


class JoyAIError(Exception):
    """Base class of every error raised by this package."""


class InvalidInputError(JoyAIError, ValueError):
    """An input field has the wrong shape, dtype, range or value.

    Attributes:
        field: name of the offending field (``"depth"``, ``"intrinsics"``, ``"move.zoom"``...).
        expected: what was expected, in words.
        got: a short description of what was received (may be empty).
    """

    def __init__(self, field: str, expected: str, got: Any = ""):
        self.field = field
        self.expected = expected
        self.got = got
        message = f"{field}: expected {expected}"
        if got != "":
            message += f", got {got}"
        super().__init__(message)


class UnknownObjectError(JoyAIError, ValueError):
    """A question or edit names an object the scene does not contain."""

    def __init__(self, name: str, known: Iterable[str]):
        self.name = name
        self.known = sorted(known)
        listing = ", ".join(repr(k) for k in self.known) or "none"
        super().__init__(f"unknown object {name!r}; the scene contains: {listing}")


class AmbiguousObjectError(JoyAIError, ValueError):
    """A name matches several objects (``"cube"`` when there are two cubes)."""

    def __init__(self, name: str, candidates: Iterable[str]):
        self.name = name
        self.candidates = sorted(candidates)
        super().__init__(
            f"object name {name!r} is ambiguous; it matches: " + ", ".join(repr(c) for c in self.candidates)
        )


class ImpossibleCameraMoveError(InvalidInputError):
    """A camera move that cannot be rendered (behind the pivot, through the table, beyond the model's range)."""


class SceneExpiredError(JoyAIError, LookupError):
    """A scene handle the service no longer holds (released, evicted by its bound, or the service restarted).

    Raised the same way by every transport (in-process service, ZMQ, ROS); observe the scene again to get a
    new handle.

    Attributes:
        handle: the handle that was not found.
    """

    def __init__(self, handle: str, message: str | None = None):
        self.handle = handle
        super().__init__(message or (
            f"scene {handle!r} is no longer held by the service (released, evicted because the service keeps "
            "a bounded number of scenes, or the service restarted); call observe() again"))


class BackendUnavailableError(JoyAIError, RuntimeError):
    """The requested backend cannot run here (missing optional dependency, no GPU, unknown name)."""


class CheckpointError(JoyAIError, FileNotFoundError):
    """A model checkpoint directory is missing, partial, or is a hub id with no local copy."""


class RemoteError(JoyAIError, RuntimeError):
    """The model server answered with an error or could not be reached."""


class ServerBusyError(RemoteError):
    """The model server's queue is full; retry later."""


class RequestTimeoutError(RemoteError, TimeoutError):
    """No reply from the model server within the request's timeout."""
