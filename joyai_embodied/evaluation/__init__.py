"""Benchmarks of the world model and the planner (spatial, imagination, task success)."""
