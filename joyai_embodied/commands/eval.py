"""``joyai-embodied eval``: the spatial and imagination benchmarks (and optionally the planner) over seeds.

    joyai-embodied eval                           # spatial + imagination, 10 seeds, geometric, out/eval/
    joyai-embodied eval --seeds 50 --planner      # also task success vs. the random baseline
    joyai-embodied eval --small                   # 3 seeds at 320x240, for CI
    joyai-embodied eval --depth-noise structured_light --planner   # depth as a RealSense D4xx reports it
    joyai-embodied eval --libero libero_spatial --tasks 0,3 --init-states 0-9   # LIBERO, its own check

Each benchmark writes ``OUT/<name>.json`` (all figures) and ``OUT/<name>.md`` (the table printed).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from . import positive_int, run_as_script, seed_int

BENCHMARKS = ("spatial", "imagination", "planner")
#: ``--small``: enough seeds to catch a broken benchmark, small enough for CI.
SMALL_SEEDS, SMALL_SIZE = 3, (320, 240)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the ``eval`` options on ``parser``."""
    parser.add_argument("--seeds", type=positive_int, default=10, help="number of seeds (default 10)")
    parser.add_argument("--first-seed", type=seed_int, default=0, help="first seed (default 0)")
    parser.add_argument("--backend", default="geometric", help="world-model preset or backend (default geometric)")
    parser.add_argument("--address", default=None, help="model server address for --backend remote")
    parser.add_argument("--out", default="out/eval", help="folder for the tables (default out/eval)")
    parser.add_argument("--only", action="append", choices=BENCHMARKS,
                        help="run only this benchmark (repeatable); default spatial and imagination")
    parser.add_argument("--planner", action="store_true", help="also run the planner benchmark (slower)")
    parser.add_argument("--width", type=positive_int, default=640, help="image width (default 640)")
    parser.add_argument("--height", type=positive_int, default=480, help="image height (default 480)")
    parser.add_argument("--small", action="store_true",
                        help=f"{SMALL_SEEDS} seeds at {SMALL_SIZE[0]}x{SMALL_SIZE[1]}")
    parser.add_argument("--depth-noise", choices=("none", "structured_light", "stereo"), default="none",
                        help="the simulator's depth sensor model for spatial, imagination and planner "
                             "(sim_envs/sensor_noise.py; default none = exact depth)")
    from ..evaluation.libero import add_libero_arguments

    add_libero_arguments(parser)  # --libero SUITE [--tasks 0,3,7] [--init-states 0-49]
    from ..recording.recorders import add_record_argument

    add_record_argument(parser)  # records the planner benchmark's world-model episodes, or the LIBERO episodes
    from ..distributed.cli import add_eval_ray_arguments

    add_eval_ray_arguments(parser)  # --workers N | --ray-address ADDR: the episodes on Ray


