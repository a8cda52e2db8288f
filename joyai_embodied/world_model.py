"""`WorldModel`: the one public entry point a planner, ROS node or rollout uses.

It resolves a preset (``models/*.yaml``) to a backend, validates every input into the core types and
delegates. It holds no model logic.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from .backends.base import Backend, Frame, available_backends, create_backend
from .errors import BackendUnavailableError, InvalidInputError
from .types import (Answer, CameraMove, CameraPose, Edit, ImaginedView, MoveObject, ObjectRef, Observation,
                    Relation, RotateObject, Scene)


#: Preset keys that are not backend options: the preset's own names, and the Ray Serve deployment section
#: (read by joyai_embodied/serve/ray_serve.py).
PRESET_META_KEYS = ("name", "aliases", "description", "ray_serve")


def preset_dirs() -> list[Path]:
    """Folders searched for presets: $JOYAI_MODELS_DIR, the repository's models/, the installed copy."""
    dirs = []
    if os.environ.get("JOYAI_MODELS_DIR"):
        dirs.append(Path(os.environ["JOYAI_MODELS_DIR"]))
    dirs.append(Path(__file__).resolve().parent.parent / "models")
    dirs.append(Path(sys.prefix) / "share" / "joyai_embodied" / "models")
    return [d for d in dirs if d.is_dir()]


def _read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    with open(path, encoding="utf-8") as handle:
        data = yaml.safe_load(handle) or {}
    if not isinstance(data, dict) or "backend" not in data:
        raise InvalidInputError(f"preset {path}", "a YAML mapping with a 'backend' key")
    return data


def list_presets() -> dict[str, Path]:
    """``{preset name or alias: path}`` for every preset found in :func:`preset_dirs`."""
    presets: dict[str, Path] = {}
    for folder in reversed(preset_dirs()):  # earlier folders win
        for path in sorted(folder.glob("*.yaml")):
            data = _read_yaml(path)
            for name in [path.stem, data.get("name"), *data.get("aliases", [])]:
                if name:
                    presets[str(name)] = path
    return presets


