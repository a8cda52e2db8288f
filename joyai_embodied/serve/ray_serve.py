"""The WorldModel as Ray Serve replicas behind the one service layer (``joyai-embodied serve-model --ray``).

Pieces, all Ray's own (no scheduler or cluster manager of ours):

- :mod:`.ray_scenes`: ONE bounded scene store in its own actor, so scenes are not pinned to a replica: any
  replica answers any handle, and a replica lost loses no scene (replicas cache scenes under a lease).
- :class:`WorldModelReplica` (deployed as ``WorldModelDeployment``): each Serve replica loads the model once and
  runs the ordinary :class:`~joyai_embodied.service.ModelService`. Concurrent ``imagine`` requests are merged by
  ``@serve.batch`` (batch size and wait from the preset's ``ray_serve`` section, or :func:`deploy`'s arguments).
- :class:`RayServeService`: the client-side proxy with the interface the ZMQ server calls (``run``,
  ``imagine_batch``, ``scene``, ``stats``), so ``ModelServer(..., service=RayServeService(...))`` forwards every
  request to the deployment; requests that find every Serve call in flight busy share the next one
  (:mod:`.ray_forward`). A request whose replica dies is re-sent (same request id) up to :data:`RETRY_ATTEMPTS`
  times; a scene-creating request (observe, edit) takes its handle from the request id, so a retried edit
  is committed to the store at most once.

Every call here needs a connected Ray (:func:`joyai_embodied.distributed.cluster.connect`).
"""

from __future__ import annotations

import asyncio
import contextvars
import os
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Mapping, Sequence

import ray
from ray import serve

from ..errors import InvalidInputError, RemoteError, SceneExpiredError, error_to_fields
from ..service import ModelService
from ..types import CameraMove, CameraPose, ImaginedView, Scene
from .ray_forward import GROUPED_METHODS, GroupForwarder
from .ray_handle import HandleLoop, ServedModel, retryable_errors, unwrap
from .ray_scenes import STORE_NAME, STORE_NAMESPACE, SharedScenes, StoreView, request_context, scene_store

APP_NAME = "joyai"
#: Preset section read by :func:`serve_options` (``ray_serve: {max_batch_size: 4, ...}``).
PRESET_SECTION = "ray_serve"
#: Defaults when the preset has no ``ray_serve`` section: 8 views is what one GPU batch of the real model holds.
DEFAULT_MAX_BATCH, DEFAULT_BATCH_WAIT_S = 8, 0.005
#: A request whose replica died is sent again this many times in all (Serve replaces the replica meanwhile).
RETRY_ATTEMPTS = 4
#: Pause before a resend, growing linearly: gives Serve's router time to drop the dead replica.
RETRY_BACKOFF_S = 0.25
#: Serve calls in flight per replica: one running, one queued behind it, so a replica never waits for the
#: front end between calls; more requests than that travel together (``ray_forward.GroupForwarder``).
REQUESTS_PER_REPLICA = 2
#: ZMQ worker threads per Serve call in flight: enough waiting requests for a free lane to take a group.
FRONT_END_THREADS_PER_CALL = 4
#: Longest a request may take (the real model's imagine takes ~90 s per 1024 px view on one GPU).
REQUEST_TIMEOUT_S = 900.0
#: Longest wait for the scene store's counts (``stats``, part of the front end's ``info`` reply).
STATS_WAIT_S = 30.0
#: Replica-side switches of Serve's ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` that apply to replicas reached by
#: handles only (no HTTP ingress, so not its direct ingress; the calling side's two are set on the handle,
#: ``ray_handle``): Serve's request wrapper and our code run in the replica's main event loop, not in a
#: second loop in a thread of its own (a thread hop each way per call: ~2 ms of a replica's CPU per empty
#: call, measured); request-path log lines buffered. The model's work still runs off that loop, in the
#: replica's model thread, so a long request never blocks Serve's health checks. A variable set in the
#: deploying process wins (``RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD=1`` restores Serve's default).
REPLICA_ENV = {"RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0", "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE": "1000"}


