"""Scenes of the Ray Serve deployment: one bounded store actor every replica reaches, and each replica's view of it.

A scene is immutable once stored (an edit makes a new one), so replicas cache them. A cached scene is used
without asking the store while the replica holds a lease: each replica keeps one ``watch`` call parked at the
store, which returns at once when a handle is released or evicted (carrying those handles) and otherwise
every :data:`WATCH_S`, and a release or eviction returns only once every replica with a live lease has
applied it (its next ``watch`` says so) or its lease ran out (:data:`LEASE_S` after it sent its last
``watch``, counted on each side from a moment that makes the store's view the later one). So a released or
evicted handle is expired on every replica alike, as before, and a request on a cached scene costs no store
round trip (it was ~1.3 ms of the store's CPU and ~1 ms of the replica's per request, measured). A replica
without a lease (just started, or its event loop was busy past the lease) asks the store per request, in
parallel with the work, as it always did. Uses served from a cache reach the store's LRU order with the next
``watch`` (within :data:`WATCH_S`).

A scene-creating request gets a handle derived from its request id, and the store keeps the first scene put
under a handle: a resent edit is committed at most once.
"""

from __future__ import annotations

import asyncio
import contextvars
import time
import uuid
from collections import OrderedDict, deque
from typing import Any, Sequence

import ray

from ..errors import InvalidInputError, SceneExpiredError
from ..types import Scene

STORE_NAME = "joyai_scene_store"
STORE_NAMESPACE = "joyai"
_HANDLE_NAMESPACE = uuid.UUID("6f1c1b1e-4a2b-4f4e-9a51-3d8a0d6c2e11")
_REQUEST_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("joyai_request_id", default=None)
_PENDING: contextvars.ContextVar[list | None] = contextvars.ContextVar("joyai_pending_scenes", default=None)
# scenes this request fetched: it uses them even when they were not cached (removed while they travelled)
_FETCHED: contextvars.ContextVar[dict | None] = contextvars.ContextVar("joyai_fetched_scenes", default=None)
#: How long a replica may answer from its cache without asking the store, from when it sent its last watch;
#: also the longest a release or eviction waits for a replica that does not confirm it (busy or dead).
LEASE_S = 1.0
#: Longest a watch call stays parked at the store without a change (each return renews the lease).
WATCH_S = 0.25
#: Releases/evictions the store remembers for watchers; a watcher further behind drops its whole cache.
CHANGES_KEPT = 1024
#: Handles a replica remembers as removed, so a scene fetched while it was being removed is not cached.
GONE_KEPT = 4096


def request_context(request_id: str | None) -> list:
    """Marks the current request (its id names the scenes it creates); returns its list of scenes to commit."""
    pending: list = []
    _REQUEST_ID.set(request_id)
    _PENDING.set(pending)
    _FETCHED.set({})
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
        self.epoch = 0  # one more per release/eviction
        self._changes: deque[tuple[int, tuple[str, ...]]] = deque(maxlen=CHANGES_KEPT)
        self._watchers: dict[str, list[float]] = {}  # replica key -> [epoch it applied, lease end (monotonic)]
        self._changed: asyncio.Event | None = None  # set (and replaced) on each change: wakes parked watches

    def _event(self) -> asyncio.Event:
        if self._changed is None:
            self._changed = asyncio.Event()  # made in the actor's event loop
        return self._changed

    async def put(self, handle: str, scene: Scene) -> bool:
        """Stores ``scene`` under ``handle`` unless that handle is there already (a retried request)."""
        if handle in self._scenes:
            self.duplicates += 1
            return False
        self._scenes[handle] = scene
        evicted = []
        while len(self._scenes) > self.max_scenes:
            evicted.append(self._scenes.popitem(last=False)[0])
            self.evicted += 1
        if evicted:
            await self._publish(evicted)
        return True

    async def _publish(self, removed: list[str]) -> None:
        """Tells every watching replica; returns once each with a live lease applied it (or its lease ended)."""
        self.epoch += 1
        self._changes.append((self.epoch, tuple(removed)))
        event, self._changed = self._event(), asyncio.Event()
        event.set()
        target = self.epoch
        while True:
            now = time.monotonic()
            if not any(applied < target and lease_end > now for applied, lease_end in self._watchers.values()):
                break
            await asyncio.sleep(0.001)  # the watchers' next watch calls run meanwhile (rare: releases only)
        for key in [k for k, (_, lease_end) in self._watchers.items() if lease_end < now - 60]:
            del self._watchers[key]  # a replica gone for a minute

    async def watch(self, key: str, applied: int, used: Sequence[str]) -> tuple[int, Any]:
        """A replica's parked call: ``(epoch, handles removed since its epoch)`` (``None``: drop everything).

        Args:
            key: the replica's id. applied: the epoch whose removals it has applied (-1 at first).
            used: handles it answered from its cache since its last call (moved up in the LRU order).
        """
        for handle in used:
            if handle in self._scenes:
                self._scenes.move_to_end(handle)
        watcher = self._watchers.setdefault(key, [applied, 0.0])
        watcher[0] = applied  # what a waiting _publish looks for
        if applied == self.epoch:
            try:
                await asyncio.wait_for(self._event().wait(), WATCH_S)
            except asyncio.TimeoutError:
                pass
        watcher[1] = time.monotonic() + LEASE_S  # later than the replica's own lease end
        if applied >= 0 and applied >= self.epoch:
            return self.epoch, []
        if applied < 0 or self._changes[0][0] > applied + 1:
            return self.epoch, None  # its first call, or behind what is remembered: it drops its cache
        return self.epoch, [h for epoch, handles in self._changes if epoch > applied for h in handles]

    async def get(self, handle: str, cached: bool) -> Any:
        """``None`` when expired; ``True`` (still there, marked used) when the caller has it cached; else it."""
        scene = self._scenes.get(handle)
        if scene is None:
            return None
        self._scenes.move_to_end(handle)
        return True if cached else scene

    async def release(self, handles: Sequence[str]) -> int:
        removed = [h for h in handles if self._scenes.pop(h, None) is not None]
        if removed:
            await self._publish(removed)
        return len(removed)

    async def stats(self) -> dict[str, int]:
        return {"scenes": len(self._scenes), "max_scenes": self.max_scenes, "evicted": self.evicted,
                "duplicates": self.duplicates, "epoch": self.epoch, "watchers": len(self._watchers)}


