"""Remote model server overhead and throughput.

Prints, for one frame:
  - median latency of relation / imagine / observe in-process vs through `joyai-embodied serve-model`
    on loopback (the server in its own process), and the ratio remote / in-process;
  - throughput (requests/s) with 1, 4 and 8 concurrent clients sending a mix of 80% relation and 20% imagine.

    .venv/bin/python benchmarks/remote_bench.py            # 640x480, the full run
    .venv/bin/python benchmarks/remote_bench.py --small    # 160x120, a few requests (CI smoke run)
    .venv/bin/python benchmarks/remote_bench.py --address tcp://gpu-host:5555   # an already running server

The frame comes from the MuJoCo tabletop (sim_envs) when it is installed, else from the analytic tabletop
in joyai_embodied.evaluation.synthetic.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import threading
import time

os.environ.setdefault("MUJOCO_GL", "egl")

from joyai_embodied import CameraMove, WorldModel  # noqa: E402


def frame(width: int, height: int):
    """(observation, [subject, reference]) from the simulator, or the analytic tabletop without it."""
    try:
        import gymnasium as gym
        import sim_envs  # noqa: F401  (registers the env)

        env = gym.make("joyai/TabletopSpatial-v0", width=width, height=height)
        obs, info = env.reset(seed=3)
        env.close()
        names = [o["name"] for o in info["objects"]]
        labels = {o["id"]: o["name"] for o in info["objects"]}
        return {**obs, "labels": labels}, names[:2], "sim_envs"
    except Exception:  # simulator not installed or not working here: the analytic stand-in
        from joyai_embodied.evaluation.synthetic import default_boxes, front_camera, observe

        return observe(front_camera(width, height), default_boxes()), ["red cube", "blue box"], "synthetic"


def median_ms(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def start_server(preset: str) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
    process = subprocess.Popen([sys.executable, "-m", "joyai_embodied.cli", "serve-model", "--preset", preset,
                                "--bind", address], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in process.stdout:
        if line.startswith("serving"):
            return process, address
    raise SystemExit(f"server failed to start (exit {process.wait()})")


def throughput(address: str, obs, pair, clients: int, per_client: int) -> float:
    """Requests/s of ``clients`` threads, each with its own connection, 80% relation / 20% imagine."""
    barrier = threading.Barrier(clients + 1)
    errors: list[Exception] = []

    def job():
        model = WorldModel.load("remote", address=address, timeout_s=120)
        scene = model.observe(obs)
        barrier.wait()
        try:
            for i in range(per_client):
                if i % 5 == 4:
                    model.imagine(scene, CameraMove(yaw_deg=20))
                else:
                    model.relation(scene, *pair)
        except Exception as exc:  # reported after the run
            errors.append(exc)
        model.backend.release(scene)
        model.close()

    threads = [threading.Thread(target=job) for _ in range(clients)]
    for thread in threads:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise SystemExit(f"{len(errors)} client errors, first: {errors[0]!r}")
    return clients * per_client / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="160x120 and few requests (CI)")
    parser.add_argument("--preset", default="geometric", help="preset served and compared in-process")
    parser.add_argument("--address", help="benchmark this running server instead of starting one")
    parser.add_argument("--repeats", type=int, help="timed calls per latency figure")
    parser.add_argument("--per-client", type=int, help="requests per client in the throughput runs")
    args = parser.parse_args()
    width, height = (160, 120) if args.small else (640, 480)
    repeats = args.repeats or (5 if args.small else 30)
    per_client = args.per_client or (10 if args.small else 40)

    obs, pair, source = frame(width, height)
    server, address = (None, args.address) if args.address else start_server(args.preset)
    try:
        local = WorldModel.load(args.preset)
        remote = WorldModel.load("remote", address=address, timeout_s=120)
        here, there = local.observe(obs), remote.observe(obs)
        move = CameraMove(yaw_deg=20, pitch_deg=-5)
        print(f"frame {width}x{height} from {source}; preset {args.preset}; server {address}")
        print(f"{'request':<10}{'in-process ms':>15}{'remote ms':>12}{'ratio':>8}")
        for name, in_process, over_zmq in [
            ("relation", lambda: local.relation(here, *pair), lambda: remote.relation(there, *pair)),
            ("imagine", lambda: local.imagine(here, move), lambda: remote.imagine(there, move)),
            ("observe", lambda: local.observe(obs), lambda: remote.backend.release(remote.observe(obs))),
        ]:
            a, b = median_ms(in_process, repeats), median_ms(over_zmq, repeats)
            print(f"{name:<10}{a:>15.2f}{b:>12.2f}{b / a:>8.2f}")
        remote.backend.release(there)
        remote.close()
        print(f"throughput, 80% relation / 20% imagine, {per_client} requests per client:")
        for clients in (1, 4, 8):
            print(f"  {clients} client(s): {throughput(address, obs, pair, clients, per_client):8.1f} requests/s")
    finally:
        if server is not None:
            server.terminate()
            server.wait(10)


if __name__ == "__main__":
    main()
