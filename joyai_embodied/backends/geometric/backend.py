"""``GeometricBackend``: the default CPU world model. Exact geometry from RGB-D, no weights.

- ``observe`` lifts the frame into a :class:`SceneCloud` and fitted objects (``perception``).
- ``relation`` / ``ask`` reason over the fitted 3D boxes (``reasoning``, ``questions``).
- ``imagine`` forward-warps the cloud into another camera (``render``); ``edit`` moves or rotates an
  object's points (``editing``) and re-fits the objects, so the edited scene answers as the edited world.
- ``answer_with_imagination`` imagines views around what the question is about, observes them again and
  answers from the best-seen evidence.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ...config import resolve_config
from ...errors import InvalidInputError
from ...spatial import orbit_scene, scene_pivot
from ...types import (Answer, CameraMove, CameraPose, Edit, ImaginedView, MoveObject, Observation, Relation,
                      RotateObject, Scene, SceneObject)
from ..base import Backend, Frame
from . import questions, reasoning
from .cloud import SceneCloud
from .colors import COLOR_WORDS
from .configuration_geometric import GeometricConfig
from .perception import fit_objects, lift_observation
from .reasoning import Viewer
from .shapes import SHAPE_WORDS

# Yaw offsets (degrees) tried around hard-to-see objects, in order of preference.
_HELPFUL_YAWS = (30.0, -30.0, 60.0, -60.0)
# An object seen less than this is worth imagining from elsewhere.
_LOW_VISIBILITY = 0.9


class GeometricBackend(Backend):
    """The geometric world model (CPU, no weights): see the package README for the details.

    Args:
        config: the options (:class:`GeometricConfig`: voxel_size_m, hole_fill_px, relation_margin_m,
            cameras); or give them as keywords, ``GeometricBackend(hole_fill_px=3)``.

    Raises:
        InvalidInputError: an unknown, wrongly typed or out-of-range option.
    """

    name = "geometric"
    config_class = GeometricConfig

    def __init__(self, config: GeometricConfig | None = None, **options: Any):
        self.config = resolve_config(GeometricConfig, config, options, "geometric backend")
        self.voxel_size_m = self.config.voxel_size_m
        self.hole_fill_px = self.config.hole_fill_px
        self.relation_margin_m = self.config.relation_margin_m
        self.cameras: dict[str, CameraPose] = {}
        for camera_name, pose in (self.config.cameras or {}).items():
            self.register_camera(camera_name, pose)

    def register_camera(self, name: str, pose: CameraPose) -> None:
        """Makes "from the <name> camera, ..." questions use ``pose``."""
        if not isinstance(name, str) or not name.strip():
            raise InvalidInputError("cameras name", "a non-empty camera name", repr(name))
        if not isinstance(pose, CameraPose):
            raise InvalidInputError(f"cameras[{name!r}]", "a CameraPose", type(pose).__name__)
        self.cameras[name.strip().lower()] = pose

    # -- understanding -----------------------------------------------------------------------------
    def observe(self, observation: Observation) -> Scene:
        """Lifts the observation into a point cloud and fitted objects.

        Returns:
            Scene with ``data`` = the SceneCloud and ``pivot`` = :func:`joyai_embodied.spatial.scene_pivot`
            (the centre of the objects' boxes, or where the optical axis meets the support plane when there
            are no objects).

        Raises:
            InvalidInputError: the observation has no depth, or (without segmentation) its depth shows no
                support plane to segment objects on (field ``depth``).
        """
        cloud, objects = lift_observation(observation, self.voxel_size_m, self.config.depth_filter)
        pivot = scene_pivot(objects, observation.cam_to_world, plane=cloud.plane, depth=observation.depth)
        return Scene(observation=observation, objects=objects, pivot=pivot, backend=self.name, data=cloud)

    def observe_frames(self, observations: list[Observation]) -> Scene:
        """Observes the last k frames of a still camera as one: temporal depth fusion, then :meth:`observe`.

        Depth is fused per pixel (:func:`.depth_filter.fuse_observations`: the median of the valid values
        where at least half of the frames have one); rgb, segmentation and labels come from the first
        (latest) frame, which the Scene keeps as its observation.

        Args:
            observations: the frames, latest first; one frame is observed as it is.

        Raises:
            InvalidInputError: no frames, or frames from different cameras (field ``observations[i]``):
                fusion is per pixel and does not register a moving camera.
        """
        from .depth_filter import fuse_observations

        return self.observe(fuse_observations(list(observations)))

    def relation(self, scene: Scene, subject: str, reference: str, frame: Frame = "camera") -> Relation:
        """Relation of ``subject`` to ``reference``; semantics in :mod:`.reasoning`.

        Args:
            scene: a scene from :meth:`observe` or :meth:`edit`.
            subject: name (or unique part of a name) of the object located.
            reference: name of the object it is located against.
            frame: ``"camera"`` (the scene's camera), ``"world"`` (left = +y, in front = -x), or a
                CameraPose to take that camera's perspective.

        Raises:
            UnknownObjectError: a name the scene does not contain (the message lists the known names).
            AmbiguousObjectError: a partial name that matches several objects.
        """
        a, b = scene.find(subject), scene.find(reference)
        return reasoning.relation(scene, a, b, Viewer.of(scene, frame), self.relation_margin_m)

    def ask(self, scene: Scene, question: str, frame: Frame = "camera") -> Answer:
        """Answers a question in the grammar of :mod:`.questions` (``supported=False`` outside it).

        Raises:
            UnknownObjectError: the question names an object the scene does not contain.
            AmbiguousObjectError: a partial name matches several objects.
        """
        return questions.answer_question(scene, question, frame=frame, cameras=self.cameras,
                                         colour_words=COLOR_WORDS, shape_words=SHAPE_WORDS)

    # -- imagination -------------------------------------------------------------------------------
    def camera_for(self, scene: Scene, move: CameraMove | CameraPose) -> CameraPose:
        """The camera a move leads to: the scene camera orbited about the pivot, same intrinsics and size.

        Raises:
            ImpossibleCameraMoveError: the move takes the camera below the support plane or inside an
                object (:func:`joyai_embodied.spatial.orbit_scene`), or over the vertical.
        """
        if isinstance(move, CameraPose):
            return move
        plane = scene.data.plane if isinstance(scene.data, SceneCloud) else None
        return orbit_scene(scene, move, plane=plane)

    def imagine(self, scene: Scene, move: CameraMove | CameraPose, seed: int | None = None) -> ImaginedView:
        """Forward-warps the scene cloud into the moved camera (``seed`` is unused: this is deterministic)."""
        from .render import render_cloud

        return render_cloud(_cloud(scene), self.camera_for(scene, move), self.hole_fill_px)

    def edit(self, scene: Scene, edit: Edit, seed: int | None = None) -> Scene:
        """Moves or rotates one object's points and re-fits the objects (names kept by id).

        Returns:
            A new Scene whose ``edits`` ends with ``edit``; ``scene`` is unchanged.

        Raises:
            UnknownObjectError: ``edit.object`` is not in the scene.
        """
        from .editing import apply_edit

        if not isinstance(edit, (MoveObject, RotateObject)):
            raise InvalidInputError("edit", "a MoveObject or RotateObject", type(edit).__name__)
        scene.find(edit.object)  # unknown names fail here, listing the known ones
        cloud = apply_edit(_cloud(scene), list(scene.objects), edit, pivot=scene.pivot)
        objects = fit_objects(cloud, names={o.id: o.name for o in scene.objects})
        return Scene(observation=scene.observation, objects=objects, pivot=scene.pivot, backend=self.name,
                     data=cloud, edits=tuple(scene.edits) + (edit,))

    def answer_with_imagination(self, scene: Scene, question: str, max_views: int = 4) -> Answer:
        """Imagines views that help, observes them, and answers from the best-seen evidence.

        Views chosen, up to ``max_views``: the viewpoint the question names ("from the viewpoint at yaw N"
        or a registered camera), then yaw +/-30 and +/-60 degree orbits when an object the question is
        about is occluded or seen poorly. Each view is imagined, observed again (with the scene's names by
        id), and an object's box is replaced by the one from the view that sees it best. The answer then
        comes from the fused scene, in the frame the question asks for.

        Returns:
            The Answer with ``views`` = the imagined views used (possibly empty when none helps).
        """
        text = questions.normalize(question)
        mentioned = _mentioned_objects(scene, text)
        cameras: list[CameraPose] = []
        named_pose = _named_viewpoint(self, scene, text)
        if named_pose is not None:
            cameras.append(named_pose)
        if any(o.visible_fraction < _LOW_VISIBILITY for o in mentioned):
            cameras += [self.camera_for(scene, CameraMove(yaw_deg=yaw)) for yaw in _HELPFUL_YAWS]
        cameras = cameras[:max_views]
        if not cameras:
            return self.ask(scene, question)

        views = [self.imagine(scene, camera) for camera in cameras]
        fused = self._fuse(scene, views)
        answer = self.ask(fused, question)
        return replace(answer, views=tuple(views))

    def _fuse(self, scene: Scene, views: list[ImaginedView]) -> Scene:
        """The scene with each object's box taken from the observation that sees most of it."""
        best: dict[int, SceneObject] = {o.id: o for o in scene.objects}
        labels = {o.id: o.name for o in scene.objects}
        for view in views:
            try:
                _, seen = lift_observation(view.as_observation(labels=labels))
            except InvalidInputError:
                continue  # a view with no valid depth adds nothing
            for obj in seen:
                current = best.get(obj.id)
                if current is not None and obj.visible_fraction > current.visible_fraction + 0.05:
                    best[obj.id] = replace(current, centroid=obj.centroid, extent=obj.extent,
                                           obb_rotation=obj.obb_rotation, visible_fraction=obj.visible_fraction)
        return replace(scene, objects=[best[o.id] for o in scene.objects])

    def info(self) -> dict[str, Any]:
        return {"backend": self.name, "device": "cpu", "voxel_size_m": self.voxel_size_m,
                "hole_fill_px": self.hole_fill_px, "relation_margin_m": self.relation_margin_m,
                "depth_filter": self.config.depth_filter,
                "cameras": sorted(self.cameras)}


def _cloud(scene: Scene) -> SceneCloud:
    if not isinstance(scene.data, SceneCloud):
        raise InvalidInputError("scene", "a Scene built by the geometric backend", f"backend {scene.backend!r}")
    return scene.data


def _mentioned_objects(scene: Scene, text: str) -> list[SceneObject]:
    """Objects whose full name appears in the (normalised) question text."""
    return [o for o in scene.objects if o.name.lower() in text]


def _named_viewpoint(backend: GeometricBackend, scene: Scene, text: str) -> CameraPose | None:
    """The camera a viewpoint prefix of the question names, if it can be resolved."""
    yaw = questions._YAW_VIEW.match(text)
    if yaw:
        move = CameraMove(yaw_deg=float(yaw["yaw"]), pitch_deg=float(yaw["pitch"] or 0.0))
        return backend.camera_for(scene, move)
    named = questions._NAMED_VIEW.match(text)
    if named and named["cam"] in backend.cameras:
        return backend.cameras[named["cam"]]
    return None
