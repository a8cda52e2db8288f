"""``joyai-embodied replay``: the world model over a recorded ROS 2 bag, answers written beside the input.

    joyai-embodied replay BAG --rgb-topic /camera/color/image_raw --depth-topic /camera/depth/image_raw \\
        --camera-info-topic /camera/color/camera_info --pose-topic /camera/pose \\
        --segmentation-topic /camera/segmentation/image_raw \\
        --question "Is the red cube left of the blue cylinder?" --every 2 --out out/replay.mcap

BAG is a rosbag2 directory (MCAP or sqlite3 storage) or a bare ``.mcap`` file; no ROS install is needed.
Colour frames (every N-th) are paired with the depth, segmentation and pose whose header stamps are nearest,
within ``--max-skew-ms``; the camera pose comes from ``--pose-topic`` (``geometry_msgs/PoseStamped``) or from
``/tf_static`` + ``/tf`` for ``--frame-id`` (default: the camera info's frame). OUT.mcap holds every input
topic unchanged plus ``/joyai/markers`` (``visualization_msgs/MarkerArray``), ``/joyai/answers``
(``std_msgs/String``, one JSON message per question per frame) and ``/joyai/summary`` (JSON; also an MCAP
metadata record ``joyai_replay``). A bag with a missing topic, mismatched image sizes or an unknown encoding
ends with one line naming the topic and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import InvalidInputError, JoyAIError

ANSWERS_TOPIC = "/joyai/answers"
MARKERS_TOPIC = "/joyai/markers"
SUMMARY_TOPIC = "/joyai/summary"
#: Default pairing window: under half a frame period of a 30 Hz camera, so a frame never pairs with the next one.
MAX_SKEW_MS = 15.0
#: Depth / segmentation / pose messages kept for pairing per topic: 2 s of a 30 Hz camera.
MAX_BUFFERED = 64
#: Progress line refresh interval (s): often enough to look alive, rarely enough to cost nothing.
PROGRESS_PERIOD_S = 0.2
COLOR_ENCODINGS = ("rgb8", "bgr8", "rgba8", "bgra8")
DEPTH_ENCODINGS = ("32FC1", "16UC1", "mono16")
SEGMENTATION_ENCODINGS = ("32SC1", "16UC1", "mono16", "8UC1", "mono8")
TYPES = {"image": "sensor_msgs/msg/Image", "info": "sensor_msgs/msg/CameraInfo",
         "pose": "geometry_msgs/msg/PoseStamped", "tf": "tf2_msgs/msg/TFMessage"}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declares the ``replay`` options on ``parser``."""
    from ..config import positive_int

    parser.add_argument("bag", help="rosbag2 directory (mcap or sqlite3 storage) or an .mcap file")
    parser.add_argument("--rgb-topic", required=True, help="sensor_msgs/Image colour topic")
    parser.add_argument("--depth-topic", required=True, help="sensor_msgs/Image depth topic (32FC1 m or 16UC1 mm)")
    parser.add_argument("--camera-info-topic", required=True, help="sensor_msgs/CameraInfo topic")
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--pose-topic", default=None, help="geometry_msgs/PoseStamped of the camera in the world")
    where.add_argument("--frame-id", default=None,
                       help="camera frame looked up in /tf_static and /tf (default: the camera info's frame)")
    parser.add_argument("--segmentation-topic", default=None, help="sensor_msgs/Image of instance ids (optional)")
    parser.add_argument("--question", action="append", default=[], help="a question asked on every frame "
                        "(repeatable), e.g. 'Is the red cube left of the blue cylinder?'")
    parser.add_argument("--every", type=positive_int, default=1, help="use every N-th colour frame (default 1)")
    parser.add_argument("--max-skew-ms", type=float, default=MAX_SKEW_MS,
                        help=f"largest stamp difference when pairing frames (default {MAX_SKEW_MS:g} ms)")
    parser.add_argument("--backend", default="geometric", help="world-model preset or backend (default geometric)")
    parser.add_argument("--out", required=True, help="output .mcap file")
    parser.add_argument("--jobs", type=positive_int, default=None,
                        help="processes observing frames: this one and N-1 workers (default 2 on a 2+ core "
                        "machine; 1 = in-process)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def run(args: argparse.Namespace) -> int:
    """Runs the replay; prints a one-line summary.

    Returns:
        0 on success; 2 with a one-line reason on stderr for a bad bag or option.
    """
    try:
        if not str(args.out).endswith(".mcap"):
            raise InvalidInputError("--out", "a path ending in .mcap", str(args.out))
        from ..world_model import WorldModel

        with WorldModel.load(args.backend) as wm:
            summary = replay(args.bag, args.out, wm, rgb_topic=args.rgb_topic, depth_topic=args.depth_topic,
                             camera_info_topic=args.camera_info_topic, pose_topic=args.pose_topic,
                             frame_id=args.frame_id, segmentation_topic=args.segmentation_topic,
                             questions=args.question, every=args.every, max_skew_ms=args.max_skew_ms,
                             progress=None if args.quiet else _ProgressLine(), jobs=args.jobs)
    except JoyAIError as exc:
        print(f"joyai-embodied replay: {exc}", file=sys.stderr)
        return 2
    print(f"replay: {summary['frames_processed']} frames, {summary['answers']} answers, "
          f"{summary['fps']:.1f} frames/s -> {args.out}")
    return 0


class _ProgressLine:
    """A one-line progress bar on stderr (``frames done/total, frames/s``), redrawn a few times a second."""

    def __init__(self) -> None:
        self.last = 0.0
        self.start = time.perf_counter()

    def __call__(self, done: int, total: int, final: bool = False) -> None:
        now = time.perf_counter()
        if not final and now - self.last < PROGRESS_PERIOD_S:
            return
        self.last = now
        width = 30
        filled = width if total <= 0 else min(width, int(width * done / total))
        rate = done / max(now - self.start, 1e-9)
        print(f"\rreplay [{'#' * filled}{'.' * (width - filled)}] {done}/{total} frames, {rate:.1f}/s",
              end="\n" if final else "", file=sys.stderr, flush=True)


def _check_topics(topics: dict[str, str], wanted: dict[str, tuple[str, str]]) -> None:
    """Every wanted topic exists with its type; else InvalidInputError naming the topic."""
    for topic, (option, msgtype) in wanted.items():
        if topic not in topics:
            listing = ", ".join(sorted(topics)) or "none"
            raise InvalidInputError(topic, f"a topic in the bag ({option})", f"missing; the bag has: {listing}")
        if topics[topic] != msgtype:
            raise InvalidInputError(topic, f"messages of type {msgtype} ({option})", topics[topic])


def _image(msg: Any, topic: str, encodings: Sequence[str], what: str) -> np.ndarray:
    from .ros_messages import image_to_array

    if str(msg.encoding) not in encodings:
        raise InvalidInputError(topic, f"a {what} encoding in {list(encodings)}", repr(str(msg.encoding)))
    return image_to_array(msg, topic, millimetres=what == "depth")


class _TfTree:
    """Latest transforms from ``/tf_static`` and ``/tf``: enough to place a camera frame in the world."""

    def __init__(self) -> None:
        self.parent: dict[str, tuple[str, np.ndarray]] = {}

    def add(self, msg: Any) -> None:
        from .ros_messages import matrix_from_quaternion

        for stamped in msg.transforms:
            t, r = stamped.transform.translation, stamped.transform.rotation
            matrix = np.eye(4)
            matrix[:3, :3] = matrix_from_quaternion([r.x, r.y, r.z, r.w])
            matrix[:3, 3] = [t.x, t.y, t.z]
            self.parent[str(stamped.child_frame_id).lstrip("/")] = (str(stamped.header.frame_id).lstrip("/"), matrix)

    def lookup(self, frame: str) -> tuple[str, np.ndarray] | None:
        """(root frame, root <- frame transform), or None when ``frame`` is unknown."""
        frame = frame.lstrip("/")
        if frame not in self.parent:
            return None
        matrix = np.eye(4)
        seen = set()
        while frame in self.parent and frame not in seen:  # `seen` stops a cyclic tree
            seen.add(frame)
            frame, step = self.parent[frame]
            matrix = step @ matrix
        return frame, matrix


def replay(bag: str | Path, out: str | Path, wm: Any, rgb_topic: str, depth_topic: str, camera_info_topic: str,
           pose_topic: str | None = None, frame_id: str | None = None, segmentation_topic: str | None = None,
           questions: Sequence[str] = (), every: int = 1, max_skew_ms: float = MAX_SKEW_MS,
           progress: Callable[..., None] | None = None, jobs: int | None = None) -> dict[str, Any]:
    """Runs ``wm`` on every ``every``-th paired frame of ``bag``; writes ``out`` (see the module docstring).

    ``jobs`` > 1 observes frames in that many processes: this one and ``jobs - 1`` workers, each with the
    model rebuilt from ``wm.preset`` (the backend name and options ``WorldModel.load`` keeps); OUT.mcap is the
    same, message for message. None: 2 where there are 2+ cores and ``wm`` can be rebuilt, else 1.

    Returns:
        The summary (also written to OUT): frames in the bag, processed and skipped (with reasons), answers,
        seconds, frames/s, output topic counts.

    Raises:
        InvalidInputError: missing topics, wrong types, unknown encodings, mismatched sizes (field = topic);
            ``jobs`` > 1 for a model that cannot be rebuilt in a worker.
        ReplayWorkerError: a worker process died (the message names the frame).
    """
    from .replay_jobs import FramePool, default_jobs, keep_freed_memory, rebuild_options

    if max_skew_ms < 0 or not np.isfinite(max_skew_ms):
        raise InvalidInputError("--max-skew-ms", "a finite number >= 0", max_skew_ms)
    if isinstance(every, bool) or not isinstance(every, int) or every < 1:
        raise InvalidInputError("--every", "a positive integer", repr(every))
    if jobs is None:
        jobs = default_jobs(wm)
    if isinstance(jobs, bool) or not isinstance(jobs, int) or jobs < 1:
        raise InvalidInputError("--jobs", "a positive integer", repr(jobs))
    options = rebuild_options(wm) if jobs > 1 else None
    if jobs > 1 and options is None:
        raise InvalidInputError("--jobs", "1 for a world model not loaded by preset or backend name",
                                f"{jobs} (the model cannot be rebuilt in a worker process)")
    out = Path(out)
    if out.resolve() == Path(bag).resolve():
        raise InvalidInputError("--out", "a file other than the input bag", str(out))
    existed = out.exists()
    keep_freed_memory()
    pool = None
    try:
        if options is not None:
            pool = FramePool(jobs - 1, options, list(questions))
        summary = _replay(bag, out, wm, rgb_topic, depth_topic, camera_info_topic, pose_topic, frame_id,
                          segmentation_topic, questions, every, max_skew_ms, progress, pool)
    except BaseException:
        if pool is not None:  # an error or Ctrl-C: workers stopped at once, before the output goes
            pool.close(abort=True)
            pool = None
        if not existed:  # no half-written OUT.mcap left behind a failed replay
            out.unlink(missing_ok=True)
        raise
    finally:
        if pool is not None:
            pool.close(abort=False)
    return summary


def _replay(bag: str | Path, out: Path, wm: Any, rgb_topic: str, depth_topic: str, camera_info_topic: str,
            pose_topic: str | None, frame_id: str | None, segmentation_topic: str | None,
            questions: Sequence[str], every: int, max_skew_ms: float,
            progress: Callable[..., None] | None, pool: Any = None) -> dict[str, Any]:
    from .bags import McapWriter, open_bag
    from .replay_jobs import IN_FLIGHT_PER_JOB, MARKERS_TYPE, FrameJob, OrderedOutput, compute_frame, raise_error
    from .ros_messages import pose_matrix, stamp_ns, string

    skew_ns = int(max_skew_ms * 1e6)
    started = time.perf_counter()
    with open_bag(bag) as reader:
        wanted = {rgb_topic: ("--rgb-topic", TYPES["image"]), depth_topic: ("--depth-topic", TYPES["image"]),
                  camera_info_topic: ("--camera-info-topic", TYPES["info"])}
        if segmentation_topic:
            wanted[segmentation_topic] = ("--segmentation-topic", TYPES["image"])
        if pose_topic:
            wanted[pose_topic] = ("--pose-topic", TYPES["pose"])
        else:
            tf_topics = [t for t in ("/tf_static", "/tf") if reader.topics.get(t) == TYPES["tf"]]
            if not tf_topics:
                raise InvalidInputError("/tf", "/tf or /tf_static in the bag to place the camera (or pass "
                                        "--pose-topic)", "neither is in the bag")
        _check_topics(reader.topics, wanted)
        aux_topics = [t for t in (depth_topic, segmentation_topic, pose_topic) if t]
        total = reader.message_count(rgb_topic)
        total_frames = (total + every - 1) // every if total else 0
        tf = _TfTree()
        # bounded: a bag whose colour topic stalls must not hold every depth image in memory
        buffers: dict[str, deque] = {t: deque(maxlen=MAX_BUFFERED) for t in aux_topics}
        pending: deque = deque()  # (stamp, rgb message) waiting for their pairs
        latest_info: list[Any] = []
        summary: dict[str, Any] = {"bag": str(bag), "frames_in_bag": total, "frames_processed": 0,
                                   "frames_skipped": {}, "questions": list(questions), "answers": 0,
                                   "answer_errors": 0, "jobs": 1 if pool is None else pool.jobs + 1}
        rgb_index = 0
        last_ns = 0

        with McapWriter(out, crcs=False) as writer:
            def write_frame(result: tuple, frame_ns: int) -> None:  # in frame order, whoever observed it
                if result[0] == "skip":
                    summary["frames_skipped"][result[1]] = summary["frames_skipped"].get(result[1], 0) + 1
                    return
                if result[0] == "error":
                    raise_error(result[1])
                _, markers, records, answer_errors = result
                writer.write_raw(MARKERS_TOPIC, MARKERS_TYPE, markers, frame_ns)
                index = summary["frames_processed"]
                for record in records:
                    record["frame"] = index
                    writer.write(ANSWERS_TOPIC, string(json.dumps(record)), record["stamp_ns"])
                summary["answers"] += len(records)
                summary["answer_errors"] += answer_errors
                summary["frames_processed"] += 1
                if progress is not None:
                    progress(summary["frames_processed"], total_frames)

            output = OrderedOutput(writer.write_raw, write_frame, IN_FLIGHT_PER_JOB * (pool.jobs if pool else 1))

            def process(frame_ns: int, rgb_msg: Any, rgb_number: int) -> None:
                pairs = {}
                for topic in aux_topics:
                    best = min(buffers[topic], key=lambda item: abs(item[0] - frame_ns), default=None)
                    if best is None or abs(best[0] - frame_ns) > skew_ns:
                        output.frame(rgb_number, frame_ns, ("skip", f"no {topic} within {max_skew_ms:g} ms"))
                        return
                    pairs[topic] = best[1]
                if not latest_info:
                    output.frame(rgb_number, frame_ns, ("skip", f"no {camera_info_topic} yet"))
                    return
                info = latest_info[0]
                rgb = _image(rgb_msg, rgb_topic, COLOR_ENCODINGS, "colour")
                depth = _image(pairs[depth_topic], depth_topic, DEPTH_ENCODINGS, "depth")
                seg = None
                if segmentation_topic:
                    seg = _image(pairs[segmentation_topic], segmentation_topic, SEGMENTATION_ENCODINGS,
                                 "segmentation").astype(np.int32, copy=False)
                size = rgb.shape[:2]
                for topic, shape in ((depth_topic, depth.shape), (segmentation_topic, None if seg is None else seg.shape),
                                     (camera_info_topic, (int(info.height), int(info.width)))):
                    if shape is not None and tuple(shape[:2]) != size:
                        raise InvalidInputError(topic, f"{size[1]}x{size[0]} images like {rgb_topic}",
                                                f"{shape[1]}x{shape[0]}")
                if pose_topic:
                    pose_msg = pairs[pose_topic]
                    cam_to_world, world_frame = pose_matrix(pose_msg.pose), str(pose_msg.header.frame_id) or "world"
                else:
                    camera_frame = frame_id or str(info.header.frame_id)
                    found = tf.lookup(camera_frame)
                    if found is None:
                        output.frame(rgb_number, frame_ns, ("skip", f"no /tf for frame {camera_frame!r}"))
                        return
                    world_frame, cam_to_world = found
                k = np.asarray(info.k, dtype=np.float64).reshape(3, 3)
                job = FrameJob(frame_ns, rgb, depth, seg, k, cam_to_world, world_frame)
                # the parent observes a frame itself while the workers are busy (or starting): --jobs N is
                # N processes observing, the parent and N - 1 workers
                output.frame(rgb_number, frame_ns, compute_frame(wm, questions, job) if pool is None
                             or output.full else pool.submit(job, rgb_number))

            def flush(until_ns: int | None) -> None:
                while pending and (until_ns is None or until_ns > pending[0][0] + skew_ns):
                    frame_ns, rgb_msg, number = pending.popleft()
                    process(frame_ns, rgb_msg, number)
                    horizon = (pending[0][0] if pending else frame_ns) - skew_ns
                    for buffer in buffers.values():  # keep the newest old message: it may still be the nearest
                        while len(buffer) > 1 and buffer[1][0] <= horizon:
                            buffer.popleft()

            for message in reader.messages():
                output.raw(message.topic, message.msgtype, message.data, message.log_time_ns,
                           reader.msgdef(message.topic))
                last_ns = max(last_ns, message.log_time_ns)
                topic = message.topic
                if topic == rgb_topic:
                    if rgb_index % every == 0:
                        msg = reader.deserialize(message)
                        pending.append((stamp_ns(msg.header.stamp), msg, rgb_index))
                    rgb_index += 1
                elif topic in buffers:
                    msg = reader.deserialize(message)
                    buffers[topic].append((stamp_ns(msg.header.stamp), msg))
                elif topic == camera_info_topic:
                    latest_info[:] = [reader.deserialize(message)]
                elif topic in ("/tf", "/tf_static") and not pose_topic and message.msgtype == TYPES["tf"]:
                    tf.add(reader.deserialize(message))
                flush(message.log_time_ns)
            flush(None)
            output.drain()
            if rgb_index == 0:
                raise InvalidInputError(rgb_topic, "at least one colour image", "no messages")
            if summary["frames_processed"] == 0:  # every frame was skipped: say why, as bad input
                reason = max(summary["frames_skipped"], key=summary["frames_skipped"].get)
                raise InvalidInputError("bag", "at least one usable frame", f"none; e.g. {reason}")
            seconds = time.perf_counter() - started
            summary.update(seconds=round(seconds, 3),
                           fps=summary["frames_processed"] / seconds if seconds > 0 else 0.0)
            summary["output_topics"] = {**writer.counts, SUMMARY_TOPIC: 1}
            writer.write(SUMMARY_TOPIC, string(json.dumps(summary)), last_ns)
            writer.add_metadata("joyai_replay", {k: v for k, v in summary.items()})
    if progress is not None:
        progress(summary["frames_processed"], total_frames, final=True)
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m joyai_embodied.recording.replay ...`` (same as ``joyai-embodied replay ...``)."""
    parser = argparse.ArgumentParser(prog="joyai-embodied replay", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
