"""Language tasks with a unique ground-truth answer, in five fixed templates.

Templates (lower case, parsed by the planner):

1. ``put the {name} on the {plate}``
2. ``put the object {rel} the {ref} on the {plate}``          rel: left of, right of, in front of, behind
3. ``put the {shape} {rel} the {ref} on the {plate}``
4. ``put the object closest to the {ref} on the {plate}`` / ``... farthest from the {ref} ...``
5. ``from the {camera} camera, put the object {rel} the {ref} on the {plate}``

An instruction is emitted only if its answer is unique with a 4 cm margin: the answer is at least
``UNIQUE_MARGIN_M`` on the named side of the reference and every other candidate is not on that side at
all (offset <= 0); for closest/farthest the runner-up is at least ``UNIQUE_MARGIN_M`` farther/closer.
Candidates are the non-plate objects other than the reference; the place plate is never the reference.
Directional relations use the observation camera, or the named camera in template 5 (the top camera is
only asked left/right, since depth from above is height).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from joyai_embodied.spatial import DIRECTION_WORDS

from .relations import directional_offset

#: An answer must win by this much (metres): far beyond any world model's estimation error, so a task
#: always has exactly one right answer.
UNIQUE_MARGIN_M = 0.04
#: Distance superlatives of template 4.
SUPERLATIVES = ("closest to", "farthest from")


def _unique_directional(relation: str, reference: Mapping, candidates: Sequence[Mapping],
                        cam_to_world: np.ndarray) -> Mapping | None:
    offsets = [directional_offset(relation, c["position"], reference["position"], cam_to_world) for c in candidates]
    winners = [c for c, d in zip(candidates, offsets) if d >= UNIQUE_MARGIN_M]
    if len(winners) != 1:
        return None
    if any(d > 0.0 for c, d in zip(candidates, offsets) if c is not winners[0]):
        return None
    return winners[0]


def _unique_superlative(relation: str, reference: Mapping, candidates: Sequence[Mapping]) -> Mapping | None:
    if len(candidates) < 2:
        return None
    ref = np.asarray(reference["position"])
    ranked = sorted(candidates, key=lambda c: float(np.linalg.norm(np.asarray(c["position"]) - ref)))
    if relation == "farthest from":
        ranked.reverse()
    best, runner_up = (float(np.linalg.norm(np.asarray(c["position"]) - ref)) for c in ranked[:2])
    return ranked[0] if abs(best - runner_up) >= UNIQUE_MARGIN_M else None


def generate_instruction(rng: np.random.Generator, objects: Sequence[Mapping], observation_camera: str,
                         camera_poses: Mapping[str, np.ndarray]) -> tuple[str, dict]:
    """Draws a pick-and-place instruction and its ground-truth solution.

    Args:
        rng: the episode's random generator.
        objects: ``info["objects"]`` entries (settled positions).
        observation_camera: the env's camera; relations in templates 1-4 are from it.
        camera_poses: name -> cam_to_world of every named camera.

    Returns:
        (instruction, target) where target has keys pick_id, pick_name, place_id, place_name,
        template (1-5), relation (or None), reference (name or None) and viewpoint (camera name).
    """
    plates = [o for o in objects if o["shape"] == "plate"]
    place = plates[int(rng.integers(len(plates)))]
    movable = [o for o in objects if o["shape"] != "plate"]
    references = [o for o in objects if o is not place]

    def target(pick: Mapping, template: int, relation: str | None = None, reference: Mapping | None = None,
               viewpoint: str = observation_camera) -> dict:
        return {"pick_id": int(pick["id"]), "pick_name": pick["name"], "place_id": int(place["id"]),
                "place_name": place["name"], "template": template, "relation": relation,
                "reference": reference["name"] if reference is not None else None, "viewpoint": viewpoint}

    def shuffled(items: Sequence) -> list:
        return [items[i] for i in rng.permutation(len(items))]

    def directional(template: int, viewpoint: str, relations: Sequence[str]):
        for reference in shuffled(references):
            candidates = [o for o in movable if o is not reference]
            if template == 3:
                shapes = {o["shape"] for o in candidates}
                groups = [[o for o in candidates if o["shape"] == s] for s in sorted(shapes)]
                pools = [g for g in shuffled(groups) if len(g) >= 2]
            else:
                pools = [candidates]
            for pool in pools:
                for relation in shuffled(list(relations)):
                    pick = _unique_directional(relation, reference, pool, camera_poses[viewpoint])
                    if pick is not None:
                        return pick, relation, reference, pool
        return None

    for template in (int(t) for t in rng.permutation([1, 2, 3, 4, 5])):
        if template == 1:
            pick = movable[int(rng.integers(len(movable)))]
            return f"put the {pick['name']} on the {place['name']}", target(pick, 1)
        if template in (2, 3):
            found = directional(template, observation_camera, list(DIRECTION_WORDS))
            if found:
                pick, relation, reference, pool = found
                subject = "object" if template == 2 else pick["shape"]
                return (f"put the {subject} {relation} the {reference['name']} on the {place['name']}",
                        target(pick, template, relation, reference))
        if template == 4:
            for reference in shuffled(references):
                for relation in shuffled(list(SUPERLATIVES)):
                    pick = _unique_superlative(relation, reference, [o for o in movable if o is not reference])
                    if pick is not None:
                        return (f"put the object {relation} the {reference['name']} on the {place['name']}",
                                target(pick, 4, relation, reference))
        if template == 5:
            for viewpoint in shuffled([c for c in sorted(camera_poses) if c != observation_camera]):
                relations = ["left of", "right of"] if viewpoint == "top" else list(DIRECTION_WORDS)
                found = directional(5, viewpoint, relations)
                if found:
                    pick, relation, reference, _ = found
                    return (f"from the {viewpoint} camera, put the object {relation} the {reference['name']} "
                            f"on the {place['name']}", target(pick, 5, relation, reference, viewpoint))
    raise AssertionError("unreachable: template 1 always applies")
