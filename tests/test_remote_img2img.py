"""``init`` / ``strength`` (img2img imagination) over the ZMQ wire: sent, passed on, never merged across values.

A registered backend (a real GeometricBackend subclass whose imagine methods take ``init`` / ``strength``, as
joyai-image's do) records what reaches it, so the tests see exactly what crossed the wire and how the server's
worker batched it. One test runs the real joyai-image backend with the tiny random checkpoint behind the server
and compares the remote views with the in-process ones. The gate of the recording backend also shows that
``info`` is answered while a request holds the model.
"""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from joyai_embodied import CameraMove, InvalidInputError, WorldModel
from joyai_embodied.backends.base import register_backend
from joyai_embodied.backends.geometric import GeometricBackend
from joyai_embodied.evaluation.synthetic import default_boxes, front_camera
from joyai_embodied.evaluation.synthetic import observe as synthetic_observe
from joyai_embodied.serve.zmq_server import ModelServer

pytestmark = pytest.mark.timeout(120)
LOOPBACK = "tcp://127.0.0.1:*"
BACKEND = "test-img2img-recorder"


class Img2ImgRecorder(GeometricBackend):
    """Geometric views, plus a record of every imagine call's ``init`` / ``strength`` and batch size.

    ``gate`` (cleared) holds every imagine call until it is set, so requests pile up in the server's queue.
    """

    name = BACKEND

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, int, object, object]] = []
        self.gate = threading.Event()
        self.gate.set()

    def imagine(self, scene, move, seed=None, init=None, strength=None):
        return self.imagine_batch(scene, [move], seed=seed, init=init, strength=strength)[0]

    def imagine_batch(self, scene, moves, seed=None, init=None, strength=None):
        self.gate.wait(30)
        self.calls.append(("imagine_batch", len(moves), init, strength))
        return [GeometricBackend.imagine(self, scene, move, seed=seed) for move in moves]


register_backend(BACKEND, Img2ImgRecorder)


@pytest.fixture(scope="module")
def obs():
    return synthetic_observe(front_camera(160, 120), default_boxes())


@pytest.fixture()
def served():
    """(server, the recording backend behind it, a remote WorldModel)."""
    model = WorldModel.load(BACKEND)
    with ModelServer(model, LOOPBACK, max_batch=8) as server:
        with WorldModel.load("remote", address=server.address, timeout_s=30, retries=0) as remote:
            yield server, model.backend, remote


def test_init_and_strength_reach_the_backend_only_when_set(served, obs):
    _, backend, remote = served
    scene = remote.observe(obs)
    remote.imagine(scene, CameraMove(yaw_deg=10), seed=1, init="geometric", strength=0.5)
    remote.imagine(scene, CameraMove(yaw_deg=10), seed=1)
    remote.imagine_batch(scene, [CameraMove(yaw_deg=5), CameraMove(yaw_deg=-5)], init="geometric", strength=0.3)
    remote.imagine_batch(scene, [CameraMove(yaw_deg=5)], strength=1.0)
    assert backend.calls == [("imagine_batch", 1, "geometric", 0.5), ("imagine_batch", 1, None, None),
                             ("imagine_batch", 2, "geometric", 0.3), ("imagine_batch", 1, None, 1.0)]


def test_out_of_range_strength_is_refused_naming_it(served, obs):
    _, backend, remote = served
    scene = remote.observe(obs)
    with pytest.raises(InvalidInputError) as raised:
        remote.imagine(scene, CameraMove(yaw_deg=10), strength=1.5)  # the client's WorldModel checks first
    assert raised.value.field == "strength"
    with pytest.raises(InvalidInputError) as raised:  # a raw request past the client check: the server names it
        remote.backend.client.call("imagine", {"scene": scene.data.handle, "move": CameraMove(yaw_deg=10),
                                               "strength": "half"})
    assert raised.value.field == "strength" and backend.calls == []


