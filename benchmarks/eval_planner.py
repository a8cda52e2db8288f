"""Task success of the world-model planner vs. a baseline that guesses among plausible objects.

    .venv/bin/python benchmarks/eval_planner.py                  # 50 seeds at 640x480
    .venv/bin/python benchmarks/eval_planner.py --small          # 8 seeds at 320x240 (CI)
    .venv/bin/python benchmarks/eval_planner.py --seeds 100 --json out/eval_planner.json

Prints the success rate of each planner, per instruction template, the gap, and the failures.
Target: >= 90% success with the world model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("MUJOCO_GL", "egl")  # before mujoco is imported

TARGET = 0.90
TEMPLATES = {1: "named object", 2: "object <rel> ref", 3: "<shape> <rel> ref", 4: "closest/farthest",
             5: "other camera's view", 0: "unparsed"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=50, help="number of task seeds (default 50)")
    parser.add_argument("--first-seed", type=int, default=1000,
                        help="first task seed (default 1000, apart from the demo's 0-4)")
    parser.add_argument("--small", action="store_true", help="8 seeds at 320x240, for CI")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--backend", default="geometric", help="world-model preset (default geometric)")
    parser.add_argument("--no-baseline", action="store_true", help="run only the world-model planner")
    parser.add_argument("--depth-noise", default="none", choices=("none", "structured_light", "stereo"),
                        help="the env's depth sensor model (sim_envs/sensor_noise.py; default none = exact)")
    parser.add_argument("--noise-seed", type=int, default=0, help="seed of the depth noise (default 0)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.small:
        args.seeds, args.width, args.height = min(args.seeds, 8), 320, 240

    from joyai_embodied import WorldModel
    from joyai_embodied.evaluation.planner import evaluate_planner
    from joyai_embodied.envs import make_env

    wm = WorldModel.load(args.backend)
    env = make_env(width=args.width, height=args.height)
    seeds = range(args.first_seed, args.first_seed + args.seeds)

    def progress(name: str, episode) -> None:
        mark = "ok " if episode.success else "FAIL"
        print(f"  {name:11s} seed {episode.seed}: {mark} t{episode.plan.goal.template if episode.plan.goal else 0} "
              f"{episode.plan.instruction}", flush=True)

    start = time.perf_counter()
    try:
        scores = evaluate_planner(wm, env, seeds, baseline=not args.no_baseline, on_episode=progress,
                                  depth_noise=args.depth_noise, noise_seed=args.noise_seed)
    finally:
        env.close()
        wm.close()
    seconds = time.perf_counter() - start

    print(f"\n{args.seeds} seeds from {args.first_seed}, {args.width}x{args.height}, backend {args.backend}, "
          f"depth noise {args.depth_noise}, "
          f"{seconds:.0f} s in all")
    names = list(scores)
    header = f"{'template':24s}" + "".join(f"{n:>16s}" for n in names)
    print(header)
    print("-" * len(header))
    templates = sorted(set().union(*(s.by_template() for s in scores.values())))
    for template in templates:
        cells = []
        for name in names:
            ok, total = scores[name].by_template().get(template, (0, 0))
            cells.append(f"{ok:>3d}/{total:<3d} {ok / total if total else 0:>5.0%}  ")
        print(f"{template} {TEMPLATES.get(template, '?'):22s}" + "".join(f"{c:>16s}" for c in cells))
    print("-" * len(header))
    print(f"{'success rate':24s}" + "".join(f"{scores[n].success_rate:>15.1%} " for n in names))
    planner = scores["world model"]
    summary = planner.to_dict()
    print(f"world-model verification agrees with the simulator: {summary['verification_agreement']}")
    print(f"mean time per episode (world model): {summary['mean_seconds']:.2f} s")
    use = summary["imagination_use"]
    print(f"episodes that imagined views (world model): {use['search']} to find a hidden or misnamed object, "
          f"{use['perspective']} from the instruction's camera, {use['predicted outcome']} to predict the outcome")
    if "baseline" in scores:
        gap = planner.success_rate - scores["baseline"].success_rate
        print(f"gap over the baseline: {gap * 100:+.1f} percentage points")
    print(f"target >= {TARGET:.0%}: {'met' if planner.success_rate >= TARGET else 'NOT met'}")
    for failure in summary["failures"]:
        print(f"  failed seed {failure['seed']}: {failure['instruction']!r} picked {failure['picked']}, "
              f"intended {failure['intended']} ({failure['error'] or failure['status']})")
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"seeds": list(seeds), "size": [args.width, args.height],
                                         "backend": args.backend, "seconds": round(seconds, 1),
                                         "scores": {n: s.to_dict() for n, s in scores.items()}}, indent=2))
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
