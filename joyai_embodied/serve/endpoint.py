"""Checks of what ``serve-model`` is given: the address it binds to, and its numeric options.

One function, :func:`check_bind`, used both by the command line (before a model is loaded, which may take
minutes) and by :class:`~joyai_embodied.serve.zmq_server.ModelServer`. The numeric options' argparse types
(``nan``, ``0``, ``-1`` -> argparse's usage error, exit 2) are in :mod:`joyai_embodied.config`.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ..errors import InvalidInputError

SCHEMES = ("tcp", "ipc", "inproc")
#: Highest TCP port; libzmq silently binds a random port for a larger number instead of refusing it.
MAX_PORT = 65535


def is_loopback(endpoint: str) -> bool:
    """True when ``endpoint`` can only be reached from this machine (loopback TCP, ipc, inproc)."""
    scheme, _, rest = endpoint.partition("://")
    if scheme in ("ipc", "inproc"):
        return True
    if scheme != "tcp":
        return False
    try:
        host = urlsplit(f"tcp://{rest}").hostname or ""
    except ValueError:
        return False
    return host == "localhost" or host == "::1" or host.startswith("127.")


def check_bind(bind: str, keys_dir: str | None = None, insecure: bool = False) -> str:
    """Validates a ZMQ bind endpoint; returns it unchanged.

    Args:
        bind: ``tcp://HOST:PORT`` (PORT 1-65535 or ``*`` for a free one), ``ipc://PATH`` or ``inproc://NAME``.
        keys_dir: CURVE key folder, if the server uses one.
        insecure: the user explicitly allowed a non-loopback bind without keys.

    Raises:
        InvalidInputError: (field ``bind``) a malformed endpoint, a port out of range, or a non-loopback
            address without keys or ``insecure``.
    """
    scheme, sep, rest = bind.partition("://") if isinstance(bind, str) else ("", "", "")
    if not sep or scheme not in SCHEMES or not rest:
        raise InvalidInputError("bind", "an endpoint such as tcp://127.0.0.1:5555 (schemes: "
                                + ", ".join(SCHEMES) + ")", repr(bind))
    if scheme == "tcp":
        host, colon, port = rest.rpartition(":")
        if not colon or not host:
            raise InvalidInputError("bind", "tcp://HOST:PORT", repr(bind))
        if port != "*" and not (port.isdigit() and 1 <= int(port) <= MAX_PORT):
            raise InvalidInputError("bind", f"a TCP port in 1-{MAX_PORT} or '*' (a free port)", repr(port))
    if not is_loopback(bind) and not keys_dir and not insecure:
        raise InvalidInputError(
            "bind", "a loopback address (tcp://127.0.0.1:PORT), or CURVE keys (--keys DIR, made with "
            "--generate-keys DIR) to serve beyond this machine, or an explicit --insecure (trusted networks only)",
            bind)
    return bind
