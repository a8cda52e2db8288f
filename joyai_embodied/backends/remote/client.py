"""A blocking client of the model server: one request, one reply, with timeouts and safe retries.

It uses a DEALER socket rather than REQ, because a REQ socket whose reply never comes is stuck for good.
Every request carries an id, and the client a routing id of its own that it keeps across reconnects; the
server keys requests by both. A retry re-sends the *same* request id, so the server answers it from its reply
store (or with the running request's reply) instead of running it again: an edit is never applied twice.
After a timeout the socket is closed and a new one connects, which also recovers from a server restart.
A socket monitor watches the connection's security handshake: CURVE keys that do not match the server's are
reported as :class:`~joyai_embodied.errors.HandshakeError` at once, not as a timeout after every retry.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from typing import Any, Mapping

import zmq

from zmq.utils.monitor import recv_monitor_message

from ...errors import HandshakeError, InvalidInputError, RemoteError, RequestTimeoutError
from . import wire

#: Largest reply accepted by default: an ``imagine_batch`` of 16 full-HD views fits.
MAX_REPLY_BYTES = wire.MAX_REPLY_BYTES
_HANDSHAKE_FAILED = (zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL, zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL,
                     zmq.EVENT_HANDSHAKE_FAILED_AUTH)


class ModelClient:
    """Sends protocol requests to a ``joyai-embodied serve-model`` server.

    Thread-safe: calls from several threads are serialised on the one socket.

    Args:
        address: server endpoint, e.g. ``tcp://127.0.0.1:5555``.
        timeout_s: seconds to wait for each attempt's reply.
        retries: further attempts after a timeout (each with the same request id, so never run twice).
        server_key: the server's CURVE public key (its ``server.key`` file or the Z85 text); needed when the
            server was started with ``--keys``.
        client_key: this client's ``.key_secret`` file (from ``--generate-keys``); needed with ``server_key``.
        max_request_bytes: requests larger than this are refused here, before sending.

    Raises:
        InvalidInputError: a bad address, timeout, retry count, or key option.
    """

    def __init__(self, address: str = "tcp://127.0.0.1:5555", timeout_s: float = 60.0, retries: int = 2,
                 server_key: str | os.PathLike | None = None, client_key: str | os.PathLike | None = None,
                 max_request_bytes: int = wire.MAX_PAYLOAD_BYTES):
        if not isinstance(address, str) or "://" not in address:
            raise InvalidInputError("address", "a ZMQ endpoint such as tcp://127.0.0.1:5555", repr(address))
        if isinstance(timeout_s, bool) or not isinstance(timeout_s, (int, float)) or not 0 < timeout_s <= 86400:
            raise InvalidInputError("timeout_s", "seconds in (0, 86400]", repr(timeout_s))
        if isinstance(retries, bool) or not isinstance(retries, int) or not 0 <= retries <= 100:
            raise InvalidInputError("retries", "an integer in [0, 100]", repr(retries))
        if (server_key is None) != (client_key is None):
            raise InvalidInputError("client_key" if client_key is None else "server_key",
                                    "server_key and client_key together (CURVE needs both), or neither")
        self.address, self.timeout_s, self.retries = address, float(timeout_s), retries
        self.max_request_bytes = max_request_bytes
        self._curve = None
        if server_key is not None:
            from .keys import load_key_pair, load_public_key

            self._curve = (load_public_key(server_key), load_key_pair(client_key))
        self._context = zmq.Context()
        self._socket: zmq.Socket | None = None
        self._monitor: zmq.Socket | None = None
        # Kept across reconnects: the server keys requests by (routing id, request id), so a retry on a
        # fresh socket still finds the first attempt's reply. Never starts with a zero byte (reserved by ZMQ).
        self.routing_id = b"jc" + uuid.uuid4().hex.encode()
        self._lock = threading.Lock()

    def call(self, method: str, params: Mapping[str, Any] | None = None, timeout_s: float | None = None) -> Any:
        """Runs ``method`` on the server and returns its result (arrays and core types restored).

        Args:
            method: protocol method (``observe``, ``relation``, ``imagine``, ``info``...).
            params: its parameters; values may be numpy arrays and core types.
            timeout_s: this call's per-attempt timeout (default: the client's).

        Returns:
            The ``result`` of the reply.

        Raises:
            RequestTimeoutError: no reply after every attempt.
            HandshakeError: the CURVE handshake failed (keys that do not match the server's), reported at once.
            ServerBusyError: the server's queue was full.
            InvalidInputError, UnknownObjectError, ...: the server raised it (same type as in-process).
            SceneExpiredError: the scene handle is no longer held by the server; observe again.
            RemoteError: any other server-side failure, or a reply that does not follow the protocol.
        """
        request_id = uuid.uuid4().hex
        frames = wire.encode({"v": wire.PROTOCOL_VERSION, "id": request_id, "method": method,
                              "params": dict(params or {})})
        size = sum(len(f) for f in frames)
        if size > self.max_request_bytes:  # refused here: the server would drop it or answer too_large
            side = wire.largest_square_image(self.max_request_bytes)
            raise InvalidInputError("request", f"at most {self.max_request_bytes} bytes on the wire (an observation "
                                    f"with rgb, depth and segmentation fits up to about {side}x{side} pixels)",
                                    f"{size} bytes for {method}")
        timeout = self.timeout_s if timeout_s is None else float(timeout_s)
        with self._lock:
            for _ in range(self.retries + 1):
                socket = self._connected_socket()
                socket.send_multipart([b"", *frames], copy=False)
                reply = self._wait_for(socket, request_id, timeout)
                if reply is not None:
                    break
                # The socket may hold a dead connection or a late reply: start afresh for the retry.
                self._drop_socket()
            else:
                raise RequestTimeoutError(
                    f"no reply from the model server at {self.address} to {method!r} within {timeout:g} s "
                    f"({self.retries + 1} attempts); is `joyai-embodied serve-model` running there?")
        if reply.get("ok") is True:
            return reply.get("result")
        raise wire.error_from_wire(reply.get("error"), self.address)

    def info(self, timeout_s: float | None = None) -> dict[str, Any]:
        """The server's ``info``: backend, device, queue depth, version, protocol version and counters."""
        return self.call("info", timeout_s=timeout_s)

    def close(self) -> None:
        """Closes the socket; pending replies are dropped."""
        with self._lock:
            self._drop_socket()
            if not self._context.closed:
                self._context.term()

    def __enter__(self) -> "ModelClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- internals ----------------------------------------------------------------------------------
    def _connected_socket(self) -> zmq.Socket:
        if self._socket is None:
            socket = self._context.socket(zmq.DEALER)
            socket.setsockopt(zmq.LINGER, 0)
            socket.setsockopt(zmq.MAXMSGSIZE, MAX_REPLY_BYTES)
            socket.setsockopt(zmq.ROUTING_ID, self.routing_id)
            if self._curve is not None:
                from .keys import configure_client

                configure_client(socket, *self._curve)
            self._monitor = socket.get_monitor_socket(zmq.EVENT_HANDSHAKE_FAILED_NO_DETAIL
                                                      | zmq.EVENT_HANDSHAKE_FAILED_PROTOCOL
                                                      | zmq.EVENT_HANDSHAKE_FAILED_AUTH)
            socket.connect(self.address)
            self._socket = socket
        return self._socket

    def _drop_socket(self) -> None:
        if self._socket is not None:
            self._socket.disable_monitor()
            self._monitor.close(linger=0)
            self._socket.close(linger=0)
            self._socket, self._monitor = None, None

    def _check_handshake(self) -> None:
        """Raises HandshakeError if the monitor saw the security handshake fail."""
        while self._monitor is not None and self._monitor.poll(0):
            event = recv_monitor_message(self._monitor)
            if event["event"] in _HANDSHAKE_FAILED:
                self._drop_socket()
                raise HandshakeError(self._handshake_cause(event["event"]))

    def _handshake_cause(self, event: int) -> str:
        where = f"the model server at {self.address}"
        if self._curve is None:
            return (f"{where} refused the connection's handshake: it requires CURVE keys (it runs with --keys); "
                    "pass server_key and client_key")
        if event == zmq.EVENT_HANDSHAKE_FAILED_AUTH:
            return (f"{where} refused this client's key: its public key is not in the server's "
                    "authorized_clients/ folder (wrong client_key, or the client was revoked)")
        return (f"the CURVE handshake with {where} failed: server_key is not that server's public key, or the "
                "server runs without --keys")

    def _wait_for(self, socket: zmq.Socket, request_id: str, timeout_s: float) -> dict[str, Any] | None:
        """The reply header to ``request_id``, or None on timeout. Replies to earlier, abandoned ids are dropped."""
        deadline = time.monotonic() + timeout_s
        poller = zmq.Poller()
        poller.register(socket, zmq.POLLIN)
        poller.register(self._monitor, zmq.POLLIN)
        while True:
            remaining_ms = int((deadline - time.monotonic()) * 1000)
            if remaining_ms <= 0:
                return None
            events = dict(poller.poll(remaining_ms))
            if self._monitor in events:
                self._check_handshake()
            if socket not in events:
                continue
            parts = socket.recv_multipart(copy=False)
            if parts and len(parts[0]) == 0:
                parts = parts[1:]
            try:
                header = wire.decode(parts, MAX_REPLY_BYTES).header
            except wire.WireError as exc:
                if wire.peek_request_id(parts) in (request_id, None):
                    raise RemoteError(f"model server at {self.address} sent an unreadable reply: {exc}") from exc
                continue
            except InvalidInputError as exc:  # a value in the reply failed validation on this side
                raise RemoteError(f"model server at {self.address} sent an invalid value: {exc}") from exc
            reply_id = header.get("id")
            if reply_id == request_id:
                return header
            if reply_id is None and header.get("ok") is False:
                # The server could not read our request at all, so it could not echo the id.
                return header
