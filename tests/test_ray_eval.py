"""Distributed evaluation on a real two-node Ray cluster (one CPU each), in a loopback-only network namespace.

One cluster serves the module: the planner benchmark serially, the existing all-seeds evaluation, the same
seeds on two Ray workers, and again with the worker node killed mid-evaluation.
"""

from __future__ import annotations

import pytest

from ray_namespace import requires_ray_namespace, run_isolated

pytestmark = [requires_ray_namespace, pytest.mark.timeout(400)]
SEEDS = list(range(6))

SCRIPT = f"""
import json, time
import ray
from ray.cluster_utils import Cluster

from joyai_embodied.distributed.episodes import run_serial
from joyai_embodied.distributed.evaluate import evaluate_distributed
from joyai_embodied.envs.factory import load_world_model, make_env
from joyai_embodied.evaluation.planner import evaluate_planner

SEEDS = {SEEDS!r}
CONFIG = {{"width": 320, "height": 240}}


def outcome(episode):
    return [episode.success, episode.status, episode.plan.instruction,
            episode.plan.pick.name if episode.plan.pick else None]


def outcomes(records):
    return {{str(seed): {{name: outcome(score.episodes[0]) for name, score in record.items()}}
            for seed, record in records.items()}}


cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 1, "include_dashboard": False}})
worker_node = cluster.add_node(num_cpus=1)
ray.init(address=cluster.address, namespace="joyai", log_to_driver=False)

serial_records, serial_report = run_serial("planner", SEEDS, CONFIG)
wm, env = load_world_model("geometric"), make_env(width=320, height=240)
all_at_once = evaluate_planner(wm, env, SEEDS, baseline=False)["world model"]
env.close()

report, stats = evaluate_distributed("planner", SEEDS, CONFIG, workers=2)

killed = {{}}
def kill_worker_node(episode):
    # right after an episode from the head node, the worker node's actor holds the next one
    if not killed and episode.node_id == cluster.head_node.node_id:
        cluster.remove_node(worker_node, allow_graceful=False)
        killed["after"] = episode.done

faulty_report, faulty = evaluate_distributed("planner", SEEDS, CONFIG, workers=2, progress=kill_worker_node)
print("RESULT " + json.dumps({{
    "serial": outcomes(dict(zip(SEEDS, serial_records))), "serial_report": serial_report,
    "all_at_once": {{str(e.seed): outcome(e) for e in all_at_once.episodes}},
    "ray": outcomes(stats.records), "ray_report": report, "ray_stats": stats.to_dict(), "workers": stats.workers,
    "faulty": outcomes(faulty.records), "faulty_report": faulty_report, "faulty_stats": faulty.to_dict(),
    "killed_after": killed.get("after"),
}}))
"""


def untimed(report):
    """A planner report without its wall-clock figure (the only one that differs between runs)."""
    return {name: {k: v for k, v in score.items() if k != "mean_seconds"} for name, score in report.items()}


@pytest.fixture(scope="module")
def runs():
    return run_isolated(SCRIPT, timeout_s=380)


def test_same_seeds_give_the_serial_outcomes_on_two_workers(runs):
    assert runs["ray"] == runs["serial"]
    assert untimed(runs["ray_report"]) == untimed(runs["serial_report"])  # the serial report, key for key
    assert runs["workers"] == 2 and len(runs["ray_stats"]["episodes_by_worker"]) == 2  # both workers ran some
    # the world-model planner's episodes are those of the existing all-seeds-at-once evaluation
    assert {seed: by_name["world model"] for seed, by_name in runs["ray"].items()} == runs["all_at_once"]


def test_a_worker_node_killed_mid_evaluation_loses_and_duplicates_nothing(runs):
    stats = runs["faulty_stats"]
    assert runs["killed_after"] is not None and stats["worker_deaths"] >= 1
    assert stats["retried"], "the killed worker held an episode; it must have been run again elsewhere"
    assert stats["lost"] == [] and stats["duplicates_dropped"] == 0
    assert sorted(runs["faulty"], key=int) == [str(s) for s in SEEDS]  # every episode once
    assert runs["faulty"] == runs["serial"]
    assert runs["faulty_report"]["world model"]["episodes"] == len(SEEDS)
