"""Conversions between the core's result types and ``joyai_interfaces`` messages, both ways.

SceneObject, Relation, Answer, ImaginedView and errors cross ROS without loss: floats are float64,
poses travel as 16 exact values beside their (rounded) ``geometry_msgs/Pose``, an Answer's value as
JSON, an error as the fields of :func:`joyai_embodied.errors.error_to_fields`. So a result over ROS
equals the in-process one on the same frame. Optional strings (``raw_text``, ``prompt``) use "" for
None.
"""

from __future__ import annotations

import dataclasses
import json
import math
from typing import Any, Mapping

import numpy as np
from geometry_msgs.msg import Point, Vector3

from joyai_embodied import errors
from joyai_embodied.types import Answer, ImaginedView, Relation, SceneObject

from . import conversions

#: Relation fields that travel as float64 (the signed offsets are NaN when the backend has none).
_RELATION_FLOATS = ("distance_m", "lateral_m", "depth_m", "vertical_m", "confidence")
_RELATION_FLAGS = ("left_of", "right_of", "in_front_of", "behind", "above", "below", "on_top_of")


def _optional(text: str) -> str | None:
    return text or None


def scene_object_to_msg(obj: SceneObject) -> Any:
    """``joyai_interfaces/SceneObject`` of a core SceneObject."""
    from joyai_interfaces.msg import SceneObject as SceneObjectMsg

    msg = SceneObjectMsg(id=int(obj.id), name=obj.name, pixel_count=int(obj.pixel_count),
                         visible_fraction=float(obj.visible_fraction), color=obj.color or "", shape=obj.shape or "")
    msg.centroid = Point(x=float(obj.centroid[0]), y=float(obj.centroid[1]), z=float(obj.centroid[2]))
    msg.extent = Vector3(x=float(obj.extent[0]), y=float(obj.extent[1]), z=float(obj.extent[2]))
    msg.obb_rotation = [float(v) for v in np.asarray(obj.obb_rotation, dtype=np.float64).reshape(9)]
    return msg


def scene_object_from_msg(msg: Any) -> SceneObject:
    """Core SceneObject of a ``joyai_interfaces/SceneObject``."""
    return SceneObject(id=int(msg.id), name=msg.name,
                       centroid=np.array([msg.centroid.x, msg.centroid.y, msg.centroid.z]),
                       extent=np.array([msg.extent.x, msg.extent.y, msg.extent.z]),
                       obb_rotation=np.array(msg.obb_rotation, dtype=np.float64).reshape(3, 3),
                       pixel_count=int(msg.pixel_count), visible_fraction=float(msg.visible_fraction),
                       color=msg.color, shape=msg.shape)


def relation_to_msg(relation: Relation) -> Any:
    """``joyai_interfaces/Relation`` of a core Relation (offsets NaN when this core's Relation has none)."""
    from joyai_interfaces.msg import Relation as RelationMsg

    msg = RelationMsg(subject=relation.subject, reference=relation.reference, frame=relation.frame,
                      raw_text=relation.raw_text or "")
    for name in _RELATION_FLAGS:
        setattr(msg, name, bool(getattr(relation, name)))
    for name in _RELATION_FLOATS:
        setattr(msg, name, float(getattr(relation, name, math.nan)))
    return msg


def relation_from_msg(msg: Any) -> Relation:
    """Core Relation of a ``joyai_interfaces/Relation``."""
    known = {f.name for f in dataclasses.fields(Relation)}
    values: dict[str, Any] = {"subject": msg.subject, "reference": msg.reference, "frame": msg.frame,
                              "raw_text": _optional(msg.raw_text)}
    values.update({name: bool(getattr(msg, name)) for name in _RELATION_FLAGS})
    values.update({name: float(getattr(msg, name)) for name in _RELATION_FLOATS if name in known})
    return Relation(**values)


def _json_value(value: Any) -> Any:
    """An Answer value as plain JSON types (numpy scalars and arrays, tuples)."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (np.ndarray, tuple, list)):
        return [_json_value(v) for v in (value.tolist() if isinstance(value, np.ndarray) else value)]
    return value


def number_of(value: Any) -> float:
    """The response's float64 ``value`` for an Answer value: the number or bool, NaN otherwise."""
    if isinstance(value, (bool, np.bool_, int, float, np.number)):
        return float(value)
    return math.nan


