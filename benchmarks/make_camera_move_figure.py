"""Draws joyai_embodied/backends/geometric/figures/camera_move.png: what CameraMove(yaw, pitch, zoom) does, with imagined and true views.

    MUJOCO_GL=egl python benchmarks/make_camera_move_figure.py

Top row: a diagram seen from above (yaw about world z through the pivot) and from the side (pitch about
the camera's x axis through the pivot; zoom divides the distance to the pivot). Bottom rows: for each
move, the geometric backend's imagined view next to the simulator's render at the same camera.
"""

import os

os.environ.setdefault("MUJOCO_GL", "egl")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

import sim_envs  # noqa: E402,F401
from joyai_embodied import CameraMove, WorldModel  # noqa: E402

W, H = 320, 240
MOVES = [("yaw +30", CameraMove(yaw_deg=30)), ("pitch +20", CameraMove(pitch_deg=20)),
         ("zoom 1.5", CameraMove(zoom=1.5))]


def arrow(draw, start, end, fill, width=3):
    draw.line([start, end], fill=fill, width=width)
    direction = np.subtract(end, start) / (np.linalg.norm(np.subtract(end, start)) + 1e-9)
    normal = np.array([-direction[1], direction[0]])
    tip = np.asarray(end, float)
    draw.polygon([tuple(tip), tuple(tip - 12 * direction + 6 * normal), tuple(tip - 12 * direction - 6 * normal)],
                 fill=fill)


def diagram() -> Image.Image:
    image = Image.new("RGB", (3 * W, H), "white")
    draw = ImageDraw.Draw(image)
    # Top view: yaw.
    pivot, radius = np.array([W * 0.5, H * 0.45]), 80
    draw.rectangle([pivot[0] - 55, pivot[1] - 70, pivot[0] + 55, pivot[1] + 70], outline=(150, 130, 110), width=2)
    draw.ellipse([*(pivot - 4), *(pivot + 4)], fill="black")
    draw.text((pivot[0] + 6, pivot[1] - 4), "pivot", fill="black")
    for angle, colour, label in ((90, (40, 40, 40), "camera"), (60, (200, 40, 40), "yaw +30")):
        position = pivot + radius * np.array([np.cos(np.radians(angle)), np.sin(np.radians(angle))])
        draw.ellipse([*(position - 7), *(position + 7)], fill=colour)
        draw.text((position[0] + 10, position[1] + 4), label, fill=colour)
    draw.arc([*(pivot - radius), *(pivot + radius)], 60, 90, fill=(200, 40, 40), width=3)
    draw.text((8, 8), "from above: yaw turns about world z\n(positive = counter-clockwise)", fill="black")
    # Side view: pitch and zoom.
    left = W
    pivot = np.array([left + W * 0.45, H * 0.7])
    draw.line([left + 20, pivot[1] + 6, left + W - 20, pivot[1] + 6], fill=(150, 130, 110), width=4)
    draw.ellipse([*(pivot - 4), *(pivot + 4)], fill="black")
    radius = 130
    for angle, colour, label in ((45, (40, 40, 40), "camera"), (65, (200, 40, 40), "pitch +20")):
        position = pivot + radius * np.array([np.cos(np.radians(angle)), -np.sin(np.radians(angle))])
        draw.ellipse([*(position - 7), *(position + 7)], fill=colour)
        draw.text((position[0] + 10, position[1] - 6), label, fill=colour)
    draw.arc([*(pivot - radius), *(pivot + radius)], -65, -45, fill=(200, 40, 40), width=3)
    draw.text((left + 8, 8), "from the side: pitch turns about the\ncamera's x axis (positive = higher)", fill="black")
    # Zoom.
    left = 2 * W
    pivot = np.array([left + W * 0.3, H * 0.7])
    draw.ellipse([*(pivot - 4), *(pivot + 4)], fill="black")
    far = pivot + 150 * np.array([np.cos(np.radians(45)), -np.sin(np.radians(45))])
    near = pivot + (far - pivot) / 1.5
    draw.ellipse([*(far - 7), *(far + 7)], fill=(40, 40, 40))
    draw.ellipse([*(near - 7), *(near + 7)], fill=(200, 40, 40))
    arrow(draw, tuple(far - (far - pivot) * 0.08), tuple(near + (far - pivot) * 0.06), (200, 40, 40))
    draw.text((near[0] + 12, near[1]), "zoom 1.5:\ndistance / 1.5", fill=(200, 40, 40))
    draw.text((left + 8, 8), "zoom > 1 moves closer to the pivot,\nalways looking the same way at it", fill="black")
    return image


def main() -> None:
    env = gym.make("joyai/TabletopSpatial-v0", width=W, height=H)
    obs, info = env.reset(seed=4)
    wm = WorldModel.load("geometric")
    scene = wm.observe(obs, labels={o["id"]: o["name"] for o in info["objects"]})
    rows = [diagram()]
    for label, move in MOVES:
        view = wm.imagine(scene, move)
        truth = env.unwrapped.render_view(view.cam_to_world, view.intrinsics, W, H)["rgb"]
        row = Image.new("RGB", (3 * W, H), "white")
        for column, (title, image) in enumerate((("source", obs["rgb"]), (f"{label}: imagined", view.rgb),
                                                 (f"{label}: simulator", truth))):
            row.paste(Image.fromarray(image), (column * W, 0))
            ImageDraw.Draw(row).text((column * W + 6, 6), title, fill="white")
        rows.append(row)
    env.close()
    figure = Image.new("RGB", (3 * W, H * len(rows)), "white")
    for i, row in enumerate(rows):
        figure.paste(row, (0, i * H))
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(repo, "joyai_embodied", "backends", "geometric", "figures", "camera_move.png")
    figure.save(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