def resolve_preset(name_or_path: str | os.PathLike) -> dict[str, Any]:
    """Returns the options of a preset given by name, alias, YAML path, or bare backend name."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        if not path.is_file():
            raise BackendUnavailableError(f"preset file {str(path)!r} does not exist")
        return _read_yaml(path)
    presets = list_presets()
    if str(name_or_path) in presets:
        return _read_yaml(presets[str(name_or_path)])
    if str(name_or_path) in available_backends():
        return {"backend": str(name_or_path)}
    raise BackendUnavailableError(
        f"unknown preset or backend {str(name_or_path)!r}; presets: {', '.join(sorted(presets)) or 'none'}; "
        f"backends: {', '.join(available_backends())}")


class WorldModel:
    """A unified world model: understand a scene, imagine other views and edits, reason over both.

    Example:
        >>> wm = WorldModel.load("geometric")
        >>> scene = wm.observe(obs)                      # an env observation dict or keyword arrays
        >>> wm.relation(scene, "red cube", "blue cylinder").left_of
        >>> view = wm.imagine(scene, CameraMove(yaw_deg=30))
        >>> scene2 = wm.edit(scene, MoveObject("red cube", to=[0.1, 0.0, 0.42]))
    """

    def __init__(self, backend: Backend, preset: Mapping[str, Any] | None = None):
        self.backend = backend
        self.preset = dict(preset or {})

    @classmethod
    def load(cls, name_or_preset: str | os.PathLike = "geometric", **overrides: Any) -> "WorldModel":
        """Loads a backend from a preset name (``"geometric"``, ``"joyai-image"``, ``"remote"``) or YAML path.

        Keyword overrides replace the preset's options (``path=``, ``device=``, ``address=``...); None values
        are left out. The options are checked once by the backend's typed config (``config_class``).

        Raises:
            BackendUnavailableError: unknown preset/backend, or its optional dependencies are missing.
            InvalidInputError: an option the backend does not take (the message lists those it does), or
                one of the wrong type or out of range (the message names it).
            CheckpointError: (joyai-image) the checkpoint is missing or partial.
        """
        options = resolve_preset(name_or_preset)
        options.update({k: v for k, v in overrides.items() if v is not None})
        backend_name = options.pop("backend")
        for key in PRESET_META_KEYS:
            options.pop(key, None)
        backend = create_backend(backend_name, **options)
        return cls(backend, {"backend": backend_name, **options})

    # -- understanding -------------------------------------------------------------------------
    def observe(self, obs: Mapping[str, Any] | Observation | Sequence[Any] | None = None, *, rgb: np.ndarray | None = None,
                depth: np.ndarray | None = None, intrinsics: np.ndarray | None = None,
                cam_to_world: np.ndarray | None = None, segmentation: np.ndarray | None = None,
                labels: Mapping[int, str] | None = None) -> Scene:
        """Builds a Scene from an observation dict / Observation, or from keyword arrays.

        ``obs`` may also be a list of frames of one still camera, the latest first (``wm.observe([obs3, obs2,
        obs1])``): backends with ``observe_frames`` (geometric) fuse them (temporal depth fusion); others
        refuse a list.
        """
        if isinstance(obs, (list, tuple)):
            frames = [o if isinstance(o, Observation) else Observation.from_dict(o, labels=labels) for o in obs]
            fuse = getattr(self.backend, "observe_frames", None)
            if fuse is None:
                raise InvalidInputError("obs", f"one observation (backend {self.backend.name!r} fuses no frames)",
                                        f"a list of {len(frames)}")
            return fuse(frames)
        if isinstance(obs, Observation):
            observation = obs
        elif obs is not None:
            observation = Observation.from_dict(obs, labels=labels)
        else:
            if rgb is None or intrinsics is None or cam_to_world is None:
                raise InvalidInputError("observe", "an observation dict, or rgb, intrinsics and cam_to_world")
            observation = Observation(rgb=rgb, depth=depth, intrinsics=intrinsics, cam_to_world=cam_to_world,
                                      segmentation=segmentation, labels=labels)
        return self.backend.observe(observation)

    def relation(self, scene: Scene, subject: ObjectRef, reference: ObjectRef, frame: Frame = "camera") -> Relation:
        """Where ``subject`` is relative to ``reference`` (``frame``: "camera", "world" or a CameraPose).

        ``subject`` / ``reference``: an object name, its instance id, or the SceneObject itself (ids and
        SceneObjects tell apart objects of one category whatever their names).
        """
        _check_scene(scene)
        return self.backend.relation(scene, _object_name(scene, subject, "subject"),
                                     _object_name(scene, reference, "reference"), frame=_check_frame(frame))

    def ask(self, scene: Scene, question: str, frame: Frame = "camera") -> Answer:
        """Answers a free-text question; see the backend's docs for what it understands."""
        _check_scene(scene)
        if not isinstance(question, str) or not question.strip():
            raise InvalidInputError("question", "a non-empty string", repr(question))
        return self.backend.ask(scene, question, frame=_check_frame(frame))

    # -- imagination ---------------------------------------------------------------------------
    def imagine(self, scene: Scene, move: CameraMove | CameraPose, seed: int | None = None,
                init: str | None = None, strength: float | None = None) -> ImaginedView:
        """Imagines the scene from a camera orbited about the scene pivot, or from a given CameraPose.

        ``init`` / ``strength`` (learned backends that take them, e.g. joyai-image): start the diffusion
        from ``init="geometric"`` (the geometric warp) and run ``ceil(strength * steps)`` steps.

        Raises:
            InvalidInputError: ``init`` / ``strength`` given to a backend without them, or out of range.
        """
        _check_scene(scene)
        if not isinstance(move, (CameraMove, CameraPose)):
            raise InvalidInputError("move", "a CameraMove or CameraPose", type(move).__name__)
        return self.backend.imagine(scene, move, seed=seed,
                                    **_imagine_options(self.backend, "imagine", init, strength))

    def imagine_batch(self, scene: Scene, moves: Sequence[CameraMove | CameraPose],
                      seed: int | None = None, init: str | None = None,
                      strength: float | None = None) -> list[ImaginedView]:
        """Imagines several views in one call (batched on the accelerator by learned backends).

        ``init`` / ``strength``: as in :meth:`imagine`.

        Raises:
            InvalidInputError: ``moves`` is not a list or tuple of CameraMove / CameraPose (field ``moves``
                or ``moves[i]``), or a move the backend cannot render.
        """
        _check_scene(scene)
        if not isinstance(moves, (list, tuple)):
            raise InvalidInputError("moves", "a list of CameraMove or CameraPose", type(moves).__name__)
        for i, move in enumerate(moves):
            if not isinstance(move, (CameraMove, CameraPose)):
                raise InvalidInputError(f"moves[{i}]", "a CameraMove or CameraPose", type(move).__name__)
        return self.backend.imagine_batch(scene, list(moves), seed=seed,
                                          **_imagine_options(self.backend, "imagine_batch", init, strength))

    def edit(self, scene: Scene, edit: Edit, seed: int | None = None) -> Scene:
        """Returns the scene after moving or rotating an object; the result answers questions as edited."""
        _check_scene(scene)
        if not isinstance(edit, (MoveObject, RotateObject)):
            raise InvalidInputError("edit", "a MoveObject or RotateObject", type(edit).__name__)
        name = _object_name(scene, edit.object, "edit.object")
        if name != edit.object:  # an id or SceneObject: every backend and transport receives the name
            edit = dataclasses.replace(edit, object=name)
        return self.backend.edit(scene, edit, seed=seed)

    def answer_with_imagination(self, scene: Scene, question: str, max_views: int = 4) -> Answer:
        """Imagines up to ``max_views`` helpful views and answers from all evidence (see ``Answer.views``)."""
        _check_scene(scene)
        if not isinstance(question, str) or not question.strip():
            raise InvalidInputError("question", "a non-empty string", repr(question))
        if isinstance(max_views, bool) or not isinstance(max_views, int) or not 0 <= max_views <= 16:
            raise InvalidInputError("max_views", "an integer in [0, 16]", max_views)
        return self.backend.answer_with_imagination(scene, question, max_views=max_views)

    def info(self) -> dict[str, Any]:
        return self.backend.info()

    def close(self) -> None:
        self.backend.close()

    def __enter__(self) -> "WorldModel":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"WorldModel(backend={self.backend.name!r})"


