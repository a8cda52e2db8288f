"""The question grammar of the geometric backend: free text in, an exact :class:`Answer` out.

Questions are matched case-insensitively; a trailing "?" and "the" before names are optional.
``A`` and ``B`` are object names as the scene knows them ("red cube"), or a unique part of one ("cube").

=================================  ==============================================================
form                               answer (``Answer.value``, ``unit``)
=================================  ==============================================================
is A <rel> B                       bool; rel: left of, right of, in front of, behind, above,
                                   below / under, on top of / on
how far is A from B                centre distance (m); also "distance between A and B",
                                   "how far apart are A and B"
how big / tall / high / wide /     size (m): big/large -> [x, y, z] box, tall/high -> height,
long / deep is A                   wide/long -> larger side, deep -> smaller side; also
                                   "what is the size/height/width of A"
how many objects (are there)       count; also "how many <colour|shape>s", "how many red cubes"
which objects are <rel> B          names (nearest to B first)
what is the nearest/farthest       a name; also "which object is closest to A"
object to A
which object is closest to /       a name (by depth along the optical axis)
farthest from the camera
is A occluded / hidden / visible   bool from the object's visible fraction (occluded < 0.9,
/ fully visible                    visible >= 0.25, fully visible >= 0.9)
=================================  ==============================================================

Viewpoint prefixes (perspective taking), before any form with directions:

- ``from the <front|side|top|...> camera, ...``: uses ``frame=CameraPose`` when the caller passed one,
  else a camera registered with the backend under that name (``GeometricBackend(cameras={...})``).
- ``from the viewpoint/camera/view at yaw N [and pitch M], ...``: the scene camera orbited about the
  pivot by ``CameraMove(yaw_deg=N, pitch_deg=M)`` (see :func:`joyai_embodied.camera.orbit`).

Anything else gets ``Answer(supported=False, confidence=0)`` saying what is understood. Unknown object
names raise :class:`~joyai_embodied.errors.UnknownObjectError` listing the known names.
"""

from __future__ import annotations

import re
from typing import Callable, Mapping

import numpy as np

from ...camera import orbit
from ...spatial import DIRECTION_WORDS, DIRECTIONS
from ...types import Answer, CameraMove, CameraPose, Scene, SceneObject
from . import reasoning
from .reasoning import Viewer

# Relation phrases -> Relation field. Longer phrases first so "on top of" wins over "on".
_RELATIONS = (
    ("to the left of", "left_of"), ("left of", "left_of"), ("to the right of", "right_of"),
    ("right of", "right_of"), ("in front of", "in_front_of"), ("behind", "behind"),
    ("on top of", "on_top_of"), ("above", "above"), ("below", "below"), ("underneath", "below"),
    ("under", "below"), ("beneath", "below"), ("on", "on_top_of"),
)
_REL = "|".join(re.escape(phrase) for phrase, _ in _RELATIONS)
_REL_FIELD = dict(_RELATIONS)
_REL_WORDS = {**{key: words for words, key in DIRECTION_WORDS.items()},
              "above": "above", "below": "below", "on_top_of": "on top of"}
_DIRECTIONAL = frozenset(DIRECTIONS)
_THE = r"(?:the )?"