def run(args: argparse.Namespace) -> int:
    """Runs the chosen benchmarks and writes their tables.

    Returns:
        0 when every benchmark ran, 1 when one failed (the others still run).

    Raises:
        JoyAIError: the world model could not be loaded (bad option, unavailable backend).
        OSError: the output folder cannot be written.
    """
    from ..recording.recorders import preload_recorder

    preload_recorder(getattr(args, "record", None))  # the recorder's import overlaps building the env
    if getattr(args, "libero", None):
        from ..evaluation.libero import run_libero_eval
        from ..distributed.cli import run_libero_eval as run_libero_on_ray, uses_ray

        if uses_ray(args):
            if getattr(args, "record", None):
                from ..errors import InvalidInputError

                raise InvalidInputError("--record", "a serial run (recording is not done on Ray workers)")  # --workers N | --ray-address ADDR: one (task, init state) per Ray episode
            return run_libero_on_ray(args)

        return run_libero_eval(args)
    from ..envs import load_world_model
    from ..errors import JoyAIError
    from ..evaluation.tables import format_table, plain
    from ..distributed.cli import run_eval, uses_ray

    if args.small:
        args.seeds, (args.width, args.height) = min(args.seeds, SMALL_SEEDS), SMALL_SIZE
    if uses_ray(args):  # --workers N | --ray-address ADDR: the same benchmarks, episodes on Ray workers
        if getattr(args, "depth_noise", "none") != "none":
            from ..errors import InvalidInputError

            raise InvalidInputError("--depth-noise", "'none' with --workers/--ray-address (the Ray episodes do "
                                    "not carry the sensor model yet)", repr(args.depth_noise))
        return run_eval(args)
    chosen = args.only or (["spatial", "imagination"] + (["planner"] if args.planner else []))
    if getattr(args, "record", None) and "planner" not in chosen:
        from ..errors import InvalidInputError

        raise InvalidInputError("--record", "--planner or --only planner (planner episodes are what is recorded)")
    seeds = list(range(args.first_seed, args.first_seed + args.seeds))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    wm = load_world_model(args.backend, address=args.address)
    status = 0
    try:
        for name in chosen:
            print(f"== {name}: {len(seeds)} seeds from {seeds[0]}, backend {args.backend}", flush=True)
            start = time.perf_counter()
            try:
                result = RUNNERS[name](wm, seeds, args)
            except (JoyAIError, ImportError) as exc:
                print(f"{name}: failed: {exc}", file=sys.stderr)
                status = 1
                continue
            figures = {"benchmark": name, "backend": args.backend, "seeds": seeds,
                       "seconds": round(time.perf_counter() - start, 1), "result": plain(result)}
            table = format_table(name, figures["result"])
            (out / f"{name}.json").write_text(json.dumps(figures, indent=2, default=str), encoding="utf-8")
            (out / f"{name}.md").write_text(f"# {name} ({args.backend}, seeds {seeds[0]}-{seeds[-1]})\n\n{table}\n",
                                            encoding="utf-8")
            print(table)
            print(f"({figures['seconds']} s; written {out / (name + '.json')} and {out / (name + '.md')})\n")
    finally:
        wm.close()
    return status


# -- the benchmarks ----------------------------------------------------------------------------------
def _run_spatial(wm: Any, seeds: Sequence[int], args: argparse.Namespace) -> Any:
    from ..evaluation.spatial import evaluate_spatial

    return evaluate_spatial(seeds, width=args.width, height=args.height, world_model=wm, progress=True,
                            depth_noise=getattr(args, "depth_noise", "none"))


def _run_imagination(wm: Any, seeds: Sequence[int], args: argparse.Namespace) -> Any:
    from ..evaluation.imagination import evaluate_imagination

    return evaluate_imagination(wm, seeds=seeds, width=args.width, height=args.height,
                                out_png=str(Path(args.out) / "imagination.png"), progress=print,
                                depth_noise=getattr(args, "depth_noise", "none"))


def _run_planner(wm: Any, seeds: Sequence[int], args: argparse.Namespace) -> Any:
    from ..envs import make_env
    from ..evaluation.planner import evaluate_planner

    env = make_env(width=args.width, height=args.height)
    recorder = None
    try:
        if getattr(args, "record", None):
            from ..recording import open_recorder

            recorder = open_recorder(args.record, background=True)

        def record(name: str, episode: Any) -> None:
            if recorder is not None and name == "world model":
                recorder.log_episode(episode)

        noise = getattr(args, "depth_noise", "none")  # EnvConfig has no depth_noise: evaluate_planner sets it
        scores = evaluate_planner(wm, env, seeds, on_episode=record, depth_noise=None if noise == "none" else noise)
    finally:
        env.close()
        if recorder is not None:
            recorder.close()
    return {name: score.to_dict() for name, score in scores.items()}


RUNNERS: dict[str, Callable[[Any, Sequence[int], argparse.Namespace], Any]] = {
    "spatial": _run_spatial, "imagination": _run_imagination, "planner": _run_planner}


def main(argv: Sequence[str] | None = None) -> int:
    return run_as_script("eval", argv)


if __name__ == "__main__":
    sys.exit(main())
