"""Every reply the ZMQ server holds, in one byte budget, keyed by (client identity, request id).

Two kinds of held reply share the budget: replies kept to answer a retried request again (the cache), and
replies handed to ZMQ that the client's connection has not taken yet (unread: a slow or stuck reader). Unread
bytes are known from ZMQ message trackers, which finish once ZMQ has written the frames to the socket. A
reply that would take a client (or the server) over its budget is not sent; it stays in the cache, so the
client gets it by retrying once it reads again.

Only the server's I/O thread uses these objects; they are not locked.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

#: Key of a reply: the client's ZMQ routing id and its request id, so ids of different clients never collide.
ReplyKey = tuple[bytes, str]
#: Keys of answered requests remembered after their reply was dropped (~100 bytes each), so a late retry is
#: told the request already ran instead of running it again; far more than any retry window spans.
MAX_ANSWERED_KEYS = 16384


@dataclass
class _Unread:
    key: ReplyKey
    size: int
    tracker: Any  # zmq.MessageTracker; ``done`` once ZMQ no longer holds the frames


def frames_size(frames: list) -> int:
    """Bytes in a list of frames (bytes, memoryviews or zmq.Frame)."""
    return sum(len(f.buffer) if hasattr(f, "buffer") else len(f) for f in frames)


class ReplyStore:
    """Replies kept for retries plus replies not yet taken by their clients, bounded together.

    Args:
        max_bytes: all held replies together (cache + unread); the cache gives way first.
        max_unread_bytes_per_client: unread replies one client may have; a client with none may always be sent
            one reply, however large.
        max_entries: most replies kept in the cache.
    """

    def __init__(self, max_bytes: int, max_unread_bytes_per_client: int, max_entries: int = 1024):
        self.max_bytes, self.max_entries = max_bytes, max_entries
        self.max_unread_per_client = max_unread_bytes_per_client
        self._cache: OrderedDict[ReplyKey, list] = OrderedDict()
        self._cache_bytes = 0
        self._unread: list[_Unread] = []
        self._answered: OrderedDict[ReplyKey, None] = OrderedDict()

    # -- the cache -----------------------------------------------------------------------------------------
    def cached(self, key: ReplyKey) -> list | None:
        """The kept reply to ``key``, or None."""
        return self._cache.get(key)

    def answered(self, key: ReplyKey) -> bool:
        """True when ``key`` was answered (its reply may since have been dropped from the cache)."""
        return key in self._answered

    def keep(self, key: ReplyKey, frames: list) -> bool:
        """Keeps a reply for retries, evicting the oldest while over budget; False when it cannot fit at all.

        The key is remembered as answered either way (the last :data:`MAX_ANSWERED_KEYS` of them).
        """
        self._answered[key] = None
        while len(self._answered) > MAX_ANSWERED_KEYS:
            self._answered.popitem(last=False)
        size = frames_size(frames)
        if size > self.max_bytes:
            return False
        self._cache[key] = frames
        self._cache_bytes += size
        self._shrink(0)
        return key in self._cache

    def _shrink(self, room: int) -> None:
        """Evicts cached replies (oldest first) until ``room`` more bytes fit in the budget."""
        while self._cache and (len(self._cache) > self.max_entries or self.held_bytes() + room > self.max_bytes):
            _, dropped = self._cache.popitem(last=False)
            self._cache_bytes -= frames_size(dropped)

    # -- unread replies ----------------------------------------------------------------------------------
    def _prune(self) -> None:
        self._unread = [u for u in self._unread if not u.tracker.done]

    def unread_bytes(self, identity: bytes | None = None) -> int:
        """Bytes handed to ZMQ and not yet written to the connection (of one client, or of all)."""
        self._prune()
        return sum(u.size for u in self._unread if identity is None or u.key[0] == identity)

    def held_bytes(self) -> int:
        """Cache bytes plus unread bytes of replies no longer in the cache (a reply in both counts once)."""
        self._prune()
        return self._cache_bytes + sum(u.size for u in self._unread if u.key not in self._cache)

    def may_send(self, key: ReplyKey, size: int) -> str | None:
        """None when a reply of ``size`` bytes may go to ``key``'s client now, else the reason it may not."""
        mine = self.unread_bytes(key[0])
        if mine and mine + size > self.max_unread_per_client:
            return (f"{mine} bytes of earlier replies to this client are still unread (limit "
                    f"{self.max_unread_per_client} bytes per client); read them before sending more")
        cached = key in self._cache
        self._shrink(0 if cached else size)
        if self.held_bytes() + (0 if cached else size) > self.max_bytes and self.held_bytes() > 0:
            return (f"the server holds {self.held_bytes()} bytes of replies that clients have not read (limit "
                    f"{self.max_bytes} bytes, --reply-cache-mb); retry later")
        return None

    def sent(self, key: ReplyKey, size: int, tracker: Any) -> None:
        """Records a reply handed to ZMQ, until its tracker says ZMQ let go of it."""
        if not tracker.done:
            self._unread.append(_Unread(key, size, tracker))

    def stats(self) -> dict[str, int]:
        """Counts and bytes, for ``info``."""
        return {"reply_cache_entries": len(self._cache), "reply_cache_bytes": self._cache_bytes,
                "unread_reply_bytes": self.unread_bytes(), "held_reply_bytes": self.held_bytes(),
                "max_held_reply_bytes": self.max_bytes}