_PATTERNS: tuple[tuple[str, re.Pattern], ...] = tuple((kind, re.compile(pattern)) for kind, pattern in (
    ("relation", rf"^is {_THE}(?P<a>.+?) (?P<rel>{_REL}) {_THE}(?P<b>.+)$"),
    ("visibility", rf"^is {_THE}(?P<a>.+?) (?P<state>occluded|hidden|partly hidden|partially hidden|"
                   rf"partially occluded|fully visible|visible)$"),
    ("distance", rf"^how far (?:away )?is {_THE}(?P<a>.+?) from {_THE}(?P<b>.+)$"),
    ("distance", rf"^(?:what is|what's) the distance (?:between|from) {_THE}(?P<a>.+?) (?:and|to) {_THE}(?P<b>.+)$"),
    ("distance", rf"^how far apart are {_THE}(?P<a>.+?) and {_THE}(?P<b>.+)$"),
    ("size", rf"^how (?P<dim>big|large|tall|high|wide|long|deep) is {_THE}(?P<a>.+)$"),
    ("size", rf"^(?:what is|what's) the (?P<dim>size|height|width|length|depth) of {_THE}(?P<a>.+)$"),
    ("count", r"^how many (?P<what>.+?)(?: are there| is there| do you see| can you see| are on the table)?$"),
    ("which", rf"^(?:which|what) (?:objects?|things?|items?) (?:are|is) (?P<rel>{_REL}) {_THE}(?P<b>.+)$"),
    ("extreme", r"^(?:what|which)(?: object)?(?: is)?(?: the)? (?P<ext>nearest|closest|farthest|furthest)"
                rf"(?: object)? (?:to|from) {_THE}(?P<a>.+)$"),
))
_CAMERA_WORDS = {"camera", "viewer", "me", "you", "the camera", "the viewer"}
_NAMED_VIEW = re.compile(r"^from (?:the )?(?P<cam>[a-z0-9_-]+) (?:camera|view|viewpoint),? (?P<rest>.+)$")
_YAW_VIEW = re.compile(r"^from (?:the )?(?:viewpoint|camera|view) (?:at|with) yaw (?P<yaw>-?\d+(?:\.\d+)?)"
                       r"(?: ?(?:deg|degrees|°))?(?: and pitch (?P<pitch>-?\d+(?:\.\d+)?)(?: ?(?:deg|degrees|°))?)?"
                       r",? (?P<rest>.+)$")

GRAMMAR_SUMMARY = ("is A left of/right of/in front of/behind/above/below/on top of B; how far is A from B; "
                   "how big/tall/wide is A; how many objects / how many <colour|shape>s; which objects are "
                   "<relation> B; what is the nearest/farthest object to A; which object is closest to the "
                   "camera; is A occluded/visible; prefixes 'from the <name> camera,' and "
                   "'from the viewpoint at yaw N,'")


def normalize(question: str) -> str:
    """Lower case, single spaces, no trailing punctuation."""
    text = " ".join(question.lower().replace(",", ", ").split())
    return text.rstrip(" ?.!").replace(" ,", ",")


def _unsupported(question: str, why: str) -> Answer:
    return Answer(text=f"I cannot answer {question!r}: {why}. I understand: {GRAMMAR_SUMMARY}.",
                  value=None, unit="", confidence=0.0, supported=False)


def _singular(word: str) -> str:
    if word.endswith("es") and word[:-2] in ("box",):
        return word[:-2]
    return word[:-1] if word.endswith("s") and not word.endswith("ss") else word


