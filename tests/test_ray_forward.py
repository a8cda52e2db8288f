"""GroupForwarder (serve/ray_forward.py): requests that find every lane busy travel together in one call.

The forwarder runs in one event loop (the Serve handle's): each test drives it with ``asyncio.run``.
"""

from __future__ import annotations

import asyncio

import pytest

from joyai_embodied.serve.ray_forward import GroupForwarder

WAIT_S = 10.0


class _Gate:
    """A send_group coroutine that records each call's items and holds the first call until released."""

    def __init__(self, fail: bool = False):
        self.calls: list[list[tuple]] = []
        self.first_started, self.release = asyncio.Event(), asyncio.Event()
        self.fail = fail

    async def __call__(self, items: list[tuple]) -> list:
        self.calls.append(list(items))
        if len(self.calls) == 1:
            self.first_started.set()
            await asyncio.wait_for(self.release.wait(), WAIT_S)
        if self.fail and len(self.calls) > 1:
            raise ConnectionError("replica lost")
        return [("reply", item[2]) for item in items]


async def _settled(task: asyncio.Task) -> object:
    try:
        return await task
    except Exception as exc:
        return exc


def _submit(forwarder: GroupForwarder, rid: str, method: str = "relation") -> asyncio.Task:
    return asyncio.get_running_loop().create_task(forwarder.submit((method, {}, rid)))


async def _wait_queued(forwarder: GroupForwarder, count: int) -> None:
    for _ in range(1000):
        if len(forwarder._queue) >= count:
            break
        await asyncio.sleep(0.001)
    assert len(forwarder._queue) == count


def test_a_request_finding_a_lane_free_goes_alone_and_waiting_ones_share_the_next_call():
    async def scenario() -> tuple[_Gate, GroupForwarder, dict]:
        gate = _Gate()
        forwarder = GroupForwarder(gate, lanes=1, max_group=3)
        tasks = {"a": _submit(forwarder, "a")}
        await asyncio.wait_for(gate.first_started.wait(), WAIT_S)
        tasks.update({rid: _submit(forwarder, rid) for rid in "bcde"})
        await _wait_queued(forwarder, 4)
        gate.release.set()
        return gate, forwarder, {rid: await asyncio.wait_for(_settled(t), WAIT_S) for rid, t in tasks.items()}

    gate, forwarder, out = asyncio.run(scenario())
    assert [len(call) for call in gate.calls] == [1, 3, 1]  # alone; then at most max_group; then the rest
    assert sorted(rid for call in gate.calls for _, _, rid in call) == ["a", "b", "c", "d", "e"]  # each once
    assert out == {rid: ("reply", rid) for rid in "abcde"}  # every caller got its own reply
    assert (forwarder.calls, forwarder.grouped) == (3, 5)


def test_heavy_requests_are_never_grouped():
    async def scenario() -> tuple[_Gate, dict]:
        gate = _Gate()
        forwarder = GroupForwarder(gate, lanes=1, max_group=8)
        tasks = {"a": _submit(forwarder, "a")}
        await asyncio.wait_for(gate.first_started.wait(), WAIT_S)
        for method, rid in (("observe", "o1"), ("relation", "r1"), ("observe", "o2"), ("relation", "r2")):
            tasks[rid] = _submit(forwarder, rid, method)
            await _wait_queued(forwarder, len(tasks) - 1)  # queued in this order
        gate.release.set()
        return gate, {rid: await asyncio.wait_for(_settled(t), WAIT_S) for rid, t in tasks.items()}

    gate, out = asyncio.run(scenario())
    groups = [sorted(rid for _, _, rid in call) for call in gate.calls[1:]]
    assert sorted(groups) == sorted([["o1"], ["o2"], ["r1", "r2"]])  # observes alone, relations together
    assert out == {rid: ("reply", rid) for rid in ("a", "o1", "r1", "o2", "r2")}


def test_a_failed_call_raises_in_every_request_it_carried_and_the_lane_is_freed():
    async def scenario() -> tuple[dict, object]:
        gate = _Gate(fail=True)
        forwarder = GroupForwarder(gate, lanes=1, max_group=8)
        tasks = {"a": _submit(forwarder, "a")}
        await asyncio.wait_for(gate.first_started.wait(), WAIT_S)
        tasks.update({rid: _submit(forwarder, rid) for rid in "bc"})
        await _wait_queued(forwarder, 2)
        gate.release.set()
        out = {rid: await asyncio.wait_for(_settled(t), WAIT_S) for rid, t in tasks.items()}
        # the lane was given back: a later request is sent (and fails) too
        later = await asyncio.wait_for(_settled(_submit(forwarder, "z")), WAIT_S)
        return out, later

    out, later = asyncio.run(scenario())
    assert out["a"] == ("reply", "a")
    assert isinstance(out["b"], ConnectionError) and isinstance(out["c"], ConnectionError)
    assert isinstance(later, ConnectionError)


def test_a_caller_that_gave_up_is_not_sent():
    async def scenario() -> _Gate:
        gate = _Gate()
        forwarder = GroupForwarder(gate, lanes=1, max_group=8)
        first = _submit(forwarder, "a")
        await asyncio.wait_for(gate.first_started.wait(), WAIT_S)
        gone, kept = _submit(forwarder, "gone"), _submit(forwarder, "kept")
        await _wait_queued(forwarder, 2)
        gone.cancel()
        await asyncio.sleep(0)
        gate.release.set()
        await asyncio.wait_for(first, WAIT_S)
        assert await asyncio.wait_for(kept, WAIT_S) == ("reply", "kept")
        with pytest.raises(asyncio.CancelledError):
            await gone
        return gate

    gate = asyncio.run(scenario())
    assert [rid for call in gate.calls for _, _, rid in call] == ["a", "kept"]
