"""Soak test: minutes of mixed load on the model server with random faults; counts what every request got.

    .venv/bin/python benchmarks/soak.py --small            # ~20 s, 160x120 (CI smoke run)
    .venv/bin/python benchmarks/soak.py --minutes 10       # the full run (320x240)

Client threads send a mix of relation / ask / imagine / imagine_batch / edit / info requests, each with its
own request id, retrying (same id, same connection) after a timeout. Meanwhile a fault is injected every few
seconds: SIGTERM (graceful drain, restart), SIGKILL (restart), garbage frames, a client that stops reading.
Every request ends as exactly one of:

  answered    an ok reply;
  refused     an error reply (busy, shutting down, scene expired after a restart, ...);
  lost        no reply after every retry;
  duplicated  (counted on top) a second, different reply to the same edit: it was executed twice.

The server's RSS is sampled over time. The run passes with 0 lost, 0 duplicated, every graceful stop exit 0.
``--transport`` picks the transport under test: ``zmq`` (here) or ``ros`` (``benchmarks/soak_ros.py``:
`joyai-embodied ros` under SIGTERM/SIGINT, kill -9 and a slow client; its outcomes add ``unavailable``). A
transport is a class with start, stop_gracefully, kill, rss_mb, inject (its own faults), client_loop, passed,
summary, close, and FAULTS.

    .venv/bin/python benchmarks/soak.py --transport ros --small --domain-id 191

Measured (2026-12-01, 2 shared cores, load 4-5, ``--minutes 10``, 320x240, seed 0), zmq: 22684 sent, 22542
answered, 142 refused, 0 lost, 0 duplicated; faults garbage 7, kill 5, signal 7, slow reader 9; graceful exits 8 of
8 code 0, at most 1.86 s; server RSS 36 MB at each start, 136-158 MB under load (medians 146 MB first third, 143 MB
last third): flat. ros: see ``benchmarks/soak_ros.py``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter

import zmq

from joyai_embodied import CameraMove, MoveObject
from joyai_embodied.backends.remote import wire
from joyai_embodied.evaluation.synthetic import default_boxes, front_camera
from joyai_embodied.evaluation.synthetic import observe as synthetic_observe

ATTEMPT_TIMEOUT_S = 3.0  # per attempt; a graceful drain or a restart takes less
RETRIES = 4
MIX = [("relation", 40), ("ask", 15), ("imagine", 20), ("imagine_batch", 5), ("edit", 15), ("info", 5)]



def process_rss_mb(pid: int) -> float:
    """Resident memory of a process in MiB (NaN once it has exited)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")

class ZmqTransport:
    """`joyai-embodied serve-model` in a child process, restarted after each fault that ends it."""

    FAULTS = ("signal", "kill", "garbage", "slow reader")

    def __init__(self, args: argparse.Namespace):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.address = f"tcp://127.0.0.1:{probe.getsockname()[1]}"
        self.reply_cache_mb = args.reply_cache_mb
        self.process: subprocess.Popen | None = None
        self.exit_codes: list[int] = []
        self.exit_seconds: list[float] = []
        self._helper: SoakClient | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "joyai_embodied.cli", "serve-model", "--bind", self.address, "--reply-cache-mb",
             str(self.reply_cache_mb)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        output: list[str] = []
        for line in self.process.stdout:
            if line.startswith("serving"):
                threading.Thread(target=self.process.stdout.read, daemon=True).start()  # keep the pipe drained
                return
            output.append(line)
        tail = "".join(output[-20:])  # why it did not start (a traceback, a port in use)
        raise SystemExit(f"server failed to start (exit {self.process.wait()}):\n{tail}")

    def stop_gracefully(self, signum: int = signal.SIGTERM) -> float:
        """Signals the server, waits for it to exit, restarts it; returns the seconds the exit took."""
        start = time.monotonic()
        self.process.send_signal(signum)
        self.exit_codes.append(self.process.wait(120))
        took = time.monotonic() - start
        self.exit_seconds.append(took)
        self.start()
        return took

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)
        self.start()

    def rss_mb(self) -> float:
        return process_rss_mb(self.process.pid)

    def inject(self, fault: str, obs, seconds: float, faults: Counter) -> None:
        """Faults beyond signal and kill: garbage frames, a client that stops reading."""
        if fault == "garbage":
            faults["garbage answered"] += garbage(self.address, random.Random(len(faults)))
            return
        self._helper = self._helper or SoakClient(self.address)
        threading.Thread(target=slow_reader, args=(self.address, self._helper, obs, seconds), daemon=True).start()

    def client_loop(self, obs, stop: threading.Event, counts: Counter, seed: int, lock: threading.Lock) -> None:
        client_loop(self.address, obs, stop, counts, seed, lock)

    def passed(self) -> bool:
        return True  # exit codes are checked by the caller for every transport

    def summary(self) -> str:
        return f"graceful exits: codes {self.exit_codes}, seconds max {max(self.exit_seconds, default=0):.2f}"

    def close(self) -> None:
        if self._helper is not None:
            self._helper.close()
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.exit_codes.append(self.process.wait(60))


