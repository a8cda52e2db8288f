"""The planner: instruction parsing, planning with the world model in the simulator, report, demo command."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from joyai_embodied.planner import Goal, InstructionError, parse_instruction

# -- instruction parsing (no simulator needed) ---------------------------------------------------------


@pytest.mark.parametrize("text, expected", [
    ("put the red cube on the green plate",
     Goal("put the red cube on the green plate", 1, "green plate", target="red cube")),
    ("put the object left of the blue cylinder on the green plate",
     Goal("put the object left of the blue cylinder on the green plate", 2, "green plate",
          relation="left_of", reference="blue cylinder")),
    ("put the cube behind the red sphere on the blue plate",
     Goal("put the cube behind the red sphere on the blue plate", 3, "blue plate", shape="cube",
          relation="behind", reference="red sphere")),
    ("put the cylinder in front of the red cube on the green plate",
     Goal("put the cylinder in front of the red cube on the green plate", 3, "green plate", shape="cylinder",
          relation="in_front_of", reference="red cube")),
    ("put the object closest to the red cube on the green plate",
     Goal("put the object closest to the red cube on the green plate", 4, "green plate", relation="closest",
          reference="red cube")),
    ("put the object farthest from the white sphere on the cyan plate",
     Goal("put the object farthest from the white sphere on the cyan plate", 4, "cyan plate", relation="farthest",
          reference="white sphere")),
    ("from the side camera, put the object right of the red cube on the green plate",
     Goal("from the side camera, put the object right of the red cube on the green plate", 5, "green plate",
          relation="right_of", reference="red cube", viewpoint="side")),
])
def test_parser_reads_every_template(text, expected):
    assert parse_instruction(text) == expected


def test_parser_ignores_case_spacing_and_full_stop():
    goal = parse_instruction("  Put the Object  LEFT of the Blue Cylinder on the green plate. ")
    assert (goal.template, goal.relation, goal.reference, goal.place) == (2, "left_of", "blue cylinder", "green plate")


@pytest.mark.parametrize("text, reason", [
    ("", "empty"),
    ("stack the red cube on the blue cube", "expected 'put the <object> on the <place>'"),
    ("put the red cube", "expected 'put the <object> on the <place>'"),
    ("from the back camera, put the object left of the red cube on the green plate", "unknown camera 'back'"),
    ("put the object left of on the green plate", "'left of' needs a reference"),
    ("put the object on the green plate", "cannot tell which object"),
    ("put the object left of the green plate on the green plate", "both the reference and the place"),
    ("from the top camera, put the red cube on the green plate", "needs a relation"),
])
def test_parser_rejects_with_a_reason(text, reason):
    with pytest.raises(InstructionError) as info:
        parse_instruction(text)
    assert str(info.value).startswith("cannot plan: ")
    assert reason in str(info.value)


def test_parser_rejects_non_strings():
    with pytest.raises(InstructionError, match="must be a string"):
        parse_instruction(None)


# -- planning in the simulator ---------------------------------------------------------------------------
# Small frames keep each episode well under a second; the default demo runs at 640x480.
WIDTH, HEIGHT = 320, 240


@pytest.fixture(scope="module")
def env():
    pytest.importorskip("mujoco")
    from joyai_embodied.envs import make_env

    environment = make_env(width=WIDTH, height=HEIGHT)
    yield environment
    environment.close()


@pytest.fixture(scope="module")
def wm():
    from joyai_embodied import WorldModel

    return WorldModel.load("geometric")


def _seed_with_template(env, template: int, seeds=range(200)) -> int:
    """The first seed whose generated instruction uses ``template`` (the generator is seeded)."""
    for seed in seeds:
        _, info = env.reset(seed=seed)
        if info["target"]["template"] == template:
            return seed
    pytest.fail(f"no seed in {seeds} produced template {template}")


@pytest.mark.parametrize("template", [1, 2, 3, 4, 5])
def test_planner_solves_each_template(env, wm, template):
    from joyai_embodied.planner import Planner

    seed = _seed_with_template(env, template)
    episode = Planner(wm).run_episode(env, seed=seed)
    assert episode.plan.ok, episode.plan.error
    assert episode.plan.goal.template == template
    assert episode.picked_intended, (episode.plan.pick.name, episode.target)
    assert episode.success
    assert episode.verification.verified  # the world model agrees with the simulator
    kinds = {q.kind for q in episode.plan.queries}
    assert "observe" in kinds and "verify" in {episode.verification.query.kind}
    # Before acting, the world model predicted the outcome by editing the scene and imagining it.
    predict = [q for q in episode.plan.queries if q.kind == "predict"]
    assert len(predict) == 1 and predict[0].answer == "yes"
    assert any(r.label == "predicted outcome" for r in episode.plan.imagined)
    if template in (2, 3, 5):
        assert "relation" in kinds
    if template == 4:
        assert "distance" in kinds
    if template == 5:
        # Perspective taking: relations are asked in the named camera's frame and that view is imagined.
        viewpoint = episode.plan.goal.viewpoint
        assert any(q.frame == f"camera:{viewpoint}" for q in episode.plan.queries if q.kind == "relation")
        assert any(r.label == f"{viewpoint} camera" for r in episode.plan.imagined)


def test_plan_uses_only_observation_arrays(env, wm):
    """Planning from a bare observation (no info at all) gives the same pick as the full episode."""
    from joyai_embodied.planner import Planner

    seed = _seed_with_template(env, 2)
    obs, info = env.reset(seed=seed)
    bare = {k: obs[k] for k in ("rgb", "depth", "segmentation", "intrinsics", "cam_to_world")}
    plan = Planner(wm).plan(bare, info["instruction"])
    assert plan.ok and plan.pick.id == info["target"]["pick_id"]
    assert plan.place.id == info["target"]["place_id"]
    np.testing.assert_allclose(plan.place_position[:2], plan.place.centroid[:2])


def test_missing_object_is_searched_in_imagined_views_then_refused(env, wm):
    from joyai_embodied.planner import Planner

    obs, info = env.reset(seed=0)
    place = info["target"]["place_name"]
    plan = Planner(wm).plan(obs, f"put the object left of the magenta torus on the {place}")
    assert not plan.ok
    assert plan.error.startswith("cannot plan: ") and "magenta torus" in plan.error
    assert len(plan.imagined) == 3  # the three search orbits were imagined and re-observed
    assert sum(q.kind == "imagine" for q in plan.queries) == 3


def test_unparseable_instruction_is_a_cannot_plan_outcome_not_a_crash(env, wm, tmp_path):
    from joyai_embodied.planner import Planner, write_report

    episode = Planner(wm).run_episode(env, seed=1, instruction="stack everything in a tower")
    assert episode.status == "cannot plan" and episode.act is None and not episode.success
    paths = write_report([episode], tmp_path)
    report = json.loads(paths["json"].read_text())
    assert report["episodes"] == 1 and report["success_rate"] == 0.0 and report["cannot_plan"] == 1
    assert report["episodes_detail"][0]["error"].startswith("cannot plan: ")
    assert "cannot plan" in paths["html"].read_text()


def test_report_holds_queries_images_and_success(env, wm, tmp_path):
    from PIL import Image

    from joyai_embodied.planner import Planner, write_report

    planner = Planner(wm)
    episodes = [planner.run_episode(env, seed=_seed_with_template(env, 5)),
                planner.run_episode(env, seed=_seed_with_template(env, 1))]
    paths = write_report(episodes, tmp_path, meta={"backend": "geometric"})
    report = json.loads(paths["json"].read_text())
    assert report["episodes"] == 2
    assert report["success_rate"] == pytest.approx(sum(e.success for e in episodes) / 2)
    first = report["episodes_detail"][0]
    assert first["instruction"] == episodes[0].plan.instruction
    assert first["queries"] and {"kind", "question", "answer", "frame"} <= set(first["queries"][0])
    assert first["imagined_views"] and first["verified"] is not None
    page = paths["html"].read_text()
    for image in [first["images"]["before"], first["images"]["after"], first["images"]["imagined"][0]["file"]]:
        assert image in page
        assert Image.open(tmp_path / image).size == (WIDTH, HEIGHT)


def test_evaluation_runs_planner_and_baseline_on_the_same_tasks(env, wm):
    from joyai_embodied.evaluation.planner import evaluate_planner

    seeds = [_seed_with_template(env, 2, range(s, s + 100)) for s in (0, 300)]
    scores = evaluate_planner(wm, env, seeds)
    planner, baseline = scores["world model"], scores["baseline"]
    assert [e.plan.instruction for e in planner.episodes] == [e.plan.instruction for e in baseline.episodes]
    assert planner.success_rate == 1.0 and planner.to_dict()["failures"] == []
    # The baseline guesses among the same candidates without asking about relations.
    for guess, reasoned in zip(baseline.episodes, planner.episodes):
        assert guess.plan.rationale.startswith("guessed uniformly")
        assert guess.plan.pick.name in reasoned.plan.candidates
        assert not any(q.kind == "relation" for q in guess.plan.queries)


def test_demo_command_writes_report_and_summary(tmp_path, capsys):
    pytest.importorskip("mujoco")
    from joyai_embodied.commands import demo as cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--episodes", "2", "--seed", "7", "--out", str(tmp_path),
                              "--width", str(WIDTH), "--height", str(HEIGHT)])
    assert cli.run(args) == 0
    out = capsys.readouterr().out
    assert "[1/2] seed 7" in out and "[2/2] seed 8" in out and "success" in out
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["episodes"] == 2 and [d["seed"] for d in report["episodes_detail"]] == [7, 8]
    assert (tmp_path / "report.html").is_file()


def test_demo_rejects_bad_arguments():
    from joyai_embodied.commands import demo as cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--episodes", "0"])
    with pytest.raises(SystemExit):
        parser.parse_args(["--via", "carrier-pigeon"])


# -- the eval command ------------------------------------------------------------------------------------


def test_eval_command_writes_a_table_per_benchmark(tmp_path, capsys):
    pytest.importorskip("mujoco")
    from joyai_embodied.commands import eval as cli

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    args = parser.parse_args(["--small", "--seeds", "1", "--only", "spatial", "--only", "planner",
                              "--out", str(tmp_path)])
    assert cli.run(args) == 0
    spatial = json.loads((tmp_path / "spatial.json").read_text())
    assert spatial["seeds"] == [0] and "relation_accuracy" in spatial["result"]
    planner = json.loads((tmp_path / "planner.json").read_text())
    assert set(planner["result"]) == {"world model", "baseline"}
    table = (tmp_path / "planner.md").read_text()
    assert "| world model |" in table and "success_rate" in table
    assert not (tmp_path / "imagination.json").exists()
    assert "| relation_accuracy.overall.accuracy |" in (tmp_path / "spatial.md").read_text()
    assert "== planner: 1 seeds from 0" in capsys.readouterr().out


def test_eval_table_flattens_nested_figures():
    from joyai_embodied.evaluation.tables import format_table

    flat = format_table("spatial", {"accuracy": {"left_of": {"accuracy": 0.75, "n": 4}}, "failures": ["x"],
                                    "observe_ms": 12.5})
    assert "| accuracy.left_of.accuracy | 0.75 |" in flat and "| observe_ms | 12.5 |" in flat
    assert "failures" not in flat
    rows = format_table("imagination", {"yaw 10": {"psnr": 30.0, "views": 3}, "yaw 20": {"psnr": 28.0, "views": 3}})
    assert rows.splitlines()[0] == "| imagination | psnr | views |" and "| yaw 20 | 28 | 3 |" in rows


# -- a world model that does not measure (no depth): the planner must not guess ---------------------------


def _unmeasured(wm, *, located: bool):
    """The geometric world model with its measurements withheld, as a backend without depth answers.

    Relations keep their booleans but carry no offsets or distance; with ``located=False`` the objects also
    have no 3D centroid or extent (NaN), as the joyai-image backend gives without depth.
    """
    from dataclasses import replace

    from joyai_embodied import WorldModel
    from joyai_embodied.backends.geometric import GeometricBackend

    class Unmeasured(GeometricBackend):
        def observe(self, observation):
            scene = super().observe(observation)
            if located:
                return scene
            unknown = np.full(3, np.nan)
            return replace(scene, objects=[replace(o, centroid=unknown, extent=unknown) for o in scene.objects])

        def relation(self, scene, subject, reference, frame="camera"):
            rel = super().relation(scene, subject, reference, frame=frame)
            return replace(rel, lateral_m=np.nan, depth_m=np.nan, vertical_m=np.nan, distance_m=np.nan)

    return WorldModel(Unmeasured())


def _ambiguous_instruction(env, wm):
    """A template-2 style instruction (seed, text) for which not exactly one candidate holds the relation."""
    from joyai_embodied.planner import Planner
    from joyai_embodied.spatial import DIRECTION_WORDS

    seed = _seed_with_template(env, 2)
    obs, info = env.reset(seed=seed)
    goal = parse_instruction(info["instruction"])
    for words in DIRECTION_WORDS:
        text = f"put the object {words} the {goal.reference} on the {goal.place}"
        plan = Planner(wm, preview=False).plan(obs, text)
        answers = [q.answer for q in plan.queries if q.kind == "relation"]
        if plan.ok and answers.count("yes") != 1:
            return obs, text, plan
    pytest.fail("every relation word had exactly one candidate")


def test_without_offsets_the_planner_says_it_cannot_decide(env, wm):
    from joyai_embodied.planner import Planner

    obs, text, measured = _ambiguous_instruction(env, wm)
    assert measured.ok  # with offsets, the furthest along the direction is chosen
    plan = Planner(_unmeasured(wm, located=True), preview=False).plan(obs, text)
    assert not plan.ok and plan.pick is None
    assert plan.error.startswith("cannot plan: cannot decide") and "no offsets" in plan.error
    # A unique answer needs no offsets: the relation booleans decide.
    seed = _seed_with_template(env, 2)
    obs, info = env.reset(seed=seed)
    unique = Planner(_unmeasured(wm, located=True), preview=False).plan(obs, info["instruction"])
    assert unique.ok and unique.pick.id == info["target"]["pick_id"]


def test_without_distances_closest_is_not_guessed(env, wm):
    from joyai_embodied.planner import Planner

    obs, info = env.reset(seed=_seed_with_template(env, 4))
    plan = Planner(_unmeasured(wm, located=True), preview=False).plan(obs, info["instruction"])
    assert not plan.ok and "no distances" in plan.error


def test_without_3d_positions_the_planner_does_not_place_blindly(env, wm):
    from joyai_embodied.planner import Planner

    obs, info = env.reset(seed=_seed_with_template(env, 1))
    plan = Planner(_unmeasured(wm, located=False), preview=False).plan(obs, info["instruction"])
    assert not plan.ok and "does not locate" in plan.error


def test_shapes_come_from_the_world_model_not_from_names(env, wm):
    """Objects the world model gave no shape word are unknown shapes, whatever their names say."""
    from dataclasses import replace

    from joyai_embodied import WorldModel
    from joyai_embodied.backends.geometric import GeometricBackend
    from joyai_embodied.planner import Planner

    class PlateNames(GeometricBackend):
        """Names every object "<id> <colour> plate" and gives no shape words."""

        def observe(self, observation):
            scene = super().observe(observation)
            return replace(scene, objects=[replace(o, name=f"{o.id} {o.color} plate", shape="")
                                           for o in scene.objects])

    obs, info = env.reset(seed=_seed_with_template(env, 2))
    plan = Planner(WorldModel(PlateNames()), preview=False, search_moves=()).plan(obs, info["instruction"])
    # Reading shapes off the names would make every object a plate and leave nothing to pick.
    assert plan.candidates, plan.error
    assert plan.error is None or "other than" not in plan.error
