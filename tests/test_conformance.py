"""Conformance: the same call sequence over every transport gives the same results as in-process.

Each transport is a factory in :data:`TRANSPORTS`: a context manager that yields a
:class:`~joyai_embodied.WorldModel` reaching the geometric backend through that transport. A new transport
joins the suite with one entry here (e.g. ``TRANSPORTS["ros"] = ros_transport``); nothing else changes.
The sequence (:func:`run_sequence`) covers observe, relations in the camera, world and another camera's frame,
ask, imagine (orbit and pose), imagine_batch, edits (move and rotate) and relations after them,
answer_with_imagination, unknown names and bad input. Results are compared field by field: objects, relations
and answers exactly (floats within 1e-6), imagined arrays within 1e-6, errors by type and every field.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Any, Callable, ContextManager, Iterator

import numpy as np
import pytest

from joyai_embodied import CameraMove, MoveObject, RotateObject, WorldModel, errors
from joyai_embodied.evaluation.synthetic import default_boxes, front_camera
from joyai_embodied.evaluation.synthetic import observe as synthetic_observe

pytestmark = pytest.mark.timeout(120)
#: Float tolerance between transports (float64 geometry on both sides; the wire carries exact bytes).
TOLERANCE = 1e-6


@contextlib.contextmanager
def inprocess_transport() -> Iterator[WorldModel]:
    with WorldModel.load("geometric") as model:
        yield model


@contextlib.contextmanager
def zmq_transport() -> Iterator[WorldModel]:
    from joyai_embodied.serve.zmq_server import ModelServer

    with ModelServer(WorldModel.load("geometric"), "tcp://127.0.0.1:*") as server:
        with WorldModel.load("remote", address=server.address, timeout_s=30, retries=0) as model:
            yield model


@contextlib.contextmanager
def ros_transport() -> Iterator[WorldModel]:
    """``joyai-embodied ros`` in a child process (this run's own domain, loopback), reached as backend "ros"."""
    pytest.importorskip("rclpy")
    pytest.importorskip("joyai_interfaces")
    with WorldModel.load("ros", preset="geometric", start_nodes=True, timeout_s=60) as model:
        yield model


@contextlib.contextmanager
def ray_transport() -> Iterator[WorldModel]:
    """``serve-model --ray --replicas 2`` in its own loopback-only network namespace, over an ipc socket."""
    from ray_namespace import WHY_NOT, serve_model_over_ray

    if WHY_NOT:
        pytest.skip(WHY_NOT)
    with serve_model_over_ray(replicas=2) as address:
        with WorldModel.load("remote", address=address, timeout_s=60, retries=0) as model:
            yield model


#: name -> factory of a context manager yielding a WorldModel over that transport. "inprocess" is the reference.
TRANSPORTS: dict[str, Callable[[], ContextManager[WorldModel]]] = {
    "inprocess": inprocess_transport,
    "zmq": zmq_transport,
    "ros": ros_transport,
    "ray": ray_transport,
}
REFERENCE = "inprocess"


def observation():
    """A deterministic frame: the analytic tabletop (exact depth and segmentation) at a small size."""
    return synthetic_observe(front_camera(160, 120), default_boxes())


def run_sequence(model: WorldModel) -> list[tuple[str, Any]]:
    """Runs the conformance calls; returns ``[(step, plain result or error fields)]`` in order."""
    obs = observation()
    steps: list[tuple[str, Any]] = []

    def step(name: str, call: Callable[[], Any]) -> Any:
        try:
            value = call()
        except errors.JoyAIError as exc:  # part of the contract: the same error, the same fields
            steps.append((name, ("error", errors.error_to_fields(exc))))
            return None
        steps.append((name, plain(value)))
        return value

    other_camera = front_camera(160, 120, yaw_deg=90)
    scene = step("observe", lambda: model.observe(obs))
    for subject, reference in [("red cube", "blue box"), ("yellow cube", "red cube")]:
        for frame in ("camera", "world", other_camera):
            label = frame if isinstance(frame, str) else "other camera"
            step(f"relation {subject}/{reference} {label}",
                 lambda: model.relation(scene, subject, reference, frame=frame))
    for question in ["How far is the red cube from the blue box?", "How many objects are there?",
                     "Is the red cube left of the blue box?", "Which object is the largest?"]:
        step(f"ask {question}", lambda: model.ask(scene, question))
    step("imagine orbit", lambda: model.imagine(scene, CameraMove(yaw_deg=25, pitch_deg=-5, zoom=1.1), seed=0))
    step("imagine pose", lambda: model.imagine(scene, front_camera(128, 96, yaw_deg=-30)))
    step("imagine_batch", lambda: model.imagine_batch(scene, [CameraMove(yaw_deg=10), CameraMove(yaw_deg=-10)]))
    moved = step("edit move", lambda: model.edit(scene, MoveObject("red cube", [0.15, 0.12, 0.40])))
    step("relation after move", lambda: model.relation(moved, "red cube", "blue box"))
    rotated = step("edit rotate", lambda: model.edit(moved, RotateObject("blue box", yaw_deg=90)))
    step("relation after rotate", lambda: model.relation(rotated, "blue box", "yellow cube", frame="world"))
    step("relation of the original scene", lambda: model.relation(scene, "red cube", "blue box"))
    step("relation by id and SceneObject", lambda: model.relation(scene, scene.find("red cube").id,
                                                                  scene.find("blue box")))
    step("edit by id", lambda: model.edit(scene, RotateObject(scene.find("yellow cube").id, yaw_deg=45)))
    step("answer_with_imagination",
         lambda: model.answer_with_imagination(scene, "Is the red cube left of the blue box?", max_views=2))
    # unknown names
    step("relation unknown", lambda: model.relation(scene, "green cylinder", "red cube"))
    step("edit unknown", lambda: model.edit(scene, MoveObject("purple mug", [0.0, 0.0, 0.4])))
    step("ambiguous", lambda: model.relation(scene, "cube", "blue box"))
    # bad input
    step("bad frame", lambda: model.relation(scene, "red cube", "blue box", frame="sideways"))
    step("bad question", lambda: model.ask(scene, "   "))
    step("bad max_views", lambda: model.answer_with_imagination(scene, "Is the red cube left of the blue box?",
                                                              max_views=99))
    step("bad move", lambda: model.imagine(scene, "yaw 30"))
    step("camera below the table", lambda: model.imagine(scene, CameraMove(pitch_deg=-80)))  # decided by the backend
    step("edit off the table", lambda: model.edit(scene, MoveObject("red cube", [5.0, 5.0, 0.4])))
    step("bad observation", lambda: model.observe({**obs.__dict__, "depth": obs.depth * 1000}))
    return steps


def plain(value: Any) -> Any:
    """A comparable form: dataclasses as (type name, fields), arrays kept, transport-private state dropped."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        skip = {"observation", "data", "backend"} if type(value).__name__ == "Scene" else set()
        return (type(value).__name__, {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)
                                       if f.name not in skip})
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, np.generic):
        return value.item()
    return value


def assert_same(got: Any, want: Any, where: str) -> None:
    """Equality with NaN == NaN and floats (and float arrays) within TOLERANCE."""
    if isinstance(want, np.ndarray) or isinstance(got, np.ndarray):
        got, want = np.asarray(got), np.asarray(want)
        assert got.shape == want.shape and got.dtype == want.dtype, f"{where}: {got.dtype}{got.shape} vs " \
                                                                    f"{want.dtype}{want.shape}"
        if want.dtype.kind == "f":
            np.testing.assert_allclose(got, want, atol=TOLERANCE, rtol=0, equal_nan=True, err_msg=where)
        else:
            np.testing.assert_array_equal(got, want, err_msg=where)
    elif isinstance(want, float) and isinstance(got, float):
        assert (np.isnan(got) and np.isnan(want)) or abs(got - want) <= TOLERANCE, f"{where}: {got} vs {want}"
    elif isinstance(want, (list, tuple)):
        assert isinstance(got, (list, tuple)) and len(got) == len(want), f"{where}: {got!r} vs {want!r}"
        for i, (g, w) in enumerate(zip(got, want)):
            assert_same(g, w, f"{where}[{i}]")
    elif isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{where}: keys {sorted(got)} vs {sorted(want)}"
        for key in want:
            assert_same(got[key], want[key], f"{where}.{key}")
    else:
        assert got == want, f"{where}: {got!r} vs {want!r}"


@pytest.fixture(scope="module")
def reference() -> list[tuple[str, Any]]:
    with TRANSPORTS[REFERENCE]() as model:
        return run_sequence(model)


def test_the_sequence_covers_results_and_errors(reference):
    outcomes = dict(reference)
    assert outcomes["observe"][0] == "Scene" and len(outcomes["observe"][1]["objects"]) == 3
    errors_seen = {name: value[1]["type"] for name, value in reference if isinstance(value, tuple)
                   and value[0] == "error"}
    assert errors_seen["relation unknown"] == "UnknownObjectError"
    assert errors_seen["edit unknown"] == "UnknownObjectError"
    assert errors_seen["bad frame"] == "InvalidInputError" and errors_seen["bad observation"] == "InvalidInputError"
    assert "imagine orbit" not in errors_seen and "edit rotate" not in errors_seen


@pytest.mark.parametrize("transport", sorted(set(TRANSPORTS) - {REFERENCE}))
def test_transport_gives_the_in_process_results(transport, reference):
    with TRANSPORTS[transport]() as model:
        outcomes = run_sequence(model)
    assert [name for name, _ in outcomes] == [name for name, _ in reference]
    for (name, got), (_, want) in zip(outcomes, reference):
        assert_same(got, want, f"{transport}: {name}")
