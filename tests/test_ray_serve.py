"""The WorldModel on Ray Serve: two replicas on a real two-node cluster, in a loopback-only network namespace.

One cluster serves the module: replicas answer and say who they are; any replica answers any scene handle;
a released handle is expired on every replica; an edit retried with its request id is committed once;
concurrent imagines are batched; the ZMQ front end (coroutines in the handle's loop) keeps both replicas busy
and answers what it accepted when stopped; a replica killed
under load loses no request.
"""

from __future__ import annotations

import pytest

from ray_namespace import requires_ray_namespace, run_isolated

pytestmark = [requires_ray_namespace, pytest.mark.timeout(400)]
REQUESTS, EDITS = 120, 6
#: Observes (320x240, tens of ms each on a replica) sent one by one, then from 4 clients, through the ZMQ front end.
ZMQ_REQUESTS = 16
#: Serve's health check period and timeout (s) for the long-request check: far below one long request.
HEALTH_CHECK_S = (0.1, 0.2)

SCRIPT = f"""
HEALTH_CHECK_S = {HEALTH_CHECK_S}
import json, os, signal, time
from concurrent.futures import ThreadPoolExecutor

import ray
from ray.cluster_utils import Cluster

from joyai_embodied import CameraMove, MoveObject, WorldModel, errors
from joyai_embodied.evaluation.synthetic import default_boxes, front_camera, observe
from joyai_embodied.serve import ray_serve

cluster = Cluster(initialize_head=True, head_node_args={{"num_cpus": 1, "include_dashboard": False}})
cluster.add_node(num_cpus=1)
ray.init(address=cluster.address, namespace="joyai", log_to_driver=False)
service = ray_serve.deploy("geometric", replicas=2, max_batch=8, batch_wait_s=0.2)
pool = ThreadPoolExecutor(8)
result = {{}}


def replicas_seen(count=24):
    return {{i["replica"]: i for i in pool.map(lambda _: service.info(), range(count))}}


obs = observe(front_camera(160, 120), default_boxes())
wm = WorldModel.load("geometric")
local = wm.observe(obs)
want = wm.relation(local, "red cube", "blue box")
handle = service.run("observe", {{"observation": obs}})["handle"]
relation = {{"scene": handle, "subject": "red cube", "reference": "blue box"}}
calls_before = service.forwarder.calls
answers = list(pool.map(lambda _: service.run("relation", relation), range(40)))
result["forwarded_calls"] = service.forwarder.calls - calls_before
result["relations_equal"] = all(a == want or repr(a) == repr(want) for a in answers)
infos = replicas_seen()
result["replicas"] = len(infos)
result["nodes"] = len({{i["node_id"] for i in infos.values()}})
result["info_keys"] = sorted(next(iter(infos.values())))
result["replicas_holding_the_scene"] = sum(i["cached_scenes"] > 0 for i in infos.values())

# an edit sent twice with one request id (a retry) is committed once, and answers the same handle
edit = {{"scene": handle, "edit": MoveObject("red cube", [0.15, 0.12, 0.40])}}
before = service.stats()["scenes"]
first = service.run("edit", edit, request_id="edit-once")["handle"]
again = service.run("edit", edit, request_id="edit-once")["handle"]
result["edit_retry_same_handle"] = first == again
result["edit_retry_scenes_added"] = service.stats()["scenes"] - before

# concurrent imagines on one replica are merged by @serve.batch
moves = [CameraMove(yaw_deg=float(y)) for y in range(-16, 16, 2)]
views = list(pool.map(lambda m: service.run("imagine", {{"scene": handle, "move": m}}), moves))
direct = wm.imagine_batch(local, moves)
result["imagine_equal"] = all((v.rgb == d.rgb).all() for v, d in zip(views, direct))
infos = replicas_seen()
result["batched"] = sum(i["batched_requests"] for i in infos.values())
result["batches"] = sum(i["batches"] for i in infos.values())

# a released handle is expired on every replica, not only on the one that released it
released = service.run("edit", edit)["handle"]
list(pool.map(lambda _: service.run("relation", {{**relation, "scene": released}}), range(8)))
result["lease_hits"] = sum(i["lease_hits"] for i in replicas_seen().values())
release_start = time.perf_counter()
service.run("release", {{"scenes": [released]}})
result["release_s"] = time.perf_counter() - release_start
expired = 0
for _ in range(8):
    try:
        service.run("relation", {{**relation, "scene": released}})
    except errors.SceneExpiredError:
        expired += 1
result["expired_everywhere"] = expired

# the ZMQ front end runs a pool of workers for Ray Serve (replicas x 2): both replicas work at once
from joyai_embodied.serve.zmq_server import ModelServer
frame = observe(front_camera(320, 240), default_boxes())
def served_counts():
    return {{r: i["requests"] for r, i in replicas_seen().items()}}
with ModelServer(service.world_model, "tcp://127.0.0.1:*", service=service) as server:
    clients = [WorldModel.load("remote", address=server.address, timeout_s=60, retries=0) for _ in range(4)]
    clients[0].observe(frame)  # warm
    start = time.perf_counter()
    for _ in range({ZMQ_REQUESTS}):
        clients[0].observe(frame)
    serial_s = time.perf_counter() - start
    counts_before = served_counts()
    start = time.perf_counter()
    list(pool.map(lambda i: clients[i % 4].observe(frame), range({ZMQ_REQUESTS})))
    result["zmq_concurrent_s"] = time.perf_counter() - start
    counts_after = served_counts()
    result["zmq_serial_s"] = serial_s
    result["zmq_served_by"] = sum(counts_after[r] > counts_before.get(r, 0) for r in counts_after)
    result["zmq_workers"] = server.info()["workers"]
    result["zmq_most_running"] = server.info()["most_running"]
    # stopped with requests in flight: each client gets its reply (or "shutting down"), none waits forever
    pending = [pool.submit(client.observe, frame) for client in clients]  # one each: all sent before the stop
    wait_until = time.perf_counter() + 10
    while server.info()["in_flight"] < len(clients) and time.perf_counter() < wait_until:
        time.sleep(0.002)
    result["zmq_stopped_cleanly"] = server.stop(timeout_s=60)
    stop_outcomes = []
    for f in pending:
        try:
            f.result(timeout=60)
            stop_outcomes.append("answered")
        except errors.ServerBusyError:
            stop_outcomes.append("refused")
        except Exception as exc:
            stop_outcomes.append(repr(exc)[:200])
    result["zmq_stop_outcomes"] = stop_outcomes
    for client in clients:
        client.close()

# a replica killed under load: every request answered, each edit committed once; a third of the requests
# (every other edit among them) come through the ZMQ front end, the rest by handle
victim = next(iter(infos.values()))
before = service.stats()["scenes"]
kill_server = ModelServer(service.world_model, "tcp://127.0.0.1:*", service=service).start()
zmq_clients = [WorldModel.load("remote", address=kill_server.address, timeout_s=120, retries=0).backend.client
               for _ in range(4)]
def request(i):
    run = (lambda m, p: zmq_clients[i % 4].call(m, p)) if i % 3 == 0 else service.run
    if i % (({REQUESTS} // {EDITS})) == 0:
        return ("edit", run("edit", {{"scene": handle, "edit": MoveObject("red cube", [0.1 + 0.001 * i, 0.1, 0.4])}}))
    if i % 2:
        return ("imagine", run("imagine", {{"scene": handle, "move": CameraMove(yaw_deg=10.0)}}))
    return ("relation", run("relation", relation))
futures = [pool.submit(request, i) for i in range({REQUESTS})]
while sum(f.done() for f in futures) < 10:
    time.sleep(0.01)
killed_at = time.perf_counter()
result["outstanding_at_kill"] = sum(not f.done() for f in futures)
os.kill(victim["pid"], signal.SIGKILL)
outcomes, failures = [], []
for f in futures:
    try:
        outcomes.append(f.result(timeout=120))
    except Exception as exc:
        failures.append(repr(exc)[:300])
first_after = time.perf_counter() - killed_at
result["answered"] = len(outcomes)
result["failures"] = failures
result["relations_after_kill_equal"] = all(v == want or repr(v) == repr(want)
                                           for kind, v in outcomes if kind == "relation")
result["edit_handles"] = len({{v["handle"] for kind, v in outcomes if kind == "edit"}})
result["edit_scenes_added"] = service.stats()["scenes"] - before
result["retries"] = service.retries
result["kill_server_stopped_cleanly"] = kill_server.stop()
while len({{i["pid"] for i in replicas_seen(8).values()}} - {{victim["pid"]}}) < 2 and \\
        time.perf_counter() - killed_at < 120:
    time.sleep(0.5)
result["recovery_s"] = round(time.perf_counter() - killed_at, 2)

# a long request does not starve Serve's health checks: the model runs off the replica's event loop
ray_serve.undeploy()
service = ray_serve.deploy("geometric", replicas=1, app_name="health", health_check_s=HEALTH_CHECK_S)
big = service.run("observe", {{"observation": observe(front_camera(640, 480), default_boxes())}})["handle"]
pid = service.info()["pid"]
start = time.perf_counter()
# queued behind one another in the model thread: seconds of model work without a pause, 3 missed checks
# in a row (Serve's threshold) if it blocked the replica's event loop
list(pool.map(lambda _: service.imagine_batch(big, [CameraMove(yaw_deg=float(y)) for y in range(16)]), range(6)))
result["long_request_s"] = round(time.perf_counter() - start, 2)
time.sleep(2 * HEALTH_CHECK_S[1])
result["pid_after_long_requests"] = service.info()["pid"] == pid
print("RESULT " + json.dumps(result))
"""