def answer_question(scene: Scene, question: str, frame: str | CameraPose = "camera",
                    cameras: Mapping[str, CameraPose] | None = None,
                    colour_words: tuple[str, ...] = (), shape_words: tuple[str, ...] = ()) -> Answer:
    """Answers ``question`` about ``scene`` (grammar in the module docstring).

    Args:
        scene: a scene built by the geometric backend (objects with boxes and visible fractions).
        question: free text.
        frame: ``"camera"``, ``"world"``, or a CameraPose; a viewpoint prefix in the question overrides it.
        cameras: named cameras for "from the <name> camera" prefixes.
        colour_words: colour words accepted by "how many <colour> ...".
        shape_words: shape words accepted by "how many <shape>s".

    Returns:
        The Answer; ``supported=False`` when the question is outside the grammar.

    Raises:
        UnknownObjectError: the question names an object the scene does not contain.
        AmbiguousObjectError: a partial name matches several objects.
    """
    text = normalize(question)
    viewer: Viewer | None = Viewer.of(scene, frame)
    named = _NAMED_VIEW.match(text)
    yaw = _YAW_VIEW.match(text)
    if yaw:
        move = CameraMove(yaw_deg=float(yaw["yaw"]), pitch_deg=float(yaw["pitch"] or 0.0))
        pose = orbit(scene.observation.cam_to_world, scene.pivot, move)
        label = f"camera:yaw={move.yaw_deg:g}" + (f",pitch={move.pitch_deg:g}" if move.pitch_deg else "")
        viewer, text = Viewer(label, pose), yaw["rest"]
    elif named:
        name = named["cam"]
        if isinstance(frame, CameraPose):
            viewer = Viewer(f"camera:{name}", frame.cam_to_world)
        elif cameras and name in cameras:
            viewer = Viewer(f"camera:{name}", cameras[name].cam_to_world)
        else:
            return _unsupported(question, f"the pose of the {name} camera is unknown; pass frame=CameraPose(...) "
                                          f"or register it with GeometricBackend(cameras={{{name!r}: pose}})")
        text = named["rest"]

    for kind, pattern in _PATTERNS:
        match = pattern.match(text)
        if match:
            handler = _HANDLERS[kind]
            return handler(scene, match, viewer, colour_words=colour_words, shape_words=shape_words)
    return _unsupported(question, "it matches none of the question forms")


def _where(viewer: Viewer) -> str:
    if viewer.label == "world":
        return "in the world frame"
    if viewer.label == "camera":
        return "from the camera"
    return f"from {viewer.label.replace('camera:', 'the ')} view"


def _relation(scene: Scene, match: re.Match, viewer: Viewer, **_) -> Answer:
    a, b = scene.find(match["a"]), scene.find(match["b"])
    field = _REL_FIELD[match["rel"]]
    rel = reasoning.relation(scene, a, b, viewer)
    value = reasoning.holds(rel, field)
    where = f" {_where(viewer)}" if field in _DIRECTIONAL else ""
    verdict = "Yes" if value else "No"
    link = "is" if value else "is not"
    return Answer(text=f"{verdict}: the {a.name} {link} {_REL_WORDS[field]} the {b.name}{where}.", value=value,
                  unit="bool", confidence=rel.confidence, frame=viewer.label)


def _visibility(scene: Scene, match: re.Match, viewer: Viewer, **_) -> Answer:
    obj = scene.find(match["a"])
    state = match["state"]
    fraction = obj.visible_fraction
    if state == "visible":
        value = fraction >= reasoning.VISIBLE_MIN
    elif state == "fully visible":
        value = fraction >= reasoning.OCCLUDED_BELOW
    else:
        value = fraction < reasoning.OCCLUDED_BELOW
    verdict = "Yes" if value else "No"
    return Answer(text=f"{verdict}: about {round(100 * fraction)}% of the {obj.name} is visible to the camera.",
                  value=bool(value), unit="bool", confidence=1.0, frame="camera")


def _distance(scene: Scene, match: re.Match, viewer: Viewer, **_) -> Answer:
    a, b = scene.find(match["a"]), scene.find(match["b"])
    distance = float(np.linalg.norm(a.centroid - b.centroid))
    confidence = 0.5 + 0.5 * min(a.visible_fraction, b.visible_fraction)
    return Answer(text=f"The {a.name} is {100 * distance:.1f} cm from the {b.name} (centre to centre).",
                  value=distance, unit="m", confidence=round(confidence, 3), frame="world")


