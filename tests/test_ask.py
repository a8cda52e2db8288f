"""The geometric backend's question grammar (``WorldModel.ask``) on an exact synthetic tabletop.

Layout (camera at +x looking toward -x, so camera-left is world -y; nearer the camera is larger x):
red cube (-0.10, -0.08), 5 cm; blue box (0.06, 0.10), 6 x 4 x 8 cm; yellow cube (0.12, -0.12), 4 cm.
"""

import numpy as np
import pytest

from joyai_embodied import AmbiguousObjectError, UnknownObjectError, WorldModel
from joyai_embodied.backends.geometric import GeometricBackend
from joyai_embodied.evaluation import synthetic
from joyai_embodied.evaluation.synthetic import TABLE_HEIGHT, Box


@pytest.fixture(scope="module")
def scene(wm):
    return wm.observe(synthetic.observe(synthetic.front_camera(320, 240), synthetic.default_boxes()))


@pytest.mark.parametrize("question, expected", [
    ("Is the red cube left of the blue box?", True),
    ("is the red cube to the right of the blue box", False),
    ("Is the blue box right of the red cube?", True),
    ("is the yellow cube in front of the red cube?", True),
    ("is the yellow cube behind the red cube?", False),
    ("Is the red cube behind the yellow cube?", True),
    ("is the red cube above the blue box?", False),
    ("is the red cube on top of the blue box?", False),
    ("is the red cube below the yellow cube?", False),
    ("IS THE RED CUBE LEFT OF THE BLUE BOX", True),
])
def test_yes_no_relations(wm, scene, question, expected):
    answer = wm.ask(scene, question)
    assert answer.supported and answer.unit == "bool"
    assert answer.value is expected
    assert answer.text.startswith("Yes" if expected else "No")


def test_distance_forms_agree(wm, scene):
    truth = np.linalg.norm(np.subtract((-0.10, -0.08, 0.425), (0.06, 0.10, 0.44)))
    for question in ("How far is the red cube from the blue box?",
                     "what is the distance between the red cube and the blue box",
                     "how far apart are the red cube and the blue box?"):
        answer = wm.ask(scene, question)
        assert answer.unit == "m" and answer.value == pytest.approx(truth, abs=0.005), question
        assert f"{100 * answer.value:.1f} cm" in answer.text


@pytest.mark.parametrize("question, expected", [
    ("How tall is the blue box?", 0.08),
    ("what is the height of the yellow cube", 0.04),
    ("how wide is the blue box", 0.06),
    ("how deep is the blue box", 0.04),
])
def test_sizes(wm, scene, question, expected):
    answer = wm.ask(scene, question)
    assert answer.unit == "m" and answer.value == pytest.approx(expected, abs=0.005)


def test_how_big_gives_the_box(wm, scene):
    answer = wm.ask(scene, "How big is the red cube?")
    assert np.allclose(answer.value, [0.05, 0.05, 0.05], atol=0.005)


@pytest.mark.parametrize("question, expected", [
    ("How many objects are there?", 3),
    ("how many cubes", 3),
    ("how many red objects?", 1),
    ("how many yellow cubes are there", 1),
    ("how many green things", 0),
    ("how many spheres", 0),
])
def test_counts(wm, scene, question, expected):
    answer = wm.ask(scene, question)
    assert answer.unit == "count" and answer.value == expected


def test_which_objects(wm, scene):
    assert wm.ask(scene, "Which objects are right of the red cube?").value == ["blue box"]
    assert wm.ask(scene, "what objects are in front of the red cube").value == ["yellow cube", "blue box"]
    answer = wm.ask(scene, "which objects are above the red cube?")
    assert answer.value == [] and answer.text.startswith("Nothing")


def test_nearest_and_farthest(wm, scene):
    assert wm.ask(scene, "What is the nearest object to the red cube?").value == "yellow cube"
    assert wm.ask(scene, "which object is farthest from the red cube").value == "blue box"
    assert wm.ask(scene, "Which object is closest to the camera?").value == "yellow cube"
    assert wm.ask(scene, "which object is farthest from the camera").value == "red cube"


def test_visibility(wm, scene):
    assert wm.ask(scene, "is the red cube visible?").value is True
    assert wm.ask(scene, "Is the yellow cube occluded?").value is False
    assert wm.ask(scene, "is the blue box fully visible").value is True


def test_frames_and_perspective_taking(wm, scene):
    question = "is the red cube left of the blue box?"
    assert wm.ask(scene, question, frame="world").value is False  # world left is +y
    opposite = synthetic.front_camera(320, 240, yaw_deg=180.0)
    answer = wm.ask(scene, "From the back camera, " + question, frame=opposite)
    assert answer.value is False and answer.frame == "camera:back"
    turned = wm.ask(scene, "From the viewpoint at yaw 180, " + question)
    assert turned.value is False and turned.frame == "camera:yaw=180"
    assert wm.ask(scene, "from the camera at yaw 5 degrees, " + question).value is True
    registered = WorldModel(GeometricBackend(cameras={"back": opposite}))
    assert registered.ask(scene, "from the back camera, " + question).value is False


def test_unknown_camera_is_unsupported_not_guessed(wm, scene):
    answer = wm.ask(scene, "from the side camera, is the red cube left of the blue box?")
    assert not answer.supported and answer.confidence == 0.0
    assert "side camera" in answer.text and "frame=CameraPose" in answer.text


@pytest.mark.parametrize("question", [
    "what colour is the sky?",
    "How many dogs are there?",
    "pick up the red cube",
    "is the red cube heavier than the blue box?",
])
def test_outside_the_grammar_says_so(wm, scene, question):
    answer = wm.ask(scene, question)
    assert answer.supported is False and answer.value is None and answer.confidence == 0.0
    assert "I cannot answer" in answer.text and "how far is A from B" in answer.text


def test_unknown_and_ambiguous_names(wm, scene):
    with pytest.raises(UnknownObjectError) as info:
        wm.ask(scene, "is the green sphere left of the red cube?")
    assert info.value.known == ["blue box", "red cube", "yellow cube"]
    with pytest.raises(AmbiguousObjectError):
        wm.ask(scene, "how tall is the cube?")
    assert wm.ask(scene, "how tall is the box?").value == pytest.approx(0.08, abs=0.005)  # unique partial name


def test_stacking_questions(wm):
    boxes = [Box(1, "blue box", (0.0, 0.0, TABLE_HEIGHT + 0.03), (0.08, 0.08, 0.06), (26, 64, 217)),
             Box(2, "red cube", (0.0, 0.0, TABLE_HEIGHT + 0.08), (0.04, 0.04, 0.04), (217, 26, 26))]
    scene = wm.observe(synthetic.observe(synthetic.front_camera(320, 240), boxes))
    assert wm.ask(scene, "is the red cube on the blue box?").value is True
    assert wm.ask(scene, "Is the blue box under the red cube?").value is True
    assert wm.ask(scene, "which objects are on top of the blue box").value == ["red cube"]
