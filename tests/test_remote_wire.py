"""The model server's wire format: arrays and core types round-trip exactly; anything else is refused."""

import dataclasses

import msgpack
import numpy as np
import pytest

from joyai_embodied import (CameraMove, CameraPose, ImaginedView, InvalidInputError, MoveObject, Observation,
                            Relation, UnknownObjectError)
from joyai_embodied.camera import look_at
from joyai_embodied import errors
from joyai_embodied.backends.remote import wire

K = np.array([[100.0, 0, 31.5], [0, 100.0, 23.5], [0, 0, 1]])
POSE = look_at(np.array([0.7, 0.0, 1.0]), np.array([0.0, 0.0, 0.4]))


def same_values(a, b) -> bool:
    """Dataclass equality where NaN equals NaN (Relation's signed offsets default to NaN)."""
    if type(a) is not type(b):
        return False
    for x, y in zip(dataclasses.astuple(a), dataclasses.astuple(b)):
        if isinstance(x, float) and isinstance(y, float) and np.isnan(x) and np.isnan(y):
            continue
        if x != y:
            return False
    return True


def roundtrip(header):
    frames = wire.encode(header)
    return wire.decode([bytes(f) for f in frames]).header


def request(**fields):
    return {"v": wire.PROTOCOL_VERSION, "id": "r1", **fields}


@pytest.mark.parametrize("dtype", ["uint8", "int32", "float32", "float64", "bool", "uint16", "int64"])
def test_arrays_round_trip_with_dtype_and_shape(dtype):
    rng = np.random.default_rng(0)
    array = (rng.random((5, 7, 3)) * 100).astype(dtype)
    out = roundtrip(request(params={"a": array, "empty": np.zeros((0, 3), dtype)}))["params"]
    assert out["a"].dtype == np.dtype(dtype) and out["a"].shape == (5, 7, 3)
    np.testing.assert_array_equal(out["a"], array)
    assert out["empty"].shape == (0, 3)
    out["a"][0, 0, 0] = 1  # the receiver owns a writable copy


def test_non_contiguous_and_big_endian_arrays_arrive_as_values():
    array = np.arange(24, dtype=">i4").reshape(4, 6)[:, ::2]
    out = roundtrip(request(params={"a": array}))["params"]["a"]
    np.testing.assert_array_equal(out, array)
    assert out.dtype == np.dtype("int32")


def test_arrays_travel_as_raw_frames_not_inside_the_header():
    frames = wire.encode(request(params={"rgb": np.zeros((48, 64, 3), np.uint8)}))
    assert len(frames) == 2 and len(frames[0]) < 200 and len(frames[1]) == 48 * 64 * 3


def test_core_types_are_rebuilt_through_their_constructors():
    rng = np.random.default_rng(1)
    obs = Observation(rgb=rng.integers(0, 255, (48, 64, 3), dtype=np.uint8),
                      depth=rng.uniform(0.5, 1.5, (48, 64)).astype(np.float32), intrinsics=K, cam_to_world=POSE,
                      segmentation=rng.integers(0, 3, (48, 64)).astype(np.int32), labels={1: "red cube", 2: "mug"})
    view = ImaginedView(obs.rgb, obs.depth, None, K, POSE, np.ones((48, 64), bool), "geometric")
    relation = Relation("red cube", "mug", True, False, False, True, False, False, 0.12, "camera")
    values = {"obs": obs, "move": CameraMove(yaw_deg=30, zoom=1.5), "pose": CameraPose(POSE, K, 64, 48),
              "edit": MoveObject("red cube", [0.1, 0.0, 0.4]), "views": (view,), "relation": relation}
    out = roundtrip(request(result=values))["result"]
    assert out["move"] == CameraMove(yaw_deg=30, zoom=1.5)
    assert out["edit"] == MoveObject("red cube", (0.1, 0.0, 0.4))
    assert same_values(out["relation"], relation)
    assert out["obs"].labels == {1: "red cube", 2: "mug"}
    np.testing.assert_array_equal(out["obs"].depth, obs.depth)
    np.testing.assert_array_equal(out["pose"].cam_to_world, POSE)
    assert isinstance(out["views"], list) and isinstance(out["views"][0], ImaginedView)
    assert out["views"][0].segmentation is None and out["views"][0].valid_mask.dtype == bool
    np.testing.assert_array_equal(out["views"][0].rgb, obs.rgb)


def test_a_core_type_with_bad_fields_is_refused_like_in_process():
    tree = request(params={"move": {"__t__": "CameraMove", "f": {"zoom": 0.0}}})
    with pytest.raises(InvalidInputError) as caught:
        wire.decode([msgpack.packb(tree)])
    assert caught.value.field == "move.zoom"


@pytest.mark.parametrize("value", [object(), {1.5: "float key"}, np.array(["text"]), lambda: 0])
def test_values_without_a_wire_form_are_refused(value):
    with pytest.raises(wire.WireError) as caught:
        wire.encode(request(params={"x": value}))
    assert caught.value.code == "malformed"


