"""Spatial understanding of the geometric world model against simulator ground truth.

    python benchmarks/eval_spatial.py                 # 50 seeded scenes, 640x480, with segmentation
    python benchmarks/eval_spatial.py --small         # 5 scenes (CI)
    python benchmarks/eval_spatial.py --no-segmentation --json out/spatial.json
    python benchmarks/eval_spatial.py --depth-noise structured_light [--frames 3]   # RealSense-like depth

Targets (issue 3): >= 98% relation accuracy on pairs both visible and >= 3 cm apart on the axis asked;
distance error <= 2 cm.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("MUJOCO_GL", "egl")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=50, help="number of scenes (seeds 0..N-1)")
    parser.add_argument("--small", action="store_true", help="5 scenes, for CI")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--no-segmentation", action="store_true", help="plane + clustering path")
    parser.add_argument("--depth-noise", default="none", choices=("none", "structured_light", "stereo"),
                        help="the env's depth sensor model (sim_envs/sensor_noise.py; default none = exact)")
    parser.add_argument("--noise-seed", type=int, default=0, help="seed of the depth noise (default 0)")
    parser.add_argument("--frames", type=int, default=1,
                        help="frames of the still scene fused per observation (wm.observe([...]); default 1)")
    parser.add_argument("--json", help="also write the full result here")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)

    from joyai_embodied.evaluation.spatial import evaluate_spatial

    seeds = range(5 if args.small else args.seeds)
    result = evaluate_spatial(seeds, width=args.width, height=args.height, progress=not args.quiet,
                              use_segmentation=not args.no_segmentation, depth_noise=args.depth_noise,
                              noise_seed=args.noise_seed, frames=args.frames)
    acc = result["relation_accuracy"]
    print(f"\nspatial evaluation: {result['scenes']} scenes, {args.width}x{args.height}, "
          f"segmentation={'yes' if result['use_segmentation'] else 'no'}, depth noise {args.depth_noise}, "
          f"{args.frames} frame(s)")
    print(f"{'relation accuracy':<28}{acc['overall']['accuracy']:.4f}  (n={acc['overall']['n']}, target >= 0.98)")
    for name, row in acc["by_relation"].items():
        print(f"  {name:<26}{row['accuracy']:.4f}  (n={row['n']})")
    for name, row in acc["by_view"].items():
        print(f"  from {name:<21}{row['accuracy']:.4f}  (n={row['n']})")
    for key, label in (("distance_error_m", "distance error"), ("centroid_error_m", "centre error"),
                       ("size_error_m", "size error (per side)")):
        s = result[key]
        print(f"{label:<28}mean {100 * s['mean']:.2f} cm, p90 {100 * s['p90']:.2f} cm, p95 {100 * s['p95']:.2f} cm, max {100 * s['max']:.2f} cm"
              f"  (n={s['n']})")
    print(f"{'name accuracy':<28}{result['name_accuracy']:.4f}")
    print(f"{'detection rate':<28}{result['detection_rate']:.4f}")
    print(f"{'observe (median)':<28}{result['observe_ms']:.1f} ms")
    for failure in result["failures"]:
        print("  miss:", failure)
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
