"""Recording in a child process: the encoder and the file writer run beside the caller, with their own GIL.

:func:`~.recorders.preload_recorder` starts a :class:`WriterProcess` at the start of a command, so that the
child imports the Rerun SDK or rosbags (~0.7 s CPU) and warms their encoders on the other core while the
command builds its env. :func:`~.recorders.open_recorder` (``background=True``) hands it to a
:class:`ProcessRecorder`: the caller's side of a :class:`~.base.Recorder` (public API, validation, timeline),
whose hooks travel as ``(hook name, arguments, step, stamp)`` through a pipe; the child builds the real
recorder and calls the same hooks, in order.

Guarantees: at most :data:`~.base.QUEUE_SIZE` items wait (the caller waits when full, nothing is dropped);
a hook's error in the child is raised in the caller by the next logging call, :meth:`~.base.Recorder.flush`
or :meth:`~.base.Recorder.close` as a one-line :class:`~.base.RecordingError` naming the file; a child that
dies is reported, never waited on forever. The child ignores SIGINT and SIGTERM (and runs in a session of its
own, so a Ctrl-C to the command's process group does not reach it): it finishes what was queued when the
parent closes the recorder, or when the parent is gone (the pipe's end of file, or a new parent id), then
closes the file and exits.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import pickle
import queue
import resource
import signal
import sys
import threading
import time
import types
from pathlib import Path
from typing import Any, Callable

from .base import QUEUE_SIZE, Recorder, RecordingError

#: How often a waiting side checks that the other one is still alive (seconds): a dead peer is noticed
#: this fast; waiting costs nothing in between.
LIVENESS_POLL_S = 0.2
#: How long :meth:`WriterProcess.stop` waits for the child to finish writing and exit before killing it:
#: a queue full of 640x480 frames is written in a few seconds even on a loaded machine.
EXIT_WAIT_S = 120.0
#: The pipe's buffer (Linux's unprivileged maximum): a 640x480 frame crosses in a few writes, not ~50 of 64 KiB.
PIPE_BYTES = 1 << 20
_EOF = b""  # the reader thread's end-of-stream marker (a real item is never empty)
#: The writer's nice value: it yields the CPU to the command (the planner's thread, rendering) when both want it.
#: Mild, and the process's own only: where Linux's autogroup is on, the writer's session (its own, see
#: _child_main) shares the CPU by the session's nice, which is left at 0 (at 10 the writer took 12-13 s instead
#: of ~2 s to be ready at load average 5-6, and close() waits for it).
CHILD_NICE = 5


class WriterProcess:
    """A child process that imports the recorder for ``suffix`` and then writes one recording.

    Args:
        suffix: ``".rrd"`` or ``".mcap"``.
    """

    def __init__(self, suffix: str):
        context = multiprocessing.get_context("spawn")  # never fork: ROS and torch threads do not survive it
        self.suffix = suffix
        reader, self._data = context.Pipe(duplex=False)
        self._back, back_writer = context.Pipe(duplex=False)
        self._slots = context.BoundedSemaphore(QUEUE_SIZE)
        # Unpickling _child_main in the child imports only the packages' light __init__s (their names load on
        # use), not the world model or the backends' entry points the writer never needs.
        self.process = context.Process(target=_child_main, name=f"recorder {suffix}", daemon=True,
                                       args=(suffix, reader, back_writer, self._slots, os.getpid()))
        with _signals_ignored(), _without_main_module():
            self.process.start()
        reader.close()  # the child holds the only reading end: the parent's exit is its end of file
        back_writer.close()
        _widen_pipe(self._data)
        # The feeder thread writes to the pipe (the GIL is released while it waits for the child to read), so
        # that the caller only pickles; one thread, so the order is kept.
        self._outbox: queue.SimpleQueue[bytes | None] = queue.SimpleQueue()
        self._pipe_broken = False
        self._feeder = threading.Thread(target=self._feed, name=f"recorder {suffix} feeder", daemon=True)
        self._feeder.start()
        #: What errors name: the file, once a recorder has the writer.
        self.label = suffix
        self.error: str | None = None
        self.write_cpu_s = self.child_cpu_s = 0.0
        self.stopped = False
        atexit.register(self.stop)  # an unused preload or a recorder left open: the child still ends

    def send(self, item: tuple) -> None:
        """Sends one item (pickled now: the caller may reuse its arrays at once); waits while QUEUE_SIZE wait.

        Raises:
            RecordingError: the child has died (naming the file).
        """
        if self._pipe_broken:
            self._check_alive(force=True)
        data = pickle.dumps(item, protocol=pickle.HIGHEST_PROTOCOL)  # protocol 5: an array is one buffer
        while not self._slots.acquire(timeout=LIVENESS_POLL_S):  # the child frees a slot per item it takes
            self._check_alive()
        self._outbox.put(data)

    def _feed(self) -> None:
        while (data := self._outbox.get()) is not None:
            try:
                self._data.send_bytes(data)
            except OSError:  # a closed pipe: the child is gone (the caller's next send reports it)
                self._pipe_broken = True
                break
        self._data.close()  # after the last item: the child's end of file

    def poll(self) -> None:
        """Reads the child's reports that have arrived (errors, write times), without waiting."""
        while not self.stopped and self._back.poll():
            self._receive()

    def wait_for(self, kind: str) -> None:
        """Waits for the child's report ``kind`` (``"flushed"``, ``"closed"``).

        Raises:
            RecordingError: the child died first.
        """
        while True:
            if self._back.poll(LIVENESS_POLL_S):
                if self._receive() == kind:
                    return
            else:
                self._check_alive()

    def _receive(self) -> str:
        try:
            kind, error, write_cpu_s, child_cpu_s = self._back.recv()
        except EOFError:  # the child's end closed: it exited
            self._check_alive(force=True)
            raise
        self.error = self.error or error
        self.write_cpu_s, self.child_cpu_s = write_cpu_s, child_cpu_s
        return kind

    def _check_alive(self, force: bool = False) -> None:
        if self.process.is_alive() and not force:
            return
        self.process.join(LIVENESS_POLL_S)
        code = self.process.exitcode
        raise RecordingError(f"recording {self.label}: the writer process died (exit code {code}); "
                             f"the file may be incomplete")

    def stop(self) -> None:
        """Ends the child: closes the pipe (it writes what was queued and exits), waits, kills as a last resort."""
        if self.stopped:
            return
        self.stopped = True
        atexit.unregister(self.stop)
        self._outbox.put(None)  # the feeder sends what is queued, then closes the pipe
        self._feeder.join(EXIT_WAIT_S)
        self.process.join(EXIT_WAIT_S)
        if self.process.is_alive():  # pragma: no cover - a child stuck in a library call
            self.process.kill()
            self.process.join()
        self._back.close()


