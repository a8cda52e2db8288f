"""Frames of a replay observed in worker processes (``replay --jobs N``), written back in frame order.

Frames of a bag are independent (observe, then the questions on that scene), and observe runs on one core,
so ``--jobs N`` observes in N processes: N - 1 workers (``spawn``, never ``fork``: the parent may hold threads
and open files), each loading the world model once from the backend name and options the parent's model was
loaded with, and the parent itself, which takes a frame whenever the workers hold ``IN_FLIGHT_PER_JOB`` frames
each (so it also works while they start: ~0.5 s of CPU each, a tenth of a 53-frame replay). Measured at load
3-5 on 2 cores: the parent plus one worker costs 11.6 frames per CPU-second against 10.3 for two workers and
15.6 in-process. The parent reads and pairs the bag, sends each frame's arrays, and writes OUT.mcap in the
serial path's order through :class:`OrderedOutput`: input messages and frame results wait in one queue and
leave it in arrival order, so the file holds the same messages in the same order as ``--jobs 1``.
"""

from __future__ import annotations

import os
import signal
from collections import deque
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from ..errors import InvalidInputError, JoyAIError, error_from_fields, error_to_fields

MARKERS_TYPE = "visualization_msgs/msg/MarkerArray"
#: Frames in flight per worker: one being observed, one waiting in its pipe, so no worker idles while the
#: parent writes; more only holds more images (~3.3 MB a 640x480 frame) in memory.
IN_FLIGHT_PER_JOB = 2
#: Frames queued for writing (with the input messages between them) before the parent waits for the oldest:
#: covers a worker's start (~0.5 s of CPU), during which the parent observes frames itself; ~55 MB at 640x480.
MAX_QUEUED_FRAMES = 16
#: glibc malloc settings for a replay (bytes): blocks up to MMAP_THRESHOLD come from the heap, and freed heap
#: memory up to TRIM_THRESHOLD stays mapped. With glibc's defaults every frame's image-sized temporaries
#: (perception allocates and frees a few MB per 640x480 frame) are mmapped and unmapped again: ~2000 page
#: faults a frame, 5-10% of its CPU time. Nothing computed changes.
MALLOC_MMAP_THRESHOLD = 64 * 1024 * 1024
MALLOC_TRIM_THRESHOLD = 256 * 1024 * 1024


class ReplayWorkerError(JoyAIError, RuntimeError):
    """A replay worker process died (killed, out of memory, a crash in native code) while on a frame."""


@dataclass(frozen=True)
class FrameJob:
    """What a worker needs for one frame: the arrays and where to put the markers."""

    frame_ns: int
    rgb: np.ndarray
    depth: np.ndarray
    segmentation: np.ndarray | None
    intrinsics: np.ndarray
    cam_to_world: np.ndarray
    world_frame: str


def default_jobs(wm: Any) -> int:
    """2 where the machine has 2+ cores and ``wm`` can be rebuilt by name in a worker, else 1."""
    return 2 if (os.cpu_count() or 1) >= 2 and rebuild_options(wm) is not None else 1


def rebuild_options(wm: Any) -> dict[str, Any] | None:
    """``{"backend": name, **options}`` that rebuilds ``wm`` in another process, or None when it cannot be."""
    import pickle

    preset = getattr(wm, "preset", None)
    if not isinstance(preset, Mapping) or not isinstance(preset.get("backend"), str):
        return None  # a WorldModel built around a backend object: nothing to rebuild it from
    try:
        pickle.dumps(dict(preset))
    except Exception:  # an option that is a live object (a client, a model): it cannot cross processes
        return None
    return dict(preset)