class WorldModelReplica:
    """One Serve replica: the model loaded once, the ordinary ModelService over the shared scene store.

    Args:
        preset: model preset name or YAML path (its ``ray_serve`` section is not a backend option).
        overrides: preset options to replace (``device``, ``path``...).
        max_scenes: bound of the replica's scene cache (the store has its own, set by :func:`deploy`).
        max_batch, batch_wait_s: ``@serve.batch`` size and wait for concurrent ``imagine`` requests.
    """

    def __init__(self, preset: str, overrides: Mapping[str, Any], max_scenes: int, max_batch: int,
                 batch_wait_s: float):
        self.world_model = load_world_model(preset, overrides)
        self.service = ModelService(self.world_model, max_scenes)
        self.scenes = SharedScenes(ray.get_actor(STORE_NAME, namespace=STORE_NAMESPACE), max_scenes)
        self.service.scenes = self.scenes  # the service keeps no scene of its own on a replica
        self.imagine_batched.set_max_batch_size(max_batch)
        self.imagine_batched.set_batch_wait_timeout_s(batch_wait_s)
        self.preset, self.batches, self.batched, self.requests = str(preset), 0, 0, 0
        # One thread runs the model (the service is locked anyway): the event loop stays free for Serve's
        # health checks and for the light requests it runs itself when the model is free (_run_service).
        self._model_thread = ThreadPoolExecutor(1, thread_name_prefix="joyai-model")
        self.inline = 0  # light requests the event loop ran itself

    async def run(self, method: str, params: Mapping[str, Any], request_id: str | None = None) -> Any:
        """Runs one protocol request; a JoyAIError comes back as ``{"__error__": fields}`` (types kept)."""
        pending = request_context(request_id)
        self.requests += 1  # one event loop per replica: no lock needed
        try:
            if method == "release":
                handles = params.get("scenes")
                if not isinstance(handles, list) or not all(isinstance(h, str) for h in handles):
                    raise InvalidInputError("params.scenes", "a list of scene handle strings", repr(handles)[:80])
                return await self.scenes.store.release.remote(handles)  # drops them on every replica
            handle = params.get("scene") if isinstance(params, Mapping) else None
            check = await self.scenes.begin(handle)
            try:
                if method == "imagine" and _batchable(params):
                    result = await self.imagine_batched((handle, params["move"], params.get("seed"),
                                                         params.get("init"), params.get("strength")))
                    if isinstance(result, BaseException):
                        raise result
                else:
                    result = await self._run_service(method, params)
            finally:
                await self.scenes.confirm(handle, check)  # an expired scene wins over its stale copy's answer
            await self.scenes.commit(pending)
            return result
        except Exception as exc:  # every failure is that request's error reply; the replica keeps serving
            return {"__error__": error_to_fields(exc)}

    async def _run_service(self, method: str, params: Mapping[str, Any]) -> Any:
        """A light request (~0.1 ms) runs here when the model is free; anything else in the model thread."""
        if method in GROUPED_METHODS:
            ran, result = self.service.run_if_free(method, params)
            if ran:
                self.inline += 1
                return result
        # the request's context (its id and pending scenes, ray_scenes) goes with it to the model thread
        call = contextvars.copy_context().run
        return await asyncio.get_running_loop().run_in_executor(self._model_thread, call, self.service.run,
                                                                method, params)

    async def run_many(self, items: Sequence[tuple]) -> list[Any]:
        """Several ``(method, params, request_id)`` requests of one Serve call, run concurrently (so imagines
        among them meet in ``@serve.batch``); one reply (or ``{"__error__": ...}``) per item, in order."""
        return list(await asyncio.gather(*(self.run(method, params, rid) for method, params, rid in items)))

    @serve.batch(max_batch_size=DEFAULT_MAX_BATCH, batch_wait_timeout_s=DEFAULT_BATCH_WAIT_S)
    async def imagine_batched(self, requests: list[tuple[Any, ...]]) -> list[Any]:
        """Concurrent imagine requests ``(scene, move, seed, init, strength)``: one ``imagine_batch`` per
        (scene, seed, init, strength), never merging different ones; each gets its view or error."""
        self.batches += 1
        self.batched += len(requests)
        call = contextvars.copy_context().run
        return await asyncio.get_running_loop().run_in_executor(self._model_thread, call, self._imagine_groups,
                                                                requests)

    def _imagine_groups(self, requests: list[tuple[Any, ...]]) -> list[Any]:
        groups: dict[tuple, list[int]] = {}
        for index, (handle, _, seed, init, strength) in enumerate(requests):
            groups.setdefault((handle, seed, init, strength), []).append(index)
        results: list[Any] = [None] * len(requests)
        for indices in groups.values():
            handle, _, seed, init, strength = requests[indices[0]]
            options = {"seed": seed, "init": init, "strength": strength}
            try:
                views = self.service.imagine_batch(handle, [requests[i][1] for i in indices], **options)
                for i, view in zip(indices, views):
                    results[i] = view
            except Exception:  # one bad move must not fail its neighbours: run them one by one
                for i in indices:
                    try:
                        results[i] = self.service.imagine(handle, requests[i][1], **options)
                    except Exception as exc:
                        results[i] = exc
        return results

    def info(self) -> dict[str, Any]:
        """Who answered: replica id, pid, node; plus the backend's info and batching counters."""
        context = serve.get_replica_context()
        return {"replica": str(getattr(context.replica_id, "unique_id", context.replica_id)), "pid": os.getpid(),
                "node_id": ray.get_runtime_context().get_node_id(), "node_ip": ray.util.get_node_ip_address(),
                "preset": self.preset, "backend": self.world_model.backend.name, "requests": self.requests,
                "backend_info": self.world_model.info(), "batches": self.batches, "batched_requests": self.batched,
                "cached_scenes": len(self.scenes), "lease_hits": self.scenes.lease_hits,
                "inline": self.inline}


