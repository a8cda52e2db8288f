"""The model server and the remote backend, on loopback: same answers as in-process, errors keep their
types, bad requests get error replies, bounded queue/scenes, retries never run twice, many clients."""

import threading
import time
import uuid

import msgpack
import numpy as np
import pytest
import zmq

from joyai_embodied import (CameraMove, InvalidInputError, MoveObject, ServerBusyError,
                            UnknownObjectError, WorldModel)
from joyai_embodied.evaluation.synthetic import default_boxes, front_camera
from joyai_embodied.evaluation.synthetic import observe as synthetic_observe
from joyai_embodied import errors
from joyai_embodied.backends.remote import wire
from joyai_embodied.backends.remote.client import ModelClient
from joyai_embodied.serve.zmq_server import ModelServer

pytestmark = pytest.mark.timeout(60)
LOOPBACK = "tcp://127.0.0.1:*"


@pytest.fixture(scope="module")
def local():
    return WorldModel.load("geometric")


@pytest.fixture(scope="module")
def obs():
    return synthetic_observe(front_camera(160, 120), default_boxes())


@pytest.fixture(scope="module")
def server(local):
    with ModelServer(local, LOOPBACK, max_queue=32, max_scenes=64, max_payload_bytes=4 * 2**20) as running:
        yield running


@pytest.fixture()
def remote(server):
    model = WorldModel.load("remote", address=server.address, timeout_s=20, retries=1)
    yield model
    model.close()


@pytest.fixture()
def raw(server):
    """A bare DEALER socket, for sending what a well-behaved client never would."""
    context = zmq.Context()
    socket = context.socket(zmq.DEALER)
    socket.setsockopt(zmq.LINGER, 0)
    socket.connect(server.address)
    yield socket
    socket.close()
    context.term()


def send(socket, frames):
    socket.send_multipart([b"", *frames])


def receive(socket, timeout_s=10.0):
    assert socket.poll(int(timeout_s * 1000)), "no reply from the server"
    parts = socket.recv_multipart()
    assert parts[0] == b""
    return wire.decode(parts[1:]).header


def request_frames(method, params=None, request_id=None, version=wire.PROTOCOL_VERSION):
    return [bytes(f) for f in wire.encode({"v": version, "id": request_id or uuid.uuid4().hex, "method": method,
                                           "params": params or {}})]


# -- the remote API behaves like the in-process one -------------------------------------------------------

def test_remote_answers_match_in_process(local, remote, obs):
    here, there = local.observe(obs), remote.observe(obs)
    assert there.object_names() == here.object_names()
    for a, b in zip(here.objects, there.objects):
        np.testing.assert_allclose(b.centroid, a.centroid)
        np.testing.assert_allclose(b.extent, a.extent)
    np.testing.assert_allclose(there.pivot, here.pivot)
    for subject, reference in [("red cube", "blue box"), ("yellow cube", "red cube")]:
        assert remote.relation(there, subject, reference) == local.relation(here, subject, reference)
    question = "How far is the red cube from the blue box?"
    assert remote.ask(there, question) == local.ask(here, question)
    move = CameraMove(yaw_deg=25, pitch_deg=-5, zoom=1.1)
    view_here, view_there = local.imagine(here, move, seed=0), remote.imagine(there, move, seed=0)
    for name in ("rgb", "depth", "segmentation", "valid_mask", "cam_to_world", "intrinsics"):
        np.testing.assert_array_equal(getattr(view_there, name), getattr(view_here, name))
    edit = MoveObject("red cube", [0.15, 0.12, 0.40])
    edited_here, edited_there = local.edit(here, edit), remote.edit(there, edit)
    assert edited_there.edits == (edit,)
    assert remote.relation(edited_there, "red cube", "blue box") == local.relation(edited_here, "red cube",
                                                                                     "blue box")
    # the original scene is unchanged by the edit, on the server as in-process
    assert remote.relation(there, "red cube", "blue box") == local.relation(here, "red cube", "blue box")
    views = remote.imagine_batch(there, [CameraMove(yaw_deg=10), CameraMove(yaw_deg=-10)])
    np.testing.assert_array_equal(views[1].rgb, local.imagine(here, CameraMove(yaw_deg=-10)).rgb)
    assert remote.backend.release(there, edited_there) == 2


