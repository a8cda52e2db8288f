"""Observe time and memory of the geometric backend against image size, up to the largest accepted side.

    python benchmarks/image_size.py             # 640x480 and MAX_IMAGE_SIDE x MAX_IMAGE_SIDE (~1 min, ~3 GB)
    python benchmarks/image_size.py --small     # 160x120 and 640x480 (CI)
    python benchmarks/image_size.py --sides 640x480,2048x2048

Frames are the analytic tabletop of :mod:`joyai_embodied.evaluation.synthetic` (exact depth and
segmentation, any size). For each size: observe time (best and median of the repeats after a warm-up
call, which also fills the per-camera ray cache) and the peak memory numpy allocates during one observe
(tracemalloc). Also checks that one pixel more than :data:`joyai_embodied.types.MAX_IMAGE_SIDE` is refused
with the limit in the message.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tracemalloc


def _sizes(text: str) -> list[tuple[int, int]]:
    sizes = []
    for item in text.split(","):
        width, height = (int(v) for v in item.lower().split("x"))
        sizes.append((width, height))
    return sizes


def main(argv: list[str] | None = None) -> int:
    from joyai_embodied import InvalidInputError, WorldModel
    from joyai_embodied.evaluation.synthetic import default_boxes, front_camera, raycast
    from joyai_embodied.types import MAX_IMAGE_SIDE, Observation

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="160x120 and 640x480 only, for CI")
    parser.add_argument("--sides", help="comma-separated WIDTHxHEIGHT list (default: 640x480 and the maximum)")
    parser.add_argument("--repeats", type=int, default=3, help="timed observes per size after the warm-up")
    parser.add_argument("--json", help="also write the figures here")
    args = parser.parse_args(argv)
    if args.sides:
        sizes = _sizes(args.sides)
    elif args.small:
        sizes = [(160, 120), (640, 480)]
    else:
        sizes = [(640, 480), (MAX_IMAGE_SIDE, MAX_IMAGE_SIDE)]

    wm = WorldModel.load("geometric")
    boxes = default_boxes()
    figures = {}
    print(f"geometric observe against image size (largest accepted side: {MAX_IMAGE_SIDE} px)")
    for width, height in sizes:
        camera = front_camera(width, height)
        frame = raycast(camera, boxes)
        observation = Observation(rgb=frame["rgb"], depth=frame["depth"], intrinsics=camera.intrinsics,
                                  cam_to_world=camera.cam_to_world, segmentation=frame["segmentation"],
                                  labels={b.id: b.name for b in boxes})
        del frame
        tracemalloc.start()
        start = time.perf_counter()
        scene = wm.observe(observation)  # warm-up: fills the ray cache for this camera
        first = 1000.0 * (time.perf_counter() - start)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        times = []
        for _ in range(max(1, args.repeats)):
            start = time.perf_counter()
            scene = wm.observe(observation)
            times.append(1000.0 * (time.perf_counter() - start))
        times.sort()
        key = f"{width}x{height}"
        figures[key] = {"best_ms": round(times[0], 1), "median_ms": round(times[len(times) // 2], 1),
                        "first_ms": round(first, 1), "peak_mb": round(peak / 2 ** 20, 1),
                        "objects": len(scene.objects)}
        print(f"{key:>11}  observe best {times[0]:9.1f} ms   median {times[len(times) // 2]:9.1f} ms   "
              f"first (cold cache) {first:9.1f} ms   peak numpy memory {peak / 2 ** 20:8.1f} MB   "
              f"objects {len(scene.objects)}")
        del scene, observation

    import numpy as np

    try:
        Observation(rgb=np.zeros((MAX_IMAGE_SIDE + 1, 2, 3), np.uint8), intrinsics=np.eye(3), cam_to_world=np.eye(4))
        refused = "accepted (wrong)"
    except InvalidInputError as exc:
        refused = str(exc)
    figures["larger_than_max"] = refused
    print(f"{MAX_IMAGE_SIDE + 1} px side: {refused}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)
    return 0 if str(MAX_IMAGE_SIDE) in refused else 1


if __name__ == "__main__":
    sys.exit(main())
