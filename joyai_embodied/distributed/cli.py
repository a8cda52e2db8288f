"""Command-line hooks: ``eval --workers N | --ray-address ADDR`` and ``serve-model --ray --replicas N``.

The commands package calls these; they parse nothing themselves beyond the options declared here::

    add_eval_ray_arguments(parser)      # in commands/eval.py add_arguments
    if uses_ray(args): return run_eval(args)            # first thing in commands/eval.py run
    add_ray_arguments(parser)           # in commands/serve_model.py add_arguments
    if args.ray: return run_serve(args)                 # first thing in commands/serve_model.py run
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from pathlib import Path
from typing import Any

from ..config import positive_int


def add_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """``serve-model`` options: ``--ray``, ``--replicas N``, ``--ray-address ADDR``."""
    parser.add_argument("--ray", action="store_true",
                        help="serve the model as Ray Serve replicas; the ZMQ endpoint forwards to them")
    parser.add_argument("--replicas", type=positive_int, default=1, help="Ray Serve replicas (default 1)")
    parser.add_argument("--ray-address", metavar="ADDR", default=None,
                        help="existing Ray cluster ('auto' = the one `ray start` made here); default: a local "
                             "cluster on 127.0.0.1 for this run")
    parser.add_argument("--replica-gpus", type=float, default=None,
                        help="GPUs per replica (default: the preset's ray_serve.num_gpus, else none)")


def add_eval_ray_arguments(parser: argparse.ArgumentParser) -> None:
    """``eval`` options: ``--workers N`` (a local Ray cluster) or ``--ray-address ADDR`` (an existing one)."""
    parser.add_argument("--workers", type=positive_int, default=None,
                        help="run episodes on N Ray workers (a local cluster started for this run)")
    parser.add_argument("--ray-address", metavar="ADDR", default=None,
                        help="run episodes on an existing Ray cluster ('auto' = the one `ray start` made here)")


def uses_ray(args: argparse.Namespace) -> bool:
    """True when ``eval`` was asked to run on Ray."""
    return bool(getattr(args, "workers", None) or getattr(args, "ray_address", None))


def run_eval(args: argparse.Namespace) -> int:
    """``joyai-embodied eval`` on Ray: the same tables and JSON as serially, plus "workers" and "wall_s".

    ``args`` as the ``eval`` command parsed them, ``--small`` already applied to seeds and size.

    Returns:
        0 when every benchmark ran and no episode was lost, 1 otherwise.

    Raises:
        JoyAIError: Ray missing, no worker could start, bad option.
        OSError: the output folder cannot be written.
    """
    from ..errors import InvalidInputError
    from ..evaluation.tables import format_table, plain
    from .evaluate import evaluate_distributed

    if getattr(args, "record", None):
        raise InvalidInputError("--record", "a serial run (recording is not done on Ray workers)")
    chosen = args.only or (["spatial", "imagination"] + (["planner"] if args.planner else []))
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = {"backend": args.backend, "address": args.address, "width": args.width, "height": args.height}
    status = 0
    for name in chosen:
        where = args.ray_address or f"a local cluster of {args.workers} workers"
        print(f"== {name}: {len(seeds)} seeds from {seeds[0]}, backend {args.backend}, on {where}", flush=True)

        def progress(episode: Any) -> None:
            print(f"[{episode.done}/{episode.total}] seed {episode.seed}: {episode.seconds:.2f} s "
                  f"(node {episode.node_id[:8]})", flush=True)

        result, stats = evaluate_distributed(name, seeds, config, workers=args.workers, address=args.ray_address,
                                             progress=progress)
        figures = {"benchmark": name, "backend": args.backend, "seeds": seeds, "seconds": round(stats.wall_s, 1),
                   "result": plain(result), "workers": stats.workers, "wall_s": round(stats.wall_s, 3),
                   "ray": stats.to_dict()}
        table = format_table(name, figures["result"])
        (out / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
        (out / f"{name}.md").write_text(f"# {name} ({args.backend}, seeds {seeds[0]}-{seeds[-1]}, Ray)\n\n{table}\n",
                                        encoding="utf-8")
        print(table)
        if stats.retried or stats.lost:
            print(f"worker deaths {stats.worker_deaths}: retried seeds {sorted(stats.retried)}, "
                  f"lost {sorted(stats.lost)}", file=sys.stderr)
        print(f"({figures['wall_s']} s on {stats.workers} workers; written {out / (name + '.json')})\n")
        status |= int(bool(stats.lost))
    return status


def run_libero_eval(args: argparse.Namespace) -> int:
    """``joyai-embodied eval --libero SUITE --workers N | --ray-address ADDR``: LIBERO episodes on Ray workers.

    Returns:
        0 when every episode succeeded, 1 otherwise (as the serial LIBERO evaluation).

    Raises:
        InvalidInputError: bad suite, task or init-state list.
    """
    from ..evaluation.libero import format_task_table, parse_index_list
    from .episodes import LIBERO_KEY_STRIDE, libero_keys
    from .evaluate import evaluate_distributed

    from sim_envs.libero.suites import task_count  # the suite's size, to expand "all tasks"

    tasks = list(range(task_count(args.libero))) if args.tasks is None else parse_index_list(args.tasks, "tasks")
    keys = libero_keys(tasks, parse_index_list(args.init_states, "init-states"))
    config = {"suite": args.libero, "backend": getattr(args, "backend", "geometric"),
              "address": getattr(args, "address", None)}

    def progress(episode: Any) -> None:
        task, state = divmod(episode.seed, LIBERO_KEY_STRIDE)
        print(f"[{episode.done}/{episode.total}] task {task} init {state}: {episode.seconds:.1f} s "
              f"(node {episode.node_id[:8]})", flush=True)

    report, stats = evaluate_distributed("libero", keys, config, workers=getattr(args, "workers", None),
                                         address=getattr(args, "ray_address", None), progress=progress)
    report = {**report, "workers": stats.workers, "wall_s": round(stats.wall_s, 3), "ray": stats.to_dict()}
    out = Path(getattr(args, "out", None) or "out/eval")
    out.mkdir(parents=True, exist_ok=True)
    (out / f"libero_{args.libero}.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
    if report.get("episodes"):
        print(format_task_table(report))
    print(f"({report['wall_s']} s on {stats.workers} workers; written {out / ('libero_' + args.libero + '.json')})")
    return 0 if report.get("success_rate") == 1.0 and not stats.lost else 1


def run_serve(args: argparse.Namespace) -> int:
    """``joyai-embodied serve-model --ray``: deploys the replicas, then serves ZMQ in front of them.

    Returns:
        0 after SIGINT/SIGTERM; 2 on a refused bind (before anything is deployed).

    Raises:
        JoyAIError: Ray missing or unreachable, bad option, the model fails to load on a replica.
    """
    from ..serve import zmq_command
    from ..serve.endpoint import check_bind
    from ..serve.zmq_server import ModelServer
    from .cluster import connect

    if args.generate_keys:
        return zmq_command.run(args)
    check_bind(args.bind, args.keys, args.insecure)  # refused before a replica loads a model
    connect(args.ray_address)  # a one-line BackendUnavailableError when Ray is missing or unreachable
    from ..serve import ray_serve
    overrides = {"device": args.device} if getattr(args, "device", None) else {}
    service = ray_serve.deploy(args.preset, args.replicas, overrides=overrides, max_scenes=args.max_scenes,
                               num_gpus=args.replica_gpus)
    try:
        server = ModelServer(service.world_model, args.bind, max_queue=args.max_queue, max_batch=args.max_batch,
                             max_payload_bytes=int(args.max_payload_mb * 2**20),
                             reply_cache_bytes=int(args.reply_cache_mb * 2**20), keys_dir=args.keys,
                             insecure=args.insecure, preset=str(args.preset), service=service,
                             workers=getattr(args, "workers", None))
        server.start()
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: server.request_stop())
        print(f"serving {args.preset!s} as {args.replicas} Ray Serve replica(s) on {server.address}", flush=True)
        server.serve_forever()
    finally:
        ray_serve.undeploy()
    return 0