def test_server_errors_are_raised_as_the_same_types(remote, obs):
    scene = remote.observe(obs)
    with pytest.raises(UnknownObjectError) as caught:
        remote.relation(scene, "green cylinder", "red cube")
    assert caught.value.known == sorted(scene.object_names())
    # Validation runs on the server too: a bad observation field comes back with its field name.
    bad = {"__t__": "Observation", "f": {"rgb": obs.rgb, "intrinsics": obs.intrinsics,
                                         "cam_to_world": obs.cam_to_world, "depth": obs.depth * 1000}}
    with pytest.raises(InvalidInputError) as caught:
        remote.backend.client.call("observe", {"observation": bad})
    assert caught.value.field == "depth" and "millimetres" in str(caught.value)
    with pytest.raises(InvalidInputError) as caught:
        remote.backend.client.call("relation", {"scene": 42, "subject": "a", "reference": "b"})
    assert caught.value.field == "params.scene"


def test_info_reports_backend_device_queue_and_versions(remote):
    info = remote.info()["server"]
    assert info["backend"] == "geometric" and info["device"] == "cpu"
    assert info["protocol_version"] == wire.PROTOCOL_VERSION and info["version"]
    assert info["queue_depth"] == 0 and info["max_queue"] == 32


# -- protocol errors: an error reply, and the server keeps serving ----------------------------------------

def bad_requests():
    valid = msgpack.packb({"v": wire.PROTOCOL_VERSION, "id": "x1", "method": "info"})
    return {
        "garbage": ([b"\x00\xffnot msgpack"], "malformed"),
        "wrong version": (request_frames("info", request_id="x2", version=7), "version"),
        "unknown method": (request_frames("self_destruct", request_id="x3"), "unknown_method"),
        "missing id": ([msgpack.packb({"v": wire.PROTOCOL_VERSION, "method": "info"})], "malformed"),
        "params not a map": ([msgpack.packb({"v": wire.PROTOCOL_VERSION, "id": "x4", "method": "ask",
                                             "params": [1]})], "malformed"),
        "short array frame": ([msgpack.packb({"v": 1, "id": "x5", "method": "ask", "params": {
            "x": {"__nd__": 0, "dtype": "float32", "shape": [480, 640]}}}), b"\x00" * 10], "malformed"),
        "oversize array": ([msgpack.packb({"v": 1, "id": "x6", "method": "ask", "params": {
            "x": {"__nd__": 0, "dtype": "uint8", "shape": [10 ** 6, 10 ** 6]}}}), b"\x00"], "too_large"),
        "oversize payload": (request_frames("observe", {"blob": np.zeros(5 * 2**20, np.uint8)}, "x7"), "too_large"),
        "extra frames": ([valid, b"1", b"2"], "malformed"),
    }


@pytest.mark.parametrize("name", sorted(bad_requests()))
def test_bad_requests_get_an_error_reply_and_the_server_keeps_serving(raw, name):
    frames, code = bad_requests()[name]
    send(raw, frames)
    reply = receive(raw)
    assert reply["ok"] is False and reply["error"]["code"] == code, reply
    send(raw, request_frames("health", request_id="after"))
    reply = receive(raw)
    assert reply["ok"] is True and reply["id"] == "after" and reply["result"]["status"] == "ok"


# -- exactly-once, bounds, batching -----------------------------------------------------------------------

def test_a_retried_edit_is_answered_from_the_cache_not_applied_twice(server, remote, raw, obs):
    handle = remote.observe(obs).data.handle
    frames = request_frames("edit", {"scene": handle, "edit": MoveObject("red cube", [0.1, 0.1, 0.4])}, "edit-1")
    send(raw, frames)
    first = receive(raw)
    scenes, duplicates = server.info()["scenes"], server.info()["duplicates"]
    send(raw, frames)  # the same request id again, as a client retrying after a lost reply would
    second = receive(raw)
    assert first["ok"] and second["result"]["handle"] == first["result"]["handle"]
    assert server.info()["scenes"] == scenes and server.info()["duplicates"] == duplicates + 1


def test_least_recently_used_scenes_are_evicted_with_a_clear_error(local, obs):
    with ModelServer(local, LOOPBACK, max_scenes=2) as small:
        remote = WorldModel.load("remote", address=small.address, timeout_s=20)
        first, second = remote.observe(obs), remote.observe(obs)
        remote.relation(first, "red cube", "blue box")  # first is now the most recently used
        remote.observe(obs)  # evicts second
        remote.relation(first, "red cube", "blue box")
        with pytest.raises(errors.SceneExpiredError, match="observe"):
            remote.relation(second, "red cube", "blue box")
        assert small.info()["scenes"] == 2 and small.info()["scenes_evicted"] == 1
        assert remote.backend.release(first) == 1
        with pytest.raises(errors.SceneExpiredError):
            remote.ask(first, "How many objects are there?")
        remote.close()


