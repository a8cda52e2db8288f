"""Forwarding requests to a Ray Serve deployment in groups when every lane is busy.

Why: one Serve handle call has a fixed cost on this machine whatever it carries (the handle's router and
the replica's request wrapper: a call that does nothing measures the same as a relation, 0.07 ms of model
time), against ~30 ms for an observe. On 2 cores that fixed cost, not the model, limits throughput. So
:class:`GroupForwarder` keeps at most ``lanes`` Serve calls in flight (replicas x 2: one running and one
queued per replica); a request that arrives while every lane is busy waits, and the next free lane takes up
to :data:`MAX_GROUP` waiting requests in ONE call (``run_many`` on the replica, which runs them
concurrently). A request that finds a lane free is sent at once, alone: no added latency when the
deployment keeps up. Only light requests (:data:`GROUPED_METHODS`) are grouped: Serve balances calls, not
requests, so a group of heavy ones (observes of ~40-90 ms) on one replica would leave the other idle
(2 replicas over 1 for observe: 1.09x with observes grouped, 1.27x without, on a loaded machine).

It runs in the event loop of the handle's router (``ray_handle.HandleLoop``): coroutines, no locks and no
thread hops. Serve still chooses the replica for every call; a group whose replica died is resent whole
with the same request ids (scene-creating requests take their handle from their id, so an edit is still
committed once).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from typing import Any, Awaitable, Callable, Sequence

#: Requests one Serve call carries at most: enough to spread the call's fixed cost, small enough that a
#: lost replica costs few resends and one group's frames (8 x 640x480 observes ~30 MB) stay modest.
MAX_GROUP = 8
#: Methods that share calls: those whose model time is well under one Serve call's cost (a relation is
#: ~0.1 ms). Every other request takes a lane of its own. (``RayServeService`` sends imagines past the
#: lanes altogether, each in its own call, so that concurrent ones meet in the replica's ``@serve.batch``.)
GROUPED_METHODS = frozenset({"relation", "release"})


class GroupForwarder:
    """Sends ``(method, params, request_id)`` items through ``send_group`` with at most ``lanes`` calls at once.

    Args:
        send_group: coroutine function sending a list of items in one call; returns one reply per item, in
            order (raises when the whole call failed: every item of it gets that exception).
        lanes: calls in flight at most (>= 1).
        max_group: items per call at most.

    Attributes:
        calls, grouped: calls sent and the items they carried (``grouped / calls`` is the mean group size).
        busy_s: summed time calls were in flight (a lane's share of the wall time).

    Not thread-safe: every :meth:`submit` runs in the one event loop the forwarder's calls run in.
    """

    def __init__(self, send_group: Callable[[list[tuple]], Awaitable[Sequence[Any]]], lanes: int,
                 max_group: int = MAX_GROUP):
        self._send, self._free, self._max = send_group, max(int(lanes), 1), max(int(max_group), 1)
        self._queue: deque[tuple[tuple, asyncio.Future]] = deque()
        self.calls = self.grouped = 0
        self.busy_s = 0.0

    async def submit(self, item: tuple) -> Any:
        """Sends ``item`` (alone when a lane is free, else with others waiting); returns its reply.

        Raises:
            Exception: what ``send_group`` raised for the call that carried this item.
        """
        future = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        self._pump()
        return await future

    def _pump(self) -> None:
        """Starts calls while lanes are free: the oldest waiting request, with the oldest light ones."""
        while self._free > 0 and self._queue:
            item, future = self._queue.popleft()
            if future.done():  # its caller gave up (timeout, cancelled) while it waited
                continue
            group = [(item, future)]
            if item[0] in GROUPED_METHODS:
                for pending in list(self._queue):  # heavy ones keep their place
                    if len(group) >= self._max:
                        break
                    if pending[0][0] in GROUPED_METHODS:
                        self._queue.remove(pending)
                        if not pending[1].done():
                            group.append(pending)
            self._free -= 1
            self.calls += 1
            self.grouped += len(group)
            asyncio.get_running_loop().create_task(self._run(group))

    async def _run(self, group: list[tuple[tuple, asyncio.Future]]) -> None:
        start = time.perf_counter()
        try:
            replies = list(await self._send([item for item, _ in group]))
            if len(replies) != len(group):
                raise RuntimeError(f"{len(replies)} replies for a group of {len(group)} requests")
            for (_, future), reply in zip(group, replies):
                if not future.done():
                    future.set_result(reply)
        except asyncio.CancelledError:  # the loop is closing: so are the callers' waits
            for _, future in group:
                future.cancel()
            raise
        except Exception as exc:  # the whole call failed: each of its requests raises it
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
        finally:
            self.busy_s += time.perf_counter() - start
            self._free += 1
            self._pump()
