"""The model server's wire protocol: a msgpack header frame followed by raw array frames. Never pickle.

A message is a ZMQ multipart message ``[header, array_0, array_1, ...]``. The header is a msgpack map:

    request: {"v": PROTOCOL_VERSION, "id": "<request id>", "method": "relation", "params": {...}}
    reply:   {"v": PROTOCOL_VERSION, "id": "<request id>", "ok": true,  "result": ...}
             {"v": PROTOCOL_VERSION, "id": "<request id>", "ok": false, "error": {"type": ..., "message": ...}}

Values inside ``params``/``result`` are msgpack scalars, lists and string-keyed maps, plus two tagged forms:

- ``{"__nd__": i, "dtype": "float32", "shape": [480, 640]}``: a numpy array whose bytes (C order, little
  endian) are frame ``i + 1`` of the message, so images travel without copies or base64;
- ``{"__t__": "CameraMove", "f": {...}}``: one of the core value types in :data:`WIRE_TYPES`, rebuilt by
  calling its constructor, so the receiver validates it exactly as an in-process caller would.

Only the dtypes in :data:`ALLOWED_DTYPES` and the types in :data:`WIRE_TYPES` decode; anything else is a
:class:`WireError`, which the server turns into an error reply.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import msgpack
import numpy as np

from ... import errors
from ...errors import RemoteError
from ...types import (Answer, CameraMove, CameraPose, ImaginedView, MoveObject, Observation, Relation, RotateObject,
                     SceneObject, MAX_IMAGE_SIDE)

#: Bumped on any incompatible change to the header layout or the tagged forms.
PROTOCOL_VERSION = 1
#: Largest accepted message (header + all array frames), bytes. A 640x480 RGB-D-segmentation frame is ~3.5 MiB.
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024
#: Largest accepted header frame, bytes (headers carry names and numbers, never pixels).
MAX_HEADER_BYTES = 1024 * 1024
#: Most elements in one array: a full-size RGB image at the largest side the core accepts.
MAX_ARRAY_ELEMENTS = MAX_IMAGE_SIDE * MAX_IMAGE_SIDE * 3
MAX_ARRAY_DIMS = 4
#: Most array frames in one message (an imagine_batch reply of 16 views carries 16 x 6 arrays).
MAX_ARRAYS = 128
#: Arrays in one ImaginedView on the wire: rgb, depth, segmentation, valid_mask, intrinsics, cam_to_world.
ARRAYS_PER_VIEW = 6
#: Most views one imagine_batch request may ask for, so that its reply fits in MAX_ARRAYS frames.
MAX_BATCH_VIEWS = 16  # 16 x ARRAYS_PER_VIEW = 96 <= MAX_ARRAYS
#: Largest reply a client accepts by default: an imagine_batch of 16 full-HD views fits.
MAX_REPLY_BYTES = 1024 * 1024 * 1024
#: Bytes per pixel of an observation with everything: rgb (3) + float32 depth (4) + int32 segmentation (4).
OBSERVATION_BYTES_PER_PIXEL = 11
#: Bytes per pixel of an imagined view on the wire: rgb 3 + depth 4 + segmentation 4 + valid mask 1.
VIEW_BYTES_PER_PIXEL = 12
#: Deepest nesting of lists/maps accepted in a header (guards the decoder's recursion).
MAX_NESTING = 16
MAX_REQUEST_ID_CHARS = 64

ALLOWED_DTYPES = frozenset({"bool", "uint8", "int8", "uint16", "int16", "uint32", "int32", "int64", "float16",
                            "float32", "float64"})

#: Core value types that may cross the wire, by the name used in the ``__t__`` tag.
WIRE_TYPES: dict[str, type] = {cls.__name__: cls for cls in (
    Answer, CameraMove, CameraPose, ImaginedView, MoveObject, Observation, Relation, RotateObject, SceneObject)}


def largest_square_image(max_bytes: int, bytes_per_pixel: int = OBSERVATION_BYTES_PER_PIXEL) -> int:
    """Side of the largest square image (with depth and segmentation by default) that fits in ``max_bytes``."""
    return int((max(max_bytes - MAX_HEADER_BYTES, 0) / bytes_per_pixel) ** 0.5)


def too_large_message(size: int, max_bytes: int, what: str = "message") -> str:
    """The text of a ``too_large`` refusal: the sizes, and the largest image that would fit."""
    side = largest_square_image(max_bytes)
    return (f"{what} of {size} bytes exceeds the limit of {max_bytes} bytes ({max_bytes / 2**20:g} MiB, "
            f"serve-model --max-payload-mb); an observation with rgb, depth and segmentation fits up to about "
            f"{side}x{side} pixels")


class WireError(RemoteError):
    """A message that does not follow the protocol (reported back to its sender as an error reply).

    Attributes:
        code: machine-readable reason: ``"malformed"``, ``"version"``, ``"too_large"``, ``"unknown_method"``.
    """

    def __init__(self, code: str, message: str):
        self.code = code
        super().__init__(message)


@dataclass
class Message:
    """A decoded message: its header map with arrays and core types restored."""

    header: dict[str, Any]

    @property
    def request_id(self) -> str | None:
        request_id = self.header.get("id")
        return request_id if isinstance(request_id, str) else None


# -- encoding -------------------------------------------------------------------------------------------

def encode(header: Mapping[str, Any]) -> list:
    """Encodes a header map whose values may hold numpy arrays and core types into ZMQ frames.

    Returns:
        ``[header_bytes, array_bytes...]``; array frames are zero-copy memoryviews where the array is
        already C-contiguous little-endian.

    Raises:
        WireError: a value has no wire form (code ``"malformed"``) or the message is too large.
    """
    frames: list = []
    tree = _encode_value(header, frames, depth=0)
    head = msgpack.packb(tree, use_bin_type=True)
    return [head, *frames]


def _encode_value(value: Any, frames: list, depth: int) -> Any:
    if depth > MAX_NESTING:
        raise WireError("malformed", f"value nested deeper than {MAX_NESTING} levels")
    if value is None or isinstance(value, (bool, int, float, str, bytes)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return _encode_array(value, frames)
    if isinstance(value, Mapping):
        return {_encode_key(k): _encode_value(v, frames, depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_encode_value(v, frames, depth + 1) for v in value]
    if dataclasses.is_dataclass(value) and type(value).__name__ in WIRE_TYPES:
        fields = {f.name: _encode_value(getattr(value, f.name), frames, depth + 1)
                  for f in dataclasses.fields(value)}
        return {"__t__": type(value).__name__, "f": fields}
    raise WireError("malformed", f"values of type {type(value).__name__} cannot be sent to the model server")


def _encode_key(key: Any) -> Any:
    if isinstance(key, np.generic):
        key = key.item()
    if isinstance(key, (str, int)) and not isinstance(key, bool):
        return key
    raise WireError("malformed", f"map keys must be strings or integers, got {type(key).__name__}")


def _encode_array(array: np.ndarray, frames: list) -> dict[str, Any]:
    if array.dtype.name not in ALLOWED_DTYPES:
        raise WireError("malformed", f"arrays of dtype {array.dtype} cannot be sent; allowed: "
                        + ", ".join(sorted(ALLOWED_DTYPES)))
    if array.dtype.byteorder == ">":
        array = array.astype(array.dtype.newbyteorder("<"))
    array = np.ascontiguousarray(array)
    frames.append(memoryview(array).cast("B") if array.size else b"")
    return {"__nd__": len(frames) - 1, "dtype": array.dtype.name, "shape": list(array.shape)}


# -- decoding -------------------------------------------------------------------------------------------

def decode(frames: Sequence[Any], max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> Message:
    """Decodes ``[header, array frames...]`` (bytes, memoryviews or ``zmq.Frame``) into a Message.

    Array frames become writable numpy arrays; tagged core types are rebuilt through their constructors.

    Raises:
        WireError: malformed header or array frame, a version other than :data:`PROTOCOL_VERSION`,
            or a message over ``max_payload_bytes`` / the per-array bounds.
        InvalidInputError: a core type's constructor refused its fields (e.g. a CameraMove zoom of 0).
    """
    buffers = [_as_buffer(f) for f in frames]
    if not buffers:
        raise WireError("malformed", "empty message: expected a msgpack header frame")
    total = sum(len(b) for b in buffers)
    if total > max_payload_bytes:
        raise WireError("too_large", too_large_message(total, max_payload_bytes))
    if len(buffers[0]) > MAX_HEADER_BYTES:
        raise WireError("too_large", f"header of {len(buffers[0])} bytes exceeds {MAX_HEADER_BYTES} bytes")
    if len(buffers) - 1 > MAX_ARRAYS:
        raise WireError("too_large", f"{len(buffers) - 1} array frames exceed the limit of {MAX_ARRAYS}")
    try:
        tree = msgpack.unpackb(buffers[0], raw=False, strict_map_key=False, use_list=True)
    except Exception as exc:  # msgpack raises several unrelated types for bad bytes
        raise WireError("malformed", f"header frame is not valid msgpack ({type(exc).__name__})") from exc
    if not isinstance(tree, dict):
        raise WireError("malformed", f"header must be a msgpack map, got {type(tree).__name__}")
    version = tree.get("v")
    if version != PROTOCOL_VERSION:
        raise WireError("version", f"protocol version {version!r} is not supported; this side speaks "
                        f"version {PROTOCOL_VERSION} (upgrade joyai-embodied on the older side)")
    used: set[int] = set()
    header = _decode_value(tree, buffers[1:], used, depth=0)
    if not isinstance(header, dict):
        raise WireError("malformed", "header must be a plain msgpack map")
    if len(used) != len(buffers) - 1:
        raise WireError("malformed", f"{len(buffers) - 1} array frames sent but {len(used)} referenced")
    return Message(header)


def _as_buffer(frame: Any) -> memoryview:
    if hasattr(frame, "buffer"):  # zmq.Frame
        return frame.buffer
    return memoryview(frame).cast("B")


def _decode_value(value: Any, arrays: Sequence[memoryview], used: set[int], depth: int) -> Any:
    if depth > MAX_NESTING:
        raise WireError("malformed", f"header nested deeper than {MAX_NESTING} levels")
    if isinstance(value, list):
        return [_decode_value(v, arrays, used, depth + 1) for v in value]
    if not isinstance(value, dict):
        return value
    if "__nd__" in value:
        return _decode_array(value, arrays, used)
    if "__t__" in value:
        return _decode_type(value, arrays, used, depth)
    return {k: _decode_value(v, arrays, used, depth + 1) for k, v in value.items()}


def _decode_array(spec: dict, arrays: Sequence[memoryview], used: set[int]) -> np.ndarray:
    index, dtype, shape = spec.get("__nd__"), spec.get("dtype"), spec.get("shape")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < len(arrays) or index in used:
        raise WireError("malformed", f"array reference {index!r} does not name an unused array frame")
    if dtype not in ALLOWED_DTYPES:
        raise WireError("malformed", f"array dtype {dtype!r} is not allowed; allowed: {', '.join(sorted(ALLOWED_DTYPES))}")
    if (not isinstance(shape, list) or len(shape) > MAX_ARRAY_DIMS
            or not all(isinstance(n, int) and not isinstance(n, bool) and n >= 0 for n in shape)):
        raise WireError("malformed", f"array shape must be a list of at most {MAX_ARRAY_DIMS} non-negative "
                        f"integers, got {shape!r}")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count > MAX_ARRAY_ELEMENTS:
        raise WireError("too_large", f"array of shape {tuple(shape)} has {count} elements; the limit is "
                        f"{MAX_ARRAY_ELEMENTS}")
    np_dtype = np.dtype(dtype).newbyteorder("<")
    buffer = arrays[index]
    if len(buffer) != count * np_dtype.itemsize:
        raise WireError("malformed", f"array frame {index} holds {len(buffer)} bytes but shape {tuple(shape)} "
                        f"of {dtype} needs {count * np_dtype.itemsize}")
    used.add(index)
    # A copy: the receiver owns a writable array and the ZMQ buffer can be freed.
    return np.frombuffer(buffer, dtype=np_dtype).reshape(shape).astype(np.dtype(dtype), copy=True)


def _decode_type(spec: dict, arrays: Sequence[memoryview], used: set[int], depth: int) -> Any:
    name, fields = spec.get("__t__"), spec.get("f")
    cls = WIRE_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise WireError("malformed", f"unknown value type {name!r}; known: {', '.join(sorted(WIRE_TYPES))}")
    if not isinstance(fields, dict):
        raise WireError("malformed", f"{name} fields must be a map")
    known = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(str(k) for k in fields if k not in known)
    if unknown:
        raise WireError("malformed", f"{name} has no field(s) {', '.join(unknown)}")
    values = {}
    for key, raw in fields.items():
        value = _decode_value(raw, arrays, used, depth + 1)
        if isinstance(value, list) and isinstance(known[key].default, tuple):
            value = tuple(value)  # msgpack has no tuples; restore the dataclass's declared tuple fields
        values[key] = value
    try:
        return cls(**values)
    except TypeError as exc:  # missing required fields
        raise WireError("malformed", f"cannot build {name}: {exc}") from exc


def peek_request_id(frames: Sequence[Any]) -> str | None:
    """The request id in the header of a message that failed to decode, when the header is readable at all."""
    try:
        header = msgpack.unpackb(_as_buffer(frames[0]), raw=False, strict_map_key=False)
        request_id = header.get("id")
    except Exception:  # anything unreadable simply has no id
        return None
    return request_id if isinstance(request_id, str) and len(request_id) <= MAX_REQUEST_ID_CHARS else None


# -- errors -----------------------------------------------------------------------------------------------

def error_to_wire(exc: BaseException) -> dict[str, Any]:
    """The ``error`` map of a reply: :func:`errors.error_to_fields`, plus ``code`` for protocol errors."""
    info = errors.error_to_fields(exc)
    if isinstance(exc, WireError):
        info["code"] = exc.code
    return info


def error_from_wire(info: Any, address: str = "") -> Exception:
    """Rebuilds the exception of a reply's ``error`` map (:func:`errors.error_from_fields`; protocol errors too)."""
    if isinstance(info, dict) and info.get("type") == "WireError":
        return WireError(str(info.get("code", "malformed")), str(info.get("message", "")))
    return errors.error_from_fields(info, f"model server {address}".strip())