# The class stays importable by name (replicas unpickle it by reference, not by value).
# No access log: Serve writes (and flushes) one line per request, ~1 ms of a replica's CPU each (measured).
# Log level WARNING: with the access log off Serve still builds each request's log record (caller lookup
# included) before a filter drops it, ~13% of a replica's Python time per relation (profiled); at WARNING
# ``logger.info`` returns at once. Warnings and errors are still logged.
WorldModelDeployment = serve.deployment(
    name="WorldModel", ray_actor_options={"num_cpus": 1},
    logging_config={"enable_access_log": False, "log_level": "WARNING"})(WorldModelReplica)


def _batchable(params: Any) -> bool:
    """A well-formed imagine goes to the batcher; anything else to the service, whose checks name the field."""
    if not isinstance(params, Mapping) or not isinstance(params.get("scene"), str) or "move" not in params:
        return False
    seed, init, strength = params.get("seed"), params.get("init"), params.get("strength")
    return ((seed is None or (isinstance(seed, int) and not isinstance(seed, bool)))
            and (init is None or isinstance(init, str))
            and (strength is None or (isinstance(strength, (int, float)) and not isinstance(strength, bool))))


def load_world_model(preset: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """``WorldModel.load(preset, **overrides)`` with the preset's ``ray_serve`` section left out."""
    from ..backends.base import create_backend
    from ..world_model import WorldModel, resolve_preset

    options = resolve_preset(preset)
    if PRESET_SECTION not in options:
        return WorldModel.load(preset, **dict(overrides or {}))
    options.pop(PRESET_SECTION)
    options.update({k: v for k, v in dict(overrides or {}).items() if v is not None})
    backend_name = options.pop("backend")
    for key in ("name", "aliases", "description"):
        options.pop(key, None)
    return WorldModel(create_backend(backend_name, **options), {"backend": backend_name, **options})


def serve_options(preset: str) -> dict[str, Any]:
    """The preset's ``ray_serve`` section (``max_batch_size``, ``batch_wait_timeout_s``, ``num_gpus``, ``num_cpus``)."""
    from ..world_model import resolve_preset

    section = resolve_preset(preset).get(PRESET_SECTION) or {}
    known = {"max_batch_size", "batch_wait_timeout_s", "num_gpus", "num_cpus"}
    if not isinstance(section, Mapping) or set(section) - known:
        raise InvalidInputError(f"preset {preset}: {PRESET_SECTION}", "a mapping with keys " + ", ".join(sorted(known)),
                                section)
    return dict(section)


# -- client side: deploy, and the proxy the ZMQ server (or any caller) uses ------------------------------------

def deploy(preset: str = "geometric", replicas: int = 1, *, overrides: Mapping[str, Any] | None = None,
           max_scenes: int = 64, max_batch: int | None = None, batch_wait_s: float | None = None,
           num_cpus: float | None = None, num_gpus: float | None = None,
           app_name: str = APP_NAME, health_check_s: tuple[float, float] | None = None) -> "RayServeService":
    """Deploys the model as ``replicas`` Serve replicas (no HTTP proxy: requests come through handles only).

    Args:
        preset: model preset name or YAML path; its ``ray_serve`` section gives defaults for the rest.
        replicas: number of replicas (each loads the model once).
        overrides: preset options to replace on every replica (e.g. ``{"device": "cuda"}``).
        max_scenes: bound of the shared scene store (least recently used evicted first).
        max_batch, batch_wait_s: ``@serve.batch`` size and longest wait for concurrent imagines.
        num_cpus, num_gpus: resources of each replica (``num_gpus=1`` puts each on its own GPU).
        app_name: Serve application name.
        health_check_s: Serve's ``(health_check_period_s, health_check_timeout_s)``; Serve's defaults (10, 30)
            when None.

    Returns:
        A :class:`RayServeService` for the deployment.

    Raises:
        InvalidInputError: a count or resource is out of range, or the preset's ``ray_serve`` section is malformed.
    """
    for name, value in (("replicas", replicas), ("max_scenes", max_scenes)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InvalidInputError(name, "an integer >= 1", value)
    options = serve_options(preset)
    max_batch = int(max_batch if max_batch is not None else options.get("max_batch_size", DEFAULT_MAX_BATCH))
    batch_wait_s = float(batch_wait_s if batch_wait_s is not None
                         else options.get("batch_wait_timeout_s", DEFAULT_BATCH_WAIT_S))
    if max_batch < 1 or not 0 <= batch_wait_s <= 10:
        raise InvalidInputError("max_batch / batch_wait_s", "max_batch >= 1 and a wait in [0, 10] s",
                                (max_batch, batch_wait_s))
    actor_options: dict[str, Any] = {
        "num_cpus": float(num_cpus if num_cpus is not None else options.get("num_cpus", 1)),
        # read by Serve when the replica's process starts (merged with the job's env_vars)
        "runtime_env": {"env_vars": {k: os.environ.get(k, v) for k, v in REPLICA_ENV.items()}}}
    gpus = num_gpus if num_gpus is not None else options.get("num_gpus")
    if gpus:
        # Serve would wait forever for a GPU the cluster does not have: refuse at once instead.
        available = float(ray.cluster_resources().get("GPU", 0.0))
        if float(gpus) * replicas > available:
            source = "num_gpus" if num_gpus is not None else f"preset {preset}: {PRESET_SECTION}.num_gpus"
            raise InvalidInputError(source, f"at most {available:g} GPUs in all for {replicas} replica(s) (the "
                                    "cluster's); pass num_gpus=0 (--replica-gpus 0) to serve on CPUs", gpus)
        actor_options["num_gpus"] = float(gpus)
    # The store lives as long as a handle to it does (not detached): the returned service keeps this one.
    store = scene_store(max_scenes)
    ray.get(store.stats.remote(), timeout=120)  # registered under its name before a replica looks it up
    serve.start(proxy_location="Disabled")
    app = WorldModelDeployment.options(
        num_replicas=replicas, ray_actor_options=actor_options,
        # room for a full batch to gather on one replica, plus the requests queued behind it
        max_ongoing_requests=max(2 * max_batch, 8),
        **({} if health_check_s is None else {"health_check_period_s": float(health_check_s[0]),
                                               "health_check_timeout_s": float(health_check_s[1])}),
    ).bind(str(preset), dict(overrides or {}), max_scenes, max_batch, batch_wait_s)
    return RayServeService(serve.run(app, name=app_name, route_prefix=None), store=store, replicas=replicas)


def undeploy(app_name: str = APP_NAME) -> None:
    """Deletes the application and the scene store (their scenes are gone)."""
    serve.delete(app_name)
    try:
        ray.kill(ray.get_actor(STORE_NAME, namespace=STORE_NAMESPACE))
    except ValueError:
        pass  # no store


def _running_replicas(app_name: str) -> int:
    """Replicas of the application's deployment that are running (1 when Serve does not say)."""
    try:
        deployments = serve.status().applications[app_name].deployments.values()
        return max(sum(d.replica_states.get("RUNNING", 0) for d in deployments), 1)
    except Exception:  # no such application yet, or a Serve version with another status shape
        return 1


class RayServeService:
    """The ModelService interface (``run``, ``imagine_batch``, ``scene``, ``stats``) over a Serve deployment.

    Give it to the ZMQ server (``ModelServer(service.world_model, bind, service=service)``) to keep the ZMQ,
    remote-backend and ROS ``--address`` front ends while Ray Serve does the work: the server then runs its
    I/O and requests as coroutines in this service's event loop (:meth:`loop_front_end`). Thread-safe: the
    blocking methods may be called from any thread but the loop's; coroutines in the loop await
    :meth:`run_async`.

    Args:
        handle: the deployment handle; by default that of the application ``app_name``.
        app_name: Serve application name.
        attempts: tries per request when its replica dies (:data:`RETRY_ATTEMPTS`).
        timeout_s: longest wait for one reply.
        store: the scene store actor's handle; by default looked up by name.
        replicas: replicas behind the handle; by default counted from ``serve.status()``. Sets
            :attr:`concurrency`.

    Attributes:
        concurrency: requests worth sending at once: Serve calls in flight (replicas x
            :data:`REQUESTS_PER_REPLICA`) x :data:`FRONT_END_THREADS_PER_CALL`: the worker threads a ZMQ
            server given ``workers=None`` and no loop front end would run.
        forwarder: the :class:`~.ray_forward.GroupForwarder` (its ``calls`` / ``grouped`` say how requests
            were grouped).
        calls: the :class:`~.ray_handle.HandleLoop` (its ``loop`` runs every Serve call).
    """

    def __init__(self, handle: Any = None, app_name: str = APP_NAME, attempts: int = RETRY_ATTEMPTS,
                 timeout_s: float = REQUEST_TIMEOUT_S, store: Any = None, replicas: int | None = None):
        self.handle = handle if handle is not None else serve.get_app_handle(app_name)
        self.calls = HandleLoop(self.handle)  # the router in a loop of ours; light calls over gRPC
        lanes = REQUESTS_PER_REPLICA * (replicas if replicas is not None else _running_replicas(app_name))
        self.concurrency = lanes * FRONT_END_THREADS_PER_CALL
        self.forwarder = GroupForwarder(lambda items: self._call("run_many", items), lanes)
        self.scenes = StoreView(store if store is not None else ray.get_actor(STORE_NAME, namespace=STORE_NAMESPACE))
        self.attempts, self.timeout_s = attempts, timeout_s
        self.world_model = ServedModel(self)
        self.retries = 0  # resends after a lost replica (read by tests and benchmarks; counted in the loop)
        self._store_stats = {"scenes": 0, "max_scenes": 0, "evicted": 0}  # the last the store said

    def loop_front_end(self, server: Any, max_queue: int) -> Any:
        """What a ZMQ ModelServer uses instead of worker threads: its I/O and requests in :attr:`calls`' loop.

        Args:
            server: the :class:`~joyai_embodied.serve.zmq_server.ModelServer`.
            max_queue: its bound on waiting requests; requests in flight are bounded by that plus
                :attr:`concurrency` (one more gets "busy").
        """
        from .loop_front import LoopFrontEnd

        return LoopFrontEnd(server, self, self.calls.loop, max_queue + self.concurrency)

    async def run_async(self, method: str, params: Mapping[str, Any], request_id: str | None = None) -> Any:
        """:meth:`run` as a coroutine of the handle's loop (no thread hop): same result and errors."""
        item = (method, dict(params), request_id or uuid.uuid4().hex)
        if method == "imagine":  # past the lanes: concurrent imagines meet in the replica's @serve.batch
            return unwrap(await self._call("run", *item))
        return unwrap(await self.forwarder.submit(item))

    def run(self, method: str, params: Mapping[str, Any], request_id: str | None = None) -> Any:
        """Runs one request on some replica; raises what the model raised there (same class and fields).

        Raises:
            RemoteError: no replica answered in :attr:`attempts` tries.
        """
        return self.calls.run(self.run_async(method, params, request_id))

    def imagine_batch(self, handle: str, moves: Sequence[CameraMove | CameraPose], seed: int | None = None,
                      init: str | None = None, strength: float | None = None) -> list[ImaginedView]:
        """Several moves of one scene in one backend call on one replica (``init`` / ``strength`` when set)."""
        options = {k: v for k, v in (("init", init), ("strength", strength)) if v is not None}
        return self.run("imagine_batch", {"scene": handle, "moves": list(moves), "seed": seed, **options})

    imagine_many = imagine_batch

    async def scene_async(self, handle: str) -> Scene:
        """:meth:`scene` as a coroutine of the handle's loop."""
        scene = await self.scenes.store.get.remote(handle, False) if isinstance(handle, str) else None
        if scene is None:
            raise SceneExpiredError(str(handle))
        return scene

    def scene(self, handle: str) -> Scene:
        """The scene held under ``handle`` (fetched from the store).

        Raises:
            SceneExpiredError: the handle is no longer held.
        """
        return self.calls.run(self.scene_async(handle))

    async def refresh_stats(self, timeout_s: float = STATS_WAIT_S) -> None:
        """Asks the store for its counts (what :meth:`stats` reports in the loop).

        Raises:
            TimeoutError: the store did not answer within ``timeout_s``.
        """
        async with asyncio.timeout(timeout_s):
            self._store_stats = await self.scenes.store.stats.remote()

    def stats(self) -> dict[str, int]:
        """Scenes held in the shared store, their bound, evictions (the keys ModelService.stats has); in the
        handle's loop, as the last :meth:`refresh_stats` got them."""
        if not self.calls.in_loop():
            self.calls.run(self.refresh_stats())
        stats = self._store_stats
        return {"scenes": stats["scenes"], "max_scenes": stats["max_scenes"], "scenes_evicted": stats["evicted"]}

    async def info_async(self, timeout_s: float | None = None) -> dict[str, Any]:
        """:meth:`info` as a coroutine of the handle's loop."""
        return unwrap(await self._call("info", timeout_s=timeout_s))

    def info(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The answering replica's id, pid, node and backend info (see :meth:`WorldModelReplica.info`).

        Raises:
            TimeoutError: no reply within ``timeout_s`` (default :attr:`timeout_s`).
        """
        return self.calls.run(self.info_async(timeout_s))

    async def _call(self, name: str, *args: Any, timeout_s: float | None = None) -> Any:
        last: BaseException | None = None
        for attempt in range(self.attempts):
            try:
                return await self.calls.call_async(name, args, timeout_s or self.timeout_s)
            except retryable_errors() as exc:
                last = exc
                self.retries += 1
                await asyncio.sleep(RETRY_BACKOFF_S * (attempt + 1))
        raise RemoteError(f"no Ray Serve replica answered {name} in {self.attempts} tries: "
                          f"{type(last).__name__}: {last}")
