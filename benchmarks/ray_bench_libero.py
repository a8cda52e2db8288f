"""Scale-out on Ray for LIBERO: the episode speed-up of 2 workers over 1, and Ray's overhead per episode.

Issue 13's target: >= 1.7x with 2 workers over 1 on a LIBERO subset (2 cores here), Ray's overhead <= 5% of
an episode. The same episodes (suite, tasks x init states: deterministic) run on 1 and on 2 Ray workers of a
local cluster, ``--repeats`` times in alternating order after one uncounted warm-up episode; the figure is the episode phase (after every worker
has built its model) of 1 worker over 2, median over repeats. Both runs must give the same per-episode
outcomes, which the script checks. Ray's overhead is the round trip seen by the driver minus the time inside
the episode.

    .venv/bin/python benchmarks/ray_bench_libero.py                 # libero_spatial tasks 0,1 x init 0-3, 2 repeats
    .venv/bin/python benchmarks/ray_bench_libero.py --small         # task 0 x init 0-1, 1 repeat (CI)
    .venv/bin/python benchmarks/ray_bench_libero.py --suite libero_object --tasks 0,1,2 --init-states 0-3

Runs inside a loopback-only network namespace (re-executes itself under ``unshare -n``, as ray_bench.py).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
os.environ.setdefault("MUJOCO_GL", "egl")

from ray_bench import in_namespace  # noqa: E402  (the benchmarks folder is not a package)


def one_run(keys: list[int], config: dict, workers: int) -> dict:
    """The episodes on ``workers`` Ray workers: episode-phase wall, overhead share, outcomes."""
    from joyai_embodied.distributed.evaluate import evaluate_distributed

    report, stats = evaluate_distributed("libero", keys, config, workers=workers)
    figures = stats.to_dict()
    outcomes = {(e["task_id"], e["init_state"]): (e["success"], e["steps"]) for e in report["episodes"]}
    return {"workers": workers, "episodes_s": stats.wall_s - stats.ready_s, "ready_s": stats.ready_s,
            "episode_s": figures["mean_episode_s"], "overhead_s": figures["mean_overhead_s"],
            "outcomes": outcomes, "success_rate": report["success_rate"], "lost": len(stats.lost)}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", default="libero_spatial")
    parser.add_argument("--tasks", default=None, help="task indices (default 0,1; --small 0)")
    parser.add_argument("--init-states", default=None, help="init states (default 0-3; --small 0-1)")
    parser.add_argument("--repeats", type=int, default=None, help="rounds of 1 and 2 workers (default 2; --small 1)")
    parser.add_argument("--small", action="store_true", help="task 0, init states 0-1, one round")
    args = parser.parse_args(argv)
    if os.environ.get("JOYAI_IN_NAMESPACE") != "1":
        return in_namespace(argv, script=__file__)

    from joyai_embodied.distributed.cluster import connect
    from joyai_embodied.distributed.episodes import libero_keys
    from joyai_embodied.evaluation.libero import parse_index_list

    tasks = parse_index_list(args.tasks or ("0" if args.small else "0,1"), "tasks")
    states = parse_index_list(args.init_states or ("0-1" if args.small else "0-3"), "init-states")
    repeats = args.repeats or (1 if args.small else 2)
    keys = libero_keys(tasks, states)
    config = {"suite": args.suite, "backend": "geometric"}
    connect(None, num_cpus=2)
    print("load average (1, 5, 15 min) at start: " + ", ".join(f"{x:.1f}" for x in os.getloadavg()), flush=True)
    start = time.perf_counter()
    # The first LIBERO run of a machine reads the meshes and compiles the env cold: not a figure of either arm.
    warm = one_run(keys[:1], config, 1)
    print(f"  warm-up (1 episode, 1 worker, not counted): {warm['episodes_s']:.1f} s", flush=True)
    runs: list[dict] = []
    for r in range(repeats):
        for workers in ((1, 2) if r % 2 == 0 else (2, 1)):
            run = one_run(keys, config, workers)
            runs.append(run)
            print(f"  round {r + 1}/{repeats}, {workers} worker(s): {len(keys)} {args.suite} episodes in "
                  f"{run['episodes_s']:.1f} s after {run['ready_s']:.1f} s of building; episode "
                  f"{run['episode_s']:.2f} s, Ray overhead {run['overhead_s'] * 1000:.1f} ms; success "
                  f"{run['success_rate']:.0%}; load {os.getloadavg()[0]:.1f}", flush=True)
    one = statistics.median(r["episodes_s"] for r in runs if r["workers"] == 1)
    two = statistics.median(r["episodes_s"] for r in runs if r["workers"] == 2)
    share = statistics.median(r["overhead_s"] / max(r["episode_s"], 1e-9) for r in runs)
    same = all(r["outcomes"] == runs[0]["outcomes"] for r in runs)
    lost = sum(r["lost"] for r in runs)
    print(f"\nLIBERO {args.suite} tasks {tasks} x init states {states} ({len(keys)} episodes), medians of "
          f"{repeats} round(s), {time.perf_counter() - start:.0f} s in all:")
    print(f"| figure | measured | target |\n|---|---:|---:|\n"
          f"| speed-up of the episodes, 2 workers over 1 | {one / two:.2f}x ({one:.1f} s -> {two:.1f} s) | >= 1.7x |\n"
          f"| Ray overhead per episode | {100 * share:.2f}% of an episode | <= 5% |\n"
          f"| same per-episode outcomes on 1 and 2 workers | {'yes' if same else 'NO'} | yes |\n"
          f"| episodes lost | {lost} | 0 |")
    return 0 if same and not lost else 1


if __name__ == "__main__":
    sys.exit(main())
