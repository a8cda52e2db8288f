"""Calling a Serve deployment handle from the ZMQ front end's threads, the way Serve's throughput mode does.

Ray 2.60's ``RAY_SERVE_THROUGHPUT_OPTIMIZED=1`` sets, among others, two switches of the calling side; both are
per-handle options, so they are set here on the handle itself (no environment variable in the front end's
process, and nothing else in that process changes):

- ``_run_router_in_separate_loop=False`` (``RAY_SERVE_RUN_ROUTER_IN_SEPARATE_LOOP=0``): the router runs in the
  event loop that awaits the call. :class:`HandleLoop` owns that loop, in one thread; a worker thread hands
  it a coroutine and waits for its result. By default Serve runs the router in a loop of its own and a
  synchronous ``.result()`` then waits on a second hop back (the reply's object ref, resolved in the caller).
- ``_by_reference=False`` (``RAY_SERVE_USE_GRPC_BY_DEFAULT=1``): the request goes to the replica's gRPC server
  (arguments and reply pickled into the message) instead of an actor call through Ray's object store. Used
  for requests that carry no frames (:data:`GRPC_METHODS`) and for an observe whose frame fits
  (:data:`GRPC_MAX_ARRAY_BYTES`): the replica's gRPC server takes at most 4 MiB per message by default (a
  640x480 observation is 3.4 MB, an imagined view 3.7 MB); larger frames and every view go through Ray's
  object store.

Measured with the replica-side switches (``ray_serve.REPLICA_ENV``), A/B against the revision before at the
same load (8-9, serve/README.md): an empty Serve call one at a time from a thread, p50 9.7 / 8.2 ms -> 4.7 /
5.4 ms; a relation through the ZMQ front end, CPU over all processes 15.4 / 13.3 ms -> 6.5 / 8.2 ms.
"""

from __future__ import annotations

import asyncio
import dataclasses
import threading
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import error_from_fields

#: Methods sent over gRPC: small arguments and small replies (no frames, no views).
GRPC_METHODS = frozenset({"relation", "release", "ask", "edit", "info"})
#: Methods whose request carries a frame and whose reply is small: over gRPC when the frame fits.
GRPC_FRAME_METHODS = frozenset({"observe"})
#: Most frame bytes sent over gRPC: under the replica gRPC server's 4 MiB per message with room for the rest
#: (a 640x480 RGB-D frame is 3.4 MB). Measured at load 7-9, observe by handle: front end CPU per observe
#: 13.5-17.8 -> 11.0-12.7 ms, all processes 120-152 -> 120-128 ms.
GRPC_MAX_ARRAY_BYTES = int(3.75 * 2**20)
#: Longest the loop's start (making the handle's router) may take.
START_WAIT_S = 60.0
#: Longest the ZMQ front end's I/O thread waits for a replica to answer ``info`` before reporting the last answer.
INFO_WAIT_S = 1.0


def _array_bytes(value: Any, depth: int = 0) -> int:
    """Bytes of the numpy arrays in ``value`` (an Observation, a list of them, a params map...)."""
    if isinstance(value, np.ndarray):
        return value.nbytes
    if depth > 3:
        return 0
    if isinstance(value, (list, tuple)):
        return sum(_array_bytes(v, depth + 1) for v in value)
    if isinstance(value, Mapping):
        return sum(_array_bytes(v, depth + 1) for v in value.values())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return sum(_array_bytes(getattr(value, f.name), depth + 1) for f in dataclasses.fields(value))
    return 0


def _small_request(method: str, params: Any) -> bool:
    return method in GRPC_METHODS or (method in GRPC_FRAME_METHODS and _array_bytes(params) <= GRPC_MAX_ARRAY_BYTES)


def _small(name: str, args: Sequence[Any]) -> bool:
    """Whether a call fits gRPC: no frames either way (:data:`GRPC_METHODS`), or an observe's small frame."""
    if name == "run":
        return len(args) >= 2 and _small_request(args[0], args[1])
    if name == "run_many":
        return bool(args) and all(_small_request(item[0], item[1]) for item in args[0])
    return name in GRPC_METHODS


