"""Scenes of the Ray Serve deployment: one bounded store actor every replica reaches, and each replica's view of it.

A scene is immutable once stored (an edit makes a new one), so replicas cache them; on every request a
replica still asks the store whether the handle is held (in parallel with the work), so a handle released
or evicted is expired on every replica alike. A scene-creating request gets a handle derived from its
request id, and the store keeps the first scene put under a handle: a resent edit is committed at most once.
"""

from __future__ import annotations

import contextvars
import uuid
from collections import OrderedDict
from typing import Any, Sequence

import ray

from ..errors import InvalidInputError, SceneExpiredError
from ..types import Scene

STORE_NAME = "joyai_scene_store"
STORE_NAMESPACE = "joyai"
_HANDLE_NAMESPACE = uuid.UUID("6f1c1b1e-4a2b-4f4e-9a51-3d8a0d6c2e11")
_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("joyai_request_id", default=None)
_PENDING: contextvars.ContextVar[list | None] = contextvars.ContextVar("joyai_pending_scenes", default=None)


def request_context(request_id: str | None) -> list:
    """Marks the current request (its id names the scenes it creates); returns its list of scenes to commit."""
    pending: list = []
    _REQUEST_ID.set(request_id)
    _PENDING.set(pending)
    return pending


def handle_for_request(request_id: str | None) -> str:
    """The scene handle a scene-creating request gets: derived from its id, so a retry gets the same one."""
    return uuid.uuid4().hex if request_id is None else uuid.uuid5(_HANDLE_NAMESPACE, request_id).hex


class SceneStoreActor:
    """The cluster's one scene store (run as a Ray actor by :func:`scene_store`): LRU-bounded, by handle.

    Args:
        max_scenes: scenes kept; one more evicts the least recently used (as the service's SceneStore).
    """

    def __init__(self, max_scenes: int):
        if isinstance(max_scenes, bool) or not isinstance(max_scenes, int) or max_scenes < 1:
            raise InvalidInputError("max_scenes", "an integer >= 1", max_scenes)
        self.max_scenes, self.evicted, self.duplicates = max_scenes, 0, 0
        self._scenes: OrderedDict[str, Scene] = OrderedDict()

    def put(self, handle: str, scene: Scene) -> bool:
        """Stores ``scene`` under ``handle`` unless that handle is there already (a retried request)."""
        if handle in self._scenes:
            self.duplicates += 1
            return False
        self._scenes[handle] = scene
        while len(self._scenes) > self.max_scenes:
            self._scenes.popitem(last=False)
            self.evicted += 1
        return True

    def get(self, handle: str, cached: bool) -> Any:
        """``None`` when expired; ``True`` (still there, marked used) when the caller has it cached; else it."""
        scene = self._scenes.get(handle)
        if scene is None:
            return None
        self._scenes.move_to_end(handle)
        return True if cached else scene

    def release(self, handles: Sequence[str]) -> int:
        return sum(self._scenes.pop(h, None) is not None for h in handles)

    def stats(self) -> dict[str, int]:
        return {"scenes": len(self._scenes), "max_scenes": self.max_scenes, "evicted": self.evicted,
                "duplicates": self.duplicates}


def scene_store(max_scenes: int = 64) -> Any:
    """The store actor of this cluster, started when there is none (its bound is then ``max_scenes``)."""
    actor = ray.remote(num_cpus=0, max_restarts=0)(SceneStoreActor)
    return actor.options(name=STORE_NAME, namespace=STORE_NAMESPACE, get_if_exists=True).remote(max_scenes)


class SharedScenes:
    """The replica's view of the store, with the interface :class:`ModelService` uses (put/get/release).

    ``begin`` (before the service runs) fetches the request's scene when it is not cached; when it is, it
    only starts the store's check, which runs while the service works, and ``confirm`` (after) waits for
    it: a scene released or evicted meanwhile makes the request a SceneExpiredError, as on one server.
    ``put`` queues a new scene under the request's handle and ``commit`` writes it to the store.
    """

    def __init__(self, store: Any, max_scenes: int):
        self.store, self.max_scenes, self.evicted = store, max_scenes, 0
        self._cache: OrderedDict[str, Scene] = OrderedDict()

    def __len__(self) -> int:
        return len(self._cache)

    async def fetch(self, handle: Any) -> None:
        if not isinstance(handle, str):
            return  # the service's own check names the field
        found = await self.store.get.remote(handle, handle in self._cache)
        if found is None:
            self._cache.pop(handle, None)
        elif found is not True:
            self._cache[handle] = found
        if handle in self._cache:
            self._cache.move_to_end(handle)
            while len(self._cache) > self.max_scenes:
                self._cache.popitem(last=False)

    async def begin(self, handle: Any) -> Any:
        if isinstance(handle, str) and handle in self._cache:
            return self.store.get.remote(handle, True)  # awaited in confirm, after the work it overlaps
        await self.fetch(handle)
        return None

    async def confirm(self, handle: Any, check: Any) -> None:
        if check is not None and (await check) is None:
            self._cache.pop(handle, None)
            raise SceneExpiredError(handle)

    def get(self, handle: Any) -> Scene:
        if not isinstance(handle, str):
            raise InvalidInputError("params.scene", "a scene handle string returned by observe or edit",
                                    type(handle).__name__)
        if handle not in self._cache:
            raise SceneExpiredError(handle)
        return self._cache[handle]

    def put(self, scene: Scene) -> str:
        handle = handle_for_request(_REQUEST_ID.get())
        pending = _PENDING.get()
        if pending is None:
            raise RuntimeError("a scene was created outside a deployment request")
        pending.append((handle, scene))
        return handle

    async def commit(self, pending: list) -> None:
        for handle, scene in pending:
            await self.store.put.remote(handle, scene)
            self._cache[handle] = scene
        while len(self._cache) > self.max_scenes:
            self._cache.popitem(last=False)


class StoreView:
    """``len()``, ``max_scenes`` and ``evicted`` of the shared store (as the service's SceneStore has them)."""

    def __init__(self, store: Any):
        self.store = store

    def stats(self) -> dict[str, int]:
        return ray.get(self.store.stats.remote(), timeout=30)

    def __len__(self) -> int:
        return self.stats()["scenes"]

    @property
    def max_scenes(self) -> int:
        return self.stats()["max_scenes"]

    @property
    def evicted(self) -> int:
        return self.stats()["evicted"]
