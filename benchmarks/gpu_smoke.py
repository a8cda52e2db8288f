"""JoyAI-Image smoke benchmark: load time, peak memory, and ask / imagine latency per resolution.

    .venv/bin/python benchmarks/gpu_smoke.py --path /models/JoyAI-Image-Edit-Diffusers   # real weights, GPU
    .venv/bin/python benchmarks/gpu_smoke.py --tiny                     # writes a tiny random checkpoint
    .venv/bin/python benchmarks/gpu_smoke.py --tiny --small             # CPU: tiny model, 64/128 px, 2 steps
    .venv/bin/python benchmarks/gpu_smoke.py --path ... --offload model --sizes 512 1024 --json out.json

For each resolution (the generation bucket base, 512 and 1024 by default) it prints the median latency of
``ask`` (a relation question, structured answer) and of ``imagine`` (one camera move, ``--steps`` steps),
plus ``imagine_batch`` of 4 views, and the peak accelerator memory (CUDA) or peak process RSS (CPU).
The input frame is the analytic tabletop at the chosen size, so no simulator is needed.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _peak_memory_gb(device: str) -> float:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20  # Linux reports KiB


def _median_seconds(call, repeats: int) -> float:
    call()  # warm-up: kernels, allocator, lazy imports
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--path", help="checkpoint folder in the diffusers layout")
    source.add_argument("--tiny", action="store_true", help="write and load a tiny random checkpoint")
    parser.add_argument("--small", action="store_true", help="CPU-sized run: 64/128 px, 2 steps, 1 repeat")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default=None, help="default bfloat16 on CUDA, float32 on CPU")
    parser.add_argument("--offload", default="none", choices=["none", "model", "group"])
    parser.add_argument("--attention", default="auto")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--sizes", type=int, nargs="+", default=[512, 1024], help="generation resolutions")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    if args.small:
        args.sizes, args.steps, args.repeats = [64, 128], 2, 1

    import torch

    from joyai_embodied import CameraMove, WorldModel
    from joyai_embodied.backends.joyai_image import write_tiny_checkpoint
    from joyai_embodied.evaluation import synthetic

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    dtype = args.dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    path = args.path
    if args.tiny:
        path = write_tiny_checkpoint(Path(tempfile.mkdtemp(prefix="joyai-tiny-")) / "ckpt")

    figures: dict = {"device": device, "dtype": dtype, "offload": args.offload, "steps": args.steps,
                     "checkpoint": "tiny" if args.tiny else str(path), "sizes": {}}
    if device.startswith("cuda"):
        figures["gpu"] = torch.cuda.get_device_name(device)
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    wm = WorldModel.load("joyai-image", path=path, device=device, dtype=dtype, offload=args.offload,
                         attention=args.attention, steps=args.steps, resolution=max(args.sizes),
                         max_new_tokens=64)
    figures["load_s"] = round(time.perf_counter() - started, 2)
    figures["load_peak_gb"] = round(_peak_memory_gb(device), 2)
    figures["attention"] = wm.info()["attention"]
    print(f"device {device} ({figures.get('gpu', 'cpu')}), dtype {dtype}, offload {args.offload}, "
          f"attention {figures['attention']}")
    print(f"load: {figures['load_s']:.2f} s, peak memory {figures['load_peak_gb']:.2f} GB")

    print(f"{'size':>6} {'ask s':>8} {'imagine s':>10} {'batch4 s':>9} {'peak GB':>8}")
    for size in args.sizes:
        wm.backend.resolution = size  # the bucket base used by the next pipeline call
        camera = synthetic.front_camera(size, size * 3 // 4)
        scene = wm.observe(synthetic.observe(camera, synthetic.default_boxes()))
        if device.startswith("cuda"):
            torch.cuda.reset_peak_memory_stats()
        ask = _median_seconds(lambda: wm.relation(scene, "red cube", "blue box"), args.repeats)
        imagine = _median_seconds(lambda: wm.imagine(scene, CameraMove(yaw_deg=30), seed=0), args.repeats)
        moves = [CameraMove(yaw_deg=y) for y in (-60, -30, 30, 60)]
        batch = _median_seconds(lambda: wm.imagine_batch(scene, moves, seed=0), 1)
        peak = _peak_memory_gb(device)
        figures["sizes"][size] = {"ask_s": round(ask, 3), "imagine_s": round(imagine, 3),
                                  "imagine_batch4_s": round(batch, 3), "peak_gb": round(peak, 2)}
        print(f"{size:>6} {ask:>8.3f} {imagine:>10.3f} {batch:>9.3f} {peak:>8.2f}")
    wm.close()
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
