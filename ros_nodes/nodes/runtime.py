"""Serving nodes until a signal, and stopping within 2 s: the one place that spins the world-model nodes.

rclpy's own signal handlers shut the context down from inside the handler, while an executor thread
may be waiting on a wait set of that context: measured on the launcher, 9 of 66 SIGTERMs ended in
``RCLError: failed to initialize wait set: the given context is not valid`` (rc 1), and a plain
``executor.spin()`` can hang in ``wait_set.wait(-1)`` until a second signal. So here:

1. ``rclpy.init(signal_handler_options=SignalHandlerOptions.NO)`` and our own SIGINT/SIGTERM
   handlers, which only set an Event (:class:`StopSignal`);
2. the main thread spins ``executor.spin_once(timeout_sec=SPIN_PERIOD_S)`` until that Event;
3. drain: new requests are refused with a clear error (:class:`Serving`), requests in flight get
   up to :data:`DRAIN_S` to finish and send their replies;
4. ``executor.shutdown`` -> ``destroy_node`` on every node -> ``rclpy.try_shutdown``, in that order.

A second signal while draining exits at once (exit code 0, requests still running get no reply).
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from typing import Any, Callable, Iterator, Sequence

from joyai_embodied.errors import ServerBusyError

#: How long one ``spin_once`` waits: bounds how late the spin loop notices a stop request.
SPIN_PERIOD_S = 0.1
#: How long requests in flight may take to finish after a stop request (the process ends within 2 s).
DRAIN_S = 1.0
#: After the last request finished, how long to keep spinning so its reply (an action result) goes out.
FLUSH_S = 0.2
#: How long ``executor.shutdown`` waits for callbacks still running (they were given DRAIN_S already).
SHUTDOWN_WAIT_S = 0.2


class StopSignal:
    """SIGINT/SIGTERM handlers that only set an Event; a second signal exits the process at once."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.signal_name = ""

    def install(self) -> "StopSignal":
        """Installs the handlers (main thread only); returns self."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._handle)
        return self

    def _handle(self, signum: int, frame: Any) -> None:
        if self.event.is_set():  # the second signal: the user wants out now
            sys.stderr.write(f"{signal.Signals(signum).name} again: exiting without waiting for requests\n")
            sys.stderr.flush()
            os._exit(0)
        self.signal_name = signal.Signals(signum).name
        self.event.set()


class Serving:
    """Requests in flight in one process, and the refusal of new ones once the process is stopping.

    Every node callback that does work runs inside :meth:`request`; the spin loop waits for
    :meth:`idle` before destroying the nodes.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self.stopping = threading.Event()

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Counts one request while it runs.

        Raises:
            ServerBusyError: the process is stopping (the caller turns it into a refused response).
        """
        with self._lock:
            if self.stopping.is_set():
                raise ServerBusyError("the world-model node is shutting down; send the request again once it "
                                      "is back")
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1

    def idle(self) -> bool:
        with self._lock:
            return self._in_flight == 0


def init_rclpy(args: Sequence[str] | None = None) -> None:
    """``rclpy.init`` without rclpy's signal handlers (ours are installed by :class:`StopSignal`)."""
    import rclpy
    from rclpy.signals import SignalHandlerOptions

    rclpy.init(args=list(args) if args is not None else None, signal_handler_options=SignalHandlerOptions.NO)


def spin_until_stopped(nodes: Sequence[Any], stop: threading.Event, serving: Serving, threads: int = 4,
                       log: Callable[[str], None] | None = None) -> bool:
    """Spins ``nodes`` until ``stop`` is set, drains, then shuts the executor down and destroys the nodes.

    Args:
        nodes: the nodes to serve (destroyed before returning).
        stop: set by the signal handlers (or a caller) to end serving.
        serving: the process's request counter (set to stopping here).
        threads: executor threads; 1 uses a SingleThreadedExecutor.
        log: where a callback's unexpected exception is reported (default: stderr).

    Returns:
        True when every request finished; False when one was still running after :data:`DRAIN_S`
        (the caller should leave with ``os._exit``: that thread would hold the interpreter's exit).
    """
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

    report = log or (lambda text: print(text, file=sys.stderr, flush=True))
    executor = MultiThreadedExecutor(num_threads=threads) if threads > 1 else SingleThreadedExecutor()
    for node in nodes:
        executor.add_node(node)
    finished = False
    try:
        _spin(executor, stop.is_set, report)
        serving.stopping.set()  # from here on new requests are refused with a reply
        deadline = time.monotonic() + DRAIN_S
        _spin(executor, lambda: serving.idle() or time.monotonic() > deadline, report, period=0.02)
        finished = serving.idle()
        flush_until = time.monotonic() + FLUSH_S
        _spin(executor, lambda: time.monotonic() > flush_until, report, period=0.02)
    finally:
        if isinstance(executor, MultiThreadedExecutor):
            executor.shutdown(timeout_sec=SHUTDOWN_WAIT_S, wait_for_threads=finished)
        else:
            executor.shutdown(timeout_sec=SHUTDOWN_WAIT_S)
        for node in nodes:
            node.destroy_node()
    return finished


def _spin(executor: Any, done: Callable[[], bool], report: Callable[[str], None],
          period: float = SPIN_PERIOD_S) -> None:
    while not done():
        try:
            executor.spin_once(timeout_sec=period)
        except Exception as exc:  # a callback's bug (or a context shut down under us) must not end serving
            import rclpy

            if not rclpy.ok():
                return
            report(f"callback failed: {type(exc).__name__}: {exc}")


def serve(make_nodes: Callable[[Serving], Sequence[Any]], threads: int = 4, args: Sequence[str] | None = None,
          banner: Callable[[Sequence[Any]], str] | None = None, stop: StopSignal | None = None) -> int:
    """Initialises rclpy, builds the nodes, serves them until SIGINT/SIGTERM, and shuts down cleanly.

    Args:
        make_nodes: builds the nodes (after ``rclpy.init``), given the process's :class:`Serving`.
        threads: executor threads.
        args: ROS arguments for ``rclpy.init`` (``--ros-args ...``).
        banner: a line printed once the nodes serve.
        stop: handlers the caller installed already (as early as it could); installed here otherwise.

    Returns:
        0 (a signal is the normal way to stop).
    """
    import rclpy

    stop = stop or StopSignal().install()  # before anything slow, so that an early SIGTERM is not lost
    init_rclpy(args)
    finished = True
    try:
        serving = Serving()
        nodes = list(make_nodes(serving))
        if banner is not None:
            print(banner(nodes), flush=True)
        finished = spin_until_stopped(nodes, stop.event, serving, threads=threads)
    finally:
        rclpy.try_shutdown()
    if not finished:  # a request still runs in a worker thread: do not let it hold the exit
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
    return 0


def run_node_alone(make_node: Callable[[Serving], Any], argv: Sequence[str] | None = None, threads: int = 4) -> int:
    """``python -m ros_nodes.nodes.<node> --ros-args ...``: one node, on localhost discovery unless set otherwise.

    Sets up the large-frame transport before ``rclpy.init`` (requests and frames are several MB).
    """
    from ..fastdds_profile import use_large_frame_transport

    os.environ.setdefault("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    use_large_frame_transport()
    return serve(lambda serving: [make_node(serving)], threads=threads,
                 args=list(argv) if argv is not None else sys.argv)