class HandleLoop:
    """A deployment handle whose router lives in an asyncio loop of this object's own thread.

    Args:
        handle: any handle of the deployment (its deployment and application names are used: a handle may be
            initialised once, so this makes its own).

    Thread-safe: :meth:`call` and :meth:`run` may be called from any number of threads; coroutines already
    in the loop (the ZMQ front end's, ``serve/loop_front.py``) await :meth:`call_async` directly.
    """

    def __init__(self, handle: Any):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="joyai-serve-router", daemon=True)
        self._thread.start()
        made = asyncio.run_coroutine_threadsafe(self._handles(handle.deployment_name, handle.app_name), self.loop)
        self.by_reference, self.by_grpc = made.result(START_WAIT_S)

    @staticmethod
    async def _handles(deployment: str, app: str) -> tuple[Any, Any]:
        from ray.serve.handle import DeploymentHandle

        own = DeploymentHandle(deployment, app)
        own._init(_run_router_in_separate_loop=False)  # must run inside the loop that will await its calls
        return own, own.options(_by_reference=False)

    def in_loop(self) -> bool:
        """True in the loop's own thread (where a blocking :meth:`call` would wait for itself)."""
        return threading.get_ident() == self._thread.ident

    async def call_async(self, name: str, args: Sequence[Any], timeout_s: float, grpc: bool | None = None) -> Any:
        """Calls deployment method ``name`` with ``args`` from inside the loop; returns its reply.

        Args:
            grpc: over gRPC (``True``) or the object store (``False``); by default gRPC for
                :data:`GRPC_METHODS`, for ``run`` of one of them and ``run_many`` of only those.

        Raises:
            TimeoutError: no reply within ``timeout_s`` (the call is cancelled).
            Whatever the call raised (a lost replica: Ray's actor errors, or gRPC's).
        """
        if grpc is None:
            grpc = _small(name, args)
        handle = self.by_grpc if grpc else self.by_reference
        try:
            async with asyncio.timeout(timeout_s):  # no task of its own, unlike wait_for
                return await getattr(handle, name).remote(*args)
        except TimeoutError:
            raise TimeoutError(f"no reply from Ray Serve to {name} within {timeout_s} s") from None

    def call(self, name: str, args: Sequence[Any], timeout_s: float, grpc: bool | None = None) -> Any:
        """:meth:`call_async` from any other thread (waits for its reply); same arguments and errors."""
        return self.run(self.call_async(name, args, timeout_s, grpc))

    def run(self, coroutine: Any) -> Any:
        """Runs ``coroutine`` in the loop from another thread; returns its result (raises what it raised)."""
        if self.in_loop():
            coroutine.close()
            raise RuntimeError("HandleLoop.run called from its own loop: await the coroutine instead")
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result()


def retryable_errors() -> tuple[type, ...]:
    """Errors that mean "the replica (or its reply) was lost", not "the request failed": resend those."""
    import grpc
    import ray.exceptions

    names = ("RayActorError", "ActorUnavailableError", "WorkerCrashedError", "ObjectLostError",
             "OwnerDiedError", "NodeDiedError")
    # a call over gRPC whose replica died mid-call can surface as gRPC's own error
    return tuple(getattr(ray.exceptions, n) for n in names if hasattr(ray.exceptions, n)) + (grpc.aio.AioRpcError,)


class ServedBackend:
    """The backend name a ModelServer reports: the replicas' own once one has answered ``info``."""

    name = "ray-serve"


class ServedModel:
    """Stands in for the WorldModel a ModelServer reports on: ``info()`` is that of the replica answering.

    The ZMQ front end answers ``info``/``health`` itself: a replica busy with long requests must not stall
    it, so a replica that does not answer within :data:`INFO_WAIT_S` is reported by its last answer. In the
    handle's loop (the front end of ``serve/loop_front.py``) ``info()`` must not wait for a reply: it
    reports what the last :meth:`refresh` (awaited just before) got.
    """

    def __init__(self, service: Any):
        self._service, self.backend = service, ServedBackend()
        self._last: dict[str, Any] = {}
        self._stale: str | None = None

    async def refresh(self) -> None:
        """Asks a replica for its info (at most :data:`INFO_WAIT_S`); from inside the handle's loop."""
        try:
            self._last, self._stale = await self._service.info_async(timeout_s=INFO_WAIT_S), None
        except Exception as exc:  # Serve's timeout (or a replica lost): the last answer, marked as such
            self._stale = (f"no replica answered info within {INFO_WAIT_S} s ({type(exc).__name__}); replica "
                           "figures are the last known")

    def info(self) -> dict[str, Any]:
        """The backend info of the replica that answered (see :meth:`refresh`), with its id, pid and node."""
        if not self._service.calls.in_loop():
            self._service.calls.run(self.refresh())
        info = {**self._last, "stale": self._stale} if self._stale else self._last
        self.backend.name = str(info.get("backend", ServedBackend.name))
        return {**info.get("backend_info", {}), "backend": self.backend.name,
                "replica": {k: info.get(k) for k in ("replica", "pid", "node_id", "node_ip")},
                **({"stale": self._stale} if self._stale else {})}

    def close(self) -> None:
        pass  # the deployment outlives its front ends (see undeploy)


def unwrap(reply: Any) -> Any:
    """A replica's reply, or the error it carries raised as its own class (fields intact)."""
    if isinstance(reply, dict) and "__error__" in reply:
        raise error_from_fields(reply["__error__"], "on a Ray Serve replica")
    return reply