class SoakClient:
    """One connection (a fixed routing id across reconnects); retries re-send the same request id."""

    def __init__(self, address: str):
        self.context = zmq.Context()
        self.socket = self.context.socket(zmq.DEALER)
        self.socket.setsockopt(zmq.LINGER, 0)
        self.socket.setsockopt(zmq.ROUTING_ID, b"soak" + uuid.uuid4().hex.encode())
        self.socket.connect(address)
        self.answered: dict[str, dict] = {}  # request id -> first reply, to spot a second, different one
        self.duplicated = 0

    def call(self, method: str, params: dict) -> tuple[str, dict | None]:
        """('answered' | 'refused' | 'lost', reply)."""
        request_id = uuid.uuid4().hex
        frames = wire.encode({"v": wire.PROTOCOL_VERSION, "id": request_id, "method": method, "params": params})
        for _ in range(RETRIES + 1):
            self.socket.send_multipart([b"", *frames], copy=False)
            deadline = time.monotonic() + ATTEMPT_TIMEOUT_S
            while (remaining := deadline - time.monotonic()) > 0:
                if not self.socket.poll(int(remaining * 1000)):
                    break
                reply = self._receive()
                if reply is None:
                    continue
                if reply.get("id") == request_id:
                    self.answered[request_id] = reply
                    return ("answered" if reply["ok"] else "refused"), reply
        return "lost", None

    def _receive(self) -> dict | None:
        parts = self.socket.recv_multipart()
        try:
            reply = wire.decode(parts[1:], wire.MAX_REPLY_BYTES).header
        except Exception:  # counted as a protocol failure by the caller's missing reply
            return None
        first = self.answered.get(reply.get("id"))
        if first is not None:  # a late reply to an answered id: the same (redelivered) or a second execution
            if _result_key(first) != _result_key(reply):
                self.duplicated += 1
            return None
        return reply

    def close(self) -> None:
        self.socket.close()
        self.context.term()


def _result_key(reply: dict) -> tuple:
    result = reply.get("result")
    handle = result.get("handle") if isinstance(result, dict) else None
    return reply.get("ok"), handle, (reply.get("error") or {}).get("type")


def client_loop(address: str, obs, stop: threading.Event, counts: Counter, seed: int, lock: threading.Lock) -> None:
    rng = random.Random(seed)
    client, handle = SoakClient(address), None
    methods, weights = zip(*MIX)
    try:
        while not stop.is_set():
            if handle is None:
                outcome, reply = client.call("observe", {"observation": obs})
                method = "observe"
                if outcome == "answered":
                    handle = reply["result"]["handle"]
            else:
                method = rng.choices(methods, weights)[0]
                params = {"relation": {"scene": handle, "subject": "red cube", "reference": "blue box"},
                          "ask": {"scene": handle, "question": "How far is the red cube from the blue box?"},
                          "imagine": {"scene": handle, "move": CameraMove(yaw_deg=rng.uniform(-30, 30))},
                          "imagine_batch": {"scene": handle, "moves": [CameraMove(yaw_deg=y) for y in (-10, 10)]},
                          "edit": {"scene": handle, "edit": MoveObject("red cube", [rng.uniform(-0.2, 0.2),
                                                                                   rng.uniform(-0.2, 0.2), 0.4])},
                          "info": {}}[method]
                outcome, reply = client.call(method, params)
                if outcome == "refused" and reply["error"]["type"] == "SceneExpiredError":
                    handle = None  # the server restarted: observe again
                elif method == "edit" and outcome == "answered":
                    client.call("release", {"scenes": [reply["result"]["handle"]]})
            with lock:
                counts["sent"] += 1
                counts[outcome] += 1
                counts[f"{method}:{outcome}"] += 1
    finally:
        with lock:
            counts["duplicated"] += client.duplicated
        client.close()


def garbage(address: str, rng: random.Random) -> int:
    """Sends malformed frames; returns how many got an error reply (each should)."""
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(address)
    messages = [[os.urandom(rng.randint(1, 64))], [b"\x81\xa1v\x63"],
                [wire.encode({"v": 1, "id": "g", "method": "ask", "params": {
                    "x": {"__nd__": 0, "dtype": "uint8", "shape": [10**6, 10**6]}}})[0], b"\x00"]]
    answered = 0
    for frames in messages:
        sock.send_multipart([b"", *frames])
        if sock.poll(5000):
            sock.recv_multipart()
            answered += 1
    sock.close()
    context.term()
    return answered


