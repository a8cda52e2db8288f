"""Scale-out on Ray: evaluation episodes across a cluster (``eval --workers N | --ray-address ADDR``).

- :mod:`.cluster`: connect to Ray (a local 127.0.0.1 cluster for one run, or an existing one).
- :mod:`.episodes`: each benchmark as build-once / run-one-seed / merge functions, and the serial path.
- :mod:`.evaluate`: :func:`evaluate_distributed`, the actor pool with bounded retries.
- :mod:`.cli`: the options and entry functions the ``eval`` and ``serve-model`` commands call.

The model on Ray Serve lives with the other transports, in :mod:`joyai_embodied.serve.ray_serve`.
See README.md here for running on a cluster. Importing this package needs nothing; running it needs Ray.
"""

from __future__ import annotations

from typing import Any

__all__ = ["evaluate_distributed", "run_serial"]


def __getattr__(name: str) -> Any:
    if name == "evaluate_distributed":
        from .evaluate import evaluate_distributed

        return evaluate_distributed
    if name == "run_serial":
        from .episodes import run_serial

        return run_serial
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
