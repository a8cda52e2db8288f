"""Imagined views vs simulator ground truth, and how long one imagined view takes.

    python benchmarks/eval_imagination.py            # 10 seeds, 640x480, MuJoCo ground truth
    python benchmarks/eval_imagination.py --small    # 2 seeds, 320x240 (CI)
    python benchmarks/eval_imagination.py --simulator synthetic --grid out/imagination.png

Prints one row per view kind (yaw 10/20/30/45 about the scene pivot, a move edit): PSNR and SSIM on the
imagined view's valid pixels, depth AbsRel, valid-mask coverage, and the same figures for the baseline
that returns the source image. Then the median time of ``render_cloud`` on one core.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("MUJOCO_GL", "egl")

import numpy as np  # noqa: E402

from joyai_embodied import CameraMove, WorldModel  # noqa: E402
from joyai_embodied.evaluation.imagination import evaluate_imagination  # noqa: E402

COLUMNS = ("psnr", "ssim", "depth_absrel", "coverage", "baseline_psnr", "baseline_ssim", "baseline_depth_absrel")


def time_imagine(wm: WorldModel, simulator: str, width: int, height: int, repeats: int) -> float:
    """Median milliseconds of one ``imagine`` (yaw 30) on a seed-0 scene."""
    from joyai_embodied.evaluation import imagination

    sim = imagination._make_simulator(simulator, width, height)
    try:
        sim.reset(0)
        scene = wm.observe(sim.observation)
    finally:
        sim.close()
    move = CameraMove(yaw_deg=30)
    wm.imagine(scene, move)  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        wm.imagine(scene, move)
        times.append(1000 * (time.perf_counter() - start))
    return float(np.median(times))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--small", action="store_true", help="2 seeds at 320x240 (CI)")
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--simulator", choices=("auto", "mujoco", "synthetic"), default="auto")
    parser.add_argument("--grid", default=None, help="write the source | imagined | truth grid PNG here")
    parser.add_argument("--repeats", type=int, default=20, help="timed imagine calls")
    parser.add_argument("--depth-noise", default="none", choices=("none", "structured_light", "stereo"),
                        help="the observed frame's depth sensor model (MuJoCo; the ground truth stays exact)")
    args = parser.parse_args(argv)
    if args.small:
        args.seeds, args.width, args.height, args.repeats = 2, 320, 240, 5

    wm = WorldModel.load("geometric")
    start = time.perf_counter()
    result = evaluate_imagination(wm, seeds=list(range(args.seeds)), width=args.width, height=args.height,
                                  out_png=args.grid, simulator=args.simulator, depth_noise=args.depth_noise)
    elapsed = time.perf_counter() - start
    print(f"imagination, {args.seeds} seeds, {args.width}x{args.height}, simulator {args.simulator}, "
          f"depth noise {args.depth_noise} "
          f"({elapsed:.1f} s)")
    print(f"| view | {' | '.join(COLUMNS)} |")
    print("|---" * (len(COLUMNS) + 1) + "|")
    for name, row in result.items():
        print(f"| {name} | " + " | ".join(f"{row[c]:.4g}" for c in COLUMNS) + " |")
    ms = time_imagine(wm, args.simulator, args.width, args.height, args.repeats)
    print(f"imagine (yaw 30) at {args.width}x{args.height}: median {ms:.1f} ms over {args.repeats} calls")
    if args.grid:
        print(f"grid written to {args.grid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
