"""`joyai-embodied serve-model`: one world model served to many robots over ZMQ.

Two threads share the work. The I/O thread owns the ROUTER socket: it decodes requests, answers
``info``/``health``, malformed and over-limit requests at once, answers "busy" when the bounded queue is
full, re-sends cached replies to retried requests, and routes finished replies. The worker thread owns the
model: it takes requests in arrival order and runs them, batching queued ``imagine`` requests on the same
scene (and seed) into one ``imagine_batch`` call.

A retried request (same request id) is never run twice: while it runs, the retry only updates where the
reply goes; once answered, the reply comes from a bounded cache. This is what makes retrying an ``edit``
safe.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import zmq

from .. import __version__
from ..errors import InvalidInputError, JoyAIError, ServerBusyError
from ..world_model import WorldModel
from ..backends.remote import wire
from ..service import WORKER_METHODS, ModelService

DIRECT_METHODS = ("info", "health")
_RESULTS_ENDPOINT = "inproc://joyai-results-{}"


@dataclass
class _Job:
    request_id: str
    method: str
    params: dict[str, Any]
    received: float = field(default_factory=time.monotonic)

    def batch_key(self) -> tuple | None:
        """Requests with equal keys can share one ``imagine_batch`` call."""
        if self.method != "imagine" or not isinstance(self.params.get("scene"), str):
            return None
        return self.params["scene"], self.params.get("seed")


class ReplyCache:
    """Recent replies by request id, bounded in count and bytes, oldest dropped first."""

    def __init__(self, max_entries: int = 1024, max_bytes: int = 256 * 1024 * 1024):
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._replies: OrderedDict[str, list[bytes]] = OrderedDict()
        self._bytes = 0

    def __contains__(self, request_id: str) -> bool:
        return request_id in self._replies

    def get(self, request_id: str) -> list[bytes]:
        return self._replies[request_id]

    def put(self, request_id: str, frames: list[bytes]) -> None:
        size = sum(len(f) for f in frames)
        if size > self.max_bytes:
            return  # a reply bigger than the whole cache is not kept; its retry would run again
        self._replies[request_id] = frames
        self._bytes += size
        while len(self._replies) > self.max_entries or self._bytes > self.max_bytes:
            _, dropped = self._replies.popitem(last=False)
            self._bytes -= sum(len(f) for f in dropped)


def is_loopback(endpoint: str) -> bool:
    """True when ``endpoint`` can only be reached from this machine (loopback TCP, ipc, inproc)."""
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    host = urlsplit(f"tcp://{rest}").hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


class ModelServer:
    """Serves a :class:`~joyai_embodied.WorldModel` on a ZMQ ROUTER socket.

    Args:
        world_model: the in-process model that does the work.
        bind: ZMQ endpoint; ``tcp://127.0.0.1:*`` picks a free port (see :attr:`address`).
        max_queue: requests that may wait for the worker; one more is answered "busy" at once.
        max_scenes: scenes kept for clients (least recently used evicted first).
        max_batch: most ``imagine`` requests merged into one backend call.
        max_payload_bytes: largest request accepted; larger ones get a ``too_large`` error reply.
        reply_cache_bytes: memory for replies kept to answer retried requests.
        keys_dir: CURVE keys made by :func:`~joyai_embodied.backends.remote.keys.generate_keys`; required for a
            non-loopback ``bind`` unless ``insecure``.
        insecure: allow a non-loopback ``bind`` without encryption or authentication.
        preset: preset name reported by ``info``.

    Raises:
        InvalidInputError: a bound is out of range, or a non-loopback bind has neither keys nor ``insecure``.
    """

    def __init__(self, world_model: WorldModel, bind: str = "tcp://127.0.0.1:5555", *, max_queue: int = 64,
                 max_scenes: int = 64, max_batch: int = 8, max_payload_bytes: int = wire.MAX_PAYLOAD_BYTES,
                 reply_cache_bytes: int = 256 * 1024 * 1024, keys_dir: str | None = None, insecure: bool = False,
                 preset: str = ""):
        for name, value in (("max_queue", max_queue), ("max_batch", max_batch),
                            ("max_payload_bytes", max_payload_bytes)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(name, "an integer >= 1", value)
        if not is_loopback(bind) and not keys_dir and not insecure:
            raise InvalidInputError(
                "bind", "a loopback address (tcp://127.0.0.1:PORT), or CURVE keys (--keys DIR) to serve beyond this "
                "machine, or an explicit --insecure", bind)
        self.world_model = world_model
        self.service = ModelService(world_model, max_scenes)
        self.bind, self.keys_dir, self.insecure, self.preset = bind, keys_dir, insecure, preset
        self.max_queue, self.max_batch, self.max_payload_bytes = max_queue, max_batch, max_payload_bytes
        self.address = ""
        self._cache = ReplyCache(max_bytes=reply_cache_bytes)
        self._queue: deque[_Job] = deque()
        self._queue_ready = threading.Condition()
        self._inflight: dict[str, bytes] = {}  # request id -> identity the reply goes to (latest retry wins)
        self._stats = {"requests": 0, "busy": 0, "errors": 0, "batches": 0, "batched_requests": 0,
                       "largest_batch": 0, "duplicates": 0, "failed": 0}
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._context: zmq.Context | None = None
        self._authenticator = None

    # -- lifecycle --------------------------------------------------------------------------------------
    def start(self) -> "ModelServer":
        """Binds and starts the I/O and worker threads; returns at once. :attr:`address` is then set."""
        self._context = zmq.Context()
        router = self._context.socket(zmq.ROUTER)
        router.setsockopt(zmq.LINGER, 0)
        # Frames far over the limit drop the connection instead of being buffered; those just over it
        # still arrive and get a readable "too_large" reply.
        router.setsockopt(zmq.MAXMSGSIZE, 2 * self.max_payload_bytes + wire.MAX_HEADER_BYTES)
        if self.keys_dir:
            from ..backends.remote.keys import configure_server

            self._authenticator = configure_server(self._context, router, self.keys_dir)
        router.bind(self.bind)
        self.address = router.getsockopt_string(zmq.LAST_ENDPOINT)
        results = self._context.socket(zmq.PULL)
        results_endpoint = _RESULTS_ENDPOINT.format(id(self))
        results.bind(results_endpoint)
        self._threads = [
            threading.Thread(target=self._io_loop, args=(router, results), name="joyai-server-io", daemon=True),
            threading.Thread(target=self._work_loop, args=(results_endpoint,), name="joyai-server-worker",
                             daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stops serving; a request being run is finished first (up to ``timeout_s``)."""
        self._stop.set()
        with self._queue_ready:
            self._queue_ready.notify_all()
        for thread in self._threads:
            thread.join(timeout_s)
        if self._authenticator is not None:
            self._authenticator.stop()
        if self._context is not None:
            self._context.destroy(linger=0)
            self._context = None

    def serve_forever(self) -> None:
        """Serves until :meth:`stop` is called (from a signal handler or another thread)."""
        if not self._threads:
            self.start()
        while not self._stop.wait(0.5):
            pass
        self.stop()

    def __enter__(self) -> "ModelServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def info(self) -> dict[str, Any]:
        """What the ``info``/``health`` request answers: backend, device, queue depth, versions, counters."""
        backend_info = self.world_model.info()
        return {"status": "ok", "version": __version__, "protocol_version": wire.PROTOCOL_VERSION,
                "preset": self.preset, "backend": backend_info.get("backend", self.world_model.backend.name),
                "device": str(backend_info.get("device", "cpu")), "backend_info": backend_info,
                "queue_depth": len(self._queue), "max_queue": self.max_queue, "in_flight": len(self._inflight),
                "scenes": len(self.service.scenes), "max_scenes": self.service.scenes.max_scenes,
                "scenes_evicted": self.service.scenes.evicted, "max_batch": self.max_batch,
                "max_payload_bytes": self.max_payload_bytes, "secure": bool(self.keys_dir), **self._stats}

    # -- I/O thread ---------------------------------------------------------------------------------------
    def _io_loop(self, router: zmq.Socket, results: zmq.Socket) -> None:
        poller = zmq.Poller()
        poller.register(router, zmq.POLLIN)
        poller.register(results, zmq.POLLIN)
        while not self._stop.is_set():
            events = dict(poller.poll(100))
            if results in events:
                self._route_results(router, results)
            if router in events:
                for _ in range(256):  # bounded so replies are routed even under a flood of requests
                    try:
                        parts = router.recv_multipart(zmq.NOBLOCK, copy=False)
                    except zmq.Again:
                        break
                    self._on_request(router, parts)
        router.close(linger=0)
        results.close(linger=0)

    def _route_results(self, router: zmq.Socket, results: zmq.Socket) -> None:
        while True:
            try:
                request_id, *frames = results.recv_multipart(zmq.NOBLOCK)
            except zmq.Again:
                return
            key = request_id.decode()
            identity = self._inflight.pop(key, None)
            self._cache.put(key, frames)
            if identity is not None:
                router.send_multipart([identity, b"", *frames], copy=False)

    def _on_request(self, router: zmq.Socket, parts: list) -> None:
        identity, frames = parts[0].bytes, parts[1:]
        if frames and len(frames[0]) == 0:  # the empty delimiter REQ and our DEALER clients send
            frames = frames[1:]
        self._stats["requests"] += 1
        try:
            header = wire.decode(frames, self.max_payload_bytes).header
            request_id, method, params = _check_request(header)
        except Exception as exc:  # whatever a sender put in the frames, it gets an error reply, not a crash
            self._reply_error(router, identity, wire.peek_request_id(frames), exc)
            return
        if request_id in self._cache:  # a retry of an answered request: same reply, not run again
            self._stats["duplicates"] += 1
            router.send_multipart([identity, b"", *self._cache.get(request_id)], copy=False)
        elif request_id in self._inflight:  # a retry of a running request: its reply goes to the retry
            self._stats["duplicates"] += 1
            self._inflight[request_id] = identity
        elif method in DIRECT_METHODS:
            self._reply(router, identity, {"v": wire.PROTOCOL_VERSION, "id": request_id, "ok": True,
                                           "result": self.info()})
        else:
            with self._queue_ready:
                full = len(self._queue) >= self.max_queue
                if not full:
                    self._inflight[request_id] = identity
                    self._queue.append(_Job(request_id, method, params))
                    self._queue_ready.notify()
            if full:
                self._stats["busy"] += 1
                self._reply_error(router, identity, request_id, ServerBusyError(
                    f"model server queue is full ({self.max_queue} requests waiting); retry later"))

    def _reply(self, router: zmq.Socket, identity: bytes, header: dict[str, Any]) -> None:
        router.send_multipart([identity, b"", *wire.encode(header)], copy=False)

    def _reply_error(self, router: zmq.Socket, identity: bytes, request_id: str | None, exc: Exception) -> None:
        self._stats["errors"] += 1
        self._reply(router, identity, {"v": wire.PROTOCOL_VERSION, "id": request_id, "ok": False,
                                       "error": wire.error_to_wire(exc)})

    # -- worker thread -------------------------------------------------------------------------------------
    def _work_loop(self, results_endpoint: str) -> None:
        results = self._context.socket(zmq.PUSH)
        results.setsockopt(zmq.LINGER, 0)
        results.connect(results_endpoint)
        try:
            while True:
                batch = self._next_batch()
                if batch is None:
                    return
                for job, outcome in zip(batch, self._run_batch(batch)):
                    results.send_multipart([job.request_id.encode(), *self._encode_outcome(job, outcome)],
                                           copy=False)
        finally:
            results.close(linger=0)

    def _next_batch(self) -> list[_Job] | None:
        with self._queue_ready:
            while not self._queue:
                if self._stop.is_set():
                    return None
                self._queue_ready.wait(0.5)
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
            return batch

    def _run_batch(self, batch: list[_Job]) -> list[Any]:
        """Runs the jobs; returns a result or an exception per job, in order."""
        if len(batch) > 1:
            self._stats["batches"] += 1
            self._stats["batched_requests"] += len(batch)
            self._stats["largest_batch"] = max(self._stats["largest_batch"], len(batch))
            try:
                moves = [job.params.get("move") for job in batch]
                scene, seed = batch[0].batch_key()
                return list(self.service.imagine_many(scene, moves, seed))
            except Exception:  # e.g. one impossible move: run them one by one so each gets its own answer
                pass
        outcomes = []
        for job in batch:
            try:
                outcomes.append(self.service.run(job.method, job.params))
            except Exception as exc:  # every failure becomes that request's error reply; the server keeps serving
                outcomes.append(exc)
        return outcomes

    def _encode_outcome(self, job: _Job, outcome: Any) -> list:
        header: dict[str, Any] = {"v": wire.PROTOCOL_VERSION, "id": job.request_id}
        if not isinstance(outcome, BaseException):
            try:
                return wire.encode({**header, "ok": True, "result": outcome})
            except wire.WireError as exc:
                outcome = exc
        self._stats["failed"] += 1  # only the worker thread writes this counter
        if not isinstance(outcome, JoyAIError):
            print(f"joyai-embodied serve-model: {job.method} failed: {type(outcome).__name__}: {outcome}",
                  file=sys.stderr)
        return wire.encode({**header, "ok": False, "error": wire.error_to_wire(outcome)})


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


