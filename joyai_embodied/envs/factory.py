"""The env and model factory: the one place that knows which adapter (simulator, ROS client) to import.

The planner, the evaluation and the commands ask for "the tabletop env" or "the world model, over ROS";
this module picks the suite, imports it only when it is asked for (MuJoCo for the tabletop, rclpy for
``via="ros"``), and builds it. Environments are described by :class:`EnvConfig` (typed and checked once),
the way lerobot's ``envs/factory.py`` does it::

    env = make_env(EnvConfig(width=320, height=240))          # or make_env(width=320, height=240)
    env = make_env(via="ros")                                  # the simulator behind the sim_bridge node
    wm = load_world_model("geometric", via="ros")              # WorldModel.load("ros", preset="geometric")

A new suite is one entry in :data:`SUITES`: a function ``EnvConfig -> gymnasium.Env`` that imports its
package inside.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Callable, Literal

from ..config import TypedConfig, resolve_config
from ..errors import BackendUnavailableError, InvalidInputError

#: The backend name the ROS transport registers (setup.py entry point, group ``joyai_embodied.backends``).
ROS_BACKEND = "ros"


@dataclasses.dataclass(frozen=True)
class EnvConfig(TypedConfig):
    """Which environment, and how to reach it.

    Attributes:
        suite: the env family; ``"tabletop"`` is ``sim_envs``' ``joyai/TabletopSpatial-v0``.
        via: ``"inprocess"`` (the simulator runs here) or ``"ros"`` (the sim_bridge node runs it; started
            when none answers; this process needs rclpy, not MuJoCo).
        width: camera width in pixels.
        height: camera height in pixels.
        camera: the observing camera (``front``, ``side`` or ``top`` for the tabletop).
        action_mode: ``"primitive"`` (pick/place by object id, what the planner uses) or the env's others.

    Raises:
        InvalidInputError: a wrongly typed option, or a size that is not positive.
    """

    suite: str = "tabletop"
    via: Literal["inprocess", "ros"] = "inprocess"
    width: int = 640
    height: int = 480
    camera: str = "front"
    action_mode: str = "primitive"

    def check(self) -> None:
        for name in ("width", "height"):
            if getattr(self, name) <= 0:
                raise InvalidInputError(name, "a positive number of pixels", getattr(self, name))
        if self.suite not in SUITES:
            raise InvalidInputError("suite", f"one of {', '.join(sorted(SUITES))}", repr(self.suite))


def make_env(config: EnvConfig | None = None, **options: Any) -> Any:
    """Builds the environment ``config`` describes (or ``EnvConfig(**options)``).

    Returns:
        A Gymnasium-style env (``reset(seed=)``, ``step(action)``, ``close()``).

    Raises:
        InvalidInputError: a bad option (the env's own checks included, e.g. an oversized image).
        BackendUnavailableError: the suite's package, or rclpy and ros_nodes for ``via="ros"``, is missing.
    """
    config = resolve_config(EnvConfig, config, options, "environment")
    if config.via == "ros":
        return _ros_env(config)
    return SUITES[config.suite](config)


def load_world_model(backend: str = "geometric", via: str = "inprocess", **overrides: Any) -> Any:
    """The world model a planner or an evaluation talks to.

    Args:
        backend: preset name, backend name or YAML path (see ``WorldModel.load``).
        via: ``"inprocess"``, or ``"ros"`` to reach the ROS 2 world-model nodes (which load ``backend``;
            they are started when none answer) through the ``ros`` backend.
        overrides: preset options (``address=``, ``device=``...); None values are left out.

    Raises:
        BackendUnavailableError: the backend cannot be loaded, or ``via="ros"`` without the ROS transport.
        InvalidInputError: an option the backend does not take (the message lists those it does).
    """
    from ..backends.base import available_backends
    from ..world_model import WorldModel

    if via == "inprocess":
        return WorldModel.load(backend, **overrides)
    if via != "ros":
        raise InvalidInputError("via", "'inprocess' or 'ros'", repr(via))
    if ROS_BACKEND not in available_backends():
        raise BackendUnavailableError(
            f"--via ros needs the ROS transport (ros_nodes, rclpy and joyai_interfaces; the 'ros' extra), "
            f"registered as backend {ROS_BACKEND!r}; it is not installed here")
    return WorldModel.load(ROS_BACKEND, preset=str(backend), **overrides)


# -- suites ---------------------------------------------------------------------------------------------
def _tabletop(config: EnvConfig) -> Any:
    os.environ.setdefault("MUJOCO_GL", "egl")  # must be set before mujoco is imported
    try:
        import gymnasium as gym

        import sim_envs  # registers the env ids
    except ImportError as exc:
        raise BackendUnavailableError(f"the tabletop env needs the 'sim' extra (MuJoCo, Gymnasium): {exc}") from exc
    return gym.make(sim_envs.ENV_ID, width=config.width, height=config.height, camera=config.camera,
                    action_mode=config.action_mode)


def _ros_env(config: EnvConfig) -> Any:
    if config.suite != "tabletop":
        raise InvalidInputError("via", f"'inprocess' for suite {config.suite!r} (only the tabletop has a ROS "
                                       f"bridge)", "'ros'")
    try:
        from ros_nodes.clients.sim_client import RosSimEnv  # rclpy is imported only on this path
    except ImportError as exc:
        raise BackendUnavailableError(f"--via ros needs the ros_nodes package and rclpy ({exc})") from exc
    return RosSimEnv(config.width, config.height, camera=config.camera)


#: suite name -> maker; each imports its package only when called.
SUITES: dict[str, Callable[[EnvConfig], Any]] = {"tabletop": _tabletop}
