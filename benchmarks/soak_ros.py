"""The ROS 2 transport of ``benchmarks/soak.py`` (``--transport ros``): `joyai-embodied ros` under faults.

Client threads call the nodes through ``WorldModel.load("ros", start_nodes=False)`` (one client node each, in
this process's rclpy context) with the soak's mix: relation, ask, imagine, imagine_batch, edit, observe.
Faults: SIGTERM/SIGINT (the launcher drains and must exit 0 within 2 s; it is then restarted), kill -9 (+
restart), and a slow client that sends Imagine goals and does not spin for a while (its results pile up).

What a request ended as (ros_nodes/README.md, "Guarantees"; ROS never resends, so nothing runs twice):

  answered     a result;
  refused      an error result from a node (busy or shutting down, scene expired after a restart, ...);
  unavailable  the client learned quickly that no node answers (none running, or it went away mid-call:
               ``BackendUnavailableError``): expected around a kill or restart, never a wait for the timeout;
  lost         no outcome within the client's timeout (``RequestTimeoutError``) or any other failure;
  duplicated   (on top) a scene id answered twice to scene-creating requests (an answer delivered twice or
               to the wrong request).

Every process gets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and the run's ``ROS_DOMAIN_ID``.

Measured before the client fix (2 shared cores, load 5-6; 320x240; ``--minutes 2 --fault-every 10 --seed 5``):
2529 sent, 2410 answered, 42 refused, 68 unavailable, 0 duplicated, but 9 lost: each the first call of a client
after the node went away, sent while the launcher was restarting; the request never reached the new process and
``WorldModelClient`` waited out its whole timeout once the new node appeared within ~0.75 s of the send.

After it (the client notes the servers' GIDs at send; none there, or a change while waiting, ends the wait: a
query is re-sent once, an edit raises; 2026-12-01, load 4-5; ``--minutes 10``, a fault every 20 s, seed 0):
15289 sent, 14773 answered, 148 refused, 368 unavailable (314 of them observes of clients whose scene expired with
a restart, retried every 0.3 s while the launcher was down), 0 lost, 0 duplicated; faults: kill 9, signal 5, slow
client 7; graceful exits 6 of 6 code 0, at most 1.13 s. Launcher RSS: 115 MB at start; each launcher climbs to
330-390 MB in its first ~40 s under load (the service filling its 32 kept scenes; least recently used then go)
and stays there: the longest-lived one (76 s) read 346, 354, 361, 359, 387, 396, 393, 394, 390, 389, 388 MB at
t = 475-530 s; medians 343 MB (first third of the run) and 358 MB (last third); max 412 MB.
Where the climb goes (one launcher, 320x240, ``--max-scenes 4``): 200 observes alone keep it at 141-145 MB;
then observe + imagine pairs raise it 145 -> 292 MB within ~10 s and it stays at 292-297 MB: the action server
keeps every finished goal's result (a whole view, ~1 MB here) for ``RESULT_KEEP_S`` = 10 s (rclpy's
``result_timeout``; now set explicitly in ``nodes/imagination.py``); with 32 scenes kept (the default) the store
adds ~70-100 MB more. Both are bounded, so RSS is flat once a launcher has run ~40 s.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import threading
import time
from collections import Counter

from joyai_embodied import CameraMove, MoveObject, WorldModel
from joyai_embodied.errors import BackendUnavailableError, JoyAIError, RequestTimeoutError

#: Per call: a call whose node went away ends in ~1 s (5.8 s after kill -9, the participant lease); more is a loss.
CALL_TIMEOUT_S = 15.0
#: What ros_nodes/README.md promises: a signal ends the launcher within 2 s, exit code 0.
EXIT_WITHIN_S = 2.0
#: A restarted launcher must be serving within this on a loaded 2-core machine (imports, model, discovery).
START_S = 90.0
#: After kill -9 the old node stays in the graph for its 5 s lease; wait it out before starting a new one.
GONE_S = 10.0
#: Pause after a request that found no node, so a down launcher is not polled in a tight loop.
UNAVAILABLE_PAUSE_S = 0.3
MIX = [("relation", 40), ("ask", 15), ("imagine", 20), ("imagine_batch", 5), ("edit", 15), ("observe", 5)]


class RosTransport:
    """`joyai-embodied ros --preset geometric` in a child process, restarted after each fault that ends it.

    Args:
        args: the soak's options (``domain_id``; ``threads`` nodes' executor threads).
    """

    FAULTS = ("signal", "kill", "slow client")

    def __init__(self, args) -> None:
        import rclpy

        from ros_nodes.fastdds_profile import use_large_frame_transport

        os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"  # never multicast beyond this machine
        if args.domain_id is not None:
            os.environ["ROS_DOMAIN_ID"] = str(args.domain_id)
        self.address = f"ROS domain {os.environ.get('ROS_DOMAIN_ID', '0')} (localhost)"
        use_large_frame_transport()  # before rclpy.init; the launcher child inherits it
        rclpy.init()
        from ros_nodes.clients.world_model_client import WorldModelClient

        self.probe = WorldModelClient(f"soak_probe_{os.getpid()}")
        self.process: subprocess.Popen | None = None
        self.exit_codes: list[int] = []
        self.exit_seconds: list[float] = []
        self.sent_signal_at = 0.0

    def start(self) -> None:
        from ros_nodes.child_process import start_launcher

        self.process = start_launcher(["--preset", "geometric", "--threads", "4"], stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL)
        self.probe.wait_until_ready(timeout_s=START_S)

    def _wait_until_gone(self) -> None:
        from ros_nodes.topics import SPATIAL_QUERY_SERVICE

        deadline = time.monotonic() + GONE_S
        while time.monotonic() < deadline and any(
                name == SPATIAL_QUERY_SERVICE for name, _ in self.probe.get_service_names_and_types()):
            time.sleep(0.1)

    def stop_gracefully(self, signum: int = signal.SIGTERM) -> float:
        """Signals the launcher, waits for its exit (never kills it: a hang shows), restarts; returns seconds."""
        start = time.monotonic()
        self.process.send_signal(signum)
        try:
            code = self.process.wait(60)
        except subprocess.TimeoutExpired:
            code = -999  # a hang: recorded as a failed graceful stop, then ended so the run goes on
            self.process.kill()
            self.process.wait()
        took = time.monotonic() - start
        self.exit_codes.append(code)
        self.exit_seconds.append(took)
        self._wait_until_gone()
        self.start()
        return took

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)
        self._wait_until_gone()
        self.start()

    def rss_mb(self) -> float:
        from soak import process_rss_mb  # soak.py imports this module only when --transport ros is chosen

        return process_rss_mb(self.process.pid)

    def inject(self, fault: str, obs, seconds: float, faults: Counter) -> None:
        """Faults beyond signal and kill: here the slow client."""
        threading.Thread(target=slow_client, args=(obs, seconds), daemon=True).start()

    def client_loop(self, obs, stop: threading.Event, counts: Counter, seed: int, lock: threading.Lock) -> None:
        """One client thread: the mix until ``stop``; every request counted as exactly one outcome."""
        client_loop(obs, stop, counts, seed, lock)

    def close(self) -> None:
        import rclpy

        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.exit_codes.append(self.process.wait(60))
        self.probe.destroy_node()
        rclpy.try_shutdown()

    def passed(self) -> bool:
        """Every graceful stop exited 0 within :data:`EXIT_WITHIN_S`."""
        return all(s <= EXIT_WITHIN_S for s in self.exit_seconds)

    def summary(self) -> str:
        return (f"graceful exits: codes {self.exit_codes}, seconds max {max(self.exit_seconds, default=0):.2f} "
                f"(limit {EXIT_WITHIN_S:g})")


def _outcome(call) -> tuple[str, object]:
    try:
        return "answered", call()
    except BackendUnavailableError:
        return "unavailable", None
    except RequestTimeoutError as exc:
        return "lost", exc
    except JoyAIError as exc:  # an error result from a node: the request was answered with a refusal
        return "refused", exc
    except Exception as exc:  # anything else is a failure of the transport
        return "lost", exc


def client_loop(obs, stop: threading.Event, counts: Counter, seed: int, lock: threading.Lock) -> None:
    rng = random.Random(seed)
    model = WorldModel.load("ros", start_nodes=False, timeout_s=CALL_TIMEOUT_S)
    methods, weights = zip(*MIX)
    scene = None
    created: set[str] = set()
    duplicated = 0
    after_gap = False  # the node was unavailable to this client; the next call is its first since
    try:
        while not stop.is_set():
            method = "observe" if scene is None else rng.choices(methods, weights)[0]
            calls = {
                "observe": lambda: model.observe(obs),
                "relation": lambda: model.relation(scene, "red cube", "blue box"),
                "ask": lambda: model.ask(scene, "How far is the red cube from the blue box?"),
                "imagine": lambda: model.imagine(scene, CameraMove(yaw_deg=rng.uniform(-30, 30))),
                "imagine_batch": lambda: model.imagine_batch(scene, [CameraMove(yaw_deg=y) for y in (-10, 10)]),
                "edit": lambda: model.edit(scene, MoveObject("red cube", [rng.uniform(-0.2, 0.2),
                                                                          rng.uniform(-0.2, 0.2), 0.4])),
            }
            outcome, value = _outcome(calls[method])
            first_after_gap, after_gap = after_gap and outcome != "unavailable", after_gap or outcome == "unavailable"
            if first_after_gap:
                after_gap = False
            if outcome == "answered" and method in ("observe", "edit"):
                scene_id = value.data.scene_id
                duplicated += scene_id in created
                created.add(scene_id)
                if method == "observe":
                    scene = value
            elif outcome == "refused" and type(value).__name__ == "SceneExpiredError":
                scene = None  # the launcher restarted: observe again
            elif outcome == "unavailable":
                scene = None  # a restarted launcher holds none of the old scenes
                time.sleep(UNAVAILABLE_PAUSE_S)
            with lock:
                counts["sent"] += 1
                counts[outcome] += 1
                counts[f"{method}:{outcome}"] += 1
                if outcome == "lost":
                    counts[f"lost:{type(value).__name__}"] += 1
                    if first_after_gap:  # see the report: a reply lost to discovery right after a restart
                        counts["lost:first call after the node came back"] += 1
    finally:
        with lock:
            counts["duplicated"] += duplicated
        model.close()


def slow_client(obs, seconds: float) -> None:
    """Sends Imagine goals carrying the frame and does not spin for ``seconds``: results wait for it."""
    from ros_nodes.clients.world_model_client import WorldModelClient

    client = WorldModelClient(f"soak_slow_{os.getpid()}_{time.monotonic_ns()}")
    try:
        for i in range(10):
            client.imagine_async(obs, yaw_deg=float(i))
        time.sleep(seconds)
    finally:
        client.destroy_node()
