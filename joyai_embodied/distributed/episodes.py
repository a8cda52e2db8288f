"""What one evaluation episode is, per benchmark: build once per worker, run one seed, merge in seed order.

Each benchmark is a :class:`Benchmark` of three functions. ``build(config)`` makes what a worker keeps for
all its episodes (the world model, and the env where the evaluation function takes one); ``run(state,
seed)`` calls the existing evaluation function (:mod:`joyai_embodied.evaluation`) for that one seed and
returns a small picklable record; ``merge(records, config)`` turns the records, in seed order, into the
report a serial run writes (same keys). The serial path (:func:`run_serial`) uses the same three functions,
so a distributed run and a serial one are comparable record by record.

How close the merged report is to the all-seeds-at-once evaluation:

- ``planner``: the world-model planner's episodes are the serial ones exactly (each depends only on its
  seed). The random baseline draws from an RNG seeded per episode (``baseline_seed * 100003 + seed``)
  instead of one stream over all seeds, since a shared stream would make episode k depend on 0..k-1.
- ``imagination``: every figure is the mean over seeds as serially (each seed scores one view per yaw).
- ``spatial``: counts, accuracies, means, maxima and ``observe_ms`` (median of one-scene medians) are the
  serial ones; a ``p90`` / ``p95`` is the n-weighted mean of the per-seed ones (the per-scene errors are not
  returned).
- ``libero``: one (task, init state) per episode (key ``task * 1000 + init_state``, :func:`libero_keys`);
  the report is ``evaluate_libero``'s ``summarise`` of the same episode records.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

from ..errors import InvalidInputError

#: Spreads per-episode baseline seeds apart (a prime larger than any seed count used).
BASELINE_SEED_STRIDE = 100003


@dataclass(frozen=True)
class Benchmark:
    """One benchmark as episode functions (see module docstring)."""

    build: Callable[[Mapping[str, Any]], Any]
    run: Callable[[Any, int], Any]
    merge: Callable[[Sequence[Any], Mapping[str, Any]], Any]


@dataclass
class WorkerState:
    """What a worker builds once and keeps for all its episodes."""

    config: Mapping[str, Any]
    wm: Any
    env: Any = None

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
        self.wm.close()


def _world_model(config: Mapping[str, Any]) -> Any:
    from ..envs.factory import load_world_model
    from ..evaluation.synthetic import default_boxes, front_camera, observe

    wm = load_world_model(config.get("backend", "geometric"), address=config.get("address"))
    # One observe first: a worker's first call pays for lazy imports, which would otherwise land in the
    # first episode of every worker (and in figures such as observe_ms) instead of once per serial run.
    wm.observe(observe(front_camera(int(config.get("width", 640)), int(config.get("height", 480))),
                       default_boxes()))
    return wm


# -- planner ---------------------------------------------------------------------------------------------------
def _planner_build(config: Mapping[str, Any]) -> WorkerState:
    from ..envs.factory import make_env

    env = make_env(width=int(config.get("width", 640)), height=int(config.get("height", 480)))
    return WorkerState(config, _world_model(config), env)


def _planner_run(state: WorkerState, seed: int) -> Any:
    from ..evaluation.planner import evaluate_planner

    # The baseline's RNG is seeded per episode (module docstring); the world-model planner needs no seed.
    baseline_seed = int(state.config.get("baseline_seed", 0)) * BASELINE_SEED_STRIDE + seed
    return evaluate_planner(state.wm, state.env, [seed], baseline=bool(state.config.get("baseline", True)),
                            baseline_seed=baseline_seed)


def _planner_merge(records: Sequence[Any], config: Mapping[str, Any]) -> dict[str, Any]:
    from ..evaluation.planner import PlannerScore

    merged: dict[str, PlannerScore] = {}
    for scores in records:
        for name, score in scores.items():
            target = merged.setdefault(name, PlannerScore(name))
            target.episodes.extend(score.episodes)
            target.imagined.extend(score.imagined)
    return {name: score.to_dict() for name, score in merged.items()}


# -- spatial ---------------------------------------------------------------------------------------------------
def _spatial_run(state: WorkerState, seed: int) -> dict[str, Any]:
    from ..evaluation.spatial import evaluate_spatial

    config = state.config
    return evaluate_spatial([seed], width=int(config.get("width", 640)), height=int(config.get("height", 480)),
                            progress=False, world_model=state.wm)


def _weighted(values: Sequence[tuple[float, int]]) -> float:
    pairs = [(v, n) for v, n in values if n and not math.isnan(v)]
    total = sum(n for _, n in pairs)
    return sum(v * n for v, n in pairs) / total if total else float("nan")


def _merge_summary(parts: Sequence[Mapping[str, float]]) -> dict[str, float]:
    n = sum(int(p["n"]) for p in parts)
    if not n:
        return {"mean": float("nan"), "p90": float("nan"), "p95": float("nan"), "max": float("nan"), "n": 0}
    return {"mean": _weighted([(p["mean"], p["n"]) for p in parts]),
            "p90": _weighted([(p["p90"], p["n"]) for p in parts]),
            "p95": _weighted([(p["p95"], p["n"]) for p in parts]),
            "max": max(p["max"] for p in parts if p["n"]), "n": n}


def _merge_accuracy(parts: Sequence[Mapping[str, float]]) -> dict[str, float]:
    n = sum(int(p["n"]) for p in parts)
    right = sum(round(p["accuracy"] * p["n"]) for p in parts if p["n"])
    return {"accuracy": right / n if n else float("nan"), "n": n}


def _spatial_merge(records: Sequence[dict[str, Any]], config: Mapping[str, Any]) -> dict[str, Any]:
    import numpy as np

    first = records[0]
    accuracy = {"overall": _merge_accuracy([r["relation_accuracy"]["overall"] for r in records])}
    for group in ("by_relation", "by_view"):
        accuracy[group] = {key: _merge_accuracy([r["relation_accuracy"][group][key] for r in records])
                           for key in first["relation_accuracy"][group]}
    # names scored = objects found = centroid errors, per seed (evaluate_spatial counts them together)
    found = [r["centroid_error_m"]["n"] for r in records]
    expected = [n / r["detection_rate"] if r["detection_rate"] else 0 for n, r in zip(found, records)]
    return {
        "scenes": len(records), "width": first["width"], "height": first["height"],
        "use_segmentation": first["use_segmentation"], "depth_noise": first["depth_noise"],
        "noise_seed": first["noise_seed"], "frames": first["frames"], "relation_accuracy": accuracy,
        **{key: _merge_summary([r[key] for r in records])
           for key in ("distance_error_m", "centroid_error_m", "size_error_m")},
        "name_accuracy": _weighted([(r["name_accuracy"], n) for r, n in zip(records, found)]),
        "detection_rate": sum(found) / round(sum(expected)) if round(sum(expected)) else float("nan"),
        "observe_ms": float(np.median([r["observe_ms"] for r in records])),
        "failures": [f for r in records for f in r["failures"]][:10],
    }


# -- imagination -----------------------------------------------------------------------------------------------
def _imagination_run(state: WorkerState, seed: int) -> dict[str, Any]:
    from ..evaluation.imagination import evaluate_imagination

    config = state.config
    yaws = {"yaws": config["yaws"]} if config.get("yaws") else {}
    return evaluate_imagination(state.wm, seeds=[seed], width=int(config.get("width", 320)),
                                height=int(config.get("height", 240)), **yaws)


def _imagination_merge(records: Sequence[dict[str, Any]], config: Mapping[str, Any]) -> dict[str, Any]:
    import numpy as np

    merged: dict[str, dict[str, float]] = {}
    for name in dict.fromkeys(name for r in records for name in r):  # first-seen order, as serially
        rows = [r[name] for r in records if name in r]
        fields = [f for f in rows[0] if f != "views"]
        merged[name] = {f: _nanmean([row[f] for row in rows]) for f in fields}
        merged[name]["views"] = int(np.sum([row["views"] for row in rows]))
    return merged


def _nanmean(values: Sequence[float]) -> float:
    finite = [v for v in values if not math.isnan(v)]
    return float(sum(finite) / len(finite)) if finite else float("nan")


# -- LIBERO ----------------------------------------------------------------------------------------------------
#: A LIBERO episode's key is ``task * LIBERO_KEY_STRIDE + init_state`` (init states are 0-49 in the protocol).
LIBERO_KEY_STRIDE = 1000


def libero_keys(tasks: Sequence[int], init_states: Sequence[int]) -> list[int]:
    """Episode keys of ``tasks`` x ``init_states``, in the order the serial evaluation runs them."""
    return [t * LIBERO_KEY_STRIDE + s for t in sorted(set(tasks)) for s in sorted(set(init_states))]


def _libero_run(state: WorkerState, key: int) -> dict[str, Any]:
    from ..evaluation.libero import evaluate_libero

    task, init_state = divmod(int(key), LIBERO_KEY_STRIDE)
    # evaluate_libero makes the env per call (one task); the world model is the worker's own, kept
    report = evaluate_libero(state.config["suite"], tasks=[task], init_states=[init_state], out_dir=None,
                             world_model=state.wm, width=int(state.config.get("width", 256)),
                             height=int(state.config.get("height", 256)), progress=None)
    return report["episodes"][0]


def _libero_merge(records: Sequence[dict[str, Any]], config: Mapping[str, Any]) -> dict[str, Any]:
    from ..evaluation.libero import summarise

    return summarise(config["suite"], list(records))


def _model_build(config: Mapping[str, Any]) -> WorkerState:
    # evaluate_spatial / evaluate_imagination make their simulator per call; only the model is kept.
    return WorkerState(config, _world_model(config))


BENCHMARKS: dict[str, Benchmark] = {
    "planner": Benchmark(_planner_build, _planner_run, _planner_merge),
    "spatial": Benchmark(_model_build, _spatial_run, _spatial_merge),
    "imagination": Benchmark(_model_build, _imagination_run, _imagination_merge),
    "libero": Benchmark(_model_build, _libero_run, _libero_merge),  # config: suite, width, height
}


def benchmark(name: str) -> Benchmark:
    """The episode functions of benchmark ``name``.

    Raises:
        InvalidInputError: unknown name (the message lists the known ones).
    """
    if name not in BENCHMARKS:
        raise InvalidInputError("benchmark", "one of " + ", ".join(sorted(BENCHMARKS)), name)
    return BENCHMARKS[name]


def run_serial(name: str, seeds: Sequence[int], config: Mapping[str, Any]) -> tuple[list[Any], Any]:
    """The same episodes in this process, one after another: ``(records in seed order, merged report)``."""
    bench = benchmark(name)
    state = bench.build(config)
    try:
        records = [bench.run(state, int(seed)) for seed in seeds]
    finally:
        state.close()
    return records, bench.merge(records, config)
