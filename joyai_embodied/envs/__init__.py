"""The env and model factory (:mod:`.factory`): ``make_env(config)`` and ``load_world_model(backend, via)``.

The one place above the core that imports the simulator (``sim_envs``) or the ROS clients (``ros_nodes``),
and only when asked; commands, benchmarks and tests build their envs and world models here.
"""

from .factory import SUITES, EnvConfig, load_world_model, make_env

__all__ = ["SUITES", "EnvConfig", "load_world_model", "make_env"]