def scene_store(max_scenes: int = 64) -> Any:
    """The store actor of this cluster, started when there is none (its bound is then ``max_scenes``)."""
    actor = ray.remote(num_cpus=0, max_restarts=0)(SceneStoreActor)
    return actor.options(name=STORE_NAME, namespace=STORE_NAMESPACE, get_if_exists=True).remote(max_scenes)


class SharedScenes:
    """The replica's view of the store, with the interface :class:`ModelService` uses (put/get/release).

    ``begin`` (before the service runs) fetches the request's scene when it is not cached. A cached one is
    used as is while the replica's lease holds (see the module docstring); without a lease ``begin`` only
    starts the store's check, which runs while the service works, and ``confirm`` (after) waits for it: a
    scene released or evicted meanwhile makes the request a SceneExpiredError, as on one server.
    ``put`` queues a new scene under the request's handle and ``commit`` writes it to the store.
    """

    def __init__(self, store: Any, max_scenes: int):
        self.store, self.max_scenes, self.evicted = store, max_scenes, 0
        self._cache: OrderedDict[str, Scene] = OrderedDict()
        self.key, self.applied, self.valid_until = uuid.uuid4().hex, -1, 0.0
        self.lease_hits = 0  # requests answered from the cache without a store call
        self._used: set[str] = set()
        self._gone: OrderedDict[str, None] = OrderedDict()  # removed handles: never cached again
        self._generation = 0  # one more when the whole cache is dropped: fetches begun before are not cached
        self._watching: asyncio.Future | None = None
        self._first: asyncio.Event | None = None  # set once the first watch has come back

    def __len__(self) -> int:
        return len(self._cache)

    async def _start_watching(self) -> None:
        if self._watching is None or self._watching.done():
            self._first = self._first or asyncio.Event()
            self._watching = asyncio.ensure_future(self._watch())
        if self.applied < 0:
            # The first watch tells a new replica to drop whatever it cached: a scene cached before that
            # answer would be dropped with it (and a replica whose first requests all came meanwhile would
            # cache nothing). Wait for it once, bounded by a lease (the store may be slow or gone).
            try:
                await asyncio.wait_for(self._first.wait(), LEASE_S)
            except asyncio.TimeoutError:
                pass

    async def _watch(self) -> None:
        """Keeps one watch call parked at the store; applies what it returns, then renews the lease."""
        while True:
            sent = time.monotonic()
            used, self._used = list(self._used), set()
            try:
                epoch, removed = await self.store.watch.remote(self.key, self.applied, used)
            except Exception:  # the store is gone (or restarting): no lease; requests ask the store
                self.valid_until = 0.0
                await asyncio.sleep(WATCH_S)
                continue
            if removed is None:
                self._cache.clear()
                self._generation += 1
            else:
                for handle in removed:
                    self._forget(handle)
            self.applied, self.valid_until = epoch, sent + LEASE_S  # no await between: applied, then trusted
            self._first.set()

    def _forget(self, handle: str) -> None:
        self._cache.pop(handle, None)
        self._gone[handle] = None
        while len(self._gone) > GONE_KEPT:
            self._gone.popitem(last=False)

    def _keep(self, handle: str, scene: Scene, generation: int) -> None:
        if generation == self._generation and handle not in self._gone:  # not removed while it travelled
            self._cache[handle] = scene
            self._cache.move_to_end(handle)
            while len(self._cache) > self.max_scenes:
                self._cache.popitem(last=False)

    async def fetch(self, handle: Any) -> None:
        if not isinstance(handle, str):
            return  # the service's own check names the field
        generation = self._generation
        found = await self.store.get.remote(handle, handle in self._cache)
        if found is None:
            self._cache.pop(handle, None)
        elif found is not True:
            fetched = _FETCHED.get()
            if fetched is not None:
                fetched[handle] = found
            self._keep(handle, found, generation)
        elif handle in self._cache:
            self._cache.move_to_end(handle)

    async def begin(self, handle: Any) -> Any:
        await self._start_watching()
        if isinstance(handle, str) and handle in self._cache:
            if time.monotonic() < self.valid_until:
                self.lease_hits += 1
                self._used.add(handle)
                self._cache.move_to_end(handle)
                return None
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
        scene = self._cache.get(handle)
        if scene is None:
            scene = (_FETCHED.get() or {}).get(handle)
        if scene is None:
            raise SceneExpiredError(handle)
        return scene

    def put(self, scene: Scene) -> str:
        handle = handle_for_request(_REQUEST_ID.get())
        pending = _PENDING.get()
        if pending is None:
            raise RuntimeError("a scene was created outside a deployment request")
        pending.append((handle, scene))
        return handle

    async def commit(self, pending: list) -> None:
        for handle, scene in pending:
            generation = self._generation
            await self.store.put.remote(handle, scene)
            self._keep(handle, scene, generation)


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