def test_a_server_backend_without_img2img_refuses_it_by_name(obs):
    with ModelServer(WorldModel.load("geometric"), LOOPBACK) as server:
        with WorldModel.load("remote", address=server.address, timeout_s=30, retries=0) as remote:
            scene = remote.observe(obs)
            with pytest.raises(InvalidInputError) as raised:
                remote.imagine(scene, CameraMove(yaw_deg=10), init="geometric")
            assert raised.value.field == "init" and "geometric backend does not take it" in str(raised.value)
            with pytest.raises(InvalidInputError) as raised:
                remote.imagine_batch(scene, [CameraMove(yaw_deg=10)], strength=0.5)
            assert raised.value.field == "strength"
            assert remote.imagine(scene, CameraMove(yaw_deg=10)).rgb.shape == (120, 160, 3)  # unset: as before


def test_queued_imagines_with_different_init_or_strength_are_never_merged(served, obs):
    server, backend, remote = served
    handle = remote.observe(obs).data.handle
    backend.gate.clear()  # the first request holds the worker; the rest queue up behind it
    variants = [{}, {"init": "geometric", "strength": 0.5}, {"init": "geometric", "strength": 0.25},
                {"strength": 1.0}]
    requests = [{}] + [variant for variant in variants for _ in range(3)]
    errors: list[BaseException] = []

    def send(params: dict) -> None:
        try:
            with WorldModel.load("remote", address=server.address, timeout_s=30, retries=0) as client:
                client.backend.client.call("imagine", {"scene": handle, "move": CameraMove(yaw_deg=10), **params})
        except BaseException as exc:  # noqa: BLE001 (reported by the assertion below)
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(params,)) for params in requests]
    threads[0].start()
    while not server.info()["running"]:
        time.sleep(0.01)
    for thread in threads[1:]:
        thread.start()
    deadline = time.monotonic() + 20
    while server.info()["queue_depth"] < len(requests) - 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    backend.gate.set()
    for thread in threads:
        thread.join(30)
    assert errors == []
    first, *batches = backend.calls
    assert first == ("imagine_batch", 1, None, None)
    # each queued variant ran as one batch of its own three requests: merged when equal, never across values
    assert sorted(batches, key=repr) == sorted([("imagine_batch", 3, v.get("init"), v.get("strength"))
                                                for v in variants], key=repr)
    assert server.info()["largest_batch"] == 3


def test_tiny_joyai_image_over_zmq_gives_the_in_process_img2img_view(tmp_path_factory, obs):
    pytest.importorskip("diffusers")
    pytest.importorskip("transformers")
    from joyai_embodied.backends.joyai_image import write_tiny_checkpoint

    checkpoint = write_tiny_checkpoint(tmp_path_factory.mktemp("joyai") / "tiny", seed=0)
    options = dict(path=checkpoint, device="cpu", dtype="float32", steps=2, resolution=64, max_new_tokens=24)
    local = WorldModel.load("joyai-image", **options)
    move = CameraMove(yaw_deg=10)
    here = local.observe(obs)
    want_fast = local.imagine(here, move, seed=0, init="geometric", strength=0.5)
    want_full = local.imagine(here, move, seed=0)
    with ModelServer(local, LOOPBACK) as server:
        with WorldModel.load("remote", address=server.address, timeout_s=60, retries=0) as remote:
            scene = remote.observe(obs)
            got_fast = remote.imagine(scene, move, seed=0, init="geometric", strength=0.5)
            got_batch = remote.imagine_batch(scene, [move], seed=0, init="geometric", strength=0.5)[0]
            got_full = remote.imagine(scene, move, seed=0)
    np.testing.assert_array_equal(got_fast.rgb, want_fast.rgb)
    np.testing.assert_array_equal(got_batch.rgb, want_fast.rgb)
    np.testing.assert_array_equal(got_full.rgb, want_full.rgb)
    assert not np.array_equal(want_fast.rgb, want_full.rgb)  # the parameters changed what was computed


def test_health_is_answered_while_a_request_holds_the_model(served, obs):
    server, backend, remote = served
    scene = remote.observe(obs)
    backend.gate.clear()
    running = threading.Thread(target=remote.imagine, args=(scene, CameraMove(yaw_deg=10)))
    running.start()
    try:
        while not server.info()["running"]:
            time.sleep(0.01)
        with WorldModel.load("remote", address=server.address, timeout_s=5, retries=0) as other:
            started = time.monotonic()
            info = other.info()["server"]
            took = time.monotonic() - started
        assert info["running"] == 1 and took < 2.0  # not behind the model's lock (a learned imagine takes minutes)
    finally:
        backend.gate.set()
        running.join(30)
