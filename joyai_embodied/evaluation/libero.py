"""Scores the LIBERO planner by LIBERO's own success check: ``evaluate_libero`` and the ``eval --libero`` hook.

    report = evaluate_libero("libero_spatial", tasks=[0, 3], init_states=range(10), out_dir="out/eval")
    # -> out/eval/libero_libero_spatial.json = {"suite", "success_rate", "episodes": [...]}

Only this evaluator reads the BDDL goal (``info["ground_truth"]``), to check which object the planner chose
(referring-expression accuracy); the planner never sees it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections import Counter
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from ..errors import InvalidInputError

#: Goal predicates whose first argument is the object the instruction's subject refers to.
SUBJECT_PREDICATES = ("on", "in", "inside", "ontop")


def parse_index_list(text: str, field: str) -> list[int]:
    """``"0,3,7"`` or ``"0-49"`` or ``"0-4,9"`` -> sorted unique indices.

    Raises:
        InvalidInputError: not a list of non-negative integers and ranges (names ``field``).
    """
    values: set[int] = set()
    try:
        for part in str(text).split(","):
            part = part.strip()
            if "-" in part:
                low, high = (int(v) for v in part.split("-", 1))
                if low < 0 or high < low:
                    raise ValueError
                values.update(range(low, high + 1))
            else:
                value = int(part)
                if value < 0:
                    raise ValueError
                values.add(value)
    except ValueError:
        raise InvalidInputError(field, "indices like '0,3,7' or ranges like '0-49'", repr(text)) from None
    return sorted(values)


def goal_subject(ground_truth: dict[str, Any]) -> str | None:
    """The instance the goal moves (evaluator only): the first argument of its first placement predicate."""
    subjects = goal_subjects(ground_truth)
    return subjects[0] if subjects else None


def goal_subjects(ground_truth: dict[str, Any]) -> list[str]:
    """Every instance the goal treats like its first subject (evaluator only).

    "put both moka pots on the stove" is (On moka_pot_1 stove) (On moka_pot_2 stove): either pot is a right
    first choice. Instances count as interchangeable only when they share the category (the instance name
    without its number), the predicate and the target.
    """
    placements = [tuple(str(p) for p in predicate[:3]) for predicate in ground_truth.get("goal", [])
                  if len(predicate) >= 3 and str(predicate[0]).lower() in SUBJECT_PREDICATES]
    if not placements:
        return []
    verb, first, target = placements[0]
    category = first.rsplit("_", 1)[0]
    return [first] + [s for v, s, t in placements[1:]
                      if v == verb and t == target and s != first and s.rsplit("_", 1)[0] == category]


def evaluate_libero(suite: str, tasks: Iterable[int] | None = None, init_states: Iterable[int] = range(10),
                    out_dir: str | Path | None = "out/eval", world_model: Any = None, width: int = 256,
                    height: int = 256, progress: Callable[[str], None] | None = print,
                    hooks: Any = None) -> dict[str, Any]:
    """Runs the planner on ``suite`` and scores each episode with LIBERO's own check.

    Args:
        suite: any suite name the benchmark package knows.
        tasks: task indices (default: every task of the suite).
        init_states: fixed initial-state indices per task (the standard protocol is 0-49).
        out_dir: folder for ``libero_<suite>.json`` (None: write nothing).
        world_model: a WorldModel (default: the geometric backend).
        width, height: observation size.
        progress: called with one line per episode (None: silent).
        hooks: an object with ``start(task_id, init_state, info)`` (before each episode) and
            ``finish(record, env)`` (after it, with the episode's record): what recordings and reports use
            (:class:`~joyai_embodied.recording.EpisodeRecorder`).

    Returns:
        ``{"suite", "success_rate", "referring_accuracy", "median_wall_s", "failures", "episodes": [...]}``;
        each episode has task_id, init_state, instruction, success, steps, wall_s, chosen, failure, and
        unmet_goal (the BDDL goal's predicates that did not hold at the end; empty on success).

    Raises:
        InvalidInputError: unknown suite, a task or init state out of range.
        BackendUnavailableError: LIBERO is not installed.
    """
    import gymnasium as gym

    import sim_envs  # noqa: F401  (registers the envs)
    from sim_envs.libero.suites import task_count

    from ..planner.libero import DEFAULT_MAX_STEPS, MAX_STEPS, LiberoPlanner

    count = task_count(suite)
    task_ids = list(range(count)) if tasks is None else sorted(set(int(t) for t in tasks))
    for task_id in task_ids:
        if not 0 <= task_id < count:
            raise InvalidInputError("tasks", f"task indices in [0, {count - 1}] of {suite}", task_id)
    states = sorted(set(int(s) for s in init_states))
    if not states:
        raise InvalidInputError("init_states", "at least one init state index", "none")
    owns_model = world_model is None
    if owns_model:
        from ..world_model import WorldModel

        world_model = WorldModel.load("geometric")
    planner = LiberoPlanner(world_model)
    max_steps = MAX_STEPS.get(suite, DEFAULT_MAX_STEPS)
    episodes: list[dict[str, Any]] = []
    try:
        for task_id in task_ids:
            env = gym.make("joyai/LIBERO-v0", suite=suite, task_id=task_id, init_state=states[0], width=width,
                           height=height, render_on_step=False)
            try:
                for state in states:
                    _, info = env.reset(seed=state, options={"init_state": state})
                    if hooks is not None:
                        hooks.start(task_id, state, info)
                    episode = planner.run_episode(env, info["labels"], info["instruction"], max_steps)
                    episodes.append(_record(suite, task_id, state, episode, info, env.unwrapped.unmet_goal()))
                    if hooks is not None:
                        hooks.finish(episodes[-1], env)
                    if progress:
                        e = episodes[-1]
                        progress(f"[{len(episodes)}/{len(task_ids) * len(states)}] task {task_id} init {state}: "
                                 f"{'ok  ' if e['success'] else 'FAIL'} {e['failure']:<11} chose {e['chosen']!r:<16} "
                                 f"{e['steps']:>3} steps {e['wall_s']:5.1f} s")
            finally:
                env.close()
    finally:
        if owns_model:
            world_model.close()
    report = summarise(suite, episodes)
    if out_dir is not None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / f"libero_{suite}.json").write_text(json.dumps(report, indent=2), encoding="utf-8")
    return report


def _record(suite: str, task_id: int, state: int, episode: Any, info: dict[str, Any],
            unmet_goal: list[str]) -> dict[str, Any]:
    ground_truth = info["ground_truth"]
    wanted = goal_subjects(ground_truth)
    chosen_instance = next((o["instance"] for o in ground_truth["objects"] if o["id"] == episode.chosen), None)
    return {"task_id": task_id, "init_state": state, "instruction": episode.instruction,
            "success": bool(episode.success), "steps": int(episode.steps), "wall_s": round(episode.wall_s, 2),
            # Scored only where the planner resolved a referring expression (not for skills it lacks).
            "chosen": episode.chosen_name or None,
            "chosen_correct": (chosen_instance in wanted) if wanted and episode.chosen is not None else None,
            "failure": episode.failure, "grasp_attempts": episode.grasp_attempts,
            "predicted_on_target": episode.predicted_on_target, "verified_on_target": episode.verified_on_target,
            "unsure": episode.unsure, "message": episode.message,
            # The goal's predicates that did not hold at the end (LIBERO's words): why a failure failed.
            "unmet_goal": unmet_goal}


def summarise(suite: str, episodes: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """The report of the issue's schema plus the headline figures."""
    judged = [e["chosen_correct"] for e in episodes if e["chosen_correct"] is not None]
    return {"suite": suite,
            "success_rate": sum(e["success"] for e in episodes) / len(episodes) if episodes else 0.0,
            "referring_accuracy": sum(judged) / len(judged) if judged else None,
            "median_wall_s": statistics.median(e["wall_s"] for e in episodes) if episodes else None,
            "failures": dict(Counter(e["failure"] for e in episodes)),
            "episodes": list(episodes)}


def format_task_table(report: dict[str, Any]) -> str:
    """Per-task table: successes, referring accuracy, median steps and wall time, failure counts."""
    rows = ["| task | success | chose right | median steps | median wall (s) | failures | instruction |",
            "|---:|---:|---:|---:|---:|---|---|"]
    by_task: dict[int, list[dict[str, Any]]] = {}
    for e in report["episodes"]:
        by_task.setdefault(e["task_id"], []).append(e)
    for task_id, eps in sorted(by_task.items()):
        judged = [e["chosen_correct"] for e in eps if e["chosen_correct"] is not None]
        fails = Counter(e["failure"] for e in eps if e["failure"] != "none")
        rows.append(f"| {task_id} | {sum(e['success'] for e in eps)}/{len(eps)} | "
                    f"{sum(judged)}/{len(judged)} | {statistics.median(e['steps'] for e in eps):.0f} | "
                    f"{statistics.median(e['wall_s'] for e in eps):.1f} | "
                    f"{', '.join(f'{k} {v}' for k, v in sorted(fails.items())) or '-'} | {eps[0]['instruction']} |")
    rate = report["success_rate"]
    accuracy = report["referring_accuracy"]
    rows.append(f"\n{report['suite']}: success {rate:.1%} over {len(report['episodes'])} episodes; referring "
                f"accuracy {'n/a' if accuracy is None else f'{accuracy:.1%}'}; median wall "
                f"{report['median_wall_s']:.1f} s per episode")
    return "\n".join(rows)


# -- command-line hook-up (``joyai-embodied eval --libero SUITE``) -------------------------------------
def add_libero_arguments(parser: argparse.ArgumentParser, tasks: str | None = None,
                         init_states: str = "0-9") -> None:
    """Adds ``--libero SUITE``, ``--tasks``, ``--init-states`` to a parser (``--out`` is shared).

    Args:
        parser: the ``eval`` or ``demo`` parser.
        tasks, init_states: the defaults (``eval``: every task, init states 0-9; ``demo``: a few).
    """
    parser.add_argument("--libero", metavar="SUITE", default=None,
                        help="run the LIBERO planner on SUITE (libero_spatial, libero_object, ...) instead")
    parser.add_argument("--tasks", default=tasks,
                        help=f"LIBERO task indices, e.g. 0,3,7 or 0-9 (default {tasks or 'all'})")
    parser.add_argument("--init-states", default=init_states,
                        help=f"LIBERO init states, e.g. 0-49 (default {init_states})")


def run_libero_eval(args: argparse.Namespace) -> int:
    """Runs :func:`evaluate_libero` from parsed arguments and prints the per-task table.

    Returns:
        0 when every episode succeeded, 1 otherwise.

    Raises:
        InvalidInputError: bad suite, task list or init-state list (the CLI prints one line, exit 2).
    """
    tasks = None if args.tasks is None else parse_index_list(args.tasks, "tasks")
    states = parse_index_list(args.init_states, "init-states")
    out = getattr(args, "out", None) or "out/eval"
    record = getattr(args, "record", None)
    progress = lambda line: print(line, flush=True)  # noqa: E731
    if record:  # --record PATH.rrd|PATH.mcap: every world-model call of every episode, on one timeline
        from ..recording import EpisodeRecorder, RecordingWorldModel, preload_recorder
        from ..world_model import WorldModel

        preload_recorder(record)
        wm = RecordingWorldModel(WorldModel.load("geometric"), imagine_edits=True)
        hooks = EpisodeRecorder(wm, record=record)
        try:
            report = evaluate_libero(args.libero, tasks=tasks, init_states=states, out_dir=out, world_model=wm,
                                     progress=progress, hooks=hooks)
        finally:
            hooks.close()
            wm.close()
    else:
        report = evaluate_libero(args.libero, tasks=tasks, init_states=states, out_dir=out, progress=progress)
    print(format_task_table(report))
    if record:
        print(f"recording: {record}")
    print(f"(written {Path(out) / ('libero_' + args.libero + '.json')})")
    return 0 if report["success_rate"] == 1.0 else 1


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_libero_arguments(parser)
    parser.add_argument("--out", default="out/eval")
    args = parser.parse_args(argv)
    if args.libero is None:
        parser.error("--libero SUITE is required")
    return run_libero_eval(args)


if __name__ == "__main__":
    sys.exit(main())