class ProcessRecorder(Recorder):
    """A :class:`~.base.Recorder` whose hooks run in a :class:`WriterProcess` (``open_recorder(background=True)``).

    Args:
        path: the file to write.
        writer: a preloaded writer for ``path``'s suffix (None: start one now).
        options: the real recorder's options (``recording_name``, ``compression``).
    """

    def __init__(self, path: str | Path, writer: WriterProcess | None = None, **options: Any):
        super().__init__(path)
        self.background = True
        self.writer = writer or WriterProcess(self.path.suffix.lower())
        self.writer.label = str(self.path)
        self.writer.send(("open", str(self.path), options))

    def _submit(self, hook: Callable[..., None] | str, *args: Any) -> None:
        """Sends ``hook(*args)`` at the current time to the child (a bound hook travels by its name)."""
        self._raise_writer_error()
        self._check_open()
        name = hook.__name__ if getattr(hook, "__self__", None) is self else hook
        self.writer.send(("hook", name, args, self.step, self.stamp_ns))

    def _raise_writer_error(self) -> None:
        self.writer.poll()
        self._update()
        if self.writer.error is not None:
            error, self.writer.error = self.writer.error, None
            raise RecordingError(error)

    def _update(self) -> None:
        self.write_cpu_s, self.child_cpu_s = self.writer.write_cpu_s, self.writer.child_cpu_s

    def flush(self) -> None:
        """Waits until the child has written everything logged so far."""
        if not self.closed:
            self.writer.send(("flush",))
            self.writer.wait_for("flushed")
        self._raise_writer_error()

    def close(self, wait: bool = True) -> None:
        """Sends the rest and asks the child to close the file; with ``wait``, waits until it has and ends it.

        Args:
            wait: False: return at once (the child finishes meanwhile: a command writes its report); a later
                ``close()`` waits, or the process's exit does.

        Raises:
            RecordingError: an error of the child not yet raised, or the child died.
        """
        if not self.closed:
            self.closed = True
            try:
                self.writer.send(("close",))
            except BaseException:
                self.writer.stop()
                raise
        if not wait or self.writer.stopped:
            return
        try:
            self.writer.wait_for("closed")
        finally:
            self.writer.stop()
        self._raise_writer_error()

    # The hooks run in the child; here only their names are used.
    def _set_time(self) -> None: ...
    def _log_camera(self, *args: Any) -> None: ...
    def _log_cloud(self, *args: Any) -> None: ...
    def _log_objects(self, *args: Any) -> None: ...
    def _log_text(self, *args: Any) -> None: ...
    def _log_pose(self, *args: Any) -> None: ...
    def _close(self) -> None: ...


