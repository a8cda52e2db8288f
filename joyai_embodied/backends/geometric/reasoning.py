"""Spatial relations between fitted objects, exact from their 3D boxes.

Semantics (shared with the simulator's ground truth, ``sim_envs``):

- **Camera frame** (the default, or any other camera for perspective taking): A is ``left_of`` B when A's
  centre has a camera-frame x smaller than B's by more than the margin; ``right_of`` mirrors it. A is
  ``in_front_of`` B when A's centre is nearer along the optical axis (camera z) by more than the margin;
  ``behind`` mirrors it.
- **World frame**: as seen by a viewer standing at -x looking toward +x with z up: ``left_of`` = larger
  world y (left is +y), ``right_of`` = smaller y, ``in_front_of`` = smaller world x (nearer that viewer),
  ``behind`` = larger x.
- ``above``/``below`` (every frame) use world z: A is above B when A's bottom is at or over B's top
  (less a 1 cm tolerance). ``on_top_of`` = above and A's centre lies inside B's footprint, or (an uneven
  support: a stove, a ramekin a bowl is tilted on) A sits in the upper half of B's box, rises above it and
  their footprints overlap (:func:`on_top_of`).
- ``distance_m`` is the distance between the two box centres; ``lateral_m``, ``depth_m`` and ``vertical_m``
  are the signed centre offsets (subject minus reference) the booleans are judged from, in the same frame.
- The direction table and the viewer coordinates are :mod:`joyai_embodied.spatial`'s, shared with the
  simulator's ground truth and the planner.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...spatial import DIRECTIONS, direction_holds, lateral_and_depth, offsets_in_view
from ...types import CameraPose, Relation, Scene, SceneObject

#: Default margin (metres) for left/right/in front/behind: closer than this on the axis is neither.
RELATION_MARGIN_M = 0.01
#: Tolerance (metres) of above/below: a resting object's bottom touches its support's top.
ABOVE_TOLERANCE_M = 0.01
#: Resting on an uneven support: the subject's bottom lies in the upper part of the support's box (this
#: share of its height and up), its top rises this far above the support's (metres), and its footprint
#: covers this share of the smaller footprint (a bowl tilted on a ramekin covers ~35% of it).
REST_LOW_SHARE = 0.5
RISE_M = 0.01
REST_OVERLAP = 0.2
#: Sample points per side of the grid that measures footprint overlap.
OVERLAP_SAMPLES = 7
#: Visible fractions under this count as occluded; "visible" needs at least VISIBLE_MIN.
OCCLUDED_BELOW = 0.9
VISIBLE_MIN = 0.25

#: Relation names understood by :func:`holds` (the Relation fields plus ``on_top_of``).
RELATION_NAMES = ("left_of", "right_of", "in_front_of", "behind", "above", "below", "on_top_of")


@dataclass(frozen=True)
class Viewer:
    """Whose left and front a relation uses: a camera pose, or ``None`` for the world frame."""

    label: str
    cam_to_world: np.ndarray | None

    @classmethod
    def of(cls, scene: Scene, frame: "str | CameraPose | Viewer") -> "Viewer":
        """The viewer for a frame: ``"camera"`` (the scene's camera), ``"world"``, or a CameraPose."""
        if isinstance(frame, Viewer):
            return frame
        if isinstance(frame, CameraPose):
            return cls("camera:pose", frame.cam_to_world)
        if frame == "world":
            return cls("world", None)
        return cls("camera", scene.observation.cam_to_world)

    def lateral_and_depth(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(rightward, away-from-viewer) coordinates of world points (N, 3)."""
        return lateral_and_depth(points, self.cam_to_world)


def footprint_contains(obj: SceneObject, point: np.ndarray, tolerance: float = 0.0) -> bool:
    """Whether ``point``'s horizontal position lies inside ``obj``'s oriented footprint."""
    local = obj.obb_rotation.T @ (np.asarray(point, dtype=np.float64) - obj.centroid)
    return bool(np.all(np.abs(local[:2]) <= obj.extent[:2] / 2 + tolerance))


def on_top_of(subject: SceneObject, reference: SceneObject, above: bool | None = None) -> bool:
    """Whether ``subject`` rests on ``reference``.

    Above it with its centre over its footprint; or, for a support whose top is uneven or partly higher than
    where the subject sits (a stove's burner ring, a ramekin a bowl is tilted on), the subject's bottom in the
    upper part of the reference's box (:data:`REST_LOW_SHARE`), its top clear above it (:data:`RISE_M`: a bowl
    inside a drawer does not rise above its cabinet) and their footprints overlapping.
    """
    if above is None:
        above = subject.bottom_z >= reference.top_z - ABOVE_TOLERANCE_M
    if above and footprint_contains(reference, subject.centroid):
        return True
    height = reference.top_z - reference.bottom_z
    if (subject.bottom_z < reference.bottom_z + REST_LOW_SHARE * height
            or subject.top_z < reference.top_z + RISE_M):
        return False
    return footprint_overlap(subject, reference) >= REST_OVERLAP


def footprint_overlap(a: SceneObject, b: SceneObject) -> float:
    """Share of the smaller of two oriented footprints that lies inside the other (a grid of sample points)."""
    small, large = (a, b) if float(np.prod(a.extent[:2])) <= float(np.prod(b.extent[:2])) else (b, a)
    steps = (np.arange(OVERLAP_SAMPLES) + 0.5) / OVERLAP_SAMPLES - 0.5
    grid = np.stack(np.meshgrid(steps, steps), axis=-1).reshape(-1, 2) * small.extent[:2]
    points = small.centroid + grid @ small.obb_rotation[:, :2].T
    local = (points - large.centroid) @ large.obb_rotation
    return float(np.mean(np.all(np.abs(local[:, :2]) <= large.extent[:2] / 2, axis=1)))


def relation(scene: Scene, subject: SceneObject, reference: SceneObject, viewer: Viewer,
             margin_m: float = RELATION_MARGIN_M) -> Relation:
    """The Relation of ``subject`` to ``reference`` as ``viewer`` sees it (see module docstring).

    Args:
        scene: the scene both objects belong to.
        subject: the object being located.
        reference: the object it is located against.
        viewer: whose left/front to use.
        margin_m: differences on an axis at or under this are neither left nor right (front nor behind).

    Returns:
        Relation with every boolean, the signed centre offsets (lateral, depth, vertical) in the viewer's
        frame, the centre distance, the frame label and a confidence that falls with how little of either
        object was seen.
    """
    lateral_m, depth_m, vertical_m = offsets_in_view(subject.centroid, reference.centroid, viewer.cam_to_world)
    directions = {key: direction_holds(key, lateral_m, depth_m, margin_m) for key in DIRECTIONS}
    above = subject.bottom_z >= reference.top_z - ABOVE_TOLERANCE_M
    below = reference.bottom_z >= subject.top_z - ABOVE_TOLERANCE_M
    visibility = min(subject.visible_fraction, reference.visible_fraction)
    return Relation(
        subject=subject.name, reference=reference.name, **directions, above=bool(above), below=bool(below),
        distance_m=float(np.linalg.norm(subject.centroid - reference.centroid)),
        frame=viewer.label, confidence=round(0.5 + 0.5 * float(np.clip(visibility, 0.0, 1.0)), 3),
        on_top_of=on_top_of(subject, reference, above),
        lateral_m=lateral_m, depth_m=depth_m, vertical_m=vertical_m)


def holds(rel: Relation, name: str) -> bool:
    """Value of the relation field ``name`` (one of :data:`RELATION_NAMES`)."""
    return bool(getattr(rel, name))


def related_objects(scene: Scene, name: str, reference: SceneObject, viewer: Viewer) -> list[SceneObject]:
    """Every other object for which ``<object> <name> <reference>`` holds, nearest to the reference first."""
    found = [obj for obj in scene.objects
             if obj.id != reference.id and holds(relation(scene, obj, reference, viewer), name)]
    return sorted(found, key=lambda o: float(np.linalg.norm(o.centroid - reference.centroid)))


def nearest_object(scene: Scene, reference: SceneObject, farthest: bool = False) -> SceneObject | None:
    """The other object whose centre is nearest to (or farthest from) ``reference``'s; None if alone."""
    others = [o for o in scene.objects if o.id != reference.id]
    if not others:
        return None
    distances = [float(np.linalg.norm(o.centroid - reference.centroid)) for o in others]
    return others[int(np.argmax(distances) if farthest else np.argmin(distances))]


def nearest_to_viewer(scene: Scene, viewer: Viewer, farthest: bool = False) -> SceneObject | None:
    """The object nearest to (farthest from) the viewer along its optical axis; None in an empty scene."""
    if not scene.objects:
        return None
    _, depth = viewer.lateral_and_depth(np.stack([o.centroid for o in scene.objects]))
    return scene.objects[int(np.argmax(depth) if farthest else np.argmin(depth))]