def fill_answer(response: Any, answer: Answer) -> None:
    """Writes an Answer (views included) into a SpatialQuery response."""
    response.answer, response.unit = answer.text, answer.unit
    response.value = number_of(answer.value)
    response.value_json = json.dumps(_json_value(answer.value))
    response.confidence, response.supported = float(answer.confidence), bool(answer.supported)
    response.answer_frame, response.raw_text = answer.frame, answer.raw_text or ""
    response.views = [fill_view(_view_msg(), view) for view in answer.views]


def answer_from_response(response: Any) -> Answer:
    """The core Answer of a SpatialQuery response (views rebuilt from their messages)."""
    value = json.loads(response.value_json) if response.value_json else None
    return Answer(text=response.answer, value=value, unit=response.unit, confidence=float(response.confidence),
                  supported=bool(response.supported), frame=response.answer_frame,
                  views=tuple(view_from_msg(v) for v in response.views), raw_text=_optional(response.raw_text))


def _view_msg() -> Any:
    from joyai_interfaces.msg import ImaginedView as ImaginedViewMsg

    return ImaginedViewMsg()


def fill_view(target: Any, view: ImaginedView, header: Any = None) -> Any:
    """Writes an ImaginedView into an ``ImaginedView`` message or an Imagine result (same field names)."""
    height, width = view.rgb.shape[:2]
    target.rgb = conversions.numpy_to_image(view.rgb, "rgb8", header)
    if view.depth is not None:
        target.depth = conversions.numpy_to_image(view.depth, "32FC1", header)
    if view.segmentation is not None:
        target.segmentation = conversions.numpy_to_image(view.segmentation, "32SC1", header)
    mask = np.asarray(view.valid_mask, dtype=bool).view(np.uint8) * np.uint8(255)
    target.valid_mask = conversions.numpy_to_image(mask, "mono8", header)
    target.camera_info = conversions.camera_info_from_intrinsics(view.intrinsics, width, height, header)
    target.camera_pose = conversions.matrix_to_pose(view.cam_to_world)
    target.cam_to_world = conversions.matrix_values(view.cam_to_world)
    target.source, target.prompt = view.source, view.prompt or ""
    return target


def view_from_msg(msg: Any) -> ImaginedView:
    """ImaginedView of an ``ImaginedView`` message or Imagine result (arrays view the message buffers)."""
    rgb = conversions.rgb_from_image(msg.rgb, "rgb")
    height, width = rgb.shape[:2]
    return ImaginedView(
        rgb=rgb,
        depth=None if conversions.is_empty(msg.depth) else conversions.depth_from_image(msg.depth, "depth"),
        segmentation=(None if conversions.is_empty(msg.segmentation)
                      else conversions.segmentation_from_image(msg.segmentation)),
        intrinsics=conversions.intrinsics_from_camera_info(msg.camera_info, width, height),
        cam_to_world=conversions.pose_from_fields(msg.cam_to_world, msg.camera_pose, "cam_to_world", "camera_pose"),
        valid_mask=conversions.image_to_numpy(msg.valid_mask, "valid_mask") > 0,
        source=msg.source, prompt=_optional(msg.prompt))


# -- errors -----------------------------------------------------------------------------------------
def fill_error(response: Any, exc: BaseException) -> None:
    """Writes an exception into a response's ``success``/``error``/``error_type``/``error_json``.

    A :class:`~joyai_embodied.errors.JoyAIError` keeps its class and attributes (``field``,
    ``expected``, ``handle``...); anything else is reported as ``InternalError`` (a bug, not the
    caller's to fix).
    """
    response.success = False
    if isinstance(exc, errors.JoyAIError):
        fields = dict(errors.error_to_fields(exc))
    else:
        fields = {"type": "InternalError", "message": f"internal error: {type(exc).__name__}: {exc}"}
    response.error, response.error_type = str(fields.get("message", exc)), str(fields.get("type", "InternalError"))
    response.error_json = json.dumps(fields, default=str)


def error_from_response(response: Any, default: str = "failed") -> errors.JoyAIError:
    """The core exception a failed response stands for (same class and attributes; others RemoteError).

    Args:
        response: a SpatialQuery response, Imagine result or Sim* response (``error``, ``error_type`` and,
            when the message has it, ``error_json``).
        default: the message when the response carries none (e.g. a canceled goal).
    """
    fields: Mapping[str, Any] = {}
    text = getattr(response, "error_json", "")
    if text:
        try:
            fields = json.loads(text)
        except ValueError:
            fields = {}
    if not isinstance(fields, Mapping) or "type" not in fields:
        fields = {"type": response.error_type or "RemoteError", "message": response.error or default}
    return errors.error_from_fields(fields)