def _widen_pipe(connection: Any) -> None:
    try:
        import fcntl

        fcntl.fcntl(connection.fileno(), fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    except (ImportError, AttributeError, OSError):  # not Linux, or a lower limit: the default buffer works
        pass


class _signals_ignored:
    """SIGINT and SIGTERM ignored while a child is started (from the main thread; elsewhere a no-op).

    The signals are blocked first, so that one arriving meanwhile waits and reaches the parent after.
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __enter__(self) -> None:
        self.active = threading.current_thread() is threading.main_thread()
        if self.active:
            self.mask = signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)
            self.handlers = [signal.signal(s, signal.SIG_IGN) for s in self.SIGNALS]

    def __exit__(self, *exc: Any) -> None:
        if self.active:
            for number, handler in zip(self.SIGNALS, self.handlers):
                if handler is not None:  # None: a handler installed outside Python, which SIG_IGN replaced
                    signal.signal(number, handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, self.mask)


class _without_main_module:
    """Hides the caller's ``__main__`` while a child is spawned, so that the child does not import it again.

    Spawn re-imports the parent's main script in the child (running its top-level code: a script without an
    ``if __name__ == "__main__"`` guard would start a second child, and a benchmark's imports would cost the
    child seconds); the writer needs only this package.
    """

    def __enter__(self) -> None:
        self.main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")

    def __exit__(self, *exc: Any) -> None:
        if self.main is not None:
            sys.modules["__main__"] = self.main


# -- the child ---------------------------------------------------------------------------------------------------
def _child_main(suffix: str, data: Any, back: Any, slots: Any, parent_pid: int) -> None:
    """The child's loop: import and warm the recorder, then run each item in order until close or EOF."""
    for number in (signal.SIGINT, signal.SIGTERM):  # the parent decides when the recording ends
        signal.signal(number, signal.SIG_IGN)
    try:
        # A session of its own: where the scheduler shares CPU between sessions (Linux's autogroup, on by
        # default), the writer's imports and encoding then get their own share instead of the command's.
        os.setsid()
    except OSError:  # already a session leader
        pass
    _lower_priority()
    items: queue.Queue[bytes] = queue.Queue()  # bounded by the parent's slots
    threading.Thread(target=_read, args=(data, items), name="recorder reader", daemon=True).start()
    try:
        if suffix == ".rrd":
            from .rerun_recorder import RerunRecorder as cls, warm_up
        else:
            from .mcap_recorder import McapRecorder as cls, warm_up
        warm_up()
        failure = None
    except Exception as exc:  # noqa: BLE001 - reported at open, where the file is known
        cls, failure = None, exc
    recorder: Recorder | None = None
    label, error, idle_since = suffix, None, None

    def report(kind: str, line: str | None = None) -> None:
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        back.send((kind, line, recorder.write_cpu_s if recorder is not None else 0.0, cpu.ru_utime + cpu.ru_stime))

    while True:
        try:
            payload = items.get(timeout=LIVENESS_POLL_S)
        except queue.Empty:
            if os.getppid() == parent_pid:
                continue
            # The parent is gone but no end of file came (a half-sent item, or a forked grandchild holding
            # the pipe): what was received is written; stop after a quiet period.
            idle_since = idle_since or time.monotonic()
            if time.monotonic() - idle_since < 10 * LIVENESS_POLL_S:
                continue
            break
        if payload == _EOF:
            break
        slots.release()
        item = pickle.loads(payload)
        kind = item[0]
        if kind == "close":
            break
        if kind == "flush":
            _send_quietly(report, "flushed")
            continue
        try:
            if kind == "open":
                label = item[1]
                if failure is not None:
                    raise failure
                recorder = cls(item[1], **item[2])
            elif error is None and recorder is not None:  # after an error the rest is read, not written
                _, hook, args, step, stamp_ns = item
                recorder.step, recorder.stamp_ns = step, stamp_ns
                recorder._submit(getattr(recorder, hook) if isinstance(hook, str) else hook, *args)
        except Exception as exc:  # noqa: BLE001 - handed to the parent (once), one line naming the file
            if error is None:
                error = _one_line(label, exc)
                _send_quietly(report, "error", error)
    closing_error = None
    try:
        if recorder is not None:
            recorder.close()
    except Exception as exc:  # noqa: BLE001
        closing_error = _one_line(label, exc)
    _send_quietly(report, "closed", closing_error)
    # The file is complete and closed: skip the interpreter's teardown (Rerun's and numpy's exit handlers,
    # 0.2-0.8 s of CPU), which the parent's close() would otherwise wait for.
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):
            pass
    os._exit(0)


def _lower_priority() -> None:
    """Runs the writer at :data:`CHILD_NICE` (its process's nice value; its session's is left alone)."""
    try:
        os.nice(max(CHILD_NICE - os.nice(0), 0))
    except (AttributeError, OSError):  # not POSIX
        pass


def _read(data: Any, items: queue.Queue) -> None:
    """The child's reader thread: moves items from the pipe to ``items`` as they come, so that the parent's
    send never waits on an encoding in progress."""
    while True:
        try:
            items.put(data.recv_bytes())
        except (EOFError, OSError):  # the parent closed its end or exited
            items.put(_EOF)
            return


def _send_quietly(report: Callable[..., None], kind: str, line: str | None = None) -> None:
    try:
        report(kind, line)
    except OSError:  # the parent is gone: nobody to tell
        pass


def _one_line(label: str, exc: BaseException) -> str:
    return " ".join(f"recording {label}: {type(exc).__name__}: {exc}".split())
