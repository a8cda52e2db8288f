"""The geometric backend's perception on LIBERO's real meshes, scored against the simulator's poses.

    .venv/bin/python benchmarks/libero_perception.py --small                 # 10 tasks x 1 init state
    .venv/bin/python benchmarks/libero_perception.py --init-states 0-9       # 100 LIBERO-Spatial frames

Each frame: a LIBERO task at a fixed init state (``joyai/LIBERO-v0``, agentview 256x256), observed by the
geometric backend with the env's category labels numbered as the planner passes them
(``planner.libero.numbered_labels``). Only this benchmark reads the simulator (each instance's world box from
its geoms); the backend sees the observation arrays. Scores:

- support: for every object resting on another (bottom within :data:`REST_GAP_M` of the other's top, centre over
  it), whether ``relation(object, support).on_top_of`` holds; and false ``on_top_of`` among the other pairs;
- box bottom of supported objects vs their true bottom, where they meet the support (p50/p90 of |error|, cm);
- box centre vs the true box centre, per category (p50/p90, cm);
- left/right/front/behind between every pair whose true offset is clear of the margin (camera frame).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import defaultdict

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

#: A resting object's lowest point lies within this of its support's highest point (metres).
REST_GAP_M = 0.02
#: A bowl on a ramekin or a stove's burner ring sits this far below the support's highest point (metres).
NEST_M = 0.045
#: ... its footprint overlaps the support's by this share of its own, and it rises this far above it (metres).
MIN_OVERLAP = 0.15
RISE_M = 0.01
#: An object lower than this above the table's top is on the table, not on something (metres).
ON_TABLE_M = 0.01
#: Geoms the camera sees: opaque, in robosuite's visual group; meshes are measured by their vertices.
VISIBLE_ALPHA = 1.0
VISUAL_GROUP = 1
MESH = 7  # mujoco.mjtGeom.mjGEOM_MESH
#: Direction pairs whose true offset is within this many relation margins are ties, not scored.
CLEAR_MARGINS = 2.0


def instance_boxes(env) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """``{instance id: (world min corner, world max corner)}`` of the visible geoms (evaluator only).

    Mesh geoms count by their vertices (a rotated mesh's own box would be inflated), box geoms by their
    corners; invisible collision geoms (alpha < 1, group 0) are not what the camera sees.
    """
    sim = env.unwrapped
    inner = sim._env.env
    model, data = inner.sim.model._model, inner.sim.data._data
    signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)], dtype=float)
    boxes = {}
    for name, instance_id in sim._instance_ids.items():
        corners = []
        for g in np.asarray(inner.model.instances_to_ids[name]["geom"], dtype=np.int64):
            if model.geom_rgba[g, 3] < VISIBLE_ALPHA or model.geom_group[g] != VISUAL_GROUP:
                continue
            if model.geom_type[g] == MESH and model.geom_dataid[g] >= 0:
                mesh = model.geom_dataid[g]
                start, count = model.mesh_vertadr[mesh], model.mesh_vertnum[mesh]
                local = model.mesh_vert[start:start + count].astype(np.float64)
            else:
                local = model.geom_aabb[g, :3] + signs * model.geom_aabb[g, 3:]
            corners.append(local @ data.geom_xmat[g].reshape(3, 3).T + data.geom_xpos[g])
        if corners:
            pts = np.concatenate(corners)
            boxes[instance_id] = (pts.min(axis=0), pts.max(axis=0))
    return boxes


def table_top(env) -> float:
    inner = env.unwrapped._env.env
    offset = getattr(inner, "table_offset", None) or getattr(inner, "workspace_offset", None)
    return float(offset[2]) if offset is not None else 0.9


def supports(boxes: dict, table_z: float) -> dict[int, int]:
    """``{object id: id of the object it rests on}`` from the true boxes.

    A rests on B when A is off the table, its bottom is within [-NEST_M, REST_GAP_M] of B's top, it rises
    above B's top (a bowl inside a drawer does not) and its footprint overlaps B's by MIN_OVERLAP (a bowl
    tilted on a ramekin has its centre beyond the ramekin's rim).
    """
    found = {}
    for a, (lo_a, hi_a) in boxes.items():
        if lo_a[2] < table_z + ON_TABLE_M:
            continue
        area = float(np.prod(hi_a[:2] - lo_a[:2]))
        best = None
        for b, (lo_b, hi_b) in boxes.items():
            overlap = np.clip(np.minimum(hi_a[:2], hi_b[:2]) - np.maximum(lo_a[:2], lo_b[:2]), 0, None)
            gap = lo_a[2] - hi_b[2]
            if (b == a or float(np.prod(overlap)) < MIN_OVERLAP * area or not -NEST_M <= gap <= REST_GAP_M
                    or hi_a[2] < hi_b[2] + RISE_M):
                continue
            if best is None or abs(gap) < best[0]:
                best = (abs(gap), b)
        if best is not None:
            found[a] = best[1]
    return found


def percentiles(values: list[float]) -> str:
    if not values:
        return "   -      -  "
    p50, p90 = np.percentile(np.asarray(values) * 100, [50, 90])
    return f"{p50:5.1f}  {p90:5.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="10 tasks x init state 0")
    parser.add_argument("--suite", default="libero_spatial")
    parser.add_argument("--tasks", default="0-9")
    parser.add_argument("--init-states", default="0-4")
    args = parser.parse_args(argv)
    os.environ.setdefault("MUJOCO_GL", "egl")

    import gymnasium as gym

    import sim_envs  # noqa: F401  (registers the envs)
    from joyai_embodied.evaluation.libero import parse_index_list
    from joyai_embodied.world_model import WorldModel

    tasks = parse_index_list(args.tasks, "tasks")
    states = [0] if args.small else parse_index_list(args.init_states, "init_states")
    wm = WorldModel.load("geometric")
    tally = Tally()
    start = time.perf_counter()
    for task_id in tasks:
        env = gym.make("joyai/LIBERO-v0", suite=args.suite, task_id=task_id, init_state=states[0],
                       render_on_step=False)  # reset renders once; settle steps need no camera
        try:
            for state in states:
                obs, info = env.reset(seed=state, options={"init_state": state})
                score_frame(wm, obs, info["labels"], instance_boxes(env), table_top(env), tally)
        finally:
            env.close()
    wm.close()
    tally.report(args.suite, time.perf_counter() - start)
    return 0


class Tally:
    """What the frames scored so far."""

    def __init__(self):
        self.support_hits = defaultdict(lambda: [0, 0])  # support category -> [on_top_of true, pairs]
        self.bottom_err = defaultdict(list)
        self.height_err = defaultdict(list)
        self.centre_err = defaultdict(list)
        self.false_on_top = [0, 0]
        self.direction = [0, 0]
        self.frames = 0
        self.missing = 0

    def report(self, suite: str, wall: float) -> None:
        print(f"LIBERO perception: suite {suite}, {self.frames} frames, {wall:.0f} s, "
              f"{self.missing} visible objects unfitted")
        print(f"{'support':<16} {'on_top_of':>10}   {'|box bottom - true bottom| cm p50 p90':>34}")
        total = [0, 0]
        for key in sorted(self.support_hits):
            hit, n = self.support_hits[key]
            total[0] += hit
            total[1] += n
            print(f"{key:<16} {hit:>4}/{n:<5}   {percentiles(self.bottom_err[key]):>34}")
        share = total[0] / total[1] if total[1] else float("nan")
        print(f"{'all supported':<16} {total[0]:>4}/{total[1]:<5} ({share:.1%})")
        print(f"false on_top_of among other pairs: {self.false_on_top[0]}/{self.false_on_top[1]}")
        print(f"\n{'category':<18} {'centre err cm p50 p90':>22} {'height err cm p50 p90':>22}  n")
        for key in sorted(self.centre_err):
            print(f"{key:<18} {percentiles(self.centre_err[key]):>22} {percentiles(self.height_err[key]):>22}"
                  f"  {len(self.centre_err[key])}")
        d = self.direction
        print(f"\nleft/right/front/behind (camera frame): {d[0]}/{d[1]} ({d[0] / max(d[1], 1):.2%})")


def score_frame(wm, obs: dict, labels: dict, boxes: dict, table_z: float, tally: Tally) -> None:
    """Observes one frame with the backend and adds its scores against the true boxes to ``tally``."""
    from joyai_embodied.backends.geometric.reasoning import RELATION_MARGIN_M
    from joyai_embodied.planner.libero import numbered_labels
    from joyai_embodied.spatial import DIRECTIONS, lateral_and_depth

    tally.frames += 1
    scene = wm.observe(obs, labels=numbered_labels(obs["segmentation"], labels))
    rest = supports(boxes, table_z)
    seen = {o.id: o for o in scene.objects}
    tally.missing += sum(1 for i in boxes if i not in seen and (obs["segmentation"] == i).any())
    for i, obj in seen.items():
        if i in boxes:
            lo, hi = boxes[i]
            tally.centre_err[labels[i]].append(float(np.linalg.norm(obj.centroid - (lo + hi) / 2)))
            tally.height_err[labels[i]].append(abs(float(obj.extent[2]) - float(hi[2] - lo[2])))
    ids = [i for i in sorted(seen) if i in boxes]
    for a in ids:
        for b in ids:
            if a == b:
                continue
            rel = wm.relation(scene, seen[a], seen[b])
            if rest.get(a) == b:
                key = labels[b]
                tally.support_hits[key][0] += int(rel.on_top_of)
                tally.support_hits[key][1] += 1
                tally.bottom_err[key].append(abs(seen[a].bottom_z - float(boxes[a][0][2])))
            else:
                tally.false_on_top[0] += int(rel.on_top_of)
                tally.false_on_top[1] += 1
            if a < b:
                ca, cb = ((boxes[k][0] + boxes[k][1]) / 2 for k in (a, b))
                lat, dep = lateral_and_depth(np.stack([ca, cb]), obs["cam_to_world"])
                dl, dd = float(lat[0] - lat[1]), float(dep[0] - dep[1])
                for key, (axis, sign) in DIRECTIONS.items():
                    offset = dl if axis == 0 else dd
                    if abs(offset) <= CLEAR_MARGINS * RELATION_MARGIN_M:
                        continue
                    truth = sign * offset > RELATION_MARGIN_M
                    tally.direction[0] += int(bool(getattr(rel, key)) == truth)
                    tally.direction[1] += 1


if __name__ == "__main__":
    sys.exit(main())