def _size(scene: Scene, match: re.Match, viewer: Viewer, **_) -> Answer:
    obj = scene.find(match["a"])
    dim = match["dim"]
    horizontal = sorted(obj.extent[:2].tolist())
    confidence = round(0.5 + 0.5 * obj.visible_fraction, 3)
    if dim in ("big", "large", "size"):
        value = [float(v) for v in obj.extent]
        return Answer(text=f"The {obj.name} is {value[0] * 100:.1f} x {value[1] * 100:.1f} x {value[2] * 100:.1f} cm "
                           f"(box sides, the last one vertical).", value=value, unit="m", confidence=confidence,
                      frame="world")
    measures = {"tall": ("tall", obj.extent[2]), "high": ("tall", obj.extent[2]), "height": ("tall", obj.extent[2]),
                "wide": ("wide", horizontal[1]), "width": ("wide", horizontal[1]), "long": ("long", horizontal[1]),
                "length": ("long", horizontal[1]), "deep": ("deep", horizontal[0]), "depth": ("deep", horizontal[0])}
    word, value = measures[dim]
    return Answer(text=f"The {obj.name} is {float(value) * 100:.1f} cm {word}.", value=float(value), unit="m",
                  confidence=confidence, frame="world")


def _count(scene: Scene, match: re.Match, viewer: Viewer, colour_words: tuple[str, ...] = (),
           shape_words: tuple[str, ...] = (), **_) -> Answer:
    words = match["what"].split()
    generic = {"object", "thing", "item"}
    colour = shape = None
    rest = []
    for word in words:
        single = _singular(word)
        if single in generic:
            continue
        if word in colour_words:
            colour = word
        elif single in shape_words:
            shape = single
        else:
            rest.append(word)
    if rest or (not words):
        return _unsupported(match.string, f"'{' '.join(rest) or match['what']}' is not a colour or shape word "
                                          f"(colours: {', '.join(colour_words)}; shapes: {', '.join(shape_words)})")
    chosen = [o for o in scene.objects if (colour is None or o.color == colour) and (shape is None or o.shape == shape)]
    what = " ".join(w for w in (colour, shape) if w) or "object"
    plural = what if len(chosen) == 1 else what + ("es" if what.endswith("x") else "s")
    return Answer(text=f"There {'is' if len(chosen) == 1 else 'are'} {len(chosen)} {plural}.", value=len(chosen),
                  unit="count", confidence=round(min([0.5 + 0.5 * o.visible_fraction for o in scene.objects],
                                                     default=1.0), 3), frame="camera")


def _which(scene: Scene, match: re.Match, viewer: Viewer, **_) -> Answer:
    reference = scene.find(match["b"])
    field = _REL_FIELD[match["rel"]]
    found = reasoning.related_objects(scene, field, reference, viewer)
    names = [o.name for o in found]
    where = f" {_where(viewer)}" if field in _DIRECTIONAL else ""
    listing = ", ".join(f"the {n}" for n in names) if names else "nothing"
    return Answer(text=f"{listing[0].upper() + listing[1:]} {'is' if len(names) <= 1 else 'are'} "
                       f"{_REL_WORDS[field]} the {reference.name}{where}.", value=names, unit="names",
                  confidence=1.0, frame=viewer.label)


def _extreme(scene: Scene, match: re.Match, viewer: Viewer, **_) -> Answer:
    farthest = match["ext"] in ("farthest", "furthest")
    word = "farthest from" if farthest else "closest to"
    target = match["a"]
    if target in _CAMERA_WORDS:
        obj: SceneObject | None = reasoning.nearest_to_viewer(scene, viewer, farthest=farthest)
        about, frame = ("the camera" if viewer.label == "camera" else _where(viewer).replace("from ", "")), viewer.label
    else:
        reference = scene.find(target)
        obj = reasoning.nearest_object(scene, reference, farthest=farthest)
        about, frame = f"the {reference.name}", "world"
    if obj is None:
        return Answer(text=f"There is no other object to compare with {about}.", value=None, unit="name",
                      confidence=1.0, frame=frame)
    return Answer(text=f"The {obj.name} is the object {word} {about}.", value=obj.name, unit="name",
                  confidence=round(0.5 + 0.5 * obj.visible_fraction, 3), frame=frame)


_HANDLERS: dict[str, Callable[..., Answer]] = {
    "relation": _relation, "visibility": _visibility, "distance": _distance, "size": _size, "count": _count,
    "which": _which, "extreme": _extreme,
}