@pytest.fixture(scope="module")
def run():
    return run_isolated(SCRIPT, timeout_s=380)


def test_two_replicas_answer_and_say_who_they_are(run):
    assert run["relations_equal"]
    # 40 requests from 8 threads over 4 lanes: waiting requests shared Serve calls
    assert run["forwarded_calls"] < 40, run["forwarded_calls"]
    assert run["replicas"] == 2 and run["nodes"] == 2
    assert {"replica", "pid", "node_id", "node_ip"} <= set(run["info_keys"])


def test_scenes_are_shared_by_every_replica(run):
    assert run["replicas_holding_the_scene"] == 2  # the replica that did not observe it answered it too
    assert run["expired_everywhere"] == 8
    # cached scenes were answered under the replicas' leases, without a store round trip, and the release
    # still reached both replicas before it returned (well within a lease)
    assert run["lease_hits"] > 0
    assert run["release_s"] < 1.0, run["release_s"]


def test_a_retried_edit_is_applied_once(run):
    assert run["edit_retry_same_handle"] and run["edit_retry_scenes_added"] == 1


def test_concurrent_imagines_are_batched(run):
    assert run["imagine_equal"]
    assert run["batches"] < run["batched"], "16 concurrent imagines should share batches"


def test_the_zmq_front_end_keeps_both_replicas_busy(run):
    assert run["zmq_workers"] == 0  # no worker threads: each request is a coroutine in the handle's loop
    assert run["zmq_most_running"] >= 2, "the front end forwarded one request at a time"
    assert run["zmq_served_by"] == 2, "concurrent ZMQ requests should reach both replicas"
    assert run["zmq_stopped_cleanly"]
    assert set(run["zmq_stop_outcomes"]) <= {"answered", "refused"} and "answered" in run["zmq_stop_outcomes"], \
        run["zmq_stop_outcomes"]
    # wall time is printed, not asserted: on 2 cores shared with other jobs (load 8) it measures the load
    print(f"{ZMQ_REQUESTS} observes through ZMQ: one by one {run['zmq_serial_s']:.2f} s, "
          f"from 4 clients {run['zmq_concurrent_s']:.2f} s")


def test_a_replica_killed_under_load_loses_no_request(run):
    assert run["failures"] == [] and run["answered"] == REQUESTS
    assert run["relations_after_kill_equal"]
    assert run["edit_handles"] == EDITS and run["edit_scenes_added"] == EDITS  # each edit committed once
    assert run["kill_server_stopped_cleanly"]  # the ZMQ front end that carried a third of them drained
    print(f"replica killed with {run['outstanding_at_kill']} requests outstanding: {run['retries']} resent; "
          f"both replicas serving again after {run['recovery_s']} s")


def test_a_long_request_does_not_fail_the_health_checks(run):
    # Serve replaces a replica that misses its health checks; the model's work runs in the replica's model
    # thread, so Serve's checks (every 0.1 s, 0.2 s timeout here) are answered during a long request
    assert run["long_request_s"] > 6 * sum(HEALTH_CHECK_S), run["long_request_s"]
    assert run["pid_after_long_requests"], "the replica was replaced during a long request"
