"""``joyai-embodied demo``: the planner on simulated tabletop tasks, with a report a person can look at.

    joyai-embodied demo                          # 5 episodes, seeds 0-4, geometric world model
    joyai-embodied demo --episodes 20 --seed 100 --out out/demo20
    joyai-embodied demo --backend remote --address tcp://127.0.0.1:5555

Writes ``OUT/report.json`` and ``OUT/report.html`` (plus the PNGs the page shows) and prints a summary.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from ..cli import positive_int, run_as_script

ENV_ID = "joyai/TabletopSpatial-v0"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the ``demo`` options on ``parser``."""
    parser.add_argument("--episodes", type=positive_int, default=5, help="number of tasks (default 5)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first task; task i uses seed+i (default 0)")
    parser.add_argument("--backend", default="geometric",
                        help="world-model preset or backend: geometric (default), joyai-image, remote, or a YAML path")
    parser.add_argument("--address", default=None,
                        help="model server address for --backend remote, e.g. tcp://127.0.0.1:5555")
    parser.add_argument("--via", choices=("inprocess", "ros"), default="inprocess",
                        help="run the world model and the simulator in this process (default), or reach both "
                             "through ROS 2: the world-model nodes and the sim_bridge node (started when none run)")
    parser.add_argument("--out", default="out/demo", help="report folder (default out/demo)")
    parser.add_argument("--width", type=positive_int, default=640, help="camera width in pixels (default 640)")
    parser.add_argument("--height", type=positive_int, default=480, help="camera height in pixels (default 480)")


def run(args: argparse.Namespace) -> int:
    """Runs the episodes, writes the report and prints a summary table.

    Returns:
        0 when every episode was planned and run (whatever its outcome), 1 when the world model or the
        simulator could not be started.
    """
    from ..errors import JoyAIError

    wm = None
    try:
        wm = load_world_model(args.backend, via=args.via, address=args.address)
        env = make_env(args.width, args.height, via=args.via)
    except (JoyAIError, ImportError) as exc:
        if wm is not None:  # stops the ROS nodes it may have started
            wm.close()
        print(f"joyai-embodied demo: {exc}", file=sys.stderr)
        return 1

    from .planner import Planner
    from .report import summarise, write_report

    planner = Planner(wm)
    episodes = []
    try:
        for index in range(args.episodes):
            seed = args.seed + index
            episode = planner.run_episode(env, seed=seed)
            episodes.append(episode)
            print(progress_line(index, args.episodes, episode), flush=True)
    finally:
        env.close()
        wm.close()
    paths = write_report(episodes, args.out, meta={"backend": args.backend, "via": args.via,
                                                   "first_seed": args.seed, "size": f"{args.width}x{args.height}"})
    print()
    print(summary_table(episodes))
    summary = summarise(episodes)
    agreement = summary["verification_agreement"]
    print(f"\nsuccess {summary['success_rate']:.0%} ({sum(e.success for e in episodes)}/{len(episodes)}), "
          f"verification agrees with the simulator in "
          f"{'-' if agreement is None else f'{agreement:.0%}'} of executed episodes")
    print(f"report: {paths['html']}  (data: {paths['json']})")
    return 0


def load_world_model(backend: str, via: str = "inprocess", address: str | None = None) -> Any:
    """The world model the planner talks to.

    Args:
        backend: preset name, backend name or YAML path (see ``WorldModel.load``).
        via: ``"inprocess"``, or ``"ros"`` to reach the ROS 2 nodes through ``ros_nodes.ros_backend``.
        address: model server address, passed to the remote backend.

    Raises:
        BackendUnavailableError: the backend cannot be loaded, or ``via="ros"`` without the ROS nodes.
    """
    from ..errors import BackendUnavailableError
    from ..world_model import WorldModel

    if via == "ros":
        try:
            from ros_nodes import ros_backend  # rclpy is imported only on this path
        except ImportError as exc:
            raise BackendUnavailableError(f"--via ros needs the ros_nodes package and rclpy ({exc})") from exc
        return WorldModel(ros_backend.RosBackend(preset=backend, address=address), {"backend": "ros"})
    return WorldModel.load(backend, address=address)


def make_env(width: int, height: int, via: str = "inprocess") -> Any:
    """A ``joyai/TabletopSpatial-v0`` env with primitive actions, rendering headless.

    With ``via="ros"`` the simulator runs behind the sim_bridge node (``ros_nodes.sim_client.RosSimEnv``):
    observations come from its camera topics, actions go to its ``/joyai/sim/*`` services.

    Raises:
        BackendUnavailableError: ``via="ros"`` without the ROS nodes.
    """
    if via == "ros":
        from ..errors import BackendUnavailableError

        try:
            from ros_nodes.sim_client import RosSimEnv  # rclpy is imported only on this path
        except ImportError as exc:
            raise BackendUnavailableError(f"--via ros needs the ros_nodes package and rclpy ({exc})") from exc
        return RosSimEnv(width, height)
    os.environ.setdefault("MUJOCO_GL", "egl")  # must be set before mujoco is imported
    import gymnasium as gym

    import sim_envs  # noqa: F401  (registers the env ids)

    return gym.make(ENV_ID, width=width, height=height, action_mode="primitive")


def progress_line(index: int, total: int, episode: Any) -> str:
    """One line per finished episode: instruction, what was picked, outcome and verification."""
    plan = episode.plan
    head = f"[{index + 1}/{total}] seed {episode.seed}: {plan.instruction!r}"
    if not plan.ok:
        return f"{head} -> {plan.error}"
    verified = "-" if episode.verification is None else ("yes" if episode.verification.verified else "no")
    return (f"{head} -> pick {plan.pick.name} (id {plan.pick.id}): {episode.status}, verified {verified}, "
            f"{len(plan.queries)} queries, {len(plan.imagined)} imagined, {episode.seconds:.1f} s")


def summary_table(episodes: Sequence[Any]) -> str:
    """A fixed-width table of the episodes (seed, template, pick, outcome, verified)."""
    header = ("seed", "tpl", "picked", "intended", "result", "verified", "s")
    rows = []
    for episode in episodes:
        plan = episode.plan
        target = episode.target or {}
        rows.append((str(episode.seed), str(plan.goal.template) if plan.goal else "-",
                     plan.pick.name if plan.pick else "-", str(target.get("pick_name", "-")), episode.status,
                     "-" if episode.verification is None else ("yes" if episode.verification.verified else "no"),
                     f"{episode.seconds:.1f}"))
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(header, widths)), "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in rows]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    return run_as_script("demo", argv)


if __name__ == "__main__":
    sys.exit(main())
