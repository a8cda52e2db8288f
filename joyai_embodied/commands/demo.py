"""``joyai-embodied demo``: the planner on simulated tabletop tasks, with a report a person can look at.

    joyai-embodied demo                          # 5 episodes, seeds 0-4, geometric world model
    joyai-embodied demo --episodes 20 --seed 100 --out out/demo20
    joyai-embodied demo --backend remote --address tcp://127.0.0.1:5555
    joyai-embodied demo --via ros                # world model and simulator behind ROS 2 nodes
    joyai-embodied demo --libero libero_spatial  # LIBERO tasks 0,1 x init state 0, scored by LIBERO's check
    joyai-embodied demo --episodes 3 --record out/demo.rrd   # also a recording (or .mcap)

Writes ``OUT/report.json`` and ``OUT/report.html`` (plus the PNGs the page shows) and prints a summary.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

from . import positive_int, run_as_script, seed_int


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the ``demo`` options on ``parser``."""
    parser.add_argument("--episodes", type=positive_int, default=5, help="number of tasks (default 5)")
    parser.add_argument("--seed", type=seed_int, default=0,
                        help="seed of the first task; task i uses seed+i (default 0)")
    parser.add_argument("--backend", default="geometric",
                        help="world-model preset or backend: geometric (default), joyai-image, remote, or a YAML path")
    parser.add_argument("--address", default=None,
                        help="model server address for --backend remote, e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--via", choices=("inprocess", "ros"), default="inprocess",
                        help="run the world model and the simulator in this process (default), or reach both "
                             "through ROS 2: the world-model nodes and the sim_bridge node (started when none run)")
    parser.add_argument("--out", default=None, help="report folder (default out/demo, with --libero out/demo_libero)")
    parser.add_argument("--width", type=positive_int, default=None,
                        help="camera width in pixels (default 640, with --libero 256)")
    parser.add_argument("--height", type=positive_int, default=None,
                        help="camera height in pixels (default 480, with --libero 256)")
    from ..evaluation.libero import add_libero_arguments
    from ..evaluation.libero_report import DEMO_INIT_STATES, DEMO_TASKS
    from ..recording.recorders import add_record_argument

    add_libero_arguments(parser, tasks=DEMO_TASKS, init_states=DEMO_INIT_STATES)
    add_record_argument(parser)


def run(args: argparse.Namespace) -> int:
    """Runs the episodes, writes the report and prints a summary table.

    Returns:
        0 when every episode was planned and run (whatever its outcome).

    Raises:
        JoyAIError: the world model or the simulator could not be started (bad option, unavailable backend).
        OSError: the report folder cannot be written.
    """
    from ..recording.recorders import preload_recorder

    preload_recorder(getattr(args, "record", None))  # the recorder's import overlaps building the env
    libero = getattr(args, "libero", None)
    default_size, default_out = ((256, 256), "out/demo_libero") if libero else ((640, 480), "out/demo")
    args.width, args.height = args.width or default_size[0], args.height or default_size[1]
    args.out = args.out or default_out
    if libero:
        from ..evaluation.libero_report import run_libero_demo

        return run_libero_demo(args)
    from ..envs import EnvConfig, load_world_model, make_env
    from ..planner import Planner
    from ..planner.report import progress_line, summary_line, summary_table, write_report

    Path(args.out).mkdir(parents=True, exist_ok=True)  # an unwritable --out fails now, not after the episodes
    env_config = EnvConfig(width=args.width, height=args.height, via=args.via)
    wm = load_world_model(args.backend, via=args.via, address=args.address)
    try:
        env = make_env(env_config)
    except BaseException:
        wm.close()  # stops the ROS nodes it may have started
        raise
    planner = Planner(wm)
    episodes = []
    recorder = None
    try:
        for index in range(args.episodes):
            episode = planner.run_episode(env, seed=args.seed + index)
            episodes.append(episode)
            if getattr(args, "record", None):
                if recorder is None:  # opened after the first episode: the preloaded import had that long
                    from ..recording import open_recorder

                    recorder = open_recorder(args.record, background=True)
                recorder.log_episode(episode)
            print(progress_line(index, args.episodes, episode), flush=True)
    finally:
        if recorder is not None:
            recorder.close(wait=False)  # its writer process finishes while the report is written
        env.close()
        wm.close()
    paths = write_report(episodes, args.out, meta={"backend": args.backend, "via": args.via,
                                                   "first_seed": args.seed, "size": f"{args.width}x{args.height}"})
    if recorder is not None:
        recorder.close()  # waits for the file to be complete; raises a writer's error
    print()
    print(summary_table(episodes))
    print(f"\n{summary_line(episodes)}")
    print(f"report: {paths['html']}  (data: {paths['json']})")
    if recorder is not None:
        print(f"recording: {args.record}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    return run_as_script("demo", argv)


if __name__ == "__main__":
    sys.exit(main())
