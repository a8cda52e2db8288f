"""Scale-out on Ray: evaluation speed-up, per-episode overhead, Serve throughput, added latency, batching.

Prints:
  - eval: the tabletop planner benchmark serially in this process, then on 1 and 2 Ray workers; the
    speed-up of 2 workers over 1, and Ray's per-episode overhead (round trip seen by the driver minus the
    time inside the episode) as a share of an episode;
  - serve: requests/s of CPU-bound geometric requests (relation, observe) from 8 client threads to 1 and
    to 2 replicas;
  - zmq: the same through the ZMQ front end (``serve-model --ray``: 8 remote clients -> ModelServer with its
    worker pool of replicas x 2 -> Serve), 1 and 2 replicas, and 2 replicas behind a single ZMQ worker;
  - latency: p50 of a relation through the plain ZMQ server and through the ZMQ server forwarding to Ray
    Serve (``serve-model --ray``), and the difference;
  - batching: k concurrent imagine requests on one replica (``@serve.batch``) against k one after another,
    with the tiny random joyai-image checkpoint on CPU.

``--serve-only`` (about 2-3 minutes) measures just the two Serve targets, interleaved and repeated (1 and 2
replicas alternate; plain ZMQ and ZMQ -> Serve latency blocks alternate) and prints medians, the load
average, and CPU milliseconds per request in each process (front end, replica, scene store, Ray's own
daemons): figures that do not depend on how busy the machine is, and from them the 2-replica speed-up that
2 free cores would give.

Every Ray part runs in a loopback-only network namespace: the script re-executes itself under
``unshare -n`` (root) unless it already runs in one (``JOYAI_IN_NAMESPACE=1``).

    .venv/bin/python benchmarks/ray_bench.py            # 12 planner seeds at 640x480, 400 requests
    .venv/bin/python benchmarks/ray_bench.py --small    # 6 seeds at 320x240, 120 requests (CI smoke run)
    .venv/bin/python benchmarks/ray_bench.py --serve-only [--repeats 3]   # the Serve targets only
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

os.environ.setdefault("MUJOCO_GL", "egl")
CLIENT_THREADS = 8


def in_namespace(argv: list[str], script: str | None = None) -> int:
    """Re-runs this script (or ``script``) inside ``unshare -n`` with only loopback up; returns its exit code.

    Where a namespace cannot be made (no unshare, not root) it prints why and returns 0: a Ray cluster is
    never started on the machine's network, and CI's ``bench-small`` goes on (as the Ray tests skip).
    """
    import shlex

    try:
        probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    except FileNotFoundError:
        probe = None
    if probe is None or probe.returncode != 0:
        print("ray_bench: skipped: Ray runs only in a loopback-only network namespace, and `unshare -n` is not "
              "available here (needs util-linux and root)")
        return 0
    env = {**os.environ, "JOYAI_IN_NAMESPACE": "1", "RAY_USAGE_STATS_ENABLED": "0"}
    inner = " ".join(shlex.quote(a) for a in [sys.executable, os.path.abspath(script or __file__), *argv])
    return subprocess.call(["unshare", "-n", "bash", "-c", f"ip link set lo up && exec {inner}"], env=env)


def bench_eval(seeds: list[int], config: dict) -> None:
    from joyai_embodied.distributed.episodes import run_serial
    from joyai_embodied.distributed.evaluate import evaluate_distributed

    start = time.perf_counter()
    run_serial("planner", seeds, config)
    serial = time.perf_counter() - start
    walls = {}
    for workers in (1, 2):
        _, stats = evaluate_distributed("planner", seeds, config, workers=workers)
        walls[workers] = stats.wall_s - stats.ready_s  # the episodes, once every worker is built
        figures = stats.to_dict()
        share = figures["mean_overhead_s"] / max(figures["mean_episode_s"], 1e-9)
        print(f"eval planner, {len(seeds)} seeds at {config['width']}x{config['height']}, {workers} worker(s): "
              f"{stats.wall_s:.2f} s wall, of which {stats.ready_s:.2f} s building env + model; episode "
              f"{figures['mean_episode_s'] * 1000:.0f} ms, Ray overhead {figures['mean_overhead_s'] * 1000:.1f} ms "
              f"per episode ({100 * share:.1f}% of an episode)")
    print(f"eval serial in-process: {serial:.2f} s (incl. building); speed-up of the episodes, 2 workers over 1: "
          f"{walls[1] / walls[2]:.2f}x")


def _throughput(call, count: int) -> float:
    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        list(pool.map(lambda _: call(), range(min(count, 16))))  # warm: every replica has the scene cached
        start = time.perf_counter()
        list(pool.map(lambda _: call(), range(count)))
    return count / (time.perf_counter() - start)


def bench_serve(obs, count: int) -> None:
    from joyai_embodied.serve import ray_serve

    rates: dict[str, dict[int, float]] = {"relation": {}, "observe": {}}
    for replicas in (1, 2):
        service = ray_serve.deploy("geometric", replicas=replicas)
        handle = service.run("observe", {"observation": obs})["handle"]
        relation = {"scene": handle, "subject": "red cube", "reference": "blue box"}
        rates["relation"][replicas] = _throughput(lambda: service.run("relation", relation), count)
        rates["observe"][replicas] = _throughput(lambda: service.run("observe", {"observation": obs}),
                                                 max(count // 8, 16))
        ray_serve.undeploy()
    for kind, by_count in rates.items():
        print(f"serve {kind}: 1 replica {by_count[1]:.0f} req/s, 2 replicas {by_count[2]:.0f} req/s "
              f"({by_count[2] / by_count[1]:.2f}x), {CLIENT_THREADS} client threads")


def bench_zmq_serve(obs, count: int) -> None:
    from joyai_embodied import WorldModel
    from joyai_embodied.serve import ray_serve
    from joyai_embodied.serve.zmq_server import ModelServer

    # (replicas, ZMQ worker threads): None = the default pool (replicas x 2); (2, 1) is the single worker of before
    configs = [(1, None), (2, 1), (2, None)]
    rates: dict[str, dict[tuple, float]] = {"relation": {}, "observe": {}}
    workers = {}
    for replicas, threads in configs:
        service = ray_serve.deploy("geometric", replicas=replicas)
        with ModelServer(service.world_model, "tcp://127.0.0.1:*", service=service, workers=threads) as server:
            workers[(replicas, threads)] = server.info()["workers"]
            clients = [WorldModel.load("remote", address=server.address, timeout_s=60, retries=0)
                       for _ in range(CLIENT_THREADS)]
            scene = clients[0].observe(obs)
            turn = iter(range(10**9))  # each call takes the next client (a client serialises its own calls)

            def relation():
                clients[next(turn) % CLIENT_THREADS].relation(scene, "red cube", "blue box")

            def observe():
                clients[next(turn) % CLIENT_THREADS].observe(obs)

            rates["relation"][(replicas, threads)] = _throughput(relation, count)
            rates["observe"][(replicas, threads)] = _throughput(observe, max(count // 8, 16))
            for client in clients:
                client.close()
        ray_serve.undeploy()
    for kind, by in rates.items():
        one, single, pool = by[(1, None)], by[(2, 1)], by[(2, None)]
        print(f"zmq -> serve {kind}, {CLIENT_THREADS} remote clients: 1 replica {one:.0f} req/s "
              f"({workers[(1, None)]} ZMQ workers); 2 replicas {pool:.0f} req/s ({workers[(2, None)]} workers, "
              f"{pool / one:.2f}x one replica); 2 replicas behind 1 worker {single:.0f} req/s "
              f"(pool {pool / single:.2f}x)")


def _p50_ms(model, scene, count: int) -> float:
    times = []
    for _ in range(count):
        start = time.perf_counter()
        model.relation(scene, "red cube", "blue box")
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def bench_latency(obs, count: int) -> None:
    from joyai_embodied import WorldModel
    from joyai_embodied.serve import ray_serve
    from joyai_embodied.serve.zmq_server import ModelServer

    results = {}
    with ModelServer(WorldModel.load("geometric"), "tcp://127.0.0.1:*") as server:
        with WorldModel.load("remote", address=server.address, timeout_s=30, retries=0) as model:
            results["zmq"] = _p50_ms(model, model.observe(obs), count)
    service = ray_serve.deploy("geometric", replicas=1)
    with ModelServer(service.world_model, "tcp://127.0.0.1:*", service=service) as server:
        with WorldModel.load("remote", address=server.address, timeout_s=30, retries=0) as model:
            results["ray"] = _p50_ms(model, model.observe(obs), count)
    direct_scene = service.run("observe", {"observation": obs})["handle"]
    params = {"scene": direct_scene, "subject": "red cube", "reference": "blue box"}
    times = []
    for _ in range(count):
        start = time.perf_counter()
        service.run("relation", params)
        times.append(time.perf_counter() - start)
    ray_serve.undeploy()
    print(f"latency relation p50: plain ZMQ {results['zmq']:.2f} ms, ZMQ -> Ray Serve {results['ray']:.2f} ms "
          f"(+{results['ray'] - results['zmq']:.2f} ms); Serve handle alone {1000 * statistics.median(times):.2f} ms")


def bench_batching(k: int) -> None:
    from joyai_embodied import CameraMove
    from joyai_embodied.backends.joyai_image import write_tiny_checkpoint
    from joyai_embodied.evaluation.synthetic import default_boxes, front_camera, observe
    from joyai_embodied.serve import ray_serve

    folder = tempfile.mkdtemp(prefix="joyai-tiny-")
    checkpoint = write_tiny_checkpoint(os.path.join(folder, "tiny"), seed=0)
    overrides = {"path": str(checkpoint), "device": "cpu", "dtype": "float32", "steps": 2, "resolution": 64,
                 "max_new_tokens": 24}
    service = ray_serve.deploy("joyai-image", replicas=1, overrides=overrides, max_batch=k, batch_wait_s=0.2,
                               num_gpus=0)  # the tiny checkpoint on CPU; the preset asks one GPU per replica
    handle = service.run("observe", {"observation": observe(front_camera(160, 120), default_boxes())})["handle"]
    moves = [CameraMove(yaw_deg=float(5 * i)) for i in range(k)]
    service.run("imagine", {"scene": handle, "move": moves[0], "seed": 0})  # warm
    start = time.perf_counter()
    for move in moves:
        service.run("imagine", {"scene": handle, "move": move, "seed": 0})
    one_by_one = time.perf_counter() - start
    with ThreadPoolExecutor(k) as pool:
        start = time.perf_counter()
        list(pool.map(lambda m: service.run("imagine", {"scene": handle, "move": m, "seed": 0}), moves))
        together = time.perf_counter() - start
    info = service.info()
    ray_serve.undeploy()
    print(f"batching, tiny joyai-image on CPU: {k} concurrent imagines {together:.2f} s vs {k} x one "
          f"{one_by_one:.2f} s ({one_by_one / together:.2f}x); replica batches so far {info['batches']} for "
          f"{info['batched_requests']} requests")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="6 seeds at 320x240, 120 requests")
    parser.add_argument("--only", choices=("eval", "serve", "zmq", "latency", "batching"), action="append")
    parser.add_argument("--serve-only", action="store_true",
                        help="the Serve targets only, interleaved and repeated, with CPU ms per request per process")
    parser.add_argument("--repeats", type=int, default=3, help="rounds of --serve-only (default 3)")
    parser.add_argument("--max-group", type=int, default=None,
                        help="requests per Serve call at most (--serve-only; 1 = no grouping, to compare)")
    args = parser.parse_args(argv)
    if os.environ.get("JOYAI_IN_NAMESPACE") != "1":
        return in_namespace(argv)
    if args.serve_only:
        from ray_bench_serve import serve_only

        return serve_only(args.repeats, small=args.small, max_group=args.max_group)
    from joyai_embodied.distributed.cluster import connect
    from joyai_embodied.evaluation.synthetic import default_boxes, front_camera, observe

    connect(None, num_cpus=2)
    size = (320, 240) if args.small else (640, 480)
    seeds = list(range(6 if args.small else 12))
    count = 120 if args.small else 400
    obs = observe(front_camera(*size), default_boxes())
    chosen = args.only or ["eval", "serve", "zmq", "latency", "batching"]
    # On a shared machine other jobs take cores from the workers: say how busy it was.
    print("load average (1, 5, 15 min) at start: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()))
    if "eval" in chosen:
        bench_eval(seeds, {"width": size[0], "height": size[1]})
    if "serve" in chosen:
        bench_serve(obs, count)
    if "zmq" in chosen:
        bench_zmq_serve(obs, count)
    if "latency" in chosen:
        bench_latency(obs, count)
    if "batching" in chosen:
        bench_batching(4)
    return 0


if __name__ == "__main__":
    sys.exit(main())
