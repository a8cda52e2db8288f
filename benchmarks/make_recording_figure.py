"""Draws one step of an MCAP recording headlessly: the figure in joyai_embodied/recording/README.md.

    python benchmarks/make_recording_figure.py                 # -> joyai_embodied/recording/figures/recording_view.png
    python benchmarks/make_recording_figure.py --small          # -> out/recording_view_small.png

It records a planner episode with ``--record``'s MCAP recorder, reads the file back with the ``mcap`` reader
(as Foxglove would), and draws what a viewer shows at step 0 from the messages alone: the observing camera's
image with the object boxes projected into it, a 3D view of the lifted point cloud, boxes, names and the
camera frusta (observer yellow, imagined cyan, the predicted edit's target box white), the imagined images,
and the query log.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np

os.environ.setdefault("MUJOCO_GL", "egl")
FIGURE = Path(__file__).resolve().parent.parent / "joyai_embodied" / "recording" / "figures" / "recording_view.png"
#: Box edges as pairs of corner indices (corners ordered by the bits of x, y, z).
#: The figure's 3D panel draws cloud points within this horizontal distance of the objects (the table top).
CLOUD_RADIUS_M = 0.6
EDGES = [(0, 1), (2, 3), (4, 5), (6, 7), (0, 2), (1, 3), (4, 6), (5, 7), (0, 4), (1, 5), (2, 6), (3, 7)]


def _read(path: Path) -> list[tuple[str, object]]:
    from mcap.reader import make_reader
    from mcap_ros2.decoder import DecoderFactory

    with open(path, "rb") as handle:
        reader = make_reader(handle, decoder_factories=[DecoderFactory()])
        return [(channel.topic, decoded) for _, channel, _, decoded in reader.iter_decoded_messages()]


def _pose(p) -> np.ndarray:
    from joyai_embodied.recording.ros_messages import matrix_from_quaternion

    matrix = np.eye(4)
    matrix[:3, :3] = matrix_from_quaternion([p.orientation.x, p.orientation.y, p.orientation.z, p.orientation.w])
    matrix[:3, 3] = [p.position.x, p.position.y, p.position.z]
    return matrix


def _corners(marker) -> np.ndarray:
    pose = _pose(marker.pose)
    half = np.array([marker.scale.x, marker.scale.y, marker.scale.z]) / 2
    signs = np.array([[(i >> 0) & 1, (i >> 1) & 1, (i >> 2) & 1] for i in range(8)]) * 2 - 1
    return (signs * half) @ pose[:3, :3].T + pose[:3, 3]


def _project(points: np.ndarray, k: np.ndarray, cam_to_world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    from joyai_embodied.camera import project

    return project(points, k, cam_to_world)


def _image(msg) -> np.ndarray:
    return np.frombuffer(bytes(msg.data), np.uint8).reshape(msg.height, msg.width, 3)


def draw(messages: list[tuple[str, object]], size: tuple[int, int]) -> "Image.Image":
    """The step-0 view of a recording's messages (PIL image)."""
    from PIL import Image, ImageDraw

    from joyai_embodied.camera import look_at

    first = {}
    for topic, msg in messages:
        first.setdefault(topic, msg)
    width, height = size
    rgb = _image(first["/joyai/observer/rgb"]).copy()
    k = np.reshape(first["/joyai/observer/camera_info"].k, (3, 3))
    observer = _pose(first["/joyai/observer/pose"].pose)
    objects = [m for m in first["/joyai/markers/objects"].markers if m.type == 1]
    names = {m.id - 1: m.text for m in first["/joyai/markers/objects"].markers if m.type == 9}
    edit = [m for m in first.get("/joyai/markers/edits/predicted/after", type("E", (), {"markers": []})).markers
            if m.type == 1]

    # panel 1: observer image with boxes
    panel1 = Image.fromarray(rgb)
    pen = ImageDraw.Draw(panel1)
    for marker in objects:
        uv, z = _project(_corners(marker), k, observer)
        colour = tuple(int(255 * c) for c in (marker.color.r, marker.color.g, marker.color.b))
        for a, b in EDGES:
            pen.line([tuple(uv[a]), tuple(uv[b])], fill=colour, width=2)
        top = uv[np.argmin(uv[:, 1])]
        pen.text((top[0] - 20, top[1] - 14), names.get(marker.id, ""), fill=(255, 255, 255))

    # panel 2: a 3D view from a virtual camera beside and above the observer
    cloud = first["/joyai/cloud"]
    packed = np.frombuffer(bytes(cloud.data), dtype=[("x", "<f4"), ("y", "<f4"), ("z", "<f4"), ("rgb", "<u4")])
    points = np.stack([packed["x"], packed["y"], packed["z"]], axis=1).astype(np.float64)
    colours = np.stack([(packed["rgb"] >> 16) & 255, (packed["rgb"] >> 8) & 255, packed["rgb"] & 255], 1)
    centre = np.mean([_pose(m.pose)[:3, 3] for m in objects], axis=0)
    near = np.linalg.norm(points[:, :2] - centre[:2], axis=1) < CLOUD_RADIUS_M  # the table, not the floor
    points, colours = points[near], colours[near]
    cameras = [_pose(msg.pose)[:3, 3] for topic, msg in first.items()
               if topic.endswith("/pose") and topic.startswith(("/joyai/observer", "/joyai/imagined"))]
    # a virtual camera above and behind-left of the scene, far enough back that every camera is in view
    target = (centre + np.mean(cameras, axis=0)) / 2
    spread = max(np.linalg.norm(c[:2] - target[:2]) for c in cameras)
    eye = target + np.array([-1.1, -0.7, 1.3]) / np.linalg.norm([-1.1, -0.7, 1.3]) * (1.6 * spread + 0.4)
    view = look_at(eye, target)
    kv = np.array([[0.9 * width, 0, width / 2], [0, 0.9 * width, height / 2], [0, 0, 1]])
    canvas = np.full((height, width, 3), 28, np.uint8)
    uv, z = _project(points, kv, view)
    ok = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < width - 1) & (uv[:, 1] >= 0) & (uv[:, 1] < height - 1)
    order = np.argsort(-z[ok])  # far first, near points drawn over them
    u, v = uv[ok][order].astype(int), uv[ok][order, 1].astype(int)
    u = u[:, 0]
    for du in (0, 1):
        for dv in (0, 1):
            canvas[v + dv, u + du] = colours[ok][order]
    panel2 = Image.fromarray(canvas)
    pen = ImageDraw.Draw(panel2)

    def segments(pairs, colour, line=2):
        pts = np.asarray(pairs, dtype=np.float64)
        uv2, z2 = _project(pts, kv, view)
        for i in range(0, len(pts) - 1, 2):
            if z2[i] > 0 and z2[i + 1] > 0:
                pen.line([tuple(uv2[i]), tuple(uv2[i + 1])], fill=colour, width=line)

    for marker in objects:
        corners = _corners(marker)
        colour = tuple(int(255 * c) for c in (marker.color.r, marker.color.g, marker.color.b))
        segments([corners[i] for e in EDGES for i in e], colour)
        uvl, _ = _project(corners[None, np.argmax(corners[:, 2])], kv, view)
        pen.text((uvl[0, 0] - 20, uvl[0, 1] - 14), names.get(marker.id, ""), fill=(255, 255, 255))
    for marker in edit:
        corners = _corners(marker)
        segments([corners[i] for e in EDGES for i in e], (255, 255, 255), line=1)
    camera_topics = sorted((t for t in first if t.startswith("/joyai/markers/cameras/")),
                           key=lambda t: t.endswith("/observer"))  # the observer last: drawn on top
    for row, topic in enumerate(camera_topics):
        for marker in first[topic].markers:
            colour = tuple(int(255 * c) for c in (marker.color.r, marker.color.g, marker.color.b))
            if marker.type == 5:
                segments([[p.x, p.y, p.z] for p in marker.points], colour)
            elif marker.type == 9:
                position = [[marker.pose.position.x, marker.pose.position.y, marker.pose.position.z]]
                uvl, zl = _project(np.array(position), kv, view)
                if zl[0] > 0:
                    x = min(uvl[0, 0] + 4, width - 8 * len(marker.text))  # keep the label inside
                    pen.text((x, uvl[0, 1] - 12 + 12 * row), marker.text, fill=colour)
    pen.text((8, 8), "3D: lifted cloud, boxes, observer (yellow) and imagined (cyan) cameras", fill=(230, 230, 230))

    # panel 3: imagined images (up to 2) and the query log
    imagined = [(t, m) for t, m in first.items() if t.startswith("/joyai/imagined/") and t.endswith("/rgb")]
    thumbs = Image.new("RGB", (width, height), (245, 245, 245))
    pen3 = ImageDraw.Draw(thumbs)
    thumb_w = width // 2 - 6
    for i, (topic, msg) in enumerate(imagined[:2]):
        image = Image.fromarray(_image(msg)).resize((thumb_w, thumb_w * msg.height // msg.width))
        thumbs.paste(image, (4 + i * (thumb_w + 4), 20))
        pen3.text((4 + i * (thumb_w + 4), 4), "imagined: " + topic.split("/")[3].replace("_", " "), fill=(0, 0, 0))
    lines = [msg.data for topic, msg in messages if topic in ("/joyai/log/instruction", "/joyai/log/query")]
    y = 28 + thumb_w * 3 // 4
    for line in lines[:14]:
        pen3.text((6, y), line[:110], fill=(20, 20, 20))
        y += 14
    figure = Image.new("RGB", (width * 3 + 8, height), (255, 255, 255))
    for i, panel in enumerate((panel1.resize((width, height)), panel2, thumbs)):
        figure.paste(panel, (i * (width + 4), 0))
    return figure


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--small", action="store_true", help="320x240 frames (quick check)")
    parser.add_argument("--seed", type=int, default=24, help="episode seed (24: a side-camera task)")
    parser.add_argument("--out", default=None,
                        help="PNG to write (default: the README figure; with --small, out/recording_view_small.png)")
    args = parser.parse_args(argv)
    if args.out is None:  # a quick check never overwrites the committed figure
        args.out = "out/recording_view_small.png" if args.small else str(FIGURE)
    import gymnasium as gym

    import sim_envs
    from joyai_embodied import WorldModel
    from joyai_embodied.planner import Planner
    from joyai_embodied.recording import open_recorder

    size = (320, 240) if args.small else (640, 480)
    env = gym.make(sim_envs.ENV_ID, width=size[0], height=size[1], action_mode="primitive")
    try:
        episode = Planner(WorldModel.load("geometric")).run_episode(env, seed=args.seed)
    finally:
        env.close()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "episode.mcap"
        with open_recorder(path) as recorder:
            recorder.log_episode(episode)
        figure = draw(_read(path), size)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    figure.save(args.out)
    print(f"wrote {args.out} ({episode.plan.instruction!r}, {len(episode.plan.imagined)} imagined views)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
