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
  for requests that carry no frames (:data:`GRPC_METHODS`): the replica's gRPC server takes at most 4 MiB per
  message by default (a 640x480 observation is 3.4 MB, an imagined view 3.7 MB), and a frame travels better
  through the object store anyway.

Measured (``benchmarks/ray_bench.py --serve-only`` and the figures in serve/README.md): an empty Serve call
(``info``) one at a time from a thread, p50 5.8 ms -> 3.5 ms, CPU of the front end's process 4.2 -> 1.9 ms.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any, Sequence

#: Methods sent over gRPC: small arguments and small replies (no frames, no views).
GRPC_METHODS = frozenset({"relation", "release", "ask", "edit", "info"})
#: Longest the loop's start (making the handle's router) may take.
START_WAIT_S = 60.0


async def _await_call(handle: Any, name: str, args: Sequence[Any]) -> Any:
    return await getattr(handle, name).remote(*args)


def _small(name: str, args: Sequence[Any]) -> bool:
    """Whether a call carries no frames either way (see :data:`GRPC_METHODS`)."""
    if name == "run":
        return bool(args) and args[0] in GRPC_METHODS
    if name == "run_many":
        return bool(args) and all(item[0] in GRPC_METHODS for item in args[0])
    return name in GRPC_METHODS


class HandleLoop:
    """A deployment handle whose router lives in an asyncio loop of this object's own thread.

    Args:
        handle: any handle of the deployment (its deployment and application names are used: a handle may be
            initialised once, so this makes its own).

    Thread-safe: :meth:`call` may be called from any number of threads.
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

    def call(self, name: str, args: Sequence[Any], timeout_s: float, grpc: bool | None = None) -> Any:
        """Calls deployment method ``name`` with ``args``; returns its reply.

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
        future = asyncio.run_coroutine_threadsafe(_await_call(handle, name, args), self.loop)
        try:
            return future.result(timeout_s)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(f"no reply from Ray Serve to {name} within {timeout_s} s") from None
