"""The model side of the ZMQ server: a bounded queue of jobs and the worker thread(s) that run them.

Each worker thread owns its PUSH socket (opened and closed in that thread) and sends each outcome, encoded,
to the I/O thread. Queued ``imagine`` requests on the same scene, seed, ``init`` and ``strength`` run as one
``imagine_batch`` call. One thread serves an in-process model (its backend is not thread-safe); a service that
declares itself concurrent (:func:`service_concurrency`, e.g. Ray Serve replicas) gets a small pool, so its
replicas work on several requests at once. The pool shares the queue: a job is taken by exactly one thread.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import zmq

from ..errors import InvalidInputError, JoyAIError
from ..service import ModelService
from ..types import CameraPose
from ..backends.remote import wire
from .replies import ReplyKey

#: Most worker threads: each holds one request's working set and reply until the I/O thread takes it.
MAX_WORKERS = 64


def service_concurrency(service: Any) -> int:
    """Worker threads a service asks for: its ``concurrency`` attribute (requests it serves at once), else 1.

    The in-process :class:`ModelService` has none (one lock around a backend that is not thread-safe);
    :class:`~joyai_embodied.serve.ray_serve.RayServeService` declares replicas x 2.
    """
    value = getattr(service, "concurrency", 1)
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        return 1
    return min(value, MAX_WORKERS)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


@dataclass
class Job:
    """One queued request: who asked (the reply key), what, and when it arrived."""

    key: ReplyKey
    method: str
    params: dict[str, Any]
    received: float = field(default_factory=time.monotonic)

    def batch_key(self) -> tuple | None:
        """Requests with equal keys can share one ``imagine_batch`` call: same scene, seed, init, strength.

        A request with an ill-typed seed, init or strength gets no key: it runs alone, and the service's
        check names the field in its error reply.
        """
        params = self.params
        if self.method != "imagine" or not isinstance(params.get("scene"), str):
            return None
        seed, init, strength = params.get("seed"), params.get("init"), params.get("strength")
        if (seed is not None and (isinstance(seed, bool) or not isinstance(seed, int))) \
                or (init is not None and not isinstance(init, str)) or (strength is not None and not _is_number(strength)):
            return None
        return params["scene"], seed, init, strength


class Worker:
    """Runs queued jobs on a :class:`ModelService`, in arrival order, one batch per thread at a time.

    Args:
        service: the service that does the work.
        max_queue: jobs that may wait; :meth:`submit` refuses one more.
        max_batch: most ``imagine`` jobs merged into one backend call.
        stats: the server's counter map; this worker writes ``batches``, ``batched_requests``,
            ``largest_batch``, ``failed`` and ``most_running`` (under its own lock: the pool's threads share it).
        threads: worker threads that will call :meth:`run` (1 to :data:`MAX_WORKERS`).

    Raises:
        InvalidInputError: ``threads`` out of range.
    """

    def __init__(self, service: ModelService, max_queue: int, max_batch: int, stats: dict[str, int],
                 threads: int = 1):
        if isinstance(threads, bool) or not isinstance(threads, int) or not 1 <= threads <= MAX_WORKERS:
            raise InvalidInputError("workers", f"an integer in [1, {MAX_WORKERS}]", threads)
        self.service, self.max_queue, self.max_batch, self.stats = service, max_queue, max_batch, stats
        self.threads = threads
        self._queue: deque[Job] = deque()
        self._ready = threading.Condition()
        self._stop = threading.Event()
        self._running = 0  # batches running now, over all threads (under _ready)
        self.stats.setdefault("most_running", 0)

    def __len__(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> int:
        """Batches being run now, over all threads."""
        return self._running

    def submit(self, job: Job) -> bool:
        """Queues ``job``; False when the queue is full."""
        with self._ready:
            if len(self._queue) >= self.max_queue:
                return False
            self._queue.append(job)
            self._ready.notify()
            return True

    def take_queued(self) -> list[Job]:
        """Removes and returns every job not started yet (a draining server refuses them)."""
        with self._ready:
            queued = list(self._queue)
            self._queue.clear()
            return queued

    def stop(self) -> None:
        """Lets the thread end once the queue is empty."""
        self._stop.set()
        with self._ready:
            self._ready.notify_all()

    def run(self, context: zmq.Context, results_endpoint: str) -> None:
        """A worker thread's body: run batches and send their encoded outcomes until :meth:`stop`."""
        results = context.socket(zmq.PUSH)
        results.setsockopt(zmq.LINGER, 0)
        results.connect(results_endpoint)
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                try:
                    for job, outcome in zip(batch, self._run_batch(batch)):
                        results.send_multipart([job.key[0], job.key[1].encode(),
                                                *self._encode_outcome(job, outcome)], copy=False)
                finally:
                    with self._ready:
                        self._running -= 1
        finally:
            results.close(linger=0)  # this thread's socket, closed by this thread

    def _next_batch(self) -> list[Job] | None:
        with self._ready:
            while not self._queue:
                if self._stop.is_set():
                    return None
                self._ready.wait(0.2)
            first = self._queue.popleft()
            batch = [first]
            key = first.batch_key()
            if key is not None:
                for job in list(self._queue):
                    if len(batch) >= self.max_batch:
                        break
                    if job.batch_key() == key:
                        self._queue.remove(job)
                        batch.append(job)
            self._running += 1
            self.stats["most_running"] = max(self.stats["most_running"], self._running)
            return batch

    def _run_batch(self, batch: list[Job]) -> list[Any]:
        """Runs the jobs; returns a result or an exception per job, in order."""
        if len(batch) > 1:
            with self._ready:
                self.stats["batches"] += 1
                self.stats["batched_requests"] += len(batch)
                self.stats["largest_batch"] = max(self.stats["largest_batch"], len(batch))
            try:
                moves = [job.params.get("move") for job in batch]
                scene, seed, init, strength = batch[0].batch_key()
                options = {k: v for k, v in (("init", init), ("strength", strength)) if v is not None}
                return list(self.service.imagine_batch(scene, moves, seed, **options))
            except Exception:  # e.g. one impossible move: run them one by one so each gets its own answer
                pass
        outcomes = []
        for job in batch:
            try:
                if job.method == "imagine_batch":
                    self._check_batch_reply_size(job.params)
                outcomes.append(self.service.run(job.method, job.params))
            except Exception as exc:  # every failure becomes that request's error reply; the server keeps serving
                outcomes.append(exc)
        return outcomes

    def _check_batch_reply_size(self, params: dict[str, Any]) -> None:
        moves, handle = params.get("moves"), params.get("scene")
        if isinstance(moves, list) and isinstance(handle, str):  # else the service names the bad parameter
            check_batch_reply_size(moves, self.service.scene(handle).observation.rgb.shape[:2])

    def _encode_outcome(self, job: Job, outcome: Any) -> list:
        frames, failed = encode_outcome(job, outcome)
        if failed:
            with self._ready:  # the pool's threads share this counter
                self.stats["failed"] += 1
        return frames


def check_batch_reply_size(moves: list, shape: tuple[int, int]) -> None:
    """Refuses, before any view is computed, an imagine_batch whose reply would exceed what a client reads.

    Args:
        moves: the request's moves (a CameraPose may set its own size).
        shape: (height, width) of the scene's frame, the size of every other view.

    Raises:
        InvalidInputError: (field ``params.moves``) the views would total over ``wire.MAX_REPLY_BYTES``.
    """
    height, width = shape
    size = 0
    for move in moves:
        w, h = (move.width, move.height) if isinstance(move, CameraPose) else (width, height)
        size += w * h * wire.VIEW_BYTES_PER_PIXEL
    if size > wire.MAX_REPLY_BYTES:
        raise InvalidInputError("params.moves", f"views totalling at most {wire.MAX_REPLY_BYTES} bytes per "
                                "imagine_batch reply; split the batch", f"{len(moves)} views, {size} bytes")


def encode_outcome(job: Job, outcome: Any) -> tuple[list, bool]:
    """A job's reply frames, and whether it is a failure (an error, or a result that cannot be encoded)."""
    header: dict[str, Any] = {"v": wire.PROTOCOL_VERSION, "id": job.key[1]}
    if not isinstance(outcome, BaseException):
        try:
            return wire.encode({**header, "ok": True, "result": outcome}), False
        except wire.WireError as exc:
            outcome = exc
    if not isinstance(outcome, JoyAIError):
        print(f"joyai-embodied serve-model: {job.method} failed: {type(outcome).__name__}: {outcome}",
              file=sys.stderr)
    return wire.encode({**header, "ok": False, "error": wire.error_to_wire(outcome)}), True
