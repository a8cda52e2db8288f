"""Exceptions raised by joyai-embodied.

Every error a caller can fix names the offending field and what was expected, so a ROS node or the
model server can send it back verbatim as ``error`` text.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping


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


class HandshakeError(RemoteError, ConnectionError):
    """The connection to the model server failed its security handshake (CURVE keys that do not match)."""


# -- crossing a transport: one way to flatten an error and one way to rebuild it -----------------------------

#: Attributes kept when an error crosses a transport (ZMQ wire, ROS result), when the exception has them.
ERROR_ATTRIBUTES = ("field", "expected", "got", "handle", "name", "known", "candidates")


def error_to_fields(exc: BaseException) -> dict[str, Any]:
    """Flattens ``exc`` into plain values (str, numbers, lists of str) that any transport can carry.

    Args:
        exc: any exception.

    Returns:
        ``{"type": class name, "message": str(exc)}`` plus each of :data:`ERROR_ATTRIBUTES` the exception has
        (``got`` is turned into a plain value or its text; ``known``/``candidates`` into lists of str).
    """
    fields: dict[str, Any] = {"type": type(exc).__name__, "message": str(exc)}
    for key in ERROR_ATTRIBUTES:
        if hasattr(exc, key):
            value = getattr(exc, key)
            fields[key] = [str(v) for v in value] if key in ("known", "candidates") else _plain(value)
    return fields


def _plain(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)) and all(isinstance(v, (bool, int, float, str)) for v in value):
        return list(value)
    return str(value)


def _error_classes() -> dict[str, type]:
    """Every JoyAIError class defined in this module, by name (classes added later are found too)."""
    return {name: value for name, value in globals().items()
            if isinstance(value, type) and issubclass(value, JoyAIError)}


def error_from_fields(fields: Mapping[str, Any], source: str = "") -> JoyAIError:
    """Rebuilds the exception described by :func:`error_to_fields`: the same class, attributes intact.

    Args:
        fields: the map an :func:`error_to_fields` call produced on the other side of a transport.
        source: where it came from (e.g. the server address), named in the message of an unknown type.

    Returns:
        An instance of the same :class:`JoyAIError` subclass built through its constructor (so ``.field``,
        ``.known``... exist); a :class:`RemoteError` naming the original type for any other exception, or
        for a map that is not one.
    """
    where = f" {source}" if source else ""
    if not isinstance(fields, Mapping):
        return RemoteError(f"the service{where} sent a malformed error ({type(fields).__name__})")
    kind, message = str(fields.get("type", "")), str(fields.get("message", "unknown error"))
    cls = _error_classes().get(kind)
    if cls is None:
        return RemoteError(f"the service{where} failed: {kind or 'error'}: {message}")
    try:
        if issubclass(cls, InvalidInputError) and "field" in fields:
            exc = cls(str(fields["field"]), str(fields.get("expected", "")), fields.get("got", ""))
        elif issubclass(cls, UnknownObjectError) and "name" in fields:
            exc = cls(str(fields["name"]), [str(k) for k in fields.get("known", [])])
        elif issubclass(cls, AmbiguousObjectError) and "name" in fields:
            exc = cls(str(fields["name"]), [str(k) for k in fields.get("candidates", [])])
        elif issubclass(cls, SceneExpiredError):
            exc = cls(str(fields.get("handle", "")), message)
        else:
            exc = cls(message)
    except TypeError:  # a class whose constructor takes other arguments: same class, message and attributes
        exc = cls.__new__(cls)
        Exception.__init__(exc, message)
    for key in ERROR_ATTRIBUTES:  # whatever the constructor did not set is restored as sent
        if key in fields and not hasattr(exc, key):
            setattr(exc, key, fields[key])
    if str(exc) != message:  # e.g. a ``got`` tuple that travelled as a list: keep the text the sender raised
        exc.args = (message,)
    return exc