def test_a_full_queue_answers_busy_at_once(local, obs):
    with ModelServer(local, LOOPBACK, max_queue=2, max_batch=1) as small:
        client = ModelClient(small.address, timeout_s=20)
        handle = client.call("observe", {"observation": obs})["handle"]
        context = zmq.Context()
        socket = context.socket(zmq.DEALER)
        socket.connect(small.address)
        count = 24
        for i in range(count):
            send(socket, request_frames("imagine", {"scene": handle, "move": CameraMove(yaw_deg=i)}, f"b{i}"))
        replies = [receive(socket) for _ in range(count)]
        socket.close(linger=0)
        context.term()
        assert sorted(r["id"] for r in replies) == sorted(f"b{i}" for i in range(count))  # one reply each
        busy = [r for r in replies if not r["ok"]]
        assert busy and all(r["error"]["type"] == "ServerBusyError" for r in busy)
        assert len(busy) < count
        assert isinstance(wire.error_from_wire(busy[0]["error"]), ServerBusyError)
        client.close()


def test_imagine_requests_on_one_scene_are_batched(local, obs):
    big_obs = synthetic_observe(front_camera(320, 240), default_boxes())
    with ModelServer(local, LOOPBACK, max_batch=8) as batching:
        client = ModelClient(batching.address, timeout_s=20)
        handle = client.call("observe", {"observation": obs})["handle"]
        context = zmq.Context()
        socket = context.socket(zmq.DEALER)
        socket.connect(batching.address)
        send(socket, request_frames("observe", {"observation": big_obs}, "slow"))  # keeps the worker busy
        moves = [CameraMove(yaw_deg=5 * i) for i in range(6)]
        for i, move in enumerate(moves):
            send(socket, request_frames("imagine", {"scene": handle, "move": move, "seed": 0}, f"i{i}"))
        replies = {r["id"]: r for r in (receive(socket) for _ in range(len(moves) + 1))}
        socket.close(linger=0)
        context.term()
        assert batching.info()["batches"] >= 1 and batching.info()["largest_batch"] >= 2
        scene = local.observe(obs)
        for i, move in enumerate(moves):
            np.testing.assert_array_equal(replies[f"i{i}"]["result"].rgb, local.imagine(scene, move, seed=0).rgb)
        client.close()