def slow_reader(address: str, handle_source: SoakClient, obs, seconds: float) -> None:
    """Sends imagine requests and reads nothing for ``seconds`` (ZMQ's receive queue of 1 message)."""
    outcome, reply = handle_source.call("observe", {"observation": obs})
    if outcome != "answered":
        return
    context = zmq.Context()
    sock = context.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVHWM, 1)
    sock.setsockopt(zmq.RCVBUF, 64 * 1024)
    sock.connect(address)
    for i in range(30):
        sock.send_multipart([b"", *wire.encode({"v": 1, "id": f"slow{i}", "method": "imagine", "params": {
            "scene": reply["result"]["handle"], "move": CameraMove(yaw_deg=i)}})])
    time.sleep(seconds)
    sock.close()
    context.term()


def _ros_transport(args: argparse.Namespace):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from soak_ros import RosTransport  # rclpy is needed only for this transport

    return RosTransport(args)


TRANSPORTS = {"zmq": ZmqTransport, "ros": _ros_transport}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the run (default 10)")
    parser.add_argument("--small", action="store_true", help="~20 s at 160x120 (CI smoke run)")
    parser.add_argument("--transport", choices=["zmq", "ros"], default="zmq")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--fault-every", type=float, help="seconds between faults (default 4 small, 20 full)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--reply-cache-mb", type=int, default=64)
    parser.add_argument("--domain-id", type=int, help="ROS_DOMAIN_ID of the ros transport (default: the "
                        "environment's)")
    args = parser.parse_args()
    duration = 20.0 if args.small else args.minutes * 60
    fault_every = args.fault_every or (4.0 if args.small else 20.0)
    width, height = (160, 120) if args.small else (320, 240)
    obs = synthetic_observe(front_camera(width, height), default_boxes())
    rng = random.Random(args.seed)
    transport = TRANSPORTS[args.transport](args)
    transport.start()
    counts: Counter = Counter()
    lock, stop = threading.Lock(), threading.Event()
    threads = [threading.Thread(target=transport.client_loop, args=(obs, stop, counts, args.seed + i, lock))
               for i in range(args.clients)]
    for thread in threads:
        thread.start()
    faults: Counter = Counter()
    rss: list[tuple[float, float]] = []
    graceful_exits: list[float] = []
    start = next_fault = time.monotonic()
    next_fault += fault_every
    print(f"soak over {args.transport}: {args.clients} clients, {width}x{height}, {duration:.0f} s, a fault every "
          f"{fault_every:g} s")
    try:
        while (now := time.monotonic()) - start < duration:
            rss.append((now - start, transport.rss_mb()))
            if now >= next_fault:
                fault = rng.choice(transport.FAULTS)
                faults[fault] += 1
                if fault == "signal":
                    graceful_exits.append(transport.stop_gracefully(rng.choice([signal.SIGTERM, signal.SIGINT])))
                elif fault == "kill":
                    transport.kill()
                else:
                    transport.inject(fault, obs, fault_every / 2, faults)
                next_fault = time.monotonic() + fault_every
            with lock:
                snapshot = dict(counts)
            if len(rss) % 10 == 1:
                print(f"  t={now - start:6.1f} s  rss={rss[-1][1]:7.1f} MB  sent={snapshot.get('sent', 0)} "
                      f"answered={snapshot.get('answered', 0)} refused={snapshot.get('refused', 0)} "
                      f"lost={snapshot.get('lost', 0)}" + (f" unavailable={snapshot['unavailable']}"
                                                             if "unavailable" in snapshot else ""), flush=True)
            time.sleep(0.5)
    finally:
        stop.set()
        for thread in threads:
            thread.join(60)
        transport.close()
    values = [r for _, r in rss if r == r]
    print(f"requests: sent {counts['sent']}, answered {counts['answered']}, refused {counts['refused']}, "
          f"lost {counts['lost']}, duplicated {counts['duplicated']}"
          + (f", unavailable {counts['unavailable']}" if args.transport == "ros" else ""))
    print("  by method: " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if ":" in k))
    print("faults: " + ", ".join(f"{k} {v}" for k, v in sorted(faults.items())))
    print(transport.summary())
    third = max(len(values) // 3, 1)
    print(f"server RSS MB: min {min(values):.0f}, max {max(values):.0f}, first third median "
          f"{sorted(values[:third])[third // 2]:.0f}, last third median {sorted(values[-third:])[third // 2]:.0f}")
    ok = counts["lost"] == 0 and counts["duplicated"] == 0 and all(code == 0 for code in transport.exit_codes) \
        and transport.passed()
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
