"""Instructions, ground-truth targets and scene variety of joyai/TabletopSpatial-v0 over many seeds."""

import argparse
import re

import gymnasium as gym
import numpy as np
import pytest

import sim_envs
from joyai_embodied.camera import project
from sim_envs.cameras import camera_to_world
from sim_envs.relations import directional_offset, holds

SEEDS = range(40)
NAME = r"[a-z]+ (?:cube|cylinder|sphere|plate)"
REL = r"left of|right of|in front of|behind"
TEMPLATES = {
    1: re.compile(rf"^put the (?P<pick>{NAME}) on the (?P<plate>{NAME})$"),
    2: re.compile(rf"^put the object (?P<rel>{REL}) the (?P<ref>{NAME}) on the (?P<plate>{NAME})$"),
    3: re.compile(rf"^put the (?P<shape>cube|cylinder|sphere) (?P<rel>{REL}) the (?P<ref>{NAME}) "
                  rf"on the (?P<plate>{NAME})$"),
    4: re.compile(rf"^put the object (?P<rel>closest to|farthest from) the (?P<ref>{NAME}) on the (?P<plate>{NAME})$"),
    5: re.compile(rf"^from the (?P<view>front|side|top) camera, put the object (?P<rel>{REL}) the (?P<ref>{NAME}) "
                  rf"on the (?P<plate>{NAME})$"),
}


@pytest.fixture(scope="module")
def episodes():
    env = gym.make(sim_envs.ENV_ID, width=48, height=48)
    result = []
    for seed in SEEDS:
        obs, info = env.reset(seed=seed)
        result.append((seed, obs, info))
    env.close()
    return result


def solve(match, template, objects, observation_camera):
    """Answers an instruction independently of the generator, from its text and the ground truth."""
    by_name = {o["name"]: o for o in objects}
    if template == 1:
        return by_name[match["pick"]]
    reference = by_name[match["ref"]]
    candidates = [o for o in objects if o["shape"] != "plate" and o is not reference]
    if template == 3:
        candidates = [o for o in candidates if o["shape"] == match["shape"]]
    if template == 4:
        distances = [np.linalg.norm(np.subtract(o["position"], reference["position"])) for o in candidates]
        order = np.argsort(distances)
        ranked = order if match["rel"] == "closest to" else order[::-1]
        assert abs(distances[ranked[0]] - distances[ranked[1]]) >= 0.04  # clearly the closest / farthest
        return candidates[ranked[0]]
    camera = match["view"] if template == 5 else observation_camera
    cam_to_world = camera_to_world(camera)
    chosen = [o for o in candidates if holds(match["rel"], o, reference, cam_to_world, margin=0.04)]
    assert len(chosen) == 1, [o["name"] for o in chosen]
    # Every other candidate is clearly not on that side.
    for other in candidates:
        if other is not chosen[0]:
            assert directional_offset(match["rel"], other["position"], reference["position"], cam_to_world) <= 0
    return chosen[0]


def test_instructions_follow_the_templates_and_targets_are_unique(episodes):
    seen_templates = set()
    for seed, _, info in episodes:
        target = info["target"]
        template = target["template"]
        match = TEMPLATES[template].match(info["instruction"])
        assert match, (seed, info["instruction"])
        seen_templates.add(template)
        objects = info["objects"]
        plate = next(o for o in objects if o["name"] == match["plate"])
        assert plate["shape"] == "plate" and plate["id"] == target["place_id"]
        answer = solve(match, template, objects, "front")
        assert answer["id"] == target["pick_id"] and answer["name"] == target["pick_name"], seed
        assert answer["shape"] != "plate"
        if template > 1:
            assert target["reference"] == match["ref"] != target["place_name"]
            assert target["relation"] == match["rel"]
        assert target["viewpoint"] == (match["view"] if template == 5 else "front")
        assert not info["success"]
    assert seen_templates == {1, 2, 3, 4, 5}


def test_scenes_obey_the_layout_contract(episodes):
    for seed, _, info in episodes:
        objects = info["objects"]
        plates = [o for o in objects if o["shape"] == "plate"]
        assert 3 <= len(objects) <= 8 and 1 <= len(plates) <= 2, seed
        assert len({o["name"] for o in objects}) == len(objects) and len({o["color"] for o in objects}) == len(objects)
        for obj in objects:
            assert obj["name"] == f"{obj['color']} {obj['shape']}" and obj["color"] in sim_envs.COLORS
            x, y, z = obj["position"]
            assert -0.23 <= x <= 0.23 and -0.31 <= y <= 0.31
            assert z - obj["size"][2] / 2 >= sim_envs.TABLE_HEIGHT - 0.005  # on the table, not fallen off
            if obj["shape"] == "plate":
                assert 0.14 <= obj["size"][0] <= 0.18 and obj["size"][2] == pytest.approx(0.015)
            else:
                assert 0.04 - 1e-9 <= obj["size"][2] <= 0.06 + 1e-9


def test_some_seeds_stack_and_some_hide_objects(episodes):
    stacked = occluded = 0
    for _, obs, info in episodes:
        objects = info["objects"]
        stacked += any(holds("on top of", a, b, None) for a in objects for b in objects
                       if a is not b and b["shape"] != "plate")
        pixels, depths = project(np.array([o["position"] for o in objects]), obs["intrinsics"], obs["cam_to_world"])
        for obj, (u, v), depth in zip(objects, pixels, depths):
            seen = obs["segmentation"][int(round(v)), int(round(u))]
            if seen not in (0, obj["id"]) and obs["depth"][int(round(v)), int(round(u))] < depth:
                occluded += 1  # its centre is hidden behind another object from the front camera
    assert stacked >= 3 and occluded >= 3, (stacked, occluded)


def test_sim_episode_command_writes_frames_and_succeeds(tmp_path, capsys):
    from joyai_embodied.commands import sim_episode

    parser = argparse.ArgumentParser()
    sim_episode.add_arguments(parser)
    args = parser.parse_args(["--seed", "3", "--out", str(tmp_path), "--width", "64", "--height", "48"])
    assert sim_episode.run(args) == 0
    frames = sorted(p.name for p in tmp_path.glob("*.png"))
    assert "frame_00_reset.png" in frames and "frame_02_place.png" in frames
    assert "success" in capsys.readouterr().out
