"""Replay's perception speed-ups keep the answers: the fast footprint geometry equals its plain reference.

The reference implementations below are the code before the speed-ups (every column extreme as an outline
candidate, one ``Rectangle.contains`` per overlap sample). ``benchmarks/perception_equality.py`` checks whole
scenes (every SceneObject and relation) on 192 replay, LIBERO and tabletop frames; these tests pin the pieces.
"""

from __future__ import annotations

import numpy as np
from joyai_embodied.backends.geometric import shapes
from joyai_embodied.backends.geometric.shapes import Rectangle, min_area_rectangle, outline, rectangle_at
from joyai_embodied.backends.geometric.supports import OVERLAP_SAMPLES, overlap_share


def _reference_candidates(points: np.ndarray, cell: float = 5e-4) -> np.ndarray:
    """Every grid column's lowest and highest point (the outline candidates before the exact hull)."""
    grid = np.round(np.asarray(points, dtype=np.float64) / cell).astype(np.int64)
    columns = grid[:, 0] - grid[:, 0].min()
    lowest = np.full(int(columns.max()) + 1, np.iinfo(np.int64).max)
    highest = np.full(len(lowest), np.iinfo(np.int64).min)
    np.minimum.at(lowest, columns, grid[:, 1])
    np.maximum.at(highest, columns, grid[:, 1])
    used = np.flatnonzero(highest >= lowest)
    x = (used + grid[:, 0].min()).astype(np.float64)
    return np.vstack([np.stack([x, lowest[used]], axis=1), np.stack([x, highest[used]], axis=1)]) * cell


def _footprints(rng: np.random.Generator, count: int):
    for index in range(count):
        n = int(rng.integers(3, 5000))
        kind = index % 3
        if kind == 0:  # a disc of depth pixels
            angle = rng.uniform(0, 2 * np.pi, n)
            radius = rng.uniform(0.01, 0.08) * np.sqrt(rng.uniform(0, 1, n))
            points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        elif kind == 1:  # a rotated rectangle
            a = rng.uniform(0, np.pi)
            rotation = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
            points = (rng.uniform(-1, 1, (n, 2)) * rng.uniform(0.005, 0.1, 2)) @ rotation.T
        else:  # a wall arc: a concave outline
            angle = rng.uniform(0, np.pi, n)
            radius = 0.04 + rng.normal(0, 0.001, n)
            points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
        yield points + rng.uniform(-1, 1, 2)


def test_outline_candidates_have_every_extreme_of_the_column_extremes():
    rng = np.random.default_rng(0)
    directions = np.radians(np.arange(0.0, 360.0, 0.7))
    normals = np.stack([np.cos(directions), np.sin(directions)], axis=1)
    for points in _footprints(rng, 45):
        fast, area = outline(points)
        reference = _reference_candidates(points)
        assert len(fast) <= len(reference)
        # the same extremes along every direction, bit for bit (elementwise products, as the angle search does)
        along = fast[:, :1] * normals[:, 0] + fast[:, 1:] * normals[:, 1]
        ref_along = reference[:, :1] * normals[:, 0] + reference[:, 1:] * normals[:, 1]
        np.testing.assert_array_equal(along.max(axis=0), ref_along.max(axis=0))
        np.testing.assert_array_equal(along.min(axis=0), ref_along.min(axis=0))
        assert area > 0


def test_min_area_rectangle_and_rectangle_at_match_the_search_over_all_candidates():
    rng = np.random.default_rng(1)
    for points in _footprints(rng, 30):
        reference = _reference_candidates(points)
        _, area = outline(points)
        fast = min_area_rectangle(points)
        coarse = shapes._COARSE_ANGLES
        best = coarse[int(np.argmin(shapes._spans(reference, coarse)[2]))]
        fine = best + shapes._FINE_OFFSETS
        lo, hi, areas = shapes._spans(reference, fine)
        i = int(np.argmin(areas))
        axes = np.array([[np.cos(fine[i]), -np.sin(fine[i])], [np.sin(fine[i]), np.cos(fine[i])]])
        np.testing.assert_array_equal(fast.size, hi[i] - lo[i])
        np.testing.assert_array_equal(fast.axes, axes)
        np.testing.assert_array_equal(fast.center, axes @ ((lo[i] + hi[i]) / 2))
        assert fast.hull_area == area
        angle = float(rng.uniform(0, np.pi / 2))
        at, given = rectangle_at(points, angle), rectangle_at(points, angle, outline(points))
        lo, hi, _ = shapes._spans(reference, np.array([angle]))
        np.testing.assert_array_equal(at.size, hi[0] - lo[0])
        np.testing.assert_array_equal(given.size, at.size)
        np.testing.assert_array_equal(given.center, at.center)


def test_overlap_share_counts_the_samples_rectangle_contains_does():
    rng = np.random.default_rng(2)

    def rectangle() -> Rectangle:
        a = rng.uniform(0, np.pi)
        axes = np.eye(2) if rng.random() < 0.3 else np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        return Rectangle(rng.uniform(-0.05, 0.05, 2), rng.uniform(0.01, 0.1, 2), axes, 0.0)

    steps = (np.arange(OVERLAP_SAMPLES) + 0.5) / OVERLAP_SAMPLES - 0.5
    unit = np.stack(np.meshgrid(steps, steps), axis=-1).reshape(-1, 2)
    shares = []
    for _ in range(400):
        a, b = rectangle(), rectangle()
        small, large = (a, b) if float(np.prod(a.size)) <= float(np.prod(b.size)) else (b, a)
        samples = small.center + (unit * small.size) @ small.axes.T
        expected = float(np.mean([large.contains(p) for p in samples]))
        assert overlap_share(a, b) == expected
        shares.append(expected)
    assert 0 < np.mean(np.asarray(shares) > 0) < 1  # both overlapping and apart pairs were drawn
