"""Gymnasium MuJoCo tabletop environments with exact cameras, depth, segmentation and spatial tasks.

``import sim_envs`` registers ``joyai/TabletopSpatial-v0`` and chooses a headless GL backend (EGL, else
OSMesa) when ``MUJOCO_GL`` is unset. MuJoCo itself is imported only when an env is made.
"""

from .headless import choose_gl_backend

choose_gl_backend()

import gymnasium as gym  # noqa: E402

from .constants import COLORS, SHAPES, TABLE_HEIGHT  # noqa: E402

ENV_ID = "joyai/TabletopSpatial-v0"

if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point="sim_envs.tabletop:TabletopSpatialEnv", max_episode_steps=200)

LIBERO_ENV_ID = "joyai/LIBERO-v0"
if LIBERO_ENV_ID not in gym.registry:  # LIBERO itself is imported only when this env is made
    gym.register(id=LIBERO_ENV_ID, entry_point="sim_envs.libero.env:LiberoEnv")

__all__ = ["COLORS", "ENV_ID", "LIBERO_ENV_ID", "SHAPES", "TABLE_HEIGHT"]
