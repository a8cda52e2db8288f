"""The one service layer: scene handles, edits and expiry, in front of a WorldModel, for every transport.

A transport (the ZMQ server, the ROS 2 nodes, a Ray Serve replica) decodes a request into core types and calls
either a typed method (``observe``, ``relation``, ``edit``...) or :meth:`ModelService.run` with a method name and
a parameter map. Scenes stay here and are referred to by handle; a handle the store no longer holds raises
:class:`~joyai_embodied.errors.SceneExpiredError` from this one place. Every method takes one lock, so executor
threads of a ROS node and the ZMQ server's worker can share a service (the backends are not thread-safe).
"""

from __future__ import annotations

import threading
import uuid
from collections import OrderedDict
from typing import Any, Callable, Mapping, Sequence

from ..errors import InvalidInputError, SceneExpiredError
from ..types import Answer, CameraMove, CameraPose, Edit, ImaginedView, Observation, Relation, Scene
from ..world_model import WorldModel

#: Methods :meth:`ModelService.run` dispatches (the ZMQ server answers ``info``/``health`` itself).
WORKER_METHODS = ("observe", "relation", "ask", "imagine", "imagine_batch", "edit", "answer_with_imagination",
                  "release")


class SceneStore:
    """Scenes held for clients, by handle, with a least-recently-used bound. Not locked: the service locks.

    Args:
        max_scenes: how many scenes to keep; storing one more evicts the least recently used.

    Raises:
        InvalidInputError: ``max_scenes`` below 1.
    """

    def __init__(self, max_scenes: int):
        if isinstance(max_scenes, bool) or not isinstance(max_scenes, int) or max_scenes < 1:
            raise InvalidInputError("max_scenes", "an integer >= 1", max_scenes)
        self.max_scenes = max_scenes
        self._scenes: OrderedDict[str, Scene] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._scenes)

    def put(self, scene: Scene) -> str:
        """Stores ``scene``; returns its new handle (evicting the least recently used beyond the bound)."""
        handle = uuid.uuid4().hex
        self._scenes[handle] = scene
        while len(self._scenes) > self.max_scenes:
            self._scenes.popitem(last=False)
            self.evicted += 1
        return handle

    def get(self, handle: Any) -> Scene:
        """The scene of ``handle``, now the most recently used.

        Raises:
            InvalidInputError: ``handle`` is not a string.
            SceneExpiredError: no scene has that handle (released, evicted, or the service restarted).
        """
        if not isinstance(handle, str):
            raise InvalidInputError("scene", "a scene handle string returned by observe or edit",
                                    type(handle).__name__)
        scene = self._scenes.get(handle)
        if scene is None:
            raise SceneExpiredError(handle)
        self._scenes.move_to_end(handle)
        return scene

    def release(self, handles: Sequence[str]) -> int:
        """Drops these handles; returns how many were held."""
        return sum(self._scenes.pop(h, None) is not None for h in handles)


