"""Helpers shared by the LIBERO test modules (imported by name: tests/ is on sys.path under pytest)."""

from __future__ import annotations

from typing import Any


def run_libero_episode(wm: Any, suite: str, task_id: int, init_state: int, max_steps: int) -> tuple[Any, dict, bool]:
    """One planner episode on ``joyai/LIBERO-v0``: ``(episode, reset info, LIBERO's own success check)``."""
    import gymnasium as gym

    import sim_envs
    from joyai_embodied.planner.libero import LiberoPlanner

    env = gym.make(sim_envs.LIBERO_ENV_ID, suite=suite, task_id=task_id, render_on_step=False)
    try:
        _, info = env.reset(seed=init_state, options={"init_state": init_state})
        episode = LiberoPlanner(wm).run_episode(env, info["labels"], info["instruction"], max_steps=max_steps)
        return episode, info, bool(env.unwrapped.success())
    finally:
        env.close()
