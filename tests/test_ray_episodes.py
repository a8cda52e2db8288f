"""The per-episode functions Ray workers run, checked without Ray: merged one-seed runs = the all-seeds report."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("mujoco")
from joyai_embodied.distributed.episodes import benchmark, libero_keys, run_serial  # noqa: E402
from joyai_embodied.errors import InvalidInputError  # noqa: E402

SEEDS = [0, 1, 2]
SIZE = {"width": 320, "height": 240}


def same(got, want, path=""):
    """Equal, with NaN == NaN and floats within 1e-9 (sums of the same numbers in another order)."""
    if isinstance(want, dict):
        assert sorted(got) == sorted(want), path
        for key in want:
            same(got[key], want[key], f"{path}.{key}")
    elif isinstance(want, float):
        assert (math.isnan(got) and math.isnan(want)) or abs(got - want) <= 1e-9, f"{path}: {got} vs {want}"
    else:
        assert got == want, path


def test_spatial_episodes_merge_into_the_serial_report():
    from joyai_embodied import WorldModel
    from joyai_embodied.evaluation.spatial import evaluate_spatial

    _, merged = run_serial("spatial", SEEDS, SIZE)
    with WorldModel.load("geometric") as wm:
        serial = evaluate_spatial(SEEDS, progress=False, world_model=wm, **SIZE)
    for key in ("observe_ms",):  # timings differ between runs
        merged.pop(key), serial.pop(key)
    for summary in ("distance_error_m", "centroid_error_m", "size_error_m"):  # p90/p95: documented estimates
        for percentile in ("p90", "p95"):
            assert merged[summary].pop(percentile) <= merged[summary]["max"]
            serial[summary].pop(percentile)
    same(merged, serial)


def test_imagination_episodes_merge_into_the_serial_report():
    from joyai_embodied import WorldModel
    from joyai_embodied.evaluation.imagination import evaluate_imagination

    _, merged = run_serial("imagination", SEEDS, SIZE)
    with WorldModel.load("geometric") as wm:
        serial = evaluate_imagination(wm, seeds=SEEDS, **SIZE)
    same(merged, serial)


def test_unknown_benchmark_names_the_known_ones():
    with pytest.raises(InvalidInputError, match="planner") as caught:
        benchmark("nope")
    assert caught.value.field == "benchmark"


def test_libero_keys_follow_the_serial_order():
    assert libero_keys([3, 0], [1, 0]) == [0, 1, 3000, 3001]
