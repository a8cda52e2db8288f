"""Forwarding requests to a Ray Serve deployment in groups when every lane is busy.

Why: one Serve handle call costs ~8-10 ms of CPU on this machine whatever it carries (the handle's router
and the replica's request wrapper, measured by ``benchmarks/ray_bench.py --serve-only``), against 0.07 ms
for a relation and ~30 ms for an observe. On 2 cores that fixed cost, not the model, limits throughput. So
:class:`GroupForwarder` keeps at most ``lanes`` Serve calls in flight (replicas x 2: one running and one
queued per replica); a request that arrives while every lane is busy waits, and the next free lane takes up
to :data:`MAX_GROUP` waiting requests in ONE call (``run_many`` on the replica, which runs them
concurrently). A request that finds a lane free is sent at once, alone, by its own thread: no added latency
when the deployment keeps up. Only light requests (:data:`GROUPED_METHODS`) are grouped: Serve balances
calls, not requests, so a group of heavy ones (observes of ~40-90 ms) on one replica would leave the other
idle (2 replicas over 1 for observe: 1.09x with observes grouped, 1.27x without, on a loaded machine).

Serve still chooses the replica for every call; a group whose replica died is resent whole with the same
request ids (scene-creating requests take their handle from their id, so an edit is still committed once).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any, Callable, Sequence

#: Requests one Serve call carries at most: enough to spread the call's fixed cost, small enough that a
#: lost replica costs few resends and one group's frames (8 x 640x480 observes ~30 MB) stay modest.
MAX_GROUP = 8
#: Methods that share calls: those whose model time is well under one Serve call's cost (a relation is
#: ~0.1 ms). Every other request takes a lane of its own. (``RayServeService`` sends imagines past the
#: lanes altogether, each in its own call, so that concurrent ones meet in the replica's ``@serve.batch``.)
GROUPED_METHODS = frozenset({"relation", "release"})


class _Pending:
    """One request waiting for its reply (``reply`` is the replica's answer or the exception to raise)."""

    __slots__ = ("item", "taken", "done", "reply", "error")

    def __init__(self, item: tuple):
        self.item, self.taken, self.done, self.reply, self.error = item, False, False, None, None


class GroupForwarder:
    """Sends ``(method, params, request_id)`` items through ``send_group`` with at most ``lanes`` calls at once.

    Args:
        send_group: sends a list of items in one call; returns one reply per item, in order (raises when the
            whole call failed: every item of it gets that exception).
        lanes: calls in flight at most (>= 1).
        max_group: items per call at most.

    Attributes:
        calls, grouped: calls sent and the items they carried (``grouped / calls`` is the mean group size).
    """

    def __init__(self, send_group: Callable[[list[tuple]], Sequence[Any]], lanes: int, max_group: int = MAX_GROUP):
        self._send, self._free, self._max = send_group, max(int(lanes), 1), max(int(max_group), 1)
        self._queue: deque[_Pending] = deque()
        self._cond = threading.Condition()
        self.calls = self.grouped = 0
        self.busy_s = 0.0  # summed time calls were in flight (a lane's share of the wall time)

    def submit(self, item: tuple) -> Any:
        """Sends ``item`` (alone when a lane is free, else with others waiting); returns its reply.

        Raises:
            Exception: what ``send_group`` raised for the call that carried this item.
        """
        entry = _Pending(item)
        with self._cond:
            self._queue.append(entry)
            while True:
                while not entry.done and (entry.taken or self._free == 0):
                    self._cond.wait()
                if entry.done:
                    break
                # A lane is free and this request still waits: this thread sends it, with the oldest others.
                self._free -= 1
                self._queue.remove(entry)
                group = [entry]
                if entry.item[0] in GROUPED_METHODS:
                    for pending in list(self._queue):  # the oldest light ones; heavy ones keep their place
                        if len(group) >= self._max:
                            break
                        if pending.item[0] in GROUPED_METHODS:
                            self._queue.remove(pending)
                            group.append(pending)
                for pending in group:
                    pending.taken = True
                self.calls += 1
                self.grouped += len(group)
                self._cond.release()
                try:
                    self._run(group)
                finally:
                    self._cond.acquire()
                    self._free += 1
                    self._cond.notify_all()
        if entry.error is not None:
            raise entry.error
        return entry.reply

    def _run(self, group: list[_Pending]) -> None:
        start = time.perf_counter()
        try:
            replies = list(self._send([p.item for p in group]))
            if len(replies) != len(group):
                raise RuntimeError(f"{len(replies)} replies for a group of {len(group)} requests")
            for pending, reply in zip(group, replies):
                pending.reply = reply
        except BaseException as exc:  # the whole call failed: each of its requests raises it
            for pending in group:
                pending.error = exc
        with self._cond:
            self.busy_s += time.perf_counter() - start
            for pending in group:
                pending.done = True
