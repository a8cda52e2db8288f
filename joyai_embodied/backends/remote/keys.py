"""CURVE keys for the model server: generating them and loading them into ZMQ sockets.

A key folder made by :func:`generate_keys` (or ``joyai-embodied serve-model --generate-keys DIR``)::

    DIR/server.key                  server public key   -> give to every client (``server_key=``)
    DIR/server.key_secret           server key pair     -> stays on the server
    DIR/clients/<name>.key_secret   a client's key pair -> give to that client only (``client_key=``)
    DIR/authorized_clients/<name>.key   public keys the server accepts; delete one to revoke that client

The server encrypts every connection and accepts only clients whose public key is in
``authorized_clients/`` (checked by a ZAP authenticator thread).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import zmq
import zmq.auth

from ...errors import InvalidInputError

SERVER_NAME = "server"
CLIENTS_DIR = "clients"
AUTHORIZED_DIR = "authorized_clients"


@dataclass(frozen=True)
class KeyPaths:
    """Where :func:`generate_keys` wrote each file."""

    server_public: Path
    server_secret: Path
    client_secrets: dict[str, Path]
    authorized_dir: Path


def generate_keys(directory: str | os.PathLike, clients: Iterable[str] = ("client",)) -> KeyPaths:
    """Creates a server key pair and one key pair per client name in ``directory``.

    Existing server keys are kept (so clients already given the public key keep working); client key
    pairs that already exist are kept as well.

    Args:
        directory: folder to write (created if missing).
        clients: client names; each gets ``clients/<name>.key_secret`` and an authorized public key.

    Returns:
        The paths written.

    Raises:
        InvalidInputError: a client name is empty, contains a path separator, or is ``"server"``; or
            ``directory`` cannot be created or written (field ``directory``, with the system's reason).
    """
    try:
        return _generate_keys(Path(directory), list(clients))
    except OSError as exc:  # e.g. /proc/x, a read-only disk, a file where the folder should be
        raise InvalidInputError("directory", "a folder that can be created and written",
                                f"{os.fspath(directory)!r} ({exc.strerror or exc})") from exc


def _generate_keys(root: Path, names: list[str]) -> KeyPaths:
    for name in names:
        if not name or "/" in name or os.sep in name or name.startswith(".") or name == SERVER_NAME:
            raise InvalidInputError("clients", "plain names without path separators (not 'server')", repr(name))
    clients_dir, authorized_dir = root / CLIENTS_DIR, root / AUTHORIZED_DIR
    for folder in (root, clients_dir, authorized_dir):
        folder.mkdir(parents=True, exist_ok=True)
    server_public, server_secret = root / f"{SERVER_NAME}.key", root / f"{SERVER_NAME}.key_secret"
    if not server_secret.is_file():
        zmq.auth.create_certificates(root, SERVER_NAME)
    os.chmod(server_secret, 0o600)
    client_secrets = {}
    for name in names:
        secret = clients_dir / f"{name}.key_secret"
        if not secret.is_file():
            zmq.auth.create_certificates(clients_dir, name)
        os.chmod(secret, 0o600)
        # The server only needs the public half; copying it into authorized_clients/ authorizes the client.
        shutil.copyfile(clients_dir / f"{name}.key", authorized_dir / f"{name}.key")
        client_secrets[name] = secret
    return KeyPaths(server_public, server_secret, client_secrets, authorized_dir)


def load_public_key(value: str | os.PathLike) -> bytes:
    """A Z85 public key from a ``.key`` file (or a ``.key_secret`` file), or the 40-character key itself.

    Raises:
        InvalidInputError: neither a readable key file nor a 40-character Z85 key.
    """
    text = os.fspath(value)
    if len(text) == 40 and not Path(text).exists():
        return text.encode("ascii")
    public, _ = _read_certificate(text, "server_key", need_secret=False)
    return public


def load_key_pair(path: str | os.PathLike, field: str = "client_key") -> tuple[bytes, bytes]:
    """(public, secret) Z85 keys from a ``.key_secret`` file.

    Raises:
        InvalidInputError: the file is missing or holds no secret key (naming ``field``).
    """
    public, secret = _read_certificate(os.fspath(path), field, need_secret=True)
    return public, secret


def _read_certificate(path: str, field: str, need_secret: bool) -> tuple[bytes, bytes | None]:
    if not Path(path).is_file():
        raise InvalidInputError(field, "a key file made by `joyai-embodied serve-model --generate-keys DIR`"
                                + ("" if need_secret else " or a 40-character Z85 public key"), repr(path))
    try:
        public, secret = zmq.auth.load_certificate(path)
    except (ValueError, OSError) as exc:
        raise InvalidInputError(field, "a ZMQ certificate file", f"{path!r} ({exc})") from exc
    if need_secret and not secret:
        raise InvalidInputError(field, "a .key_secret file (holds the client's secret key)", repr(path))
    return public, secret


def configure_server(context: zmq.Context, socket: zmq.Socket, keys_dir: str | os.PathLike):
    """Makes ``socket`` a CURVE server that accepts only the authorized clients in ``keys_dir``.

    Call before ``bind``. Returns the started authenticator; stop it when the socket closes.

    Raises:
        InvalidInputError: ``keys_dir`` lacks the server key pair or the authorized_clients folder.
    """
    from zmq.auth.thread import ThreadAuthenticator

    root = Path(keys_dir)
    public, secret = load_key_pair(root / f"{SERVER_NAME}.key_secret", field="keys")
    authorized = root / AUTHORIZED_DIR
    if not authorized.is_dir() or not any(authorized.glob("*.key")):
        raise InvalidInputError("keys", f"a folder with {AUTHORIZED_DIR}/*.key client public keys "
                                "(make one with --generate-keys DIR)", str(root))
    authenticator = ThreadAuthenticator(context)
    authenticator.start()
    authenticator.configure_curve(domain="*", location=str(authorized))
    socket.curve_secretkey = secret
    socket.curve_publickey = public
    socket.curve_server = True
    return authenticator


def configure_client(socket: zmq.Socket, server_key: bytes, key_pair: tuple[bytes, bytes]) -> None:
    """Makes ``socket`` a CURVE client of the server with public key ``server_key``. Call before ``connect``."""
    socket.curve_serverkey = server_key
    socket.curve_publickey, socket.curve_secretkey = key_pair
