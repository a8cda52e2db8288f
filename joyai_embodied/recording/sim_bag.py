"""A simulator episode written as a ROS 2 bag: a real bag for tests, demos and ``joyai-embodied replay``.

A scripted end-effector pick-and-place of the task's target (``joyai/TabletopSpatial-v0``, ``action_mode="ee"``),
one bag frame per env step, stamped with simulated time. Topics, as a RealSense-style driver names them::

    /camera/color/image_raw          sensor_msgs/Image rgb8
    /camera/depth/image_raw          sensor_msgs/Image 32FC1 (metres, aligned to colour)
    /camera/segmentation/image_raw   sensor_msgs/Image 32SC1 (instance ids; the simulator's ground truth)
    /camera/color/camera_info        sensor_msgs/CameraInfo
    /camera/pose                     geometry_msgs/PoseStamped (world <- camera_color_optical_frame)
    /tf_static                       tf2_msgs/TFMessage (world -> camera_color_optical_frame, once)
    /robot/ee_pose                   geometry_msgs/PoseStamped (suction tip)
    /sim/instruction                 std_msgs/String (once)
    /sim/objects                     std_msgs/String (JSON ground truth per frame)

``PATH.mcap`` writes one MCAP file; any other path writes a rosbag2 directory (sqlite3 storage unless
``storage="mcap"``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np

from ..errors import InvalidInputError
from . import ros_messages as msgs

RGB_TOPIC = "/camera/color/image_raw"
DEPTH_TOPIC = "/camera/depth/image_raw"
SEGMENTATION_TOPIC = "/camera/segmentation/image_raw"
CAMERA_INFO_TOPIC = "/camera/color/camera_info"
POSE_TOPIC = "/camera/pose"
CAMERA_FRAME = "camera_color_optical_frame"
WORLD_FRAME = "world"
#: First frame's stamp (ns): a fixed epoch so the same seed writes the same bytes.
START_NS = 1_700_000_000_000_000_000
#: The scripted tip is "there" within this distance of a waypoint (metres); below one 2 cm ee step.
REACH_TOLERANCE_M = 0.002
#: Steps allowed per waypoint: the longest table crossing is ~45 steps of 2 cm.
MAX_STEPS_PER_WAYPOINT = 60
#: The tip hovers this high above an object before descending (m).
APPROACH_HEIGHT_M = 0.08
#: Carry height above the table (m): clears every object the scene generator makes.
CARRY_HEIGHT_M = 0.20


def _waypoints(info: dict) -> list[tuple[np.ndarray, float]]:
    """(tip target, gripper command) list of a pick of the target object and a place on the target plate."""
    from sim_envs.constants import TABLE_HEIGHT

    objects = {o["id"]: o for o in info["objects"]}
    pick, plate = objects[info["target"]["pick_id"]], objects[info["target"]["place_id"]]
    px, py, pz = pick["position"]
    top = pz + pick["size"][2] / 2
    qx, qy, qz = plate["position"]
    release_z = qz + plate["size"][2] / 2 + pick["size"][2] + 0.008  # the held object's base just above the plate
    carry = TABLE_HEIGHT + CARRY_HEIGHT_M
    return [
        (np.array([px, py, top + APPROACH_HEIGHT_M]), -1.0),
        (np.array([px, py, top + 0.004]), -1.0),
        (np.array([px, py, top + 0.004]), 1.0),  # close: suction attaches
        (np.array([px, py, carry]), 1.0),
        (np.array([qx, qy, carry]), 1.0),
        (np.array([qx, qy, release_z]), 1.0),
        (np.array([qx, qy, release_z]), -1.0),  # open: the object drops onto the plate
        (np.array([qx, qy, carry]), -1.0),
    ]


def episode_messages(seed: int = 0, width: int = 640, height: int = 480, camera: str = "front",
                     depth_delay_ms: float = 0.0, max_frames: int | None = None,
                     progress: Callable[[int], None] | None = None,
                     summary: dict | None = None) -> Iterator[tuple[str, Any, int]]:
    """Runs the scripted episode and yields ``(topic, message, log_time_ns)`` in time order.

    Args:
        seed: episode seed (scene and instruction).
        width, height: image size in pixels.
        camera: observation camera ("front", "side", "top").
        depth_delay_ms: the depth image is stamped this much after the colour image (a real driver's skew).
        max_frames: stop after this many frames (None: the whole episode).
        progress: called with the frame index after each frame.
        summary: filled with ``frames``, ``success``, ``instruction``, ``target`` when the episode ends.
    """
    import gymnasium as gym

    import sim_envs

    if max_frames is not None and (isinstance(max_frames, bool) or not isinstance(max_frames, int) or max_frames < 1):
        raise InvalidInputError("max_frames", "a positive integer or None", repr(max_frames))
    env = gym.make(sim_envs.ENV_ID, width=width, height=height, camera=camera, action_mode="ee")
    try:
        obs, info = env.reset(seed=seed)
        unwrapped = env.unwrapped
        period_ns = int(round(unwrapped.frame_skip * unwrapped.model.opt.timestep * 1e9))
        delay_ns = int(round(depth_delay_ms * 1e6))
        cam_to_world = obs["cam_to_world"]
        yield "/tf_static", msgs.transform_message(cam_to_world, START_NS, WORLD_FRAME, CAMERA_FRAME), START_NS
        yield "/sim/instruction", msgs.string(info["instruction"]), START_NS
        frame = 0

        def frame_messages(obs: dict, info: dict, frame: int) -> Iterator[tuple[str, Any, int]]:
            ns = START_NS + frame * period_ns
            yield RGB_TOPIC, msgs.image(obs["rgb"], ns, CAMERA_FRAME), ns
            yield DEPTH_TOPIC, msgs.image(obs["depth"], ns + delay_ns, CAMERA_FRAME), ns + delay_ns
            yield SEGMENTATION_TOPIC, msgs.image(obs["segmentation"], ns, CAMERA_FRAME), ns
            yield CAMERA_INFO_TOPIC, msgs.camera_info(obs["intrinsics"], width, height, ns, CAMERA_FRAME), ns
            yield POSE_TOPIC, msgs.pose_stamped(obs["cam_to_world"], ns, WORLD_FRAME), ns
            tip = np.eye(4)
            tip[:3, 3] = obs["robot_state"][:3]
            yield "/robot/ee_pose", msgs.pose_stamped(tip, ns, WORLD_FRAME), ns
            yield "/sim/objects", msgs.string(json.dumps(info["objects"])), ns

        yield from frame_messages(obs, info, frame)
        done = max_frames is not None and max_frames <= 1
        for target, gripper in ([] if done else _waypoints(info)):
            for _ in range(MAX_STEPS_PER_WAYPOINT):
                tip = obs["robot_state"][:3].astype(np.float64)
                delta = target - tip
                action = np.array([*np.clip(delta / 0.02, -1.0, 1.0), gripper], dtype=np.float32)
                obs, _, _, _, info = env.step(action)
                frame += 1
                yield from frame_messages(obs, info, frame)
                if progress is not None:
                    progress(frame)
                if max_frames is not None and frame + 1 >= max_frames:
                    done = True
                    break
                if np.linalg.norm(target - obs["robot_state"][:3]) < REACH_TOLERANCE_M:
                    break
            if done:
                break
        if summary is not None:
            summary.update(frames=frame + 1, success=bool(info["success"]), instruction=info["instruction"],
                           target=dict(info["target"]))
    finally:
        env.close()


def write_sim_episode_bag(path: str | Path, seed: int = 0, width: int = 640, height: int = 480,
                          camera: str = "front", storage: str | None = None, depth_delay_ms: float = 0.0,
                          max_frames: int | None = None, progress: Callable[[int], None] | None = None
                          ) -> dict[str, Any]:
    """Writes a scripted simulator episode as a ROS 2 bag (``joyai-embodied sim-episode --bag PATH.mcap``).

    Args:
        path: ``*.mcap`` for one MCAP file, otherwise a rosbag2 directory to create.
        seed: episode seed.
        width, height: image size in pixels.
        camera: observation camera ("front", "side", "top").
        storage: for a directory: ``"sqlite3"`` (default) or ``"mcap"``.
        depth_delay_ms: depth stamped this much after colour (exercises timestamp pairing).
        max_frames: stop after this many frames.
        progress: called with the frame index after each frame.

    Returns:
        ``{"path", "frames", "success", "instruction", "target", "topics": {topic: count}}``.

    Raises:
        InvalidInputError: a bad size, camera, storage or frame count; ``path`` exists (for a directory).
    """
    from .bags import McapWriter, write_rosbag2

    path = Path(path)
    summary: dict[str, Any] = {}
    messages = episode_messages(seed, width, height, camera, depth_delay_ms, max_frames, progress, summary)
    counts: dict[str, int] = {}

    def counted() -> Iterator[tuple[str, Any, int]]:
        for topic, msg, ns in messages:
            counts[topic] = counts.get(topic, 0) + 1
            yield topic, msg, ns

    if path.suffix == ".mcap":
        if storage not in (None, "mcap"):
            raise InvalidInputError("storage", "'mcap' (or nothing) for a .mcap path", repr(storage))
        with McapWriter(path) as writer:
            for topic, msg, ns in counted():
                writer.write(topic, msg, ns)
    else:
        if path.exists():
            raise InvalidInputError("bag", "a directory that does not exist yet", str(path))
        write_rosbag2(path, counted(), storage=storage or "sqlite3")
    return {"path": str(path), **summary, "topics": counts}
