"""Evaluation episodes spread over Ray actors, results streamed back, lost episodes retried a bounded number of times.

Each worker is a Ray actor that builds its env and world model once (:mod:`.episodes`) and then runs one
seed per call. The driver keeps every live worker busy with one episode, takes results as they finish
(``ray.wait``), and when a worker dies (its node lost, the process killed) puts the episodes it held back
in the queue for another worker, asks Ray for a replacement worker, and goes on. An episode is counted
once: the first result for a seed is kept, a late second one is dropped and counted as a duplicate.

Scheduling, placement and restarting processes are Ray's; this module only decides what to resend.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..errors import BackendUnavailableError, InvalidInputError
from .cluster import connect
from .episodes import benchmark

#: Tries per episode in all (the first plus retries after a worker died holding it).
DEFAULT_ATTEMPTS = 3
#: Replacement workers asked for, per worker of the run, before the run goes on with the survivors only.
REPLACEMENTS_PER_WORKER = 2
#: How long the driver waits for any result before checking again (keeps Ctrl-C responsive).
POLL_S = 1.0


class EpisodeWorker:
    """A Ray actor body: one benchmark's worker state, built once; runs one seed per call."""

    def __init__(self, name: str, config: Mapping[str, Any]):
        self.bench = benchmark(name)
        self.state = self.bench.build(config)

    def ready(self) -> dict[str, Any]:
        import ray

        return {"pid": os.getpid(), "node_id": ray.get_runtime_context().get_node_id()}

    def run(self, seed: int) -> tuple[Any, float, int, str]:
        """``(record, seconds spent in the episode, pid, node id)``."""
        import ray

        start = time.perf_counter()
        record = self.bench.run(self.state, int(seed))
        return record, time.perf_counter() - start, os.getpid(), ray.get_runtime_context().get_node_id()


@dataclass
class RunStats:
    """What happened besides the episodes: for the report and the benchmarks."""

    workers: int
    wall_s: float = 0.0
    ready_s: float = 0.0  # start -> every first worker built (env, model): the rest of wall_s is episodes
    worker_deaths: int = 0
    retried: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    duplicates_dropped: int = 0
    recovery_s: list[float] = field(default_factory=list)  # worker death seen -> its episode done elsewhere
    episode_s: list[float] = field(default_factory=list)  # time inside the episodes (on the workers)
    round_trip_s: list[float] = field(default_factory=list)  # sent -> result back, seen by the driver
    episodes_by_pid: dict[int, int] = field(default_factory=dict)
    records: dict[int, Any] = field(default_factory=dict, repr=False)  # seed -> episode record (not reported)

    def to_dict(self) -> dict[str, Any]:
        overhead = [r - e for r, e in zip(self.round_trip_s, self.episode_s)]
        return {"ready_s": round(self.ready_s, 3), "worker_deaths": self.worker_deaths, "retried": sorted(self.retried), "lost": sorted(self.lost),
                "duplicates_dropped": self.duplicates_dropped,
                "recovery_s": [round(s, 3) for s in self.recovery_s],
                "mean_episode_s": round(sum(self.episode_s) / max(len(self.episode_s), 1), 4),
                "mean_overhead_s": round(sum(overhead) / max(len(overhead), 1), 4),
                "episodes_by_worker": {str(k): v for k, v in self.episodes_by_pid.items()}}


@dataclass(frozen=True)
class EpisodeDone:
    """What a progress callback gets after each episode."""

    done: int
    total: int
    seed: int
    seconds: float
    node_id: str


ProgressFn = Callable[[EpisodeDone], None]


