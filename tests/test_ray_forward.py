"""GroupForwarder (serve/ray_forward.py): requests that find every lane busy travel together in one call."""

from __future__ import annotations

import threading
import time

import pytest

from joyai_embodied.serve.ray_forward import GroupForwarder


class _Gate:
    """A send_group that records each call's items and holds the first call until released."""

    def __init__(self, fail: bool = False):
        self.calls: list[list[tuple]] = []
        self.first_started, self.release = threading.Event(), threading.Event()
        self.fail = fail

    def __call__(self, items: list[tuple]) -> list:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            self.first_started.set()
            assert self.release.wait(10)
        if self.fail and len(self.calls) > 1:
            raise ConnectionError("replica lost")
        return [("reply", item[2]) for item in items]


def _submit_all(forwarder: GroupForwarder, ids: list[str], out: dict) -> list[threading.Thread]:
    def one(rid: str) -> None:
        try:
            out[rid] = forwarder.submit(("relation", {}, rid))
        except Exception as exc:
            out[rid] = exc
    threads = [threading.Thread(target=one, args=(rid,)) for rid in ids]
    for thread in threads:
        thread.start()
    return threads


def _wait_queued(forwarder: GroupForwarder, count: int) -> None:
    deadline = time.monotonic() + 10
    while len(forwarder._queue) < count and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(forwarder._queue) == count


def test_a_request_finding_a_lane_free_goes_alone_and_waiting_ones_share_the_next_call():
    gate = _Gate()
    forwarder = GroupForwarder(gate, lanes=1, max_group=3)
    out: dict = {}
    first = _submit_all(forwarder, ["a"], out)
    assert gate.first_started.wait(10)
    rest = _submit_all(forwarder, ["b", "c", "d", "e"], out)
    _wait_queued(forwarder, 4)
    gate.release.set()
    for thread in first + rest:
        thread.join(10)
    assert [len(call) for call in gate.calls] == [1, 3, 1]  # alone; then at most max_group; then the rest
    assert sorted(rid for call in gate.calls for _, _, rid in call) == ["a", "b", "c", "d", "e"]  # each once
    assert out == {rid: ("reply", rid) for rid in "abcde"}  # every caller got its own reply
    assert (forwarder.calls, forwarder.grouped) == (3, 5)


def test_heavy_requests_are_never_grouped():
    gate = _Gate()
    forwarder = GroupForwarder(gate, lanes=1, max_group=8)
    out: dict = {}

    def submit(method: str, rid: str) -> threading.Thread:
        thread = threading.Thread(target=lambda: out.__setitem__(rid, forwarder.submit((method, {}, rid))))
        thread.start()
        return thread
    threads = [submit("relation", "a")]
    assert gate.first_started.wait(10)
    for method, rid in (("observe", "o1"), ("relation", "r1"), ("observe", "o2"), ("relation", "r2")):
        threads.append(submit(method, rid))
        _wait_queued(forwarder, len(threads) - 1)  # queued in this order
    gate.release.set()
    for thread in threads:
        thread.join(10)
    groups = [sorted(rid for _, _, rid in call) for call in gate.calls[1:]]
    assert sorted(groups) == sorted([["o1"], ["o2"], ["r1", "r2"]])  # observes alone, relations together
    assert len(out) == 5


def test_a_failed_call_raises_in_every_request_it_carried_and_the_lane_is_freed():
    gate = _Gate(fail=True)
    forwarder = GroupForwarder(gate, lanes=1, max_group=8)
    out: dict = {}
    first = _submit_all(forwarder, ["a"], out)
    assert gate.first_started.wait(10)
    rest = _submit_all(forwarder, ["b", "c"], out)
    _wait_queued(forwarder, 2)
    gate.release.set()
    for thread in first + rest:
        thread.join(10)
    assert out["a"] == ("reply", "a")
    assert isinstance(out["b"], ConnectionError) and isinstance(out["c"], ConnectionError)
    with pytest.raises(ConnectionError):  # the lane was given back: a later request is sent (and fails) too
        forwarder.submit(("relation", {}, "z"))