class ModelService:
    """A WorldModel behind scene handles, safe to call from several threads.

    Args:
        world_model: the in-process model that does the work.
        max_scenes: bound of the scene store (see :class:`SceneStore`).

    Raises:
        InvalidInputError: ``max_scenes`` below 1.
    """

    def __init__(self, world_model: WorldModel, max_scenes: int = 64):
        self.world_model = world_model
        self.scenes = SceneStore(max_scenes)
        # One lock for the store and the model: a backend is not thread-safe, and a handle must not be
        # evicted between being looked up and being used.
        self._lock = threading.RLock()
        self._methods: dict[str, Callable[[Mapping[str, Any]], Any]] = {
            "observe": self._run_observe, "relation": self._run_relation, "ask": self._run_ask,
            "imagine": self._run_imagine, "imagine_batch": self._run_imagine_batch, "edit": self._run_edit,
            "answer_with_imagination": self._run_answer_with_imagination, "release": self._run_release,
        }

    # -- typed methods (what a transport adapter calls) -----------------------------------------------
    def observe(self, observation: Observation | Mapping[str, Any]) -> tuple[str, Scene]:
        """Builds a scene from an observation and keeps it.

        Returns:
            ``(handle, scene)``.

        Raises:
            InvalidInputError: a bad observation field (named).
        """
        with self._lock:
            scene = self.world_model.observe(observation)
            return self.scenes.put(scene), scene

    def scene(self, handle: str) -> Scene:
        """The scene held under ``handle``.

        Raises:
            SceneExpiredError: the handle is no longer held.
        """
        with self._lock:
            return self.scenes.get(handle)

    def relation(self, handle: str, subject: str, reference: str, frame: str | CameraPose = "camera") -> Relation:
        """:meth:`WorldModel.relation` on the scene of ``handle``.

        Raises:
            SceneExpiredError, UnknownObjectError, AmbiguousObjectError, InvalidInputError.
        """
        with self._lock:
            return self.world_model.relation(self.scenes.get(handle), subject, reference, frame=frame)

    def ask(self, handle: str, question: str, frame: str | CameraPose = "camera") -> Answer:
        """:meth:`WorldModel.ask` on the scene of ``handle``. Raises as :meth:`relation`."""
        with self._lock:
            return self.world_model.ask(self.scenes.get(handle), question, frame=frame)

    def imagine(self, handle: str, move: CameraMove | CameraPose, seed: int | None = None,
                init: str | None = None, strength: float | None = None) -> ImaginedView:
        """:meth:`WorldModel.imagine` on the scene of ``handle``; ``init`` / ``strength`` as there (the
        WorldModel refuses them for a backend without them). Raises as :meth:`relation`."""
        with self._lock:
            return self.world_model.imagine(self.scenes.get(handle), move, seed=seed, init=init, strength=strength)

    def imagine_batch(self, handle: str, moves: Sequence[CameraMove | CameraPose], seed: int | None = None,
                      init: str | None = None, strength: float | None = None) -> list[ImaginedView]:
        """:meth:`WorldModel.imagine_batch` on the scene of ``handle`` (one backend call for all moves).

        Raises:
            InvalidInputError: ``moves`` is not a list/tuple of CameraMove or CameraPose; ``init`` /
                ``strength`` out of range or given to a backend without them.
            SceneExpiredError: the handle is no longer held.
        """
        if not isinstance(moves, (list, tuple)):
            raise InvalidInputError("moves", "a list of CameraMove or CameraPose", type(moves).__name__)
        with self._lock:
            return self.world_model.imagine_batch(self.scenes.get(handle), list(moves), seed=seed, init=init,
                                                  strength=strength)

    def edit(self, handle: str, edit: Edit, seed: int | None = None) -> tuple[str, Scene]:
        """Applies ``edit`` to the scene of ``handle`` and keeps the result (the original stays as it was).

        Returns:
            ``(new handle, edited scene)``.

        Raises:
            SceneExpiredError, UnknownObjectError, InvalidInputError.
        """
        with self._lock:
            edited = self.world_model.edit(self.scenes.get(handle), edit, seed=seed)
            return self.scenes.put(edited), edited

    def answer_with_imagination(self, handle: str, question: str, max_views: int = 4) -> Answer:
        """:meth:`WorldModel.answer_with_imagination` on the scene of ``handle``. Raises as :meth:`relation`."""
        with self._lock:
            return self.world_model.answer_with_imagination(self.scenes.get(handle), question, max_views=max_views)

    def release(self, handles: Sequence[str]) -> int:
        """Drops scenes now; returns how many were held.

        Raises:
            InvalidInputError: ``handles`` is not a list of strings.
        """
        if not isinstance(handles, (list, tuple)) or not all(isinstance(h, str) for h in handles):
            raise InvalidInputError("scenes", "a list of scene handle strings", repr(handles)[:80])
        with self._lock:
            return self.scenes.release(handles)

    def stats(self) -> dict[str, int]:
        """Scenes held, their bound, and how many were evicted so far.

        Takes no lock: the ZMQ server's I/O thread answers ``info``/``health`` with these while a request may
        hold the lock for minutes (a learned imagine); each figure is one atomic read.
        """
        return {"scenes": len(self.scenes), "max_scenes": self.scenes.max_scenes,
                "scenes_evicted": self.scenes.evicted}

    # -- name + parameter map (what the ZMQ server calls) ----------------------------------------------
    def run(self, method: str, params: Mapping[str, Any]) -> Any:
        """Runs one request given by method name and parameter map; scene replies carry the new handle.

        Raises:
            InvalidInputError: an unknown method, or a missing/ill-typed parameter (named ``params.<key>``).
            Whatever the typed method raises.
        """
        if method not in self._methods:
            raise InvalidInputError("method", "one of " + ", ".join(WORKER_METHODS), repr(method))
        return self._methods[method](params)

    def run_if_free(self, method: str, params: Mapping[str, Any]) -> tuple[bool, Any]:
        """:meth:`run` at once when no other thread holds the service, else ``(False, None)`` without waiting.

        For an event loop that must never wait behind a long request (a Ray Serve replica's loop answers
        health checks): it runs a light request itself when the model is free and hands it to its model
        thread otherwise.

        Returns:
            ``(True, reply)`` when it ran; ``(False, None)`` when another thread holds the service.

        Raises:
            What :meth:`run` raises, when it ran.
        """
        if not self._lock.acquire(blocking=False):
            return False, None
        try:
            return True, self.run(method, params)
        finally:
            self._lock.release()

    def _run_observe(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return _scene_reply(*self.observe(_param(params, "observation")))

    def _run_relation(self, params: Mapping[str, Any]) -> Relation:
        return self.relation(_param(params, "scene"), _param(params, "subject"), _param(params, "reference"),
                             frame=params.get("frame", "camera"))

    def _run_ask(self, params: Mapping[str, Any]) -> Answer:
        return self.ask(_param(params, "scene"), _param(params, "question"), frame=params.get("frame", "camera"))

    def _run_imagine(self, params: Mapping[str, Any]) -> ImaginedView:
        return self.imagine(_param(params, "scene"), _param(params, "move"), seed=_seed(params),
                            init=params.get("init"), strength=params.get("strength"))

    def _run_imagine_batch(self, params: Mapping[str, Any]) -> list[ImaginedView]:
        moves = _param(params, "moves")
        if not isinstance(moves, list):
            raise InvalidInputError("params.moves", "a list of CameraMove or CameraPose", type(moves).__name__)
        return self.imagine_batch(_param(params, "scene"), moves, seed=_seed(params), init=params.get("init"),
                                  strength=params.get("strength"))

    def _run_edit(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return _scene_reply(*self.edit(_param(params, "scene"), _param(params, "edit"), seed=_seed(params)))

    def _run_answer_with_imagination(self, params: Mapping[str, Any]) -> Answer:
        return self.answer_with_imagination(_param(params, "scene"), _param(params, "question"),
                                            max_views=params.get("max_views", 4))

    def _run_release(self, params: Mapping[str, Any]) -> int:
        handles = _param(params, "scenes")
        if not isinstance(handles, list):
            raise InvalidInputError("params.scenes", "a list of scene handle strings", repr(handles)[:80])
        return self.release(handles)


def _scene_reply(handle: str, scene: Scene) -> dict[str, Any]:
    return {"handle": handle, "objects": list(scene.objects), "pivot": scene.pivot, "backend": scene.backend}


def _param(params: Mapping[str, Any], key: str) -> Any:
    if key not in params:
        raise InvalidInputError(f"params.{key}", "a value (missing from the request)")
    value = params[key]
    if key == "scene" and not isinstance(value, str):
        raise InvalidInputError("params.scene", "a scene handle string returned by observe or edit",
                                type(value).__name__)
    return value


def _seed(params: Mapping[str, Any]) -> int | None:
    seed = params.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidInputError("params.seed", "an integer or null", repr(seed))
    return seed
