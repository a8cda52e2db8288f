"""Prompts the JoyAI-Image model was trained on, and robust parsers for what the MLLM answers.

Pure Python + numpy (no torch), so the exact prompts and the parsers can be checked without a model.

Imagination prompts follow the model's documentation:

* camera control: ``"Move the camera.\\n- Camera rotation: Yaw {yaw}°, Pitch {pitch}°.\\n- Camera zoom:
  in|out|unchanged.\\n- Keep the 3D scene static; only change the viewpoint."``
* object move: a red box is drawn at the target, then ``"Move the <object> into the red box and finally
  remove the red box."``
* object rotation: ``"Rotate the <object> to show the <view> side view."``, ``<view>`` one of eight sides.

Understanding prompts ask for an answer shape that can be parsed (JSON for relations, a number, an
integer, yes/no). The parsers never raise on garbage: a model (or random test weights) that answers
off-format gets ``None`` fields and a parse score of 0, so callers report low confidence instead.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from typing import Any

from ...errors import ImpossibleCameraMoveError
from ...types import CameraMove

# -- imagination ------------------------------------------------------------------------------------

#: Camera moves JoyAI-Image's camera-control data covers; larger moves are refused, not extrapolated.
MAX_YAW_DEG = 90.0
MAX_PITCH_DEG = 45.0
ZOOM_RANGE = (0.5, 2.0)
#: Zoom factors within this distance of 1 are sent as "unchanged" (the prompt has only three words).
ZOOM_DEADBAND = 0.05

#: The eight side views of the rotation prompt, keyed by the yaw (degrees) that brings them to the camera.
ROTATION_VIEWS = {0: "front", 45: "front right", 90: "right", 135: "rear right", 180: "rear",
                  -135: "rear left", -90: "left", -45: "front left"}

SYSTEM_PROMPT = "You are a helpful assistant."


def _number(value: float) -> str:
    """Formats an angle the way the training prompts write it: ``30``, ``-12.5``."""
    value = round(float(value), 1)
    return str(int(value)) if value == int(value) else f"{value:.1f}"


def check_camera_move(move: CameraMove) -> None:
    """Refuses camera moves outside the range the model was trained for.

    Raises:
        ImpossibleCameraMoveError: naming ``move.yaw_deg``, ``move.pitch_deg`` or ``move.zoom``.
    """
    if abs(move.yaw_deg) > MAX_YAW_DEG:
        raise ImpossibleCameraMoveError(
            "move.yaw_deg", f"a yaw within ±{MAX_YAW_DEG:g}° (the joyai-image camera-control range); "
            "chain several moves for larger turns", move.yaw_deg)
    if abs(move.pitch_deg) > MAX_PITCH_DEG:
        raise ImpossibleCameraMoveError(
            "move.pitch_deg", f"a pitch within ±{MAX_PITCH_DEG:g}° (the joyai-image camera-control range)",
            move.pitch_deg)
    if not ZOOM_RANGE[0] <= move.zoom <= ZOOM_RANGE[1]:
        raise ImpossibleCameraMoveError(
            "move.zoom", f"a zoom in [{ZOOM_RANGE[0]:g}, {ZOOM_RANGE[1]:g}] (the joyai-image range)", move.zoom)


def zoom_word(zoom: float) -> str:
    """``"in"`` for zoom > 1, ``"out"`` for zoom < 1, ``"unchanged"`` within :data:`ZOOM_DEADBAND`."""
    if zoom > 1.0 + ZOOM_DEADBAND:
        return "in"
    if zoom < 1.0 - ZOOM_DEADBAND:
        return "out"
    return "unchanged"


def camera_prompt(move: CameraMove) -> str:
    """The documented camera-control prompt for ``move`` (call :func:`check_camera_move` first)."""
    return ("Move the camera.\n"
            f"- Camera rotation: Yaw {_number(move.yaw_deg)}°, Pitch {_number(move.pitch_deg)}°.\n"
            f"- Camera zoom: {zoom_word(move.zoom)}.\n"
            "- Keep the 3D scene static; only change the viewpoint.")


def move_prompt(object_name: str) -> str:
    """The documented object-move prompt (the red target box is drawn on the image separately)."""
    return f"Move the {object_name} into the red box and finally remove the red box."


def rotation_view(yaw_deg: float) -> str:
    """The side view an object shows the camera after turning ``yaw_deg`` about world z.

    Assumes the object's front faced the camera before the turn; a positive (counter-clockwise seen
    from above) turn brings its right side round to the camera. Rounds to the nearest of the eight views.
    """
    wrapped = (float(yaw_deg) + 180.0) % 360.0 - 180.0  # [-180, 180)
    nearest = int(round(wrapped / 45.0)) * 45
    return ROTATION_VIEWS[180 if nearest in (180, -180) else nearest]


def rotate_prompt(object_name: str, yaw_deg: float) -> str:
    """The documented rotation prompt for turning ``object_name`` by ``yaw_deg``."""
    return f"Rotate the {object_name} to show the {rotation_view(yaw_deg)} side view."


_DEPTH_WORDS = ("front", "behind", "closer", "farther", "further", "nearer", "occlud", "hidden")


def helpful_moves(question: str) -> list[CameraMove]:
    """Views worth imagining for ``question``, most useful first.

    Depth questions (in front of / behind / hidden) are hard from one image, so a view from above and
    side views come first; otherwise moderate turns to either side, then from above.
    """
    sides = [CameraMove(yaw_deg=45.0), CameraMove(yaw_deg=-45.0)]
    above = CameraMove(pitch_deg=30.0)
    if any(word in question.lower() for word in _DEPTH_WORDS):
        return [above, CameraMove(yaw_deg=90.0), CameraMove(yaw_deg=-90.0), *sides]
    return [*sides, above, CameraMove(yaw_deg=90.0), CameraMove(yaw_deg=-90.0)]


# -- understanding ----------------------------------------------------------------------------------

RELATION_KEYS = ("left_of", "right_of", "in_front_of", "behind", "above", "below", "on_top_of")


def relation_prompt(subject: str, reference: str) -> str:
    """Asks for the relation of ``subject`` to ``reference`` from the camera, as one JSON object."""
    keys = ", ".join(f'"{k}": true|false' for k in RELATION_KEYS)
    return (f"From the camera's viewpoint, where is the {subject} relative to the {reference}? "
            "'in_front_of' means closer to the camera; 'above'/'below' are along the vertical. "
            f"Answer with one JSON object only: {{{keys}, \"distance_m\": <centre distance in metres>}}")


@dataclass(frozen=True)
class ParsedRelation:
    """Fields read from a relation answer; ``None`` where the answer did not say. ``score`` in [0, 1]."""

    flags: dict[str, bool | None]
    distance_m: float | None
    score: float


_TRUE = {"true", "yes", "1"}
_FALSE = {"false", "no", "0"}


def _as_bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().strip("\"'").lower()
    return True if text in _TRUE else False if text in _FALSE else None


def _first_json_object(text: str) -> dict | None:
    """The first ``{...}`` in ``text`` that parses as a JSON object (models wrap JSON in prose/fences)."""
    for start in [m.start() for m in re.finditer(r"\{", text)]:
        depth = 0
        for end in range(start, len(text)):
            depth += {"{": 1, "}": -1}.get(text[end], 0)
            if depth == 0:
                try:
                    value = json.loads(text[start:end + 1])
                except ValueError:
                    break
                return value if isinstance(value, dict) else None
    return None


def parse_relation(text: str) -> ParsedRelation:
    """Reads relation flags and a distance from the model's answer; never raises.

    Accepts a JSON object, or loose ``key: value`` pairs when the JSON is broken. Contradictions
    (both ``left_of`` and ``right_of``) are dropped. ``score`` is the fraction of the seven flags read
    without contradiction.
    """
    data = _first_json_object(text) or {}
    flags: dict[str, bool | None] = {}
    for key in RELATION_KEYS:
        value = _as_bool(data[key]) if key in data else None
        if value is None:  # loose form: left_of: yes / "left_of" = true
            match = re.search(rf"{key}\W{{0,3}}\s*[:=]\s*\W?(true|false|yes|no)", text, re.IGNORECASE)
            value = _as_bool(match.group(1)) if match else None
        flags[key] = value
    for first, second in (("left_of", "right_of"), ("in_front_of", "behind"), ("above", "below")):
        if flags[first] and flags[second]:
            flags[first] = flags[second] = None
    distance = data.get("distance_m")
    if distance is None:
        match = re.search(r"distance_m\W{0,3}\s*[:=]\s*(-?\d+(?:\.\d+)?)", text)
        distance = match.group(1) if match else None
    distance_m = parse_distance(str(distance)) if distance is not None else None
    score = sum(v is not None for v in flags.values()) / len(RELATION_KEYS)
    return ParsedRelation(flags=flags, distance_m=distance_m, score=score)


#: Question kinds with a parseable answer format, and the instruction appended to ask for it.
ANSWER_FORMATS = {
    "distance": "Answer with the distance in metres as a single number, for example 0.25.",
    "count": "Answer with a single integer.",
    "yes_no": "Answer with yes or no.",
    "free": "",
}

_YES_NO_START = ("is ", "are ", "does ", "do ", "can ", "could ", "will ", "would ", "should ", "has ", "have ")


def question_kind(question: str) -> str:
    """Classifies a question as ``"distance"``, ``"count"``, ``"yes_no"`` or ``"free"``."""
    q = " ".join(question.lower().split())
    if q.startswith("how many") or q.startswith("count "):
        return "count"
    if "how far" in q or "distance" in q:
        return "distance"
    if q.startswith(_YES_NO_START):
        return "yes_no"
    return "free"


def question_prompt(question: str, kind: str) -> str:
    """The user text sent for ``question``: the question plus the answer-format instruction."""
    suffix = ANSWER_FORMATS[kind]
    return f"{question.strip()} {suffix}".strip()


_UNIT_TO_M = {"m": 1.0, "meter": 1.0, "meters": 1.0, "metre": 1.0, "metres": 1.0,
              "cm": 0.01, "centimeter": 0.01, "centimeters": 0.01, "centimetre": 0.01, "centimetres": 0.01,
              "mm": 0.001, "millimeter": 0.001, "millimeters": 0.001, "millimetre": 0.001, "millimetres": 0.001}


def parse_distance(text: str) -> float | None:
    """The first non-negative distance in ``text``, in metres (``"25 cm"`` -> 0.25); None if none."""
    match = re.search(r"(\d+(?:\.\d+)?)\s*([a-zA-Z]+)?", text)
    if not match:
        return None
    value = float(match.group(1))
    unit = (match.group(2) or "m").lower()
    value *= _UNIT_TO_M.get(unit, 1.0)
    return value if math.isfinite(value) else None


_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve".split())}


def parse_count(text: str) -> int | None:
    """The first whole number (digits or a word up to twelve) in ``text``; None if none."""
    match = re.search(r"\b(\d+)\b|\b(" + "|".join(_NUMBER_WORDS) + r")\b", text.lower())
    if not match:
        return None
    return int(match.group(1)) if match.group(1) else _NUMBER_WORDS[match.group(2)]


def parse_yes_no(text: str) -> bool | None:
    """True/False from the first yes/no word in ``text``; None when it has neither (or both first)."""
    match = re.search(r"\b(yes|no|true|false)\b", text.lower())
    return None if not match else match.group(1) in ("yes", "true")


def parse_answer(text: str, kind: str) -> tuple[Any, str]:
    """``(value, unit)`` read from an answer of ``kind``; value is None when the answer is off-format."""
    if kind == "distance":
        return parse_distance(text), "m"
    if kind == "count":
        return parse_count(text), "count"
    if kind == "yes_no":
        return parse_yes_no(text), "bool"
    return None, ""


def evidence_prompt(moves: list[CameraMove], question: str) -> str:
    """User text for answering from the real image plus views imagined after ``moves`` (image 1 is real)."""
    lines = ["Image 1 is the real camera image."]
    for i, move in enumerate(moves, start=2):
        lines.append(f"Image {i} is imagined by the world model after moving the camera: yaw "
                     f"{_number(move.yaw_deg)}°, pitch {_number(move.pitch_deg)}°, zoom {zoom_word(move.zoom)}.")
    lines.append("All images show the same static scene; use them all as evidence.")
    lines.append(question)
    return "\n".join(lines)
