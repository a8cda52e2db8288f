"""Runs every Ray part of the tests inside a network namespace of its own with only loopback up.

Ray binds its services to the machine's interface address and to 0.0.0.0 and probes an outside address
to find its own IP; inside ``unshare -n`` (root) with ``lo`` up, all of it stays on 127.0.0.1 and nothing
reaches the machine's network. Tests call :func:`run_isolated` with a script (it prints one ``RESULT``
line of JSON), or :func:`serve_model_over_ray` for a ``serve-model --ray`` reached through an ipc socket
(Unix sockets cross network namespaces; TCP on the namespace's loopback does not).
Where Ray or ``unshare -n`` is not available, :data:`requires_ray_namespace` skips with the reason.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Any, Iterator

import pytest

ROOT = Path(__file__).resolve().parent.parent
RESULT_PREFIX = "RESULT "


def _why_not() -> str | None:
    try:
        import ray  # noqa: F401
    except ImportError:
        return "Ray is not installed (pip install 'joyai-embodied[ray]')"
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return "unshare/ip not found: Ray tests run only inside a loopback-only network namespace"
    probe = subprocess.run(["unshare", "-n", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        return f"unshare -n is not permitted here ({probe.stderr.strip() or probe.returncode}); Ray tests need root"
    return None


WHY_NOT = _why_not()
requires_ray_namespace = pytest.mark.skipif(WHY_NOT is not None, reason=WHY_NOT or "")


def namespace_command(*argv: str) -> list[str]:
    """``argv`` run inside a fresh loopback-only network namespace."""
    inner = " ".join(_quote(a) for a in argv)
    return ["unshare", "-n", "bash", "-c", f"ip link set lo up && exec {inner}"]


def _quote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("MUJOCO_GL", "egl")
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    env["RAY_USAGE_STATS_ENABLED"] = "0"  # no usage report (it would try the network)
    return env


def run_isolated(script: str, timeout_s: float = 240) -> dict[str, Any]:
    """Runs a Python ``script`` in a namespace; returns the JSON of its ``RESULT`` line.

    Raises:
        AssertionError: the script failed or printed no result (its output is in the message).
    """
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as handle:
        handle.write(textwrap.dedent(script))
    try:
        done = subprocess.run(namespace_command(sys.executable, handle.name), capture_output=True, text=True,
                              timeout=timeout_s, env=_env(), cwd=ROOT)
    finally:
        os.unlink(handle.name)
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    raise AssertionError(f"no result (exit {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-5000:]}")


@contextlib.contextmanager
def serve_model_over_ray(replicas: int = 2, preset: str = "geometric", timeout_s: float = 180) -> Iterator[str]:
    """``joyai-embodied serve-model --ray --replicas N`` in a namespace; yields its ``ipc://`` address."""
    folder = tempfile.mkdtemp(prefix="joyai-ray-")
    address = f"ipc://{folder}/model.sock"
    command = namespace_command(sys.executable, "-m", "joyai_embodied.commands", "serve-model", "--ray",
                                "--replicas", str(replicas), "--preset", preset, "--bind", address)
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env(),
                               cwd=ROOT, start_new_session=True)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise AssertionError("serve-model --ray ended before serving:\n" + "".join(lines[-60:]))
            lines.append(line)
            if line.startswith("serving "):
                break
        else:
            raise AssertionError("serve-model --ray did not start in time:\n" + "".join(lines[-60:]))
        import threading

        # keep reading its output, so that a full pipe never blocks the server
        threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
        yield address
    finally:
        import signal

        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)  # the session we started: unshare, bash, python
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
        shutil.rmtree(folder, ignore_errors=True)
