"""The interface every backend implements, and the registry that picks one by name.

A backend is constructed from a preset's options (``models/*.yaml``) and owns all model logic;
:class:`joyai_embodied.WorldModel` only validates inputs and delegates here. A backend declares its options
as a frozen dataclass (``config_class``, in ``configuration_<name>.py`` beside it): :func:`create_backend`
builds and checks that config from the options, then calls ``BackendClass(config)``.

Backends are found in three places, first match wins: :func:`register_backend` calls, the built-in table
below, and installed packages' entry points of group ``joyai_embodied.backends``
(``ros = ros_nodes.clients.ros_backend:RosBackend`` in a ``setup.py``).
"""

from __future__ import annotations

import importlib
import importlib.metadata
from abc import ABC, abstractmethod
from typing import Any, Callable, ClassVar, Sequence

from ..config import TypedConfig, config_from_options
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
    #: The options dataclass :func:`create_backend` builds from a preset (None: options passed as keywords).
    config_class: ClassVar[type[TypedConfig] | None] = None

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


#: Entry-point group under which installed packages register backends.
ENTRY_POINT_GROUP = "joyai_embodied.backends"

_BUILTIN: dict[str, str | Callable[..., Backend]] = {
    "geometric": "joyai_embodied.backends.geometric:GeometricBackend",
    "joyai-image": "joyai_embodied.backends.joyai_image:JoyAIImageBackend",
    "remote": "joyai_embodied.backends.remote:RemoteBackend",
}
_REGISTERED: dict[str, str | Callable[..., Backend]] = {}


def register_backend(name: str, factory: str | Callable[..., Backend]) -> None:
    """Registers a backend factory (a class, or a lazy ``"module:attr"`` string) under ``name``."""
    _REGISTERED[name] = factory


def _entry_point_backends() -> dict[str, str]:
    """``{name: "module:attr"}`` of the installed ``joyai_embodied.backends`` entry points (not imported)."""
    try:
        found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    except Exception:  # broken metadata of an unrelated distribution must not break the built-ins
        return {}
    return {ep.name: ep.value for ep in found}


def _registry() -> dict[str, str | Callable[..., Backend]]:
    # Read on every call: a package installed (or registered) while the process runs is found too;
    # the lookup is a metadata scan of about a millisecond, next to a backend's construction.
    return {**_entry_point_backends(), **_BUILTIN, **_REGISTERED}


def available_backends() -> list[str]:
    """Names of every backend that can be asked for (registered, built in, or installed entry points)."""
    return sorted(_registry())


def backend_class(name: str) -> Callable[..., Backend]:
    """The class (or factory) registered as ``name``, imported.

    Raises:
        BackendUnavailableError: unknown name, or its optional dependencies are not installed.
    """
    registry = _registry()
    if name not in registry:
        raise BackendUnavailableError(f"unknown backend {name!r}; available: {', '.join(sorted(registry))}")
    factory = registry[name]
    if isinstance(factory, str):
        module_name, _, attr = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except ImportError as exc:
            raise BackendUnavailableError(
                f"backend {name!r} needs optional dependencies that are not installed ({exc}); "
                f"see README 'Install' for the extra to add") from exc
        except AttributeError as exc:
            raise BackendUnavailableError(f"backend {name!r}: {module_name} has no {attr!r} ({exc})") from exc
    return factory


def create_backend(name: str, **options: Any) -> Backend:
    """Constructs the backend registered as ``name`` from ``options``.

    A backend class with a ``config_class`` gets one checked config object (unknown or wrongly typed keys are
    refused, naming the accepted ones); any other factory gets the options as keywords.

    Raises:
        BackendUnavailableError: unknown name, or its optional dependencies are not installed.
        InvalidInputError: an unknown, wrongly typed or out-of-range option.
    """
    factory = backend_class(name)
    config_class = getattr(factory, "config_class", None)
    if isinstance(factory, type) and config_class is not None:
        return factory(config_from_options(config_class, options, f"{name} backend"))
    return factory(**options)
