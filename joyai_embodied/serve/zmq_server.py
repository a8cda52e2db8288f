"""`joyai-embodied serve-model`: one world model served to many robots over ZMQ.

The I/O thread owns the ROUTER socket: it decodes requests, answers ``info``/``health``, malformed and
over-limit requests at once, answers "busy" when the bounded queue is full, re-sends kept replies to retried
requests, and routes finished replies. The worker thread owns the model (through the
:class:`~joyai_embodied.service.ModelService`): it runs requests in arrival order, batching queued ``imagine``
requests on the same scene (seed, init, strength) into one ``imagine_batch`` call. A service that declares
itself concurrent gets a small pool of worker threads instead (``workers``), so its replicas work in parallel;
a service with an event loop of its own (Ray Serve: :class:`~joyai_embodied.serve.ray_serve.RayServeService`)
runs the I/O and its requests as coroutines in that loop instead, unless ``workers`` is given
(:mod:`~joyai_embodied.serve.loop_front`).

Requests are keyed by (client routing id, request id). A retried request is never run twice: while it runs
the retry waits for the same reply; once answered, the reply comes from a bounded store. This is what makes
retrying an ``edit`` safe. Stopping (SIGTERM/SIGINT or :meth:`ModelServer.stop`) drains: new requests are
refused with a reply, queued ones too, the running one finishes and its reply is sent; then the threads are
joined and only then the ZMQ context is terminated. See README.md for every limit and guarantee.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from typing import Any

import zmq

from .. import __version__
from ..errors import InvalidInputError, RemoteError, ServerBusyError
from ..world_model import WorldModel
from ..backends.remote import wire
from ..service import WORKER_METHODS, ModelService
from .endpoint import check_bind
from .replies import ReplyKey, ReplyStore, frames_size
from .worker import Job, Worker, service_concurrency

DIRECT_METHODS = ("info", "health")
_RESULTS_ENDPOINT = "inproc://joyai-results-{}"
#: Replies queued in ZMQ per client before ZMQ drops more (the byte budget in ReplyStore is the real bound).
SEND_HWM = 64
#: How long closing the ROUTER waits for the last replies (the drained ones) to reach their clients, ms.
DRAIN_LINGER_MS = 500
#: Connections whose peer answers no heartbeat for this long are dropped (frees what ZMQ queued for them), s.
HEARTBEAT_TIMEOUT_S = 30.0


class ModelServer:
    """Serves a :class:`~joyai_embodied.WorldModel` on a ZMQ ROUTER socket.

    Args:
        world_model: the in-process model that does the work.
        bind: ZMQ endpoint; ``tcp://127.0.0.1:*`` picks a free port (see :attr:`address`).
        max_queue: requests that may wait for the worker; one more is answered "busy" at once.
        max_scenes: scenes kept for clients (least recently used evicted first).
        max_batch: most ``imagine`` requests merged into one backend call.
        max_payload_bytes: largest request accepted; larger ones get a ``too_large`` error reply.
        reply_cache_bytes: memory for every reply held: kept for retries, or not yet read by its client.
        max_unread_bytes: unread reply bytes one client may have before its replies are held back and its new
            requests refused (default: a quarter of ``reply_cache_bytes``).
        keys_dir: CURVE keys made by :func:`~joyai_embodied.backends.remote.keys.generate_keys`; required for a
            non-loopback ``bind`` unless ``insecure``.
        insecure: allow a non-loopback ``bind`` without encryption or authentication.
        preset: preset name reported by ``info``.
        heartbeat_timeout_s: a connection silent to heartbeats this long is dropped.
        service: the service requests go to (default ``ModelService(world_model, max_scenes)``).
        workers: worker threads running requests (1 to 64). Default: none for a service with a
            ``loop_front_end`` (Ray Serve: requests are coroutines in its loop), else what the service declares
            (``service.concurrency``), else 1 (an in-process model runs one request at a time anyway). Each
            keeps at most one batch and its reply in memory on top of the reply budget.

    Raises:
        InvalidInputError: a bound is out of range, a malformed ``bind``, or a non-loopback bind without keys.
    """

    def __init__(self, world_model: WorldModel, bind: str = "tcp://127.0.0.1:5555", *, max_queue: int = 64,
                 max_scenes: int = 64, max_batch: int = 8, max_payload_bytes: int = wire.MAX_PAYLOAD_BYTES,
                 reply_cache_bytes: int = 256 * 1024 * 1024, max_unread_bytes: int | None = None,
                 keys_dir: str | None = None, insecure: bool = False, preset: str = "",
                 heartbeat_timeout_s: float = HEARTBEAT_TIMEOUT_S, service: Any = None, workers: int | None = None):
        for name, value in (("max_queue", max_queue), ("max_batch", max_batch),
                            ("max_payload_bytes", max_payload_bytes), ("reply_cache_bytes", reply_cache_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(name, "an integer >= 1", value)
        self.bind = check_bind(bind, keys_dir, insecure)
        self.world_model = world_model
        # service: another implementation of the ModelService interface (run, imagine_batch, scene, stats),
        # e.g. serve.ray_serve.RayServeService forwarding to Ray Serve replicas; max_scenes is then its own.
        self.service = service if service is not None else ModelService(world_model, max_scenes)
        self.keys_dir, self.insecure, self.preset = keys_dir, insecure, preset
        self.max_queue, self.max_batch, self.max_payload_bytes = max_queue, max_batch, max_payload_bytes
        self.heartbeat_timeout_s = heartbeat_timeout_s
        self.address = ""
        self._replies = ReplyStore(reply_cache_bytes, max_unread_bytes or max(reply_cache_bytes // 4, 1))
        self._inflight: set[ReplyKey] = set()  # queued or running, by (client routing id, request id)
        self._stats = {"requests": 0, "busy": 0, "errors": 0, "batches": 0, "batched_requests": 0,
                       "largest_batch": 0, "duplicates": 0, "failed": 0, "held_back": 0, "refused_stopping": 0}
        # A service with an event loop of its own (Ray Serve: RayServeService.loop_front_end) gets its requests
        # as coroutines in that loop, with the I/O there too: no worker threads, no thread hop per request.
        loop_front_end = getattr(self.service, "loop_front_end", None) if workers is None else None
        self._worker = loop_front_end(self, max_queue) if loop_front_end is not None else Worker(
            self.service, max_queue, max_batch, self._stats,
            service_concurrency(self.service) if workers is None else workers)
        self._draining = threading.Event()  # stop taking requests, answer what is in flight, then exit
        self._threads: list[threading.Thread] = []
        self._context: zmq.Context | None = None
        self._authenticator = None
        self.drained_cleanly = True
        self._drain_deadline = math.inf

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> "ModelServer":
        """Binds and starts the I/O and worker threads; returns at once. :attr:`address` is then set."""
        self._context = zmq.Context()
        router = self._context.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        # Frames far over the limit drop the connection instead of being buffered; those just over it
        # still arrive and get a readable "too_large" reply.
        router.setsockopt(zmq.MAXMSGSIZE, 2 * self.max_payload_bytes + wire.MAX_HEADER_BYTES)
        router.setsockopt(zmq.SNDHWM, SEND_HWM)
        router.setsockopt(zmq.ROUTER_HANDOVER, 1)  # a client's reconnect (same routing id) takes its replies over
        ivl_ms = int(max(self.heartbeat_timeout_s / 3, 0.1) * 1000)
        router.setsockopt(zmq.HEARTBEAT_IVL, ivl_ms)
        router.setsockopt(zmq.HEARTBEAT_TIMEOUT, int(self.heartbeat_timeout_s * 1000))
        try:
            if self.keys_dir:
                from ..backends.remote.keys import configure_server

                self._authenticator = configure_server(self._context, router, self.keys_dir)
            router.bind(self.bind)
        except BaseException:
            router.close(linger=0)
            self._close_context()
            raise
        self.address = router.getsockopt_string(zmq.LAST_ENDPOINT)
        if not isinstance(self._worker, Worker):  # the loop front end: I/O in its loop (serve/loop_front.py)
            self._threads = [self._worker.start_io(router)]
            return self
        results = self._context.socket(zmq.PULL)
        results_endpoint = _RESULTS_ENDPOINT.format(id(self))
        results.bind(results_endpoint)
        self._threads = [
            threading.Thread(target=self._io_loop, args=(router, results), name="joyai-server-io", daemon=True),
            *(threading.Thread(target=self._worker.run, args=(self._context, results_endpoint),
                               name=f"joyai-server-worker-{i}", daemon=True) for i in range(self._worker.threads)),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def request_stop(self) -> None:
        """Starts a graceful stop and returns at once (safe in a signal handler): see :meth:`stop`."""
        self._draining.set()

    def stop(self, timeout_s: float = 60.0) -> bool:
        """Stops serving: refuses new and queued requests with a reply, finishes the running ones and sends
        their replies, then joins every thread and terminates the ZMQ context.

        Args:
            timeout_s: longest wait for the running requests.

        Returns:
            True when everything finished; False when a running request outlived ``timeout_s`` (its client
            got an error reply; the context is then left to process exit rather than closed under the worker).
        """
        self._drain_deadline = time.monotonic() + timeout_s
        self._draining.set()
        io_thread, workers = (self._threads[0] if self._threads else None), self._threads[1:]
        if io_thread is not None:
            io_thread.join(timeout_s + 5)
            if io_thread.is_alive():  # its sockets are still open: terminating the context would hang
                self.drained_cleanly = False
                return False
        for worker in workers:
            worker.join(max(self._drain_deadline - time.monotonic(), 0) + 1)
            if worker.is_alive():
                self.drained_cleanly = False
                return False
        self._close_context()
        return self.drained_cleanly

    def _close_context(self) -> None:
        if self._authenticator is not None:
            self._authenticator.stop()
            self._authenticator = None
        if self._context is not None:
            self._context.term()  # every socket is closed by its own thread by now
            self._context = None

    def serve_forever(self, drain_timeout_s: float = 60.0) -> bool:
        """Serves until :meth:`request_stop` (a signal handler) or :meth:`stop`; returns as :meth:`stop`."""
        if not self._threads:
            self.start()
        while not self._draining.wait(0.1):
            pass
        return self.stop(drain_timeout_s)

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def info(self) -> dict[str, Any]:
        """What the ``info``/``health`` request answers: backend, device, queue depth, versions, counters."""
        backend_info = self.world_model.info()
        return {"status": "stopping" if self._draining.is_set() else "ok", "version": __version__,
                "protocol_version": wire.PROTOCOL_VERSION, "preset": self.preset,
                "backend": backend_info.get("backend", self.world_model.backend.name),
                "device": str(backend_info.get("device", "cpu")), "backend_info": backend_info,
                "queue_depth": len(self._worker), "max_queue": self.max_queue, "in_flight": len(self._inflight),
                "workers": self._worker.threads, "running": self._worker.running,
                **self.service.stats(), "max_batch": self.max_batch, "max_batch_views": wire.MAX_BATCH_VIEWS,
                "max_payload_bytes": self.max_payload_bytes, "secure": bool(self.keys_dir),
                **self._replies.stats(), **self._stats}

    # -- I/O thread ---------------------------------------------------------------------------------------
    def _io_loop(self, router: zmq.Socket, results: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(results, zmq.POLLIN)
        refused_queue = False
        try:
            while True:
                if self._draining.is_set():
                    if not refused_queue:
                        self._refuse_queued(router)
                        refused_queue = True
                    if not self._inflight:
                        break
                    if time.monotonic() > self._drain_deadline:
                        self._abandon_inflight(router)
                        break
                events = dict(poller.poll(50))
                if results in events:
                    self._route_results(router, results)
                if router in events:
                    for _ in range(256):  # bounded so replies are routed even under a flood of requests
                        try:
                            parts = router.recv_multipart(zmq.NOBLOCK, copy=False)
                        except zmq.Again:
                            break
                        self._on_request(router, parts)
        except BaseException as exc:  # a bug here must end the process visibly, not leave it deaf
            print(f"joyai-embodied serve-model: I/O thread failed: {type(exc).__name__}: {exc}", file=sys.stderr)
            self.drained_cleanly = False
            raise
        finally:
            self._draining.set()  # serve_forever returns, whatever ended this loop
            self._worker.stop()
            # The drained replies are queued in ZMQ: give them a moment to reach their clients.
            router.close(linger=DRAIN_LINGER_MS if self._draining.is_set() else 0)
            results.close(linger=0)

    def _refuse_queued(self, router: zmq.Socket) -> None:
        for job in self._worker.take_queued():
            self._inflight.discard(job.key)
            self._stats["refused_stopping"] += 1
            self._reply_error(router, job.key, _stopping_error())

    def _abandon_inflight(self, router: zmq.Socket) -> None:
        self.drained_cleanly = False
        for key in list(self._inflight):
            self._inflight.discard(key)
            self._reply_error(router, key, RemoteError(
                "the model server stopped before this request finished (it outlived the drain timeout); it may "
                "or may not have been applied"))

    def _route_results(self, router: zmq.Socket, results: zmq.Socket) -> None:
        while True:
            try:
                identity, request_id, *frames = results.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            self._deliver(router, (identity, request_id.decode()), frames)

    def _deliver(self, router: zmq.Socket, key: ReplyKey, frames: list) -> None:
        """A finished request's reply: kept for retries, then sent (unless its client is over budget)."""
        self._inflight.discard(key)
        self._replies.keep(key, frames)
        self._send(router, key, frames)

    def _send(self, router: zmq.Socket, key: ReplyKey, frames: list) -> None:
        """Sends a reply unless its client (or the server) is over the unread-reply budget."""
        size = frames_size(frames)
        reason = self._replies.may_send(key, size)
        if reason is not None:
            self._stats["held_back"] += 1  # kept (if it fits): the client's retry of this id gets it
            return
        # Large frames go zero-copy with a tracker each, so the store knows when ZMQ has let go of them;
        # small ones are copied by ZMQ anyway.
        parts = [zmq.Frame(f, track=True) if len(f) >= zmq.COPY_THRESHOLD else f for f in frames]
        tracked = [p for p in parts if isinstance(p, zmq.Frame)]
        try:
            router.send_multipart([key[0], b"", *parts], zmq.NOBLOCK, copy=False)
        except zmq.Again:  # the client's ZMQ queue is full: same as held back
            self._stats["held_back"] += 1
            return
        if tracked:
            self._replies.sent(key, size, zmq.MessageTracker(*tracked))

    def _on_request(self, router: zmq.Socket, parts: list) -> None:
        identity, frames = parts[0].bytes, parts[1:]
        if frames and len(frames[0]) == 0:  # the empty delimiter REQ and our DEALER clients send
            frames = frames[1:]
        self._stats["requests"] += 1
        try:
            header = wire.decode(frames, self.max_payload_bytes).header
            request_id, method, params = _check_request(header)
        except Exception as exc:  # whatever a sender put in the frames, it gets an error reply, not a crash
            self._reply_error(router, (identity, wire.peek_request_id(frames)), exc)
            return
        key = (identity, request_id)
        kept = self._replies.cached(key)
        if kept is not None:  # a retry of an answered request: same reply, not run again
            self._stats["duplicates"] += 1
            self._send(router, key, kept)
        elif key in self._inflight:  # a retry of a queued or running request: it gets that request's reply
            self._stats["duplicates"] += 1
        elif self._replies.answered(key):  # answered, reply since dropped: never run a second time
            self._stats["duplicates"] += 1
            self._reply_error(router, key, RemoteError(
                "this request already ran once; its reply was dropped because the server's reply memory "
                "(--reply-cache-mb) was full, and it is not run again"))
        elif method in DIRECT_METHODS:
            if isinstance(self._worker, Worker):
                self._reply(router, key, {"ok": True, "result": self.info()})
            else:  # the loop front end replies once a replica has answered (it must not block its loop)
                self._worker.answer_direct(key)
        elif self._draining.is_set():
            self._stats["refused_stopping"] += 1
            self._reply_error(router, key, _stopping_error())
        elif self._replies.unread_bytes(identity) >= self._replies.max_unread_per_client:
            self._stats["busy"] += 1
            self._reply_error(router, key, ServerBusyError(
                f"this client has {self._replies.unread_bytes(identity)} bytes of unread replies (limit "
                f"{self._replies.max_unread_per_client}); read them before sending more requests"))
        elif method == "imagine_batch" and isinstance(params.get("moves"), list) \
                and len(params["moves"]) > wire.MAX_BATCH_VIEWS:  # refused before any work is done
            self._reply_error(router, key, _batch_too_large(len(params["moves"])))
        else:
            self._inflight.add(key)
            if not self._worker.submit(Job(key, method, params)):
                self._inflight.discard(key)
                self._stats["busy"] += 1
                self._reply_error(router, key, ServerBusyError(
                    f"model server queue is full ({self.max_queue} requests waiting); retry later"))

    def _reply(self, router: zmq.Socket, key: tuple[bytes, str | None], body: dict[str, Any]) -> None:
        frames = wire.encode({"v": wire.PROTOCOL_VERSION, "id": key[1], **body})
        try:
            router.send_multipart([key[0], b"", *frames], zmq.NOBLOCK, copy=False)
        except zmq.Again:  # a client that does not read loses its small error replies, not our memory
            self._stats["held_back"] += 1

    def _reply_error(self, router: zmq.Socket, key: tuple[bytes, str | None], exc: Exception) -> None:
        self._stats["errors"] += 1
        self._reply(router, key, {"ok": False, "error": wire.error_to_wire(exc)})


def _stopping_error() -> ServerBusyError:
    return ServerBusyError("model server is shutting down; this request was not run (retry once it is back)")


def _batch_too_large(count: int) -> InvalidInputError:
    return InvalidInputError("params.moves", f"at most {wire.MAX_BATCH_VIEWS} moves per imagine_batch request "
                             f"(its reply must fit in {wire.MAX_ARRAYS} array frames); split the batch",
                             f"{count} moves")


def _check_request(header: dict[str, Any]) -> tuple[str, str, dict[str, Any]]:
    request_id, method, params = header.get("id"), header.get("method"), header.get("params", {})
    if not isinstance(request_id, str) or not 0 < len(request_id) <= wire.MAX_REQUEST_ID_CHARS:
        raise wire.WireError("malformed", f"request id must be a string of 1-{wire.MAX_REQUEST_ID_CHARS} characters")
    if method not in WORKER_METHODS and method not in DIRECT_METHODS:
        raise wire.WireError("unknown_method", f"unknown method {method!r}; known: "
                             + ", ".join(sorted(WORKER_METHODS + DIRECT_METHODS)))
    if not isinstance(params, dict):
        raise wire.WireError("malformed", f"params must be a map, got {type(params).__name__}")
    return request_id, method, params
