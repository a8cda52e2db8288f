"""The ``serve-model`` command line of the ZMQ server: its options, and the process that serves until a signal.

One signal drains (the running request finishes, its reply is sent, queued ones are refused with a reply);
a second one exits at once. ``--generate-keys DIR`` writes CURVE key pairs and exits.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from typing import Any

import zmq

from ..backends.remote import wire
from ..config import megabytes_option, positive_int, seconds_option
from ..world_model import WorldModel
from .endpoint import check_bind, is_loopback
from .worker import MAX_WORKERS
from .zmq_server import ModelServer


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
    parser.add_argument("--max-queue", type=positive_int, default=64, help="requests that may wait; more get 'busy'")
    parser.add_argument("--max-scenes", type=positive_int, default=64, help="scenes kept for clients (LRU)")
    parser.add_argument("--max-batch", type=positive_int, default=8, help="imagine requests merged into one batch")
    parser.add_argument("--max-payload-mb", type=megabytes_option, default=wire.MAX_PAYLOAD_BYTES / 2**20,
                        help="largest request accepted, MiB (default 64)")
    parser.add_argument("--reply-cache-mb", type=megabytes_option, default=256,
                        help="memory for every reply held (kept for retries or not yet read), MiB (default 256)")
    parser.add_argument("--workers", type=_workers_option, default=None, metavar="N",
                        help=f"worker threads running requests, at most {MAX_WORKERS} (default 1; with --ray "
                        "none: requests are coroutines in the Serve handle's event loop, N brings back N threads)")
    parser.add_argument("--drain-timeout", type=seconds_option, default=60.0, metavar="S",
                        help="on SIGTERM/SIGINT, longest wait for the running request, s (default 60)")


def _workers_option(text: str) -> int:
    value = positive_int(text)
    if value > MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"expected at most {MAX_WORKERS} worker threads, got {value}")
    return value


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
    check_bind(args.bind, args.keys, args.insecure)  # before loading a model, which may take minutes
    overrides = {"device": args.device} if args.device else {}
    world_model = WorldModel.load(args.preset, **overrides)
    try:
        server = ModelServer(world_model, args.bind, max_queue=args.max_queue, max_scenes=args.max_scenes,
                             max_batch=args.max_batch, max_payload_bytes=int(args.max_payload_mb * 2**20),
                             reply_cache_bytes=int(args.reply_cache_mb * 2**20), keys_dir=args.keys,
                             insecure=args.insecure, preset=str(args.preset), workers=args.workers)
        server.start()
    except zmq.ZMQError as exc:
        world_model.close()
        print(f"joyai-embodied serve-model: cannot serve on {args.bind}: {exc}", file=sys.stderr)
        return 2
    if args.insecure and not is_loopback(args.bind):
        print("warning: serving without encryption or authentication beyond this machine (--insecure)",
              file=sys.stderr)
    signals = []

    def on_signal(signum: int, _frame: Any) -> None:
        signals.append(signum)
        if len(signals) > 1:  # a second signal: the user does not want to wait for the running request
            os.write(2, b"joyai-embodied serve-model: second signal, exiting without finishing\n")
            os._exit(128 + signum)
        server.request_stop()

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, on_signal)
    print(f"serving {args.preset!s} ({world_model.backend.name}) on {server.address}", flush=True)
    clean = server.serve_forever(drain_timeout_s=args.drain_timeout)
    if not clean:
        print("joyai-embodied serve-model: stopped without answering every request (see above, or --drain-timeout)",
              file=sys.stderr)
        os._exit(1)  # the worker still runs inside the model: do not tear the interpreter down under it
    world_model.close()
    return 0