def keep_freed_memory() -> None:
    """Keeps freed image-sized buffers in the heap for the next frame (glibc only; elsewhere nothing)."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):  # not glibc (musl, macOS): their allocators differ, leave them be
        return
    if mallopt is not None:
        m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's <malloc.h> parameter numbers
        mallopt(m_mmap_threshold, MALLOC_MMAP_THRESHOLD)
        mallopt(m_trim_threshold, MALLOC_TRIM_THRESHOLD)


def compute_frame(wm: Any, questions: Sequence[str], job: FrameJob) -> tuple:
    """Observes one frame and answers the questions; runs in a worker or, for ``--jobs 1``, in the caller.

    Returns:
        ``("skip", reason)`` for a frame the model cannot use (the serial path's skip), ``("error", fields)``
        for another world-model error (rebuilt in the parent), or ``("ok", marker CDR bytes, answer records
        without their frame index, answer errors)``.
    """
    from ..types import Observation
    from .ros_messages import TYPESTORE, scene_markers

    try:
        scene = wm.observe(Observation(rgb=job.rgb, depth=job.depth, intrinsics=job.intrinsics,
                                       cam_to_world=job.cam_to_world, segmentation=job.segmentation))
    except InvalidInputError as exc:  # one unusable frame (no valid depth...) does not end the run
        return ("skip", str(exc))
    except JoyAIError as exc:
        return ("error", error_to_fields(exc))
    markers = bytes(TYPESTORE.serialize_cdr(scene_markers(scene, job.frame_ns, job.world_frame), MARKERS_TYPE))
    errors = [0]
    records = [answer_record(wm, scene, question, job.frame_ns, errors) for question in questions]
    return ("ok", markers, records, errors[0])


def answer_record(wm: Any, scene: Any, question: str, frame_ns: int, errors: list[int]) -> dict[str, Any]:
    """One answer record (``frame`` is filled in by the writer); an unanswerable question records the reason."""
    record: dict[str, Any] = {"frame": None, "stamp_ns": frame_ns, "question": question}
    try:
        answer = wm.ask(scene, question)
    except JoyAIError as exc:
        errors[0] += 1
        record.update(answer=f"cannot answer: {exc}", value=None, unit="", confidence=0.0, error=type(exc).__name__)
    else:
        value = answer.value
        if isinstance(value, np.generic):
            value = value.item()
        record.update(answer=answer.text, value=value, unit=answer.unit, confidence=float(answer.confidence),
                      frame_of_reference=answer.frame)
    return record


def raise_error(fields: Mapping[str, Any]) -> None:
    """Raises the world-model error a worker reported, as its own class."""
    raise error_from_fields(fields)


# -- worker processes ----------------------------------------------------------------------------
_WORKER: dict[str, Any] = {}


def _worker_start(options: Mapping[str, Any], questions: Sequence[str]) -> None:
    # Ctrl-C reaches the whole process group: only the parent acts on it, and closes the workers itself
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    from ..backends.base import create_backend
    from ..world_model import WorldModel

    keep_freed_memory()
    options = dict(options)
    name = options.pop("backend")
    _WORKER["wm"] = WorldModel(create_backend(name, **options), {"backend": name, **options})
    _WORKER["questions"] = list(questions)


def _worker_ready() -> None:
    """Nothing: submitted once per worker at the start, so all N start (import, load) while the bag opens."""


def _worker_frame(job: FrameJob) -> tuple:
    return compute_frame(_WORKER["wm"], _WORKER["questions"], job)


class FramePool:
    """``jobs`` spawned workers, each with its own world model; ``submit`` returns a future of
    :func:`compute_frame`."""

    def __init__(self, jobs: int, options: Mapping[str, Any], questions: Sequence[str]):
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.jobs = jobs
        self._pool = ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                         initializer=_worker_start, initargs=(dict(options), list(questions)))
        # the pool starts a process per task waiting for one: N waiting tasks start the N workers now, not
        # one by one as the first frames arrive (a worker takes ~0.5 s of CPU to import and load the model).
        # They start with SIGINT ignored (kept across exec; Python then installs no handler), so a Ctrl-C
        # while one still imports gives no traceback from it: the parent alone handles Ctrl-C.
        import threading

        main_thread = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGINT, signal.SIG_IGN) if main_thread else None
        try:
            for _ in range(jobs):
                self._pool.submit(_worker_ready)
        finally:
            if main_thread:
                signal.signal(signal.SIGINT, previous)

    def submit(self, job: FrameJob, rgb_index: int) -> Any:
        """A future of the frame's result.

        Raises:
            ReplayWorkerError: a worker has already died (the pool takes no more frames).
        """
        from concurrent.futures.process import BrokenProcessPool

        try:
            return self._pool.submit(_worker_frame, job)
        except BrokenProcessPool:
            raise _died(rgb_index, job.frame_ns) from None

    def close(self, abort: bool) -> None:
        """Stops the workers: after their frames (``abort`` False), or at once (an error or Ctrl-C)."""
        processes = list((getattr(self._pool, "_processes", None) or {}).values())
        self._pool.shutdown(wait=not abort, cancel_futures=True)
        if abort:
            for process in processes:  # a worker still observing (or loading a model) is not waited for
                if process.is_alive():
                    process.terminate()
            for process in processes:
                process.join(timeout=5)


class OrderedOutput:
    """Input copies and frame results, written in the order they were queued (the serial path's order).

    Items are ``("raw", args)`` (written at once when nothing is queued before them) or ``("frame", frame
    index, stamp, future or result)``; ``limit`` is the frames the workers may hold (``full`` says when the
    parent should observe the next frame itself), :data:`MAX_QUEUED_FRAMES` bounds the frames queued.
    """

    def __init__(self, write_raw: Callable[..., None], on_frame: Callable[[tuple, int], None], limit: int):
        self.write_raw = write_raw
        self.on_frame = on_frame
        self.limit = limit
        self.queue: deque = deque()
        self.in_flight = 0
        self.frames = 0

    @property
    def full(self) -> bool:
        """The workers hold ``limit`` frames: the next one is better observed in the parent than queued."""
        return self.in_flight >= self.limit

    def raw(self, *args: Any) -> None:
        if self.queue:
            self.queue.append(("raw", args))
            self._write_ready()
        else:
            self.write_raw(*args)

    def frame(self, rgb_index: int, frame_ns: int, result: Any) -> None:
        """Queues a frame's result (a tuple, or a future of one); writes what is ready."""
        self.queue.append(("frame", rgb_index, frame_ns, result))
        self.frames += 1
        if not isinstance(result, tuple):
            self.in_flight += 1
        while self.in_flight > self.limit or self.frames > MAX_QUEUED_FRAMES:
            self._pop()
        self._write_ready()

    def _write_ready(self) -> None:
        while self.queue and (self.queue[0][0] == "raw" or isinstance(self.queue[0][3], tuple)
                              or self.queue[0][3].done()):
            self._pop()

    def drain(self) -> None:
        while self.queue:
            self._pop()

    def _pop(self) -> None:
        item = self.queue.popleft()
        if item[0] == "raw":
            self.write_raw(*item[1])
            return
        _, rgb_index, frame_ns, result = item
        self.frames -= 1
        if not isinstance(result, tuple):
            self.in_flight -= 1
            from concurrent.futures.process import BrokenProcessPool

            try:
                result = result.result()
            except BrokenProcessPool:
                raise _died(rgb_index, frame_ns) from None
        self.on_frame(result, frame_ns)


def _died(rgb_index: int, frame_ns: int) -> ReplayWorkerError:
    return ReplayWorkerError(f"a replay worker process died (or failed to start) by colour frame {rgb_index} "
                             f"(stamp {frame_ns} ns); rerun with --jobs 1 to see the frame fail in-process")
