"""Connecting to Ray: a local cluster on 127.0.0.1 for one run, or an existing one by address.

Ray is imported only here and in the modules that run on it, never by ``import joyai_embodied``.
"""

from __future__ import annotations

import os
from typing import Any

from ..errors import BackendUnavailableError, InvalidInputError

#: Namespace of the drivers; named actors (the scene store) are looked up in it.
NAMESPACE = "joyai"
#: Environment of every Ray worker process, unless this process sets the variable itself.
WORKER_ENV = {"MUJOCO_GL": "egl", "HF_HUB_OFFLINE": "1", "LP_NUM_THREADS": "1"}


def import_ray() -> Any:
    """``import ray``, or a one-line BackendUnavailableError naming the extra to install."""
    try:
        import ray
    except ImportError as exc:
        raise BackendUnavailableError(f"Ray is not installed ({exc}); pip install 'joyai-embodied[ray]'") from exc
    return ray


def connect(address: str | None = None, num_cpus: int | None = None) -> Any:
    """Connects this process to Ray (once; later calls return the same connection).

    Args:
        address: ``None`` starts a local cluster for this process, bound to 127.0.0.1, with no dashboard;
            ``"auto"`` joins the cluster ``ray start`` made on this machine; ``"HOST:PORT"`` joins that one.
        num_cpus: CPUs of the local cluster (``None``: all of this machine's); ignored with an address.

    Returns:
        The ``ray`` module, connected.

    Raises:
        BackendUnavailableError: Ray is not installed, or the cluster cannot be reached.
        InvalidInputError: ``num_cpus`` below 1.
    """
    ray = import_ray()
    if ray.is_initialized():
        return ray
    if num_cpus is not None and (isinstance(num_cpus, bool) or not isinstance(num_cpus, int) or num_cpus < 1):
        raise InvalidInputError("num_cpus", "an integer >= 1", num_cpus)
    # Workers started by Ray inherit these: headless MuJoCo, no hub downloads on a worker either, and one
    # rendering thread per worker (Mesa's llvmpipe otherwise starts one per core in every worker process,
    # and N workers on N cores then fight over them).
    env = {k: os.environ.get(k, v) for k, v in WORKER_ENV.items()}
    options: dict[str, Any] = {"namespace": NAMESPACE, "log_to_driver": False,
                               "runtime_env": {"env_vars": env}}
    try:
        if address is None:
            # "local": a new cluster even when `ray start` left one registered on this machine
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address="127.0.0.1",
                     **options)
        else:
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise BackendUnavailableError(f"cannot reach the Ray cluster at {address or 'a local start'}: {exc}") \
            from exc
    return ray


def shutdown() -> None:
    """Disconnects (and stops the local cluster this process started)."""
    ray = import_ray()
    if ray.is_initialized():
        ray.shutdown()
