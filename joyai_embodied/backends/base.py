"""The interface every backend implements, and the registry that picks one by name.

A backend is constructed from a preset's options (``models/*.yaml``) and owns all model logic;
:class:`joyai_embodied.WorldModel` only validates inputs and delegates here.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from typing import Any, Callable, Sequence

from ..errors import BackendUnavailableError
from ..types import Answer, CameraMove, CameraPose, Edit, ImaginedView, Observation, Relation, Scene

#: Frames accepted by ``relation``/``ask``: "camera" (the observing camera), "world", or a CameraPose.
Frame = str | CameraPose


class Backend(ABC):
    """Base class of world-model backends.

    Subclasses implement ``observe``, ``relation``, ``ask``, ``imagine`` and ``edit``; the defaults
    for ``imagine_batch`` and ``answer_with_imagination`` are built on those.
    """

    name: str = ""

    @abstractmethod
    def observe(self, observation: Observation) -> Scene:
        """Builds a Scene (objects + backend state) from a validated observation."""

    @abstractmethod
    def relation(self, scene: Scene, subject: str, reference: str, frame: Frame = "camera") -> Relation:
        """Spatial relation of ``subject`` to ``reference``. Unknown names raise UnknownObjectError."""

    @abstractmethod
    def ask(self, scene: Scene, question: str, frame: Frame = "camera") -> Answer:
        """Answers a free-text question about the scene."""

    @abstractmethod
    def imagine(self, scene: Scene, move: CameraMove | CameraPose, seed: int | None = None) -> ImaginedView:
        """Imagines the scene from a camera moved about the pivot, or from an explicit CameraPose."""

    @abstractmethod
    def edit(self, scene: Scene, edit: Edit, seed: int | None = None) -> Scene:
        """Returns a new Scene with the edit applied; the input scene is left unchanged."""

    def imagine_batch(self, scene: Scene, moves: Sequence[CameraMove | CameraPose],
                      seed: int | None = None) -> list[ImaginedView]:
        """Imagines several views; learned backends override this to batch on the accelerator."""
        return [self.imagine(scene, move, seed=seed) for move in moves]

    @abstractmethod
    def answer_with_imagination(self, scene: Scene, question: str, max_views: int = 4) -> Answer:
        """Imagines views that help with ``question`` and answers from all evidence (``Answer.views``)."""

    def info(self) -> dict[str, Any]:
        """Backend name, device and version facts (served by the model server's ``info`` request)."""
        return {"backend": self.name}

    def close(self) -> None:
        """Releases models and connections."""


_REGISTRY: dict[str, str | Callable[..., Backend]] = {
    "geometric": "joyai_embodied.backends.geometric:GeometricBackend",
    "joyai-image": "joyai_embodied.backends.joyai_image:JoyAIImageBackend",
    "remote": "joyai_embodied.backends.remote:RemoteBackend",
}


def register_backend(name: str, factory: str | Callable[..., Backend]) -> None:
    """Registers a backend factory (a class, or a lazy ``"module:attr"`` string) under ``name``."""
    _REGISTRY[name] = factory


def available_backends() -> list[str]:
    return sorted(_REGISTRY)


def create_backend(name: str, **options: Any) -> Backend:
    """Constructs the backend registered as ``name`` with ``options``.

    Raises:
        BackendUnavailableError: unknown name, or its optional dependencies are not installed.
    """
    if name not in _REGISTRY:
        raise BackendUnavailableError(f"unknown backend {name!r}; available: {', '.join(available_backends())}")
    factory = _REGISTRY[name]
    if isinstance(factory, str):
        module_name, attr = factory.split(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except ImportError as exc:
            raise BackendUnavailableError(
                f"backend {name!r} needs optional dependencies that are not installed ({exc}); "
                f"see README 'Install' for the extra to add") from exc
    return factory(**options)