def evaluate_distributed(name: str, seeds: Sequence[int], config: Mapping[str, Any], *, workers: int | None = None,
                         address: str | None = None, attempts: int = DEFAULT_ATTEMPTS,
                         cpus_per_worker: float = 1.0, progress: ProgressFn | None = None,
                         on_start: Callable[[], None] | None = None) -> tuple[Any, RunStats]:
    """Runs benchmark ``name`` over ``seeds`` on Ray workers; returns the merged report and the run's stats.

    Args:
        name: ``"planner"``, ``"spatial"`` or ``"imagination"`` (see :mod:`.episodes`).
        seeds: episode seeds; the report lists them in this order.
        config: options of the episodes (``backend``, ``address``, ``width``, ``height``...).
        workers: number of workers; default one per ``cpus_per_worker`` CPUs of the cluster.
        address: ``None`` starts a local cluster (``workers`` CPUs, 127.0.0.1 only); ``"auto"`` or
            ``HOST:PORT`` joins one (see :func:`.cluster.connect`).
        attempts: tries per episode when the worker holding it dies.
        cpus_per_worker: CPUs Ray reserves per worker.
        progress: called with an :class:`EpisodeDone` after each episode.
        on_start: called once every first worker is ready (tests use it to inject faults).

    Returns:
        ``(report, stats)``: the report has the serial schema; ``stats.lost`` lists episodes given up on.

    Raises:
        InvalidInputError: no seeds, a duplicated seed, or a count out of range.
        BackendUnavailableError: Ray is missing, or no worker could be started (the message says why).
    """
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise InvalidInputError("seeds", "at least one seed", "none")
    if len(set(seeds)) != len(seeds):
        raise InvalidInputError("seeds", "distinct seeds (each is one episode)", "a repeated seed")
    for key, value in (("workers", workers), ("attempts", attempts)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InvalidInputError(key, "an integer >= 1", value)
    bench = benchmark(name)
    local_cpus = max(1, math.ceil(workers * cpus_per_worker)) if address is None and workers else None
    ray = connect(address, num_cpus=local_cpus)
    if workers is None:
        workers = max(1, int(ray.cluster_resources().get("CPU", 1) // cpus_per_worker))
    actor_class = ray.remote(num_cpus=cpus_per_worker, max_restarts=0)(EpisodeWorker)
    stats = RunStats(workers=workers)
    start = time.perf_counter()

    queue: deque[int] = deque(seeds)
    tries = {seed: 0 for seed in seeds}
    records = stats.records
    starting: dict[Any, Any] = {}  # ready() ref -> actor
    running: dict[Any, tuple[Any, int, float]] = {}  # run() ref -> (actor, seed, sent at)
    idle: list[Any] = []
    actors: list[Any] = []
    died_at: dict[int, float] = {}  # seed -> when the worker holding it was seen dead
    spare = REPLACEMENTS_PER_WORKER * workers
    started_any = False
    first_error: BaseException | None = None

    def add_worker() -> None:
        actor = actor_class.remote(name, dict(config))
        actors.append(actor)
        starting[actor.ready.remote()] = actor

    for _ in range(workers):
        add_worker()
    try:
        while queue or running:
            while idle and queue:
                actor, seed = idle.pop(), queue.popleft()
                tries[seed] += 1
                running[actor.run.remote(seed)] = (actor, seed, time.perf_counter())
            waiting = list(running) + list(starting)
            if not waiting:
                if spare <= 0 or not queue:
                    break
                spare -= 1
                add_worker()
                continue
            done, _ = ray.wait(waiting, num_returns=1, timeout=POLL_S)
            for ref in done:
                if ref in starting:
                    actor = starting.pop(ref)
                    try:
                        ray.get(ref)
                    except ray.exceptions.RayActorError as exc:  # its node died, or it could not build
                        first_error = first_error or exc
                        stats.worker_deaths += 1
                        if spare > 0 and started_any:
                            spare -= 1
                            add_worker()
                        continue
                    idle.append(actor)
                    if not stats.ready_s and not starting:  # the first workers are all built
                        stats.ready_s = time.perf_counter() - start
                        if on_start is not None:
                            on_start()
                    started_any = True
                    continue
                actor, seed, sent = running.pop(ref)
                try:
                    record, seconds, pid, node_id = ray.get(ref)
                except ray.exceptions.RayActorError:
                    stats.worker_deaths += 1
                    died_at.setdefault(seed, time.perf_counter())
                    if tries[seed] < attempts:
                        stats.retried.append(seed)
                        queue.appendleft(seed)
                    else:
                        stats.lost.append(seed)
                    if spare > 0:
                        spare -= 1
                        add_worker()
                    continue
                if seed in records:
                    stats.duplicates_dropped += 1
                else:
                    records[seed] = record
                    stats.episode_s.append(seconds)
                    stats.round_trip_s.append(time.perf_counter() - sent)
                    stats.episodes_by_pid[pid] = stats.episodes_by_pid.get(pid, 0) + 1
                    if seed in died_at:
                        stats.recovery_s.append(time.perf_counter() - died_at[seed])
                    if progress is not None:
                        progress(EpisodeDone(len(records), len(seeds), seed, seconds, node_id))
                idle.append(actor)
            if not started_any and not starting and not running and first_error is not None:
                raise BackendUnavailableError(f"no {name} worker could start: {first_error}")
    finally:
        for actor in actors:
            ray.kill(actor, no_restart=True)
    stats.lost.extend(s for s in queue if s not in stats.lost)
    stats.wall_s = time.perf_counter() - start
    done_seeds = [s for s in seeds if s in records]
    report = bench.merge([records[s] for s in done_seeds], config) if done_seeds else {}
    return report, stats
