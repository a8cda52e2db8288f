"""Reading ROS 2 bags and writing single-file MCAP, through kept libraries only.

- :class:`McapWriter` writes one ``.mcap`` file (``ros2`` profile, ``ros2msg`` schemas, CDR messages) with the
  ``mcap`` library; message bytes come from ``rosbags``' CDR serializer. Foxglove opens the file and
  ``ros2 bag play`` plays it.
- :func:`open_bag` reads a rosbag2 directory (``metadata.yaml`` + MCAP or sqlite3 storage) with
  ``rosbags.highlevel.AnyReader``, or a bare ``.mcap`` file with the ``mcap`` reader plus ``rosbags``' type
  system built from the file's own schemas.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

from ..errors import InvalidInputError
from .ros_messages import TYPESTORE

#: MCAP chunk size: 4 MiB holds a 640x480 frame's images in one chunk, so one frame is one write.
CHUNK_SIZE = 4 * 1024 * 1024


class McapWriter:
    """A single-file MCAP writer for ROS 2 messages (``rosbags`` classes or already serialized CDR bytes).

    Args:
        path: the ``.mcap`` file to create (its folder is created).
        compression: ``"zstd"`` (smaller), ``"lz4"`` (faster; the default, recording must stay cheap) or
            ``"none"``.
        crcs: write the chunks' CRC-32 (False: 0, "not computed" in the MCAP spec; readers skip the check).
            Replay, which copies ~3 MB of input a 640x480 frame, spends ~1% of its time on them.
    """

    def __init__(self, path: str | Path, compression: str = "lz4", crcs: bool = True):
        from mcap.writer import CompressionType, Writer

        kinds = {"zstd": CompressionType.ZSTD, "lz4": CompressionType.LZ4, "none": CompressionType.NONE}
        if compression not in kinds:
            raise InvalidInputError("compression", f"one of {sorted(kinds)}", repr(compression))
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "wb")
        self._writer = Writer(self._file, chunk_size=CHUNK_SIZE, compression=kinds[compression], enable_crcs=crcs)
        self._writer.start(profile="ros2", library="joyai-embodied")
        self._schemas: dict[str, int] = {}
        self._channels: dict[str, tuple[int, str]] = {}
        self.counts: dict[str, int] = {}
        self._closed = False

    def _channel(self, topic: str, msgtype: str, msgdef: str | None) -> int:
        known = self._channels.get(topic)
        if known is not None:
            if known[1] != msgtype:
                raise InvalidInputError(topic, f"messages of one type ({known[1]})", msgtype)
            return known[0]
        if msgtype not in self._schemas:
            if msgdef is None:
                msgdef, _ = TYPESTORE.generate_msgdef(msgtype, ros_version=2)
            self._schemas[msgtype] = self._writer.register_schema(name=msgtype, encoding="ros2msg",
                                                                  data=msgdef.encode())
        channel = self._writer.register_channel(topic=topic, message_encoding="cdr",
                                                schema_id=self._schemas[msgtype])
        self._channels[topic] = (channel, msgtype)
        return channel

    def write(self, topic: str, msg: Any, log_time_ns: int) -> None:
        """Serializes ``msg`` (a ``rosbags`` message object) to CDR and writes it on ``topic``."""
        msgtype = msg.__msgtype__
        data = TYPESTORE.serialize_cdr(msg, msgtype)
        self.write_raw(topic, msgtype, data, log_time_ns)

    def write_raw(self, topic: str, msgtype: str, data: bytes | memoryview, log_time_ns: int,
                  msgdef: str | None = None) -> None:
        """Writes CDR bytes unchanged (copying a bag's topics); ``msgdef`` is the schema text for custom types."""
        channel = self._channel(topic, msgtype, msgdef)
        self._writer.add_message(channel_id=channel, log_time=int(log_time_ns), data=bytes(data),
                                 publish_time=int(log_time_ns), sequence=self.counts.get(topic, 0))
        self.counts[topic] = self.counts.get(topic, 0) + 1

    def add_metadata(self, name: str, values: Mapping[str, Any]) -> None:
        """An MCAP metadata record; values that are not strings are stored as JSON."""
        self._writer.add_metadata(name, {k: v if isinstance(v, str) else json.dumps(v) for k, v in values.items()})

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._writer.finish()
            self._file.close()

    def __enter__(self) -> "McapWriter":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


@dataclass(frozen=True)
class BagMessage:
    """One message read from a bag: topic, type, log time (ns), CDR bytes."""

    topic: str
    msgtype: str
    log_time_ns: int
    data: bytes


class BagReader:
    """Reads a ROS 2 bag: a rosbag2 directory (MCAP or sqlite3 storage) or a bare ``.mcap`` file.

    Use :func:`open_bag`; then ``topics`` (``{topic: msgtype}``), ``messages(topics)`` and
    ``deserialize(message)``.
    """

    def __init__(self, path: Path):
        self.path = path
        self.topics: dict[str, str] = {}
        self.msgdefs: dict[str, str] = {}  # topic -> schema text, to copy topics with their own definitions
        self._any = None
        self._file = None
        self._mcap = None
        self.typestore = TYPESTORE

    def open(self) -> "BagReader":
        from rosbags.highlevel import AnyReader

        if self.path.is_dir():
            if not (self.path / "metadata.yaml").is_file():
                raise InvalidInputError("bag", "a rosbag2 directory with metadata.yaml, or an .mcap file",
                                        f"{self.path} (no metadata.yaml)")
            try:
                self._any = AnyReader([self.path], default_typestore=TYPESTORE)
                self._any.open()
            except Exception as exc:  # rosbags raises several unrelated classes for a broken bag
                raise InvalidInputError("bag", "a readable rosbag2 directory", f"{self.path}: {exc}") from None
            self.typestore = self._any.typestore
            for connection in self._any.connections:
                self.topics[connection.topic] = connection.msgtype
                if connection.msgdef.data and connection.msgdef.format.name == "MSG":  # IDL is regenerated
                    self.msgdefs[connection.topic] = connection.msgdef.data
            return self
        if self.path.suffix != ".mcap" or not self.path.is_file():
            raise InvalidInputError("bag", "a rosbag2 directory or an existing .mcap file", str(self.path))
        self._open_mcap()
        return self

    def _open_mcap(self) -> None:
        from mcap.reader import make_reader
        from rosbags.typesys import get_types_from_msg

        try:
            self._file = open(self.path, "rb")
            self._mcap = make_reader(self._file)
            summary = self._mcap.get_summary()
        except Exception as exc:  # a truncated or foreign file
            raise InvalidInputError("bag", "a readable MCAP file", f"{self.path}: {exc}") from None
        if summary is None:
            raise InvalidInputError("bag", "an MCAP file with a summary section", str(self.path))
        types: dict[str, Any] = {}
        for channel in summary.channels.values():
            schema = summary.schemas.get(channel.schema_id)
            if schema is None or schema.encoding != "ros2msg" or channel.message_encoding != "cdr":
                continue  # not a ROS 2 topic: ignored, as `ros2 bag` would
            self.topics[channel.topic] = schema.name
            self.msgdefs[channel.topic] = schema.data.decode()
            if schema.name not in TYPESTORE.fielddefs:
                types.update(get_types_from_msg(schema.data.decode(), schema.name))
        if types:  # custom message types: a store of our own that also knows them
            from rosbags.typesys import Stores, get_typestore

            self.typestore = get_typestore(Stores.ROS2_KILTED)
            self.typestore.register(types)

    def messages(self, topics: Sequence[str] | None = None) -> Iterator[BagMessage]:
        """Messages of ``topics`` (all when None) in log-time order."""
        wanted = set(self.topics if topics is None else topics)
        if self._any is not None:
            connections = [c for c in self._any.connections if c.topic in wanted]
            for connection, log_time, raw in self._any.messages(connections=connections):
                yield BagMessage(connection.topic, connection.msgtype, int(log_time), bytes(raw))
            return
        for schema, channel, message in self._mcap.iter_messages(topics=sorted(wanted), log_time_order=True):
            if channel.topic in self.topics:
                yield BagMessage(channel.topic, schema.name, int(message.log_time), message.data)

    def msgdef(self, topic: str) -> str:
        """The ros2msg definition of ``topic``'s type: the bag's own, else generated from the bag's type store."""
        known = self.msgdefs.get(topic)
        if known is None:
            known, _ = self.typestore.generate_msgdef(self.topics[topic], ros_version=2)
            self.msgdefs[topic] = known
        return known

    def message_count(self, topic: str) -> int:
        """Messages on ``topic`` from the bag's index (0 when the bag does not say)."""
        if self._any is not None:
            return sum(c.msgcount for c in self._any.connections if c.topic == topic)
        summary = self._mcap.get_summary()
        if summary is None or summary.statistics is None:
            return 0
        return sum(summary.statistics.channel_message_counts.get(cid, 0)
                   for cid, channel in summary.channels.items() if channel.topic == topic)

    def deserialize(self, message: BagMessage) -> Any:
        """The message as a ``rosbags`` object.

        Raises:
            InvalidInputError: the bytes do not decode as the topic's type (field = the topic).
        """
        try:
            return self.typestore.deserialize_cdr(message.data, message.msgtype)
        except Exception as exc:
            raise InvalidInputError(message.topic, f"CDR data of {message.msgtype}", f"undecodable ({exc})") from None

    def close(self) -> None:
        if self._any is not None:
            self._any.close()
            self._any = None
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "BagReader":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def open_bag(path: str | Path) -> BagReader:
    """Opens a bag for reading (see :class:`BagReader`).

    Raises:
        InvalidInputError: the path is not a readable rosbag2 directory or MCAP file (field ``bag``).
    """
    return BagReader(Path(path)).open()


def write_rosbag2(path: str | Path, messages: Sequence[tuple[str, Any, int]], storage: str = "sqlite3") -> Path:
    """Writes ``(topic, message, log_time_ns)`` triples as a rosbag2 directory with ``rosbags``' writer.

    Args:
        path: the bag directory to create (must not exist).
        messages: the messages, in time order.
        storage: ``"sqlite3"`` or ``"mcap"``.

    Returns:
        The bag directory.
    """
    from rosbags.rosbag2 import StoragePlugin, Writer

    plugins = {"sqlite3": StoragePlugin.SQLITE3, "mcap": StoragePlugin.MCAP}
    if storage not in plugins:
        raise InvalidInputError("storage", f"one of {sorted(plugins)}", repr(storage))
    connections: dict[str, Any] = {}
    with Writer(Path(path), version=9, storage_plugin=plugins[storage]) as writer:
        for topic, msg, log_time in messages:
            if topic not in connections:
                connections[topic] = writer.add_connection(topic, msg.__msgtype__, typestore=TYPESTORE)
            writer.write(connections[topic], int(log_time), TYPESTORE.serialize_cdr(msg, msg.__msgtype__))
    return Path(path)
