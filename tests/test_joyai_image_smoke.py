"""benchmarks/gpu_smoke.py on CPU: every stage reported in one JSON, missing CUDA / weights said plainly."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("diffusers")

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_smoke.py"


def test_smoke_reports_every_stage_and_a_missing_checkpoint_plainly(tmp_path):
    out = tmp_path / "smoke.json"
    missing = tmp_path / "no-weights-here"
    run = subprocess.run([sys.executable, str(SCRIPT), "--small", "--budget-s", "120", "--checkpoint",
                          str(missing), "--out", str(out)], capture_output=True, text=True, timeout=180)
    report = json.loads(out.read_text())
    stages = report["stages"]
    assert list(stages) == ["environment", "kernels", "tiny", "checkpoint"]
    for name in ("environment", "kernels", "tiny"):
        assert stages[name]["status"] == "ok", (name, stages[name], run.stdout[-2000:])
    tiny = stages["tiny"]
    for key in ("write", "load", "relation", "imagine", "imagine_geometric_0.5", "imagine_batch_mixed_lengths",
                "edit_rotate"):
        assert tiny[key]["seconds"] >= 0, key
    assert tiny["imagine_geometric_0.5"]["steps"] == 1 and tiny["imagine"]["steps"] == 2
    # The real checkpoint is absent: the stage fails with the loader's reason, and the exit code says so.
    assert stages["checkpoint"]["status"] == "failed" and "does not exist" in stages["checkpoint"]["reason"]
    assert run.returncode == 1
    if not stages["environment"]["cuda"]:
        assert "CUDA is not available" in stages["environment"]["note"]
        assert report["summary"]["gpu"] == "none (CUDA not available)"
    assert report["elapsed_s"] < 120