def test_eight_clients_fifty_mixed_requests_each_get_exactly_their_replies(server, local, obs):
    scene_here = local.observe(obs)
    expected = {pair: local.relation(scene_here, *pair) for pair in
                [("red cube", "blue box"), ("blue box", "yellow cube"), ("yellow cube", "red cube")]}
    expected_view = local.imagine(scene_here, CameraMove(yaw_deg=15)).rgb
    results: dict[int, list] = {}

    def client_job(index):
        rng = np.random.default_rng(index)
        remote = WorldModel.load("remote", address=server.address, timeout_s=30, retries=0)
        scene, outcomes = remote.observe(obs), []
        for _ in range(49):
            kind = rng.choice(["relation", "ask", "imagine", "edit", "info"], p=[0.4, 0.2, 0.15, 0.15, 0.1])
            if kind == "relation":
                pair = list(expected)[rng.integers(len(expected))]
                outcomes.append(remote.relation(scene, *pair) == expected[pair])
            elif kind == "ask":
                outcomes.append(remote.ask(scene, "How many objects are there?").value == 3)
            elif kind == "imagine":
                outcomes.append(np.array_equal(remote.imagine(scene, CameraMove(yaw_deg=15)).rgb, expected_view))
            elif kind == "edit":
                edited = remote.edit(scene, MoveObject("yellow cube", [-0.15, 0.15, 0.40]))
                outcomes.append(remote.relation(edited, "yellow cube", "red cube").frame == "camera")
                remote.backend.release(edited)
            else:
                outcomes.append(remote.info()["server"]["status"] == "ok")
        remote.backend.release(scene)
        remote.close()
        results[index] = outcomes

    before = server.info()["requests"]
    threads = [threading.Thread(target=client_job, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(results) == list(range(8))
    assert all(len(outcomes) == 49 and all(outcomes) for outcomes in results.values())
    info = server.info()
    assert info["busy"] == 0 and info["queue_depth"] == 0 and info["in_flight"] == 0
    assert info["requests"] - before >= 8 * 50


# -- security and command line ----------------------------------------------------------------------------

def test_curve_keys_encrypt_and_authenticate(local, obs, tmp_path):
    from joyai_embodied.backends.remote.keys import generate_keys

    paths = generate_keys(tmp_path / "keys", clients=["robot1"])
    with ModelServer(local, LOOPBACK, keys_dir=str(tmp_path / "keys")) as secure:
        trusted = WorldModel.load("remote", address=secure.address, timeout_s=10,
                                  server_key=str(paths.server_public), client_key=str(paths.client_secrets["robot1"]))
        assert trusted.info()["server"]["secure"] is True
        assert trusted.relation(trusted.observe(obs), "red cube", "blue box").distance_m > 0
        trusted.close()


def test_curve_key_mismatch_is_a_handshake_error_within_seconds_naming_the_cause(local, tmp_path):
    """Issue 12 item 8: before, each case was a RequestTimeoutError after (retries + 1) x timeout_s."""
    from joyai_embodied.backends.remote.keys import generate_keys

    good = generate_keys(tmp_path / "keys", clients=["robot1"])
    other = generate_keys(tmp_path / "other", clients=["robot1"])  # keys of another deployment
    secure = ModelServer(local, LOOPBACK, keys_dir=str(tmp_path / "keys")).start()
    plain = ModelServer(local, LOOPBACK).start()
    cases = [  # (server, client options, words the message must contain)
        (secure, {}, "requires CURVE keys"),
        (secure, {"server_key": str(good.server_public), "client_key": str(other.client_secrets["robot1"])},
         "authorized_clients"),
        (secure, {"server_key": str(other.server_public), "client_key": str(good.client_secrets["robot1"])},
         "server_key"),
        (plain, {"server_key": str(good.server_public), "client_key": str(good.client_secrets["robot1"])},
         "without --keys"),
    ]
    try:
        for server, options, words in cases:
            client = ModelClient(server.address, timeout_s=20, retries=2, **options)
            start = time.monotonic()
            with pytest.raises(errors.HandshakeError, match=words) as caught:
                client.info()
            assert time.monotonic() - start < 3.0 and server.address in str(caught.value)
            client.close()
    finally:
        secure.stop()
        plain.stop()


def test_serving_beyond_loopback_needs_keys_or_insecure(local):
    with pytest.raises(InvalidInputError) as caught:
        ModelServer(local, "tcp://0.0.0.0:5555")
    assert caught.value.field == "bind" and "--keys" in str(caught.value)
    ModelServer(local, "tcp://0.0.0.0:5555", insecure=True)  # allowed when explicit (not started here)
    from joyai_embodied.cli import main

    assert main(["serve-model", "--bind", "tcp://0.0.0.0:5555"]) == 2


def test_cli_generates_keys(tmp_path, capsys):
    from joyai_embodied.cli import main

    assert main(["serve-model", "--generate-keys", str(tmp_path), "--clients", "arm", "cart"]) == 0
    assert (tmp_path / "server.key").is_file() and (tmp_path / "authorized_clients" / "cart.key").is_file()
    assert (tmp_path / "clients" / "arm.key_secret").stat().st_mode & 0o077 == 0
    assert "server_key" in capsys.readouterr().out


# -- issue 12 regressions -----------------------------------------------------------------------------------

def test_two_clients_with_the_same_request_id_each_get_their_own_reply(server, obs):
    """Item 3: before, client B received A's observe result (same handle) and A got nothing."""
    sockets = []
    for name in (b"client-a", b"client-b"):
        context = zmq.Context()
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.setsockopt(zmq.ROUTING_ID, name)
        sock.connect(server.address)
        sockets.append((context, sock))
    try:
        for _, sock in sockets:
            send(sock, request_frames("observe", {"observation": obs}, request_id="same-id"))
        replies = [receive(sock) for _, sock in sockets]
        assert all(r["ok"] and r["id"] == "same-id" for r in replies)
        assert replies[0]["result"]["handle"] != replies[1]["result"]["handle"]
        assert not any(sock.poll(200) for _, sock in sockets)  # nothing else arrives
    finally:
        for context, sock in sockets:
            sock.close()
            context.term()


def test_imagine_batch_over_the_frame_limit_is_refused_before_any_work(server, remote, raw, obs):
    """Item 5: before, 22+ moves failed with '132 array frames exceed the limit' after every view was computed."""
    scene = remote.observe(obs)
    moves = [CameraMove(yaw_deg=i) for i in range(wire.MAX_BATCH_VIEWS + 6)]
    with pytest.raises(InvalidInputError) as caught:  # the client refuses before sending
        remote.imagine_batch(scene, moves)
    assert caught.value.field == "moves" and str(wire.MAX_BATCH_VIEWS) in str(caught.value)
    failed = server.info()["failed"]
    send(raw, request_frames("imagine_batch", {"scene": scene.data.handle, "moves": moves}, "big"))
    reply = receive(raw)  # the server refuses it too, from the I/O thread: no view is computed
    assert reply["error"]["field"] == "params.moves" and str(wire.MAX_BATCH_VIEWS) in reply["error"]["message"]
    assert server.info()["failed"] == failed
    assert len(remote.imagine_batch(scene, moves[:wire.MAX_BATCH_VIEWS])) == wire.MAX_BATCH_VIEWS
    assert wire.MAX_BATCH_VIEWS * wire.ARRAYS_PER_VIEW <= wire.MAX_ARRAYS


def test_an_image_over_the_payload_limit_is_refused_naming_the_limit_and_the_largest_image(server):
    """Item 10: the limit is in the message (bytes and the largest image that fits), on both sides."""
    big = synthetic_observe(front_camera(800, 600), default_boxes())  # ~5.3 MB against the fixture's 4 MiB
    remote = WorldModel.load("remote", address=server.address, timeout_s=20, retries=0)
    side = wire.largest_square_image(4 * 2**20)
    try:
        with pytest.raises(wire.WireError, match=f"about {side}x{side} pixels") as caught:
            remote.observe(big)  # this client allows 64 MiB: the server refuses it
        assert caught.value.code == "too_large" and str(4 * 2**20) in str(caught.value)
        client = ModelClient(server.address, max_request_bytes=4 * 2**20)
        with pytest.raises(InvalidInputError, match=f"about {side}x{side} pixels") as caught:
            client.call("observe", {"observation": big})  # refused before sending
        assert caught.value.field == "request"
        client.close()
    finally:
        remote.close()


@pytest.mark.parametrize("argv, words", [
    (["--max-payload-mb", "nan"], "--max-payload-mb"),
    (["--reply-cache-mb", "-1"], "--reply-cache-mb"),
    (["--max-queue", "0"], "--max-queue"),
    (["--workers", "0"], "--workers"),
    (["--workers", "65"], "at most 64"),
    (["--bind", "tcp://127.0.0.1:99999"], "1-65535"),
    (["--bind", "udp://127.0.0.1:5555"], "bind"),
    (["--generate-keys", "/proc/x"], "/proc/x"),
])
def test_serve_model_bad_options_end_in_one_line_and_exit_2(argv, words, capsys):
    """Item 9: before, nan was a traceback, port 99999 served on a random port, /proc/x a traceback."""
    from joyai_embodied.cli import main

    try:
        code = main(["serve-model", *argv])
    except SystemExit as exc:  # argparse's own refusal
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert words in err.strip().splitlines()[-1], err


def test_a_retry_whose_reply_was_dropped_is_told_so_not_run_again(local, obs):
    """At most once even when the reply store had no room for the reply (here: a 1 KiB store)."""
    with ModelServer(local, LOOPBACK, reply_cache_bytes=1024) as tiny:
        client = ModelClient(tiny.address, timeout_s=20)
        handle = client.call("observe", {"observation": obs})["handle"]
        context = zmq.Context()
        sock = context.socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        sock.connect(tiny.address)
        frames = request_frames("edit", {"scene": handle, "edit": MoveObject("red cube", [0.1, 0.1, 0.4])}, "e1")
        send(sock, frames)
        assert receive(sock)["ok"]
        scenes = tiny.info()["scenes"]
        send(sock, frames)
        again = receive(sock)
        assert again["ok"] is False and "already ran once" in again["error"]["message"]
        assert tiny.info()["scenes"] == scenes  # not applied a second time
        sock.close()
        context.term()
        client.close()