# -- command line -------------------------------------------------------------------------------------------

def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``joyai-embodied serve-model``."""
    parser.add_argument("--preset", "--backend", dest="preset", default="geometric",
                        help="model preset name or YAML path (default: geometric)")
    parser.add_argument("--bind", default="tcp://127.0.0.1:5555",
                        help="ZMQ endpoint to serve on (default: tcp://127.0.0.1:5555, this machine only)")
    parser.add_argument("--keys", metavar="DIR", help="CURVE key folder (see --generate-keys); required to bind "
                        "beyond loopback")
    parser.add_argument("--insecure", action="store_true",
                        help="allow a non-loopback --bind without CURVE encryption and client authentication")
    parser.add_argument("--generate-keys", metavar="DIR",
                        help="write a server key pair and a client key pair into DIR, then exit")
    parser.add_argument("--clients", nargs="+", default=["client"], metavar="NAME",
                        help="client key pairs to create with --generate-keys (default: client)")
    parser.add_argument("--device", help="override the preset's device (e.g. cuda:0)")
    parser.add_argument("--max-queue", type=int, default=64, help="requests that may wait; more get 'busy'")
    parser.add_argument("--max-scenes", type=int, default=64, help="scenes kept for clients (LRU)")
    parser.add_argument("--max-batch", type=int, default=8, help="imagine requests merged into one batch")
    parser.add_argument("--max-payload-mb", type=float, default=wire.MAX_PAYLOAD_BYTES / 2**20,
                        help="largest request accepted, MiB (default 64)")
    parser.add_argument("--reply-cache-mb", type=float, default=256,
                        help="memory for replies kept to answer retried requests, MiB (default 256)")


def run(args: argparse.Namespace) -> int:
    """Runs ``joyai-embodied serve-model``; returns the process exit code."""
    if args.generate_keys:
        from ..backends.remote.keys import generate_keys

        paths = generate_keys(args.generate_keys, clients=args.clients)
        print(f"server secret key: {paths.server_secret} (keep on the server)")
        print(f"server public key: {paths.server_public} (give to clients as server_key)")
        for name, secret in paths.client_secrets.items():
            print(f"client {name!r} key pair: {secret} (give to that client as client_key)")
        print(f"authorized client public keys: {paths.authorized_dir}")
        return 0
    if not is_loopback(args.bind) and not args.keys and not args.insecure:
        # Refused before loading the model, which may take minutes on a large checkpoint.
        print(f"joyai-embodied serve-model: refusing to serve on {args.bind} without CURVE keys; pass --keys DIR "
              "(make them with --generate-keys DIR) or, on a trusted network only, --insecure", file=sys.stderr)
        return 2
    try:
        overrides = {"device": args.device} if args.device else {}
        world_model = WorldModel.load(args.preset, **overrides)
        server = ModelServer(world_model, args.bind, max_queue=args.max_queue, max_scenes=args.max_scenes,
                             max_batch=args.max_batch, max_payload_bytes=int(args.max_payload_mb * 2**20),
                             reply_cache_bytes=int(args.reply_cache_mb * 2**20), keys_dir=args.keys,
                             insecure=args.insecure, preset=str(args.preset))
        server.start()
    except (JoyAIError, zmq.ZMQError) as exc:
        print(f"joyai-embodied serve-model: {exc}", file=sys.stderr)
        return 2
    if args.insecure and not is_loopback(args.bind):
        print("warning: serving without encryption or authentication beyond this machine (--insecure)",
              file=sys.stderr)
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: server._stop.set())
    print(f"serving {args.preset!s} ({world_model.backend.name}) on {server.address}", flush=True)
    server.serve_forever()
    world_model.close()
    return 0
