"""The ZMQ server's I/O and requests as callbacks and coroutines in one asyncio loop (the Ray Serve path).

Why: on the Serve path every request is a deployment handle call, and the handle's router runs in an event
loop (``ray_handle.HandleLoop``). With worker threads a request crossed four thread hops on its way (I/O
thread -> worker -> router loop -> worker -> I/O thread); in-loop Serve calls measured 2.4 ms against 3.4 ms
from a thread. Here the server's ROUTER socket is read in that loop (its file descriptor under
``loop.add_reader``: what ``zmq.asyncio`` does, without a future per message), each request becomes a task
that awaits the service's coroutine (``RayServeService.run_async``: the handle call itself) and its reply
is sent from the loop. What the server checks and guarantees is unchanged: its own methods run here as they
run on its I/O thread (decoding and validation, the reply store and retried request ids, per-client unread
budgets, "busy" past the bound on requests in flight, draining on SIGINT/SIGTERM).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import sys
import time
from typing import Any, Coroutine

import zmq

from .replies import ReplyKey
from .worker import Job, check_batch_reply_size, encode_outcome

#: How often the loop looks at the server's stop flag (and reads the socket, in case its edge-triggered
#: descriptor was consumed by a send): often enough for a prompt stop, rare enough to cost nothing.
TICK_S = 0.05
#: How long closing the ROUTER waits for the last replies to reach their clients, ms (as the I/O thread).
DRAIN_LINGER_MS = 500
#: Messages read per wake-up before the loop lets replies and Serve calls run (as the I/O thread's bound).
READ_BATCH = 256


class LoopFrontEnd:
    """Stands in for a ModelServer's :class:`~.worker.Worker`: requests are tasks in ``loop``, I/O there too.

    Args:
        server: the :class:`~.zmq_server.ModelServer` whose methods handle each message.
        service: has ``run_async(method, params)`` and ``scene_async(handle)`` coroutines, ``refresh_stats()``
            and ``world_model.refresh()`` (``RayServeService``).
        loop: the running event loop (in a thread of its own) the service's coroutines run in.
        max_in_flight: requests running at once; one more is answered "busy" (back-pressure).

    Attributes:
        threads: 0 (no worker threads; the server's ``info`` reports it as ``workers``).
    """

    threads = 0

    def __init__(self, server: Any, service: Any, loop: asyncio.AbstractEventLoop, max_in_flight: int):
        self.server, self.service, self.loop = server, service, loop
        self.max_in_flight = max(int(max_in_flight), 1)
        self._jobs: set[asyncio.Task] = set()
        self._direct: set[asyncio.Task] = set()
        self._router: zmq.Socket | None = None
        self._fd: int | None = None
        self._closing = False
        self._done: concurrent.futures.Future = concurrent.futures.Future()
        server._stats.setdefault("most_running", 0)

    # -- what the server asks of its worker -------------------------------------------------------------
    def __len__(self) -> int:
        return 0  # no queue of its own: an accepted request is running (awaiting Serve)

    @property
    def running(self) -> int:
        """Requests being run now."""
        return len(self._jobs)

    def submit(self, job: Job) -> bool:
        """Starts ``job`` as a task (called in the loop, by the server's request handling); False when full."""
        if len(self._jobs) >= self.max_in_flight:
            return False
        self._spawn(self._jobs, self._run(job))
        stats = self.server._stats
        stats["most_running"] = max(stats["most_running"], len(self._jobs))
        return True

    def take_queued(self) -> list[Job]:
        return []  # nothing waits here: draining lets every accepted request finish (or time out)

    def stop(self) -> None:
        pass  # the server's stop flag ends the I/O (see _tick)

    def answer_direct(self, key: ReplyKey) -> None:
        """Answers ``info``/``health`` once a replica has said who it is (at most ``INFO_WAIT_S``)."""
        if len(self._direct) >= self.max_in_flight:  # a flood of probes: the last known figures, at once
            self._reply_info(key)
        else:
            self._spawn(self._direct, self._answer_info(key))

    # -- I/O in the loop --------------------------------------------------------------------------------
    def start_io(self, router: zmq.Socket) -> "_Running":
        """Hands ``router`` (bound, not used by any other thread from now on) to the loop; returns at once.

        Returns:
            What the server joins on stop (``join(timeout)``, ``is_alive()``), as it joins its I/O thread.
        """
        self._router = router
        self.loop.call_soon_threadsafe(self._open)
        return _Running(self._done)

    def _open(self) -> None:
        self._fd = self._router.getsockopt(zmq.FD)
        self.loop.add_reader(self._fd, self._on_readable)
        self.loop.call_later(TICK_S, self._tick)
        self._on_readable()

    def _on_readable(self) -> None:
        if self._closing:
            return
        router = self._router
        try:
            for _ in range(READ_BATCH):
                try:
                    parts = router.recv_multipart(zmq.NOBLOCK, copy=False)
                except zmq.Again:
                    return
                self.server._on_request(router, parts)
            self.loop.call_soon(self._on_readable)  # more may wait: let replies and calls run first
        except Exception as exc:  # a bug here must end the server visibly, not leave it deaf
            print(f"joyai-embodied serve-model: I/O failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            self.server.drained_cleanly = False
            self._close()

    def _after_send(self) -> None:
        """A send may consume the descriptor's edge for a message that arrived meanwhile: look once."""
        if self._router.getsockopt(zmq.EVENTS) & zmq.POLLIN:
            self.loop.call_soon(self._on_readable)

    def _tick(self) -> None:
        if self._closing:
            return
        server = self.server
        if server._draining.is_set():
            if not server._inflight:
                return self._close()
            if time.monotonic() > server._drain_deadline:
                server._abandon_inflight(self._router)  # each client gets an error reply
                return self._close()
        self._on_readable()
        self.loop.call_later(TICK_S, self._tick)

    def _close(self) -> None:
        self._closing = True
        self.server._draining.set()  # serve_forever returns, whatever ended the I/O
        if self._fd is not None:
            self.loop.remove_reader(self._fd)
        for task in (*self._jobs, *self._direct):
            task.cancel()
        # the drained replies are queued in ZMQ: give them a moment to reach their clients
        self._router.close(linger=DRAIN_LINGER_MS)
        self._done.set_result(None)

    # -- requests ---------------------------------------------------------------------------------------
    def _spawn(self, tasks: set, coroutine: Coroutine) -> None:
        task = self.loop.create_task(coroutine)
        tasks.add(task)
        task.add_done_callback(tasks.discard)

    async def _run(self, job: Job) -> None:
        try:
            if job.method == "imagine_batch":
                await self._check_batch(job.params)
            outcome = await self.service.run_async(job.method, job.params)
        except Exception as exc:  # every failure becomes that request's error reply
            outcome = exc
        frames, failed = encode_outcome(job, outcome)
        self.server._stats["failed"] += failed
        if not self._closing:
            self.server._deliver(self._router, job.key, frames)
            self._after_send()

    async def _check_batch(self, params: dict[str, Any]) -> None:
        moves, handle = params.get("moves"), params.get("scene")
        if isinstance(moves, list) and isinstance(handle, str):  # else the service names the bad parameter
            scene = await self.service.scene_async(handle)
            check_batch_reply_size(moves, scene.observation.rgb.shape[:2])

    async def _answer_info(self, key: ReplyKey) -> None:
        await asyncio.gather(self.service.world_model.refresh(), self.service.refresh_stats(),
                             return_exceptions=True)  # a store that does not answer: its last counts
        self._reply_info(key)

    def _reply_info(self, key: ReplyKey) -> None:
        if not self._closing:
            self.server._reply(self._router, key, {"ok": True, "result": self.server.info()})
            self._after_send()


class _Running:
    """The loop's I/O as the server sees its I/O thread: ``join`` and ``is_alive``."""

    def __init__(self, done: concurrent.futures.Future):
        self._done = done

    def join(self, timeout: float | None = None) -> None:
        try:
            self._done.result(timeout)
        except concurrent.futures.TimeoutError:
            pass

    def is_alive(self) -> bool:
        return not self._done.done()
