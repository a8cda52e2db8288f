"""Scoring the world model against simulator ground truth (``sim_envs``, imported lazily).

- :func:`joyai_embodied.evaluation.spatial.evaluate_spatial`: relations, distances and sizes.
- ``evaluation.imagination``: imagined views against rendered ground truth.
- ``evaluation.synthetic``: an analytic ray-cast tabletop for tests without a simulator.
"""