def _imagine_options(backend: Backend, method: str, init: Any, strength: Any) -> dict[str, Any]:
    """The ``init`` / ``strength`` keywords to pass on: only those given, only to a backend taking them."""
    import inspect

    given = {k: v for k, v in (("init", init), ("strength", strength)) if v is not None}
    if "init" in given and (not isinstance(init, str) or not init.strip()):
        raise InvalidInputError("init", "an init mode name such as 'noise' or 'geometric'", repr(init))
    if "strength" in given and (isinstance(strength, bool) or not isinstance(strength, (int, float))
                                or not 0.0 < strength <= 1.0):
        raise InvalidInputError("strength", "a number in (0, 1]", strength)
    accepted = inspect.signature(getattr(backend, method)).parameters
    for name in given:
        if name not in accepted:
            raise InvalidInputError(name, f"no {name!r}: the {backend.name} backend does not take it "
                                    "(joyai-image does)", given[name])
    return given


def _object_name(scene: Scene, ref: ObjectRef, field: str) -> str:
    """A name passes through (the backend resolves it); an id or SceneObject becomes that object's name."""
    if isinstance(ref, str):
        return ref
    return scene.resolve(ref, field).name


def _check_scene(scene: Any) -> None:
    if not isinstance(scene, Scene):
        raise InvalidInputError("scene", "a Scene returned by WorldModel.observe", type(scene).__name__)


def _check_frame(frame: Any) -> Frame:
    if isinstance(frame, CameraPose) or frame in ("camera", "world"):
        return frame
    raise InvalidInputError("frame", "'camera', 'world' or a CameraPose", repr(frame))
