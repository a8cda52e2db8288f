"""JoyAI-Image smoke run: one prepared script that fits a 15-minute GPU lease, with time to spare.

    python benchmarks/gpu_smoke.py --budget-s 480 --out smoke.json                 # CUDA + tiny checkpoint
    python benchmarks/gpu_smoke.py --budget-s 480 --checkpoint /models/JoyAI-Image-Edit-Diffusers --out smoke.json
    python benchmarks/gpu_smoke.py --tiny --budget-s 480                           # CPU: every stage, < 2 min
    python benchmarks/gpu_smoke.py --tiny --small                                  # quick check (make bench-small)

Stages, each reported as ``ok`` / ``skipped`` / ``failed`` with its seconds, figures and the reason,
all in one JSON (rewritten after every stage, so a killed run still leaves what it measured):

1. ``environment``: torch / CUDA / bf16 / flash-attn (2 and 3) / library versions, host RAM, GPU memory.
2. ``kernels``: a bf16 matmul and SDPA on each torch backend (flash, efficient, cuDNN, math) against a
   float32 reference, flash-attn's own kernel when importable (float32 SDPA on a CPU).
3. ``tiny``: a random checkpoint written in the real layout, loaded by the real loader (bf16 on CUDA, 512-px
   buckets; float32 and 256 px on a CPU), then
   a relation question, a camera move, the ``init="geometric"`` start, a mixed-length batch and an edit;
   on CUDA once per attention backend (SDPA, and flash-attn 2 when importable), with the image difference.
4. ``checkpoint`` (with ``--checkpoint``): layout and config checks, host RAM, load once, 512 px,
   ``--steps`` steps, 1 repeat: one relation question and one camera move (and the geometric start when
   the budget allows), peak GPU memory and seconds per stage, the views as PNG beside the JSON.

Nothing is downloaded. Without CUDA or without a checkpoint the JSON says so plainly and the rest runs.
A SIGALRM at ``--budget-s`` ends the stage in progress as ``failed: budget``; later stages are skipped.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import resource
import signal
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable

#: Host RAM the real checkpoint needs: every component is read into host memory before ``.to(device)``.
REAL_HOST_RAM_GB = 50.0
#: A real-checkpoint stage started with less budget left than this would only be killed half-way.
REAL_MIN_BUDGET_S = 90.0
NO_CHECKPOINT = ("no checkpoint given: the real JoyAI-Image weights (~50 GB) cannot be downloaded on this "
                 "machine (no network); pass --checkpoint PATH on a machine that has them")


class BudgetExceeded(Exception):
    """Raised by the alarm when ``--budget-s`` runs out."""


def _on_alarm(signum, frame):
    raise BudgetExceeded("budget exhausted")


class Report:
    """The JSON being built: one entry per stage, flushed to ``path`` after each."""

    def __init__(self, path: Path | None, budget_s: float):
        self.path, self.budget_s, self.started = path, budget_s, time.perf_counter()
        self.data: dict[str, Any] = {"budget_s": budget_s, "stages": {}}

    def left_s(self) -> float:
        return self.budget_s - (time.perf_counter() - self.started)

    def run(self, name: str, stage: Callable[[dict], str | None], skip: str | None = None) -> dict:
        entry: dict[str, Any] = {"status": "skipped", "reason": skip} if skip else {"status": "ok"}
        self.data["stages"][name] = entry
        if not skip:
            started = time.perf_counter()
            try:
                note = stage(entry)
                if note:
                    entry["note"] = note
            except BudgetExceeded:
                entry.update(status="failed", reason=f"budget of {self.budget_s:g} s exhausted in this stage")
            except Exception as exc:  # a smoke run reports every failure and carries on
                entry.update(status="failed", reason=f"{type(exc).__name__}: {exc}")
            entry["seconds"] = round(time.perf_counter() - started, 3)
        line = f"[{name}] {entry['status']}"
        if entry.get("reason"):
            line += f": {entry['reason']}"
        print(line + (f" ({entry['seconds']:.1f} s)" if "seconds" in entry else ""), flush=True)
        self.flush()
        return entry

    def flush(self) -> None:
        self.data["elapsed_s"] = round(time.perf_counter() - self.started, 2)
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.data, indent=2, default=str) + "\n", encoding="utf-8")


def _host_ram_gb() -> dict[str, float]:
    info = {}
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, value = line.split(":", 1)
            if key in ("MemTotal", "MemAvailable"):
                info[key] = round(int(value.split()[0]) / 2**20, 1)
    except OSError:
        pass
    return {"total_gb": info.get("MemTotal"), "available_gb": info.get("MemAvailable")}


def _peak_rss_gb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)  # Linux: KiB


@contextmanager
def measured(entry: dict, key: str, cuda: bool):
    """Seconds and (CUDA) peak allocated GB of the block, stored under ``entry[key]``."""
    import torch

    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    started = time.perf_counter()
    figures: dict[str, Any] = {}
    entry[key] = figures
    yield figures
    if cuda:
        torch.cuda.synchronize()
        figures["peak_gb"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    else:
        figures["peak_rss_gb_so_far"] = _peak_rss_gb()
    figures["seconds"] = round(time.perf_counter() - started, 3)


def stage_environment(entry: dict) -> str | None:
    import diffusers
    import torch
    import transformers

    cuda = torch.cuda.is_available()
    entry.update(python=platform.python_version(), torch=torch.__version__, cuda_build=torch.version.cuda,
                 diffusers=diffusers.__version__, transformers=transformers.__version__, cuda=cuda,
                 flash_attn_2=importlib.util.find_spec("flash_attn") is not None,
                 flash_attn_3=importlib.util.find_spec("flash_attn_interface") is not None,
                 host_ram=_host_ram_gb())
    if not cuda:
        return "CUDA is not available: GPU figures cannot be measured here; CPU stages still run"
    props = torch.cuda.get_device_properties(0)
    entry.update(gpu=props.name, gpu_memory_gb=round(props.total_memory / 2**30, 1),
                 capability=f"{props.major}.{props.minor}", bf16=torch.cuda.is_bf16_supported())
    return None


def stage_kernels(entry: dict) -> str | None:
    import torch
    import torch.nn.functional as F

    cuda = torch.cuda.is_available()
    device, dtype = ("cuda", torch.bfloat16) if cuda else ("cpu", torch.float32)
    size = 4096 if cuda else 512
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    reference, a_low, b_low = a @ b, a.to(dtype), b.to(dtype)
    product = a_low @ b_low  # warm-up (cuBLAS handles, clocks)
    with measured(entry, "matmul", cuda) as figures:
        for _ in range(10):
            product = a_low @ b_low
    figures.update(dtype=str(dtype), size=size,
                   rel_error=float((product.float() - reference).norm() / reference.norm()),
                   tflops=round(10 * 2 * size**3 / max(figures["seconds"], 1e-9) / 1e12, 2))
    heads, length, dim = (32, 4096, 128) if cuda else (4, 256, 32)
    q, k, v = (torch.randn(1, heads, length, dim, device=device) for _ in range(3))
    exact = F.scaled_dot_product_attention(q, k, v)
    backends = {"default": None}
    if cuda:
        from torch.nn.attention import SDPBackend

        backends = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
                    "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}
    sdpa: dict[str, Any] = {}
    for name, backend in backends.items():
        try:
            from torch.nn.attention import sdpa_kernel

            context = sdpa_kernel(backend) if backend is not None else _nullcontext()
            with context, measured(sdpa, name, cuda) as figures:
                out = F.scaled_dot_product_attention(q.to(dtype), k.to(dtype), v.to(dtype))
            figures["max_abs_error"] = float((out.float() - exact).abs().max())
        except Exception as exc:
            sdpa[name] = {"status": "failed", "reason": f"{type(exc).__name__}: {exc}"}
    entry["sdpa"] = sdpa
    if cuda and importlib.util.find_spec("flash_attn") is not None:
        from flash_attn import flash_attn_func

        with measured(entry, "flash_attn_2", cuda) as figures:
            out = flash_attn_func(*(t.transpose(1, 2).to(dtype) for t in (q, k, v))).transpose(1, 2)
        figures["max_abs_error"] = float((out.float() - exact).abs().max())
    return None if cuda else "CPU: float32 SDPA only (no CUDA)"


@contextmanager
def _nullcontext():
    yield


def _frame(width: int, height: int):
    from joyai_embodied.evaluation import synthetic

    return synthetic.observe(synthetic.front_camera(width, height), synthetic.default_boxes())


def _image_stats(rgb) -> dict[str, Any]:
    return {"shape": list(rgb.shape), "mean": round(float(rgb.mean()), 2), "std": round(float(rgb.std()), 2)}


def exercise(wm, frame, entry: dict, cuda: bool, prefix: str = "", save: Path | None = None,
             with_extras: bool = True, budget: Callable[[], float] | None = None) -> dict[str, Any]:
    """Relation, camera move (and geometric start, batch, edit): seconds and peak memory of each."""
    from joyai_embodied import CameraMove, RotateObject

    with measured(entry, prefix + "observe", cuda):
        scene = wm.observe(frame)
    names = [o.name for o in scene.objects]
    with measured(entry, prefix + "relation", cuda) as figures:
        relation = wm.relation(scene, names[0], names[1])
    figures.update(question=f"{names[0]} vs {names[1]}", raw_text=relation.raw_text[:300],
                   confidence=round(relation.confidence, 4))
    with measured(entry, prefix + "imagine", cuda) as figures:
        view = wm.imagine(scene, CameraMove(yaw_deg=30), seed=0)
    figures.update(steps=wm.backend.steps, resolution=wm.backend.resolution, **_image_stats(view.rgb))
    views = {"imagine": view.rgb}
    if budget is None or budget() > 30:
        with measured(entry, prefix + "imagine_geometric_0.5", cuda) as figures:
            start = wm.imagine(scene, CameraMove(yaw_deg=30), seed=0, init="geometric", strength=0.5)
        figures.update(steps=-(-wm.backend.steps // 2), **_image_stats(start.rgb))
        views["imagine_geometric"] = start.rgb
    if with_extras:
        moves = [CameraMove(yaw_deg=30), CameraMove(yaw_deg=-30.5), CameraMove(pitch_deg=20)]
        with measured(entry, prefix + "imagine_batch_mixed_lengths", cuda) as figures:
            wm.imagine_batch(scene, moves, seed=0)
        figures["views"] = len(moves)
        with measured(entry, prefix + "edit_rotate", cuda):
            wm.edit(scene, RotateObject(names[0], yaw_deg=90), seed=0)
    if save is not None:
        from PIL import Image

        for name, rgb in views.items():
            Image.fromarray(rgb).save(save.with_name(f"{save.stem}_{prefix}{name}.png"))
    return views


def stage_tiny(entry: dict, small: bool) -> str | None:
    import numpy as np
    import torch

    from joyai_embodied import WorldModel
    from joyai_embodied.backends.joyai_image import write_tiny_checkpoint

    cuda = torch.cuda.is_available()
    with measured(entry, "write", cuda):
        path = write_tiny_checkpoint(Path(tempfile.mkdtemp(prefix="joyai-tiny-")) / "ckpt")
    # A 640x480 sensor frame; on a CPU 256-px buckets (~16x fewer attention pairs than 512) keep the stage
    # well under a minute even on a shared machine.
    size, resolution, steps = ((160, 120), 64, 2) if small else ((640, 480), 512 if cuda else 256, 4)
    options = dict(device="cuda" if cuda else "cpu", dtype="bfloat16" if cuda else "float32", steps=steps,
                   resolution=resolution, max_new_tokens=16)
    entry.update(frame=list(size), **options)
    attentions = ["sdpa"] + (["flash_attention_2"] if cuda and importlib.util.find_spec("flash_attn") else [])
    images = {}
    for attention in attentions:
        prefix = "" if attention == "sdpa" else "flash_"
        with measured(entry, prefix + "load", cuda):
            wm = WorldModel.load("joyai-image", path=path, attention=attention, **options)
        entry[prefix + "attention"] = wm.info()["attention"]
        images[attention] = exercise(wm, _frame(*size), entry, cuda, prefix, with_extras=not prefix)["imagine"]
        wm.close()
    if len(images) == 2:
        entry["flash_vs_sdpa_max_abs_diff"] = int(np.abs(images["sdpa"].astype(int)
                                                        - images["flash_attention_2"]).max())
    notes = [] if cuda else ["CPU float32 (no CUDA): bf16 and flash-attn not exercised"]
    if cuda and len(attentions) == 1:
        notes.append("flash-attn not importable: SDPA only")
    return "; ".join(notes) or None


def stage_checkpoint(entry: dict, args, save: Path | None, left_s: Callable[[], float]) -> str | None:
    import torch

    from joyai_embodied import WorldModel
    from joyai_embodied.backends.joyai_image.checkpoint import check_checkpoint, resolve_checkpoint

    cuda = torch.cuda.is_available()
    folder = resolve_checkpoint(args.checkpoint)
    processor = folder / "processor"
    entry["layout"] = {"folder": str(folder), "processor_files": sorted(p.name for p in processor.glob("*.json"))}
    check_checkpoint(folder)
    config = json.loads((folder / "transformer" / "config.json").read_text())
    entry["layout"]["transformer"] = {k: config.get(k) for k in ("num_layers", "num_attention_heads",
                                                                  "hidden_size", "theta", "rope_type")}
    ram = _host_ram_gb()
    entry["host_ram"] = ram
    if ram["available_gb"] is not None and ram["available_gb"] < REAL_HOST_RAM_GB:
        entry["host_ram_warning"] = (f"{ram['available_gb']} GB available, ~{REAL_HOST_RAM_GB:g} GB needed "
                                     "(components load into host memory before moving to the GPU)")
    if not cuda:
        return "CUDA not available: the real model is not loaded on a CPU (layout checks only)"
    options = dict(device="cuda", dtype="bfloat16", offload=args.offload, attention=args.attention,
                   steps=args.steps, resolution=512, max_new_tokens=128)
    entry["options"] = options
    with measured(entry, "load", cuda):
        wm = WorldModel.load("joyai-image", path=folder, **options)
    entry["attention_used"] = wm.info()["attention"]
    exercise(wm, _frame(640, 480), entry, cuda, save=save, with_extras=False, budget=left_s)
    wm.close()
    return None


def _describe(entry: dict) -> str:
    detail = entry.get("reason") or entry.get("note")
    return f"{entry.get('status', 'not run')}: {detail}" if detail else entry.get("status", "not run")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget-s", type=float, default=480.0, help="whole run, seconds (SIGALRM at the end)")
    parser.add_argument("--checkpoint", "--path", dest="checkpoint", default=None,
                        help="real checkpoint folder (diffusers layout); default $JOYAI_IMAGE_PATH")
    parser.add_argument("--tiny", action="store_true", help="tiny random checkpoint only (no real checkpoint)")
    parser.add_argument("--small", action="store_true", help="tiny stage at 160x120, 64 px buckets, 2 steps")
    parser.add_argument("--steps", type=int, default=40, help="denoising steps with the real checkpoint")
    parser.add_argument("--offload", default="none", choices=["none", "model", "group"])
    parser.add_argument("--attention", default="auto", choices=["auto", "sdpa", "flash_attention_2"])
    parser.add_argument("--out", "--json", dest="out", type=Path, default=None, help="JSON file to write")
    args = parser.parse_args(argv)
    if not args.tiny and args.checkpoint is None:
        args.checkpoint = os.environ.get("JOYAI_IMAGE_PATH")

    report = Report(args.out, args.budget_s)
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(max(1, int(args.budget_s)))
    try:
        report.run("environment", stage_environment)
        report.run("kernels", stage_kernels)
        report.run("tiny", lambda entry: stage_tiny(entry, args.small))
        skip = "--tiny given: real checkpoint not used" if args.tiny else None if args.checkpoint else NO_CHECKPOINT
        # A missing folder is reported as such (instantly), whatever budget is left.
        if skip is None and Path(args.checkpoint).exists() and report.left_s() < REAL_MIN_BUDGET_S:
            skip = f"only {report.left_s():.0f} s of the budget left (needs >= {REAL_MIN_BUDGET_S:g} s)"
        report.run("checkpoint", lambda entry: stage_checkpoint(entry, args, args.out, report.left_s), skip=skip)
    finally:
        signal.alarm(0)
        report.flush()
    stages = report.data["stages"]
    report.data["summary"] = {
        "cuda": bool(stages.get("environment", {}).get("cuda")),
        "gpu": stages.get("environment", {}).get("gpu", "none (CUDA not available)"),
        "real_checkpoint": _describe(stages.get("checkpoint", {})) if args.checkpoint
        else "not measured: " + ("--tiny given" if args.tiny else NO_CHECKPOINT)}
    report.flush()
    failed = [name for name, entry in stages.items() if entry["status"] == "failed"]
    print(f"done in {report.data['elapsed_s']:.1f} s; failed stages: {', '.join(failed) or 'none'}"
          + (f"; JSON: {args.out}" if args.out else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