def bad_messages():
    ok_array = {"__nd__": 0, "dtype": "uint8", "shape": [2, 2]}
    return {
        "not msgpack": [b"\xc1\xff\x00garbage"],
        "header is a list": [msgpack.packb([1, 2, 3])],
        "no frames": [],
        "unknown type tag": [msgpack.packb(request(params={"x": {"__t__": "os.system", "f": {}}}))],
        "object dtype": [msgpack.packb(request(params={"x": {**ok_array, "dtype": "object"}})), b"1234"],
        "size mismatch": [msgpack.packb(request(params={"x": ok_array})), b"123"],
        "dangling frame": [msgpack.packb(request(params={})), b"1234"],
        "frame used twice": [msgpack.packb(request(params={"x": ok_array, "y": ok_array})), b"1234"],
        "negative shape": [msgpack.packb(request(params={"x": {**ok_array, "shape": [-1, 4]}})), b"1234"],
        "too deep": [msgpack.packb(request(params=[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]))],
    }


@pytest.mark.parametrize("name", sorted(bad_messages()))
def test_malformed_messages_raise_wire_errors(name):
    with pytest.raises(wire.WireError) as caught:
        wire.decode(bad_messages()[name])
    assert caught.value.code == "malformed"


def test_wrong_protocol_version_is_named():
    with pytest.raises(wire.WireError) as caught:
        wire.decode([msgpack.packb({"v": 99, "id": "x", "method": "info"})])
    assert caught.value.code == "version" and "99" in str(caught.value) and str(wire.PROTOCOL_VERSION) in str(
        caught.value)


def test_oversize_arrays_and_payloads_are_refused_before_allocating():
    huge = {"__nd__": 0, "dtype": "float64", "shape": [100000, 100000]}  # 80 GB if it were trusted
    with pytest.raises(wire.WireError) as caught:
        wire.decode([msgpack.packb(request(params={"x": huge})), b"12345678"])
    assert caught.value.code == "too_large"
    frames = [bytes(f) for f in wire.encode(request(params={"x": np.zeros(300_000, np.uint8)}))]
    with pytest.raises(wire.WireError) as caught:
        wire.decode(frames, max_payload_bytes=200_000)
    assert caught.value.code == "too_large" and "200000" in str(caught.value)


def test_error_fields_round_trip_every_error_class_with_its_attributes():
    cases = [InvalidInputError("depth", "float metres", (1, 2)), errors.ImpossibleCameraMoveError("move.pitch", "x", 3),
             UnknownObjectError("green cube", ["red cube"]), errors.AmbiguousObjectError("cube", ["red cube", "a cube"]),
             errors.SceneExpiredError("abc"), errors.ServerBusyError("full"), errors.CheckpointError("no weights"),
             errors.BackendUnavailableError("no gpu"), errors.HandshakeError("keys")]
    for sent in cases:
        fields = errors.error_to_fields(sent)
        assert msgpack.unpackb(msgpack.packb(fields)) == fields  # plain values only: any transport carries them
        back = errors.error_from_fields(fields)
        assert type(back) is type(sent) and str(back) == str(sent)
        assert errors.error_to_fields(back) == fields
    back = errors.error_from_fields(errors.error_to_fields(InvalidInputError("depth", "float metres", "uint16")))
    assert back.field == "depth" and back.expected == "float metres" and back.got == "uint16"
    back = errors.error_from_fields({"type": "KeyError", "message": "boom"}, "tcp://h:1")
    assert type(back) is errors.RemoteError and "KeyError" in str(back) and "tcp://h:1" in str(back)
    assert type(errors.error_from_fields(["not", "a", "map"])) is errors.RemoteError


def test_errors_cross_the_wire_as_the_same_types():
    sent = InvalidInputError("depth", "float metres", "uint16")
    back = wire.error_from_wire(roundtrip(request(error=wire.error_to_wire(sent)))["error"])
    assert type(back) is InvalidInputError and back.field == "depth" and back.expected == "float metres"
    back = wire.error_from_wire(wire.error_to_wire(UnknownObjectError("green cube", ["red cube", "mug"])))
    assert type(back) is UnknownObjectError and back.known == ["mug", "red cube"]
    back = wire.error_from_wire(wire.error_to_wire(errors.SceneExpiredError("abc")))
    assert isinstance(back, errors.SceneExpiredError) and back.handle == "abc" and "observe" in str(back)
    back = wire.error_from_wire(wire.error_to_wire(KeyError("boom")), "tcp://h:1")
    assert type(back).__name__ == "RemoteError" and "KeyError" in str(back) and "tcp://h:1" in str(back)


def test_peek_request_id_reads_ids_of_undecodable_messages():
    header = msgpack.packb({"v": 99, "id": "abc"})
    assert wire.peek_request_id([header]) == "abc"
    assert wire.peek_request_id([b"\xc1"]) is None
