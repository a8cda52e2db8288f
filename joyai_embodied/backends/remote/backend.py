"""`remote` backend: the WorldModel API served by a model server on another host (usually the GPU host).

Scenes live on the server. ``observe`` and ``edit`` return a :class:`~joyai_embodied.Scene` whose
``objects`` come back with the reply and whose ``data`` is a :class:`RemoteSceneHandle`; every later call
sends only the handle. The server keeps a bounded number of scenes (least recently used evicted first):
release the ones you are done with (:meth:`RemoteBackend.release`), and observe again when a call raises
:class:`~joyai_embodied.errors.SceneExpiredError`.

Example:
    >>> wm = WorldModel.load("remote", address="tcp://gpu-host:5555", server_key="keys/server.key",
    ...                      client_key="keys/clients/robot1.key_secret")
    >>> scene = wm.observe(obs)
    >>> wm.relation(scene, "red cube", "blue cylinder").left_of
    >>> wm.backend.release(scene)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from ...config import resolve_config
from ...errors import InvalidInputError, RemoteError
from ...types import Answer, CameraMove, CameraPose, Edit, ImaginedView, Observation, Relation, Scene, SceneObject
from ..base import Backend, Frame
from .configuration_remote import RemoteConfig


@dataclass(frozen=True)
class RemoteSceneHandle:
    """``Scene.data`` of a remote scene: the server's handle for it.

    Attributes:
        handle: the server's scene id.
        address: the server that holds it.
        server_backend: the backend that built the scene on the server (``"geometric"``, ``"joyai-image"``).
    """

    handle: str
    address: str
    server_backend: str


class RemoteBackend(Backend):
    """A backend that forwards every call to ``joyai-embodied serve-model``.

    Args:
        config: the options (:class:`RemoteConfig`: address, timeout_s, retries, server_key, client_key);
            or give them as keywords. There is no ``device``: the server's preset picks its device.

    Raises:
        InvalidInputError: an unknown option, a bad address, timeout, retry count or key option.
    """

    name = "remote"
    config_class = RemoteConfig

    def __init__(self, config: RemoteConfig | None = None, **options: Any):
        from .client import ModelClient  # zmq is only needed once a remote backend is made

        self.config = resolve_config(RemoteConfig, config, options, "remote backend")
        self.client = ModelClient(self.config.address, timeout_s=self.config.timeout_s, retries=self.config.retries,
                                  server_key=self.config.server_key, client_key=self.config.client_key)
        self.address = self.config.address

    # -- scenes -------------------------------------------------------------------------------------
    def observe(self, observation: Observation) -> Scene:
        return self._scene(self.client.call("observe", {"observation": observation}), observation, ())

    def edit(self, scene: Scene, edit: Edit, seed: int | None = None) -> Scene:
        reply = self.client.call("edit", {"scene": self._handle(scene), "edit": edit, "seed": seed})
        return self._scene(reply, scene.observation, (*scene.edits, edit))

    def release(self, *scenes: Scene) -> int:
        """Tells the server to drop these scenes now; returns how many it still held.

        Raises:
            InvalidInputError: a scene was not made by this backend.
        """
        handles = [self._handle(scene) for scene in scenes]
        return int(self.client.call("release", {"scenes": handles})) if handles else 0

    # -- understanding ---------------------------------------------------------------------------------
    def relation(self, scene: Scene, subject: str, reference: str, frame: Frame = "camera") -> Relation:
        return self._typed(self.client.call("relation", {"scene": self._handle(scene), "subject": subject,
                                                         "reference": reference, "frame": frame}), Relation)

    def ask(self, scene: Scene, question: str, frame: Frame = "camera") -> Answer:
        return self._typed(self.client.call("ask", {"scene": self._handle(scene), "question": question,
                                                    "frame": frame}), Answer)

    def answer_with_imagination(self, scene: Scene, question: str, max_views: int = 4) -> Answer:
        return self._typed(self.client.call("answer_with_imagination", {
            "scene": self._handle(scene), "question": question, "max_views": max_views}), Answer)

    # -- imagination -----------------------------------------------------------------------------------
    def imagine(self, scene: Scene, move: CameraMove | CameraPose, seed: int | None = None,
                init: str | None = None, strength: float | None = None) -> ImaginedView:
        """One view, imagined on the server; ``init`` / ``strength`` are sent only when set, and the server's
        backend decides whether it takes them (``InvalidInputError`` naming ``init`` / ``strength`` if not)."""
        params = {"scene": self._handle(scene), "move": move, "seed": seed, **_img2img(init, strength)}
        return self._typed(self.client.call("imagine", params), ImaginedView)

    def imagine_batch(self, scene: Scene, moves: Sequence[CameraMove | CameraPose], seed: int | None = None,
                      init: str | None = None, strength: float | None = None) -> list[ImaginedView]:
        """Several views in one request (one backend call on the server); ``init`` / ``strength`` as :meth:`imagine`.

        Raises:
            InvalidInputError: more than ``wire.MAX_BATCH_VIEWS`` moves (before sending), or as :meth:`imagine`.
        """
        from . import wire

        if len(moves) > wire.MAX_BATCH_VIEWS:  # refused before sending, as the server would refuse it
            raise InvalidInputError("moves", f"at most {wire.MAX_BATCH_VIEWS} moves per remote imagine_batch (its "
                                    f"reply must fit in {wire.MAX_ARRAYS} array frames); split the batch",
                                    f"{len(moves)} moves")
        views = self.client.call("imagine_batch", {"scene": self._handle(scene), "moves": list(moves),
                                                   "seed": seed, **_img2img(init, strength)})
        if not isinstance(views, list) or len(views) != len(moves):
            raise RemoteError(f"model server at {self.address} answered imagine_batch of {len(moves)} moves "
                              f"with {type(views).__name__}")
        return [self._typed(view, ImaginedView) for view in views]

    # -- server ---------------------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """The server's info (its backend, device, queue depth, versions), plus this client's address."""
        server = self.client.info()
        return {"backend": self.name, "address": self.address, "server": server,
                "device": server.get("device", "")}

    def close(self) -> None:
        self.client.close()

    # -- helpers --------------------------------------------------------------------------------------
    def _handle(self, scene: Scene) -> str:
        data = scene.data
        if not isinstance(data, RemoteSceneHandle) or data.address != self.address:
            raise InvalidInputError("scene", f"a Scene observed through the remote backend at {self.address}",
                                    f"a scene of backend {scene.backend!r}")
        return data.handle

    def _scene(self, reply: Any, observation: Observation, edits: tuple) -> Scene:
        if not isinstance(reply, dict) or not isinstance(reply.get("handle"), str):
            raise RemoteError(f"model server at {self.address} sent a scene reply without a handle")
        objects = reply.get("objects", [])
        if not all(isinstance(o, SceneObject) for o in objects):
            raise RemoteError(f"model server at {self.address} sent scene objects of the wrong type")
        server_backend = str(reply.get("backend", ""))
        return Scene(observation=observation, objects=list(objects), pivot=np.asarray(reply.get("pivot")),
                     backend=self.name, data=RemoteSceneHandle(reply["handle"], self.address, server_backend),
                     edits=edits)

    def _typed(self, value: Any, cls: type) -> Any:
        if not isinstance(value, cls):
            raise RemoteError(f"model server at {self.address} answered with {type(value).__name__}, "
                              f"expected {cls.__name__}")
        return value


def _img2img(init: str | None, strength: float | None) -> dict[str, Any]:
    """The img2img parameters that were set (unset ones are left out of the request, as a default)."""
    return {k: v for k, v in (("init", init), ("strength", strength)) if v is not None}
