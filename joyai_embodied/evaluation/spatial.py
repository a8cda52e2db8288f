"""Scores a world model's spatial understanding against the simulator's exact ground truth.

For every seeded ``joyai/TabletopSpatial-v0`` scene, the model observes the front camera's frame and is
asked every directional relation (left of, right of, in front of, behind) between every ordered pair of
objects, from the observing camera and, for perspective taking, from the "side" and "top" cameras
(``frame=CameraPose``); plus above/below and the centre distance. Ground truth comes from
``info["objects"]`` with the contract semantics (:mod:`sim_envs.relations`).

Only well-posed pairs are scored: both objects visible (at least ``min_pixels`` pixels in the ground-truth
segmentation) and at least ``min_separation_m`` apart on the axis asked, so a 1 cm margin cannot flip
the answer. Objects the model failed to find count as wrong answers, not as skipped pairs.
"""

from __future__ import annotations

import time
from typing import Any, Iterable

import numpy as np

#: Relations scored, as (Relation field, sim_envs.relations word).
DIRECTIONAL = (("left_of", "left of"), ("right_of", "right of"), ("in_front_of", "in front of"),
               ("behind", "behind"))
VERTICAL = (("above", "above"), ("below", "below"))
#: Perspectives scored: the observing camera and two others.
VIEWPOINTS = ("camera", "side", "top")


def _summary(values: list[float]) -> dict[str, float]:
    if not values:
        return {"mean": float("nan"), "p90": float("nan"), "p95": float("nan"), "max": float("nan"), "n": 0}
    array = np.abs(np.asarray(values, dtype=np.float64))
    return {"mean": float(array.mean()), "p90": float(np.percentile(array, 90)),
            "p95": float(np.percentile(array, 95)), "max": float(array.max()), "n": int(array.size)}


def _size_errors(extent: np.ndarray, size: Iterable[float]) -> list[float]:
    """Per-side errors, horizontal sides compared sorted (a box's x/y labels are arbitrary)."""
    size = np.asarray(list(size), dtype=np.float64)
    horizontal = np.sort(extent[:2]) - np.sort(size[:2])
    return [*horizontal.tolist(), float(extent[2] - size[2])]


def evaluate_spatial(seeds: Iterable[int], width: int = 640, height: int = 480, progress: bool = True,
                     world_model: Any = None, use_segmentation: bool = True, min_pixels: int = 100,
                     min_separation_m: float = 0.03, depth_noise: str = "none", noise_seed: int = 0,
                     frames: int = 1) -> dict[str, Any]:
    """Relation accuracy and distance/size/position errors over seeded simulator scenes.

    Args:
        seeds: scene seeds (``env.reset(seed=...)``).
        width: image width of the observing camera.
        height: image height.
        progress: print one line per scene.
        world_model: a :class:`~joyai_embodied.WorldModel`; default ``WorldModel.load("geometric")``.
        use_segmentation: False drops the segmentation image (plane + clustering path); objects are then
            matched to ground truth by nearest centre.
        min_pixels: ground-truth pixels an object needs to count as visible.
        min_separation_m: pairs closer than this on the axis asked are not scored.
        depth_noise: the env's sensor model (``"none"``, ``"structured_light"``, ``"stereo"``:
            :mod:`sim_envs.sensor_noise`); ground truth stays exact.
        noise_seed: seed of the depth noise (independent of the scene seeds).
        frames: frames of the still scene the model observes together (``wm.observe([...])``, temporal
            fusion); 1 = the reset frame alone.

    Returns:
        A dict: ``relation_accuracy`` (overall and per relation and per viewpoint, with counts),
        ``distance_error_m``, ``centroid_error_m``, ``size_error_m`` (mean/p95/max/n), ``name_accuracy``,
        ``detection_rate``, ``observe_ms`` (median), ``scenes`` and up to 10 ``failures`` examples.

    Raises:
        ImportError: ``sim_envs`` (MuJoCo, Gymnasium) is not installed.
    """
    import gymnasium as gym

    import sim_envs  # registers the env
    from sim_envs import relations as truth

    from .. import CameraPose, WorldModel

    wm = world_model if world_model is not None else WorldModel.load("geometric")
    if isinstance(frames, bool) or not isinstance(frames, int) or frames < 1:
        from ..errors import InvalidInputError

        raise InvalidInputError("frames", "a positive number of frames", repr(frames))
    env = gym.make(sim_envs.ENV_ID, width=width, height=height, depth_noise=depth_noise, noise_seed=noise_seed)
    correct: dict[str, list[bool]] = {}
    distance_errors, centroid_errors, size_errors, observe_ms = [], [], [], []
    names_right = names_total = found = expected = 0
    failures: list[str] = []
    seeds = list(seeds)
    try:
        for index, seed in enumerate(seeds):
            obs, info = env.reset(seed=int(seed))
            shots = [obs] + [env.unwrapped.observe() for _ in range(frames - 1)]
            shots = [dict(o) if use_segmentation else {k: v for k, v in o.items() if k != "segmentation"}
                     for o in shots]
            start = time.perf_counter()
            scene = wm.observe(shots[0] if frames == 1 else shots[::-1])  # latest first
            observe_ms.append(1000 * (time.perf_counter() - start))

            pixels = np.bincount(obs["segmentation"].ravel(), minlength=16)
            visible = [g for g in info["objects"] if pixels[g["id"]] >= min_pixels]
            matched = _match(scene.objects, visible, by_id=use_segmentation)
            expected += len(visible)
            found += len(matched)
            for g in visible:
                obj = matched.get(g["id"])
                if obj is None:
                    continue
                centroid_errors.append(float(np.linalg.norm(obj.centroid - np.asarray(g["position"]))))
                size_errors.extend(_size_errors(obj.extent, g["size"]))
                names_total += 1
                names_right += obj.name == g["name"]

            viewpoints = {"camera": (obs["cam_to_world"], None)}
            for name in VIEWPOINTS[1:]:
                pose, intrinsics = env.unwrapped.camera_pose(name)
                viewpoints[name] = (pose, CameraPose(pose, intrinsics, width, height))
            for a in visible:
                for b in visible:
                    if a is b:
                        continue
                    obj_a, obj_b = matched.get(a["id"]), matched.get(b["id"])
                    gt_distance = float(np.linalg.norm(np.subtract(a["position"], b["position"])))
                    if obj_a is not None and obj_b is not None:
                        distance_errors.append(wm.relation(scene, obj_a.name, obj_b.name).distance_m - gt_distance)
                    for view, (pose, camera) in viewpoints.items():
                        rel = None
                        if obj_a is not None and obj_b is not None:
                            rel = wm.relation(scene, obj_a.name, obj_b.name, frame=camera or "camera")
                        for field, word in DIRECTIONAL:
                            if abs(truth.directional_offset(word, a["position"], b["position"], pose)) \
                                    < min_separation_m:
                                continue
                            expected_value = truth.holds(word, a, b, pose, margin=wm_margin(wm))
                            ok = rel is not None and getattr(rel, field) == expected_value
                            correct.setdefault(f"{view}:{field}", []).append(ok)
                            if not ok and len(failures) < 10:
                                failures.append(f"seed {seed} {view}: {a['name']} {word} {b['name']} "
                                                f"truth={expected_value} model={getattr(rel, field, None)}")
                    if obj_a is not None and obj_b is not None:
                        rel = wm.relation(scene, obj_a.name, obj_b.name)
                        for field, word in VERTICAL:
                            correct.setdefault(f"camera:{field}", []).append(
                                getattr(rel, field) == truth.holds(word, a, b, obs["cam_to_world"]))
            if progress:
                done = sum(len(v) for v in correct.values())
                right = sum(sum(v) for v in correct.values())
                print(f"scene {index + 1}/{len(seeds)} (seed {seed}): {len(visible)} visible objects, "
                      f"running relation accuracy {right / max(done, 1):.3f} over {done}", flush=True)
    finally:
        env.close()

    def accuracy(keys: list[str]) -> dict[str, float]:
        values = [ok for key in keys for ok in correct.get(key, [])]
        return {"accuracy": float(np.mean(values)) if values else float("nan"), "n": len(values)}

    per_relation = {field: accuracy([k for k in correct if k.endswith(":" + field)])
                    for field, _ in DIRECTIONAL + VERTICAL}
    per_view = {view: accuracy([k for k in correct if k.startswith(view + ":")
                                and k.split(":")[1] in dict(DIRECTIONAL)]) for view in VIEWPOINTS}
    return {
        "scenes": len(seeds), "width": width, "height": height, "use_segmentation": use_segmentation,
        "depth_noise": depth_noise, "noise_seed": noise_seed, "frames": frames,
        "relation_accuracy": {"overall": accuracy(list(correct)), "by_relation": per_relation, "by_view": per_view},
        "distance_error_m": _summary(distance_errors), "centroid_error_m": _summary(centroid_errors),
        "size_error_m": _summary(size_errors),
        "name_accuracy": names_right / names_total if names_total else float("nan"),
        "detection_rate": found / expected if expected else float("nan"),
        "observe_ms": float(np.median(observe_ms)) if observe_ms else float("nan"),
        "failures": failures,
    }


def wm_margin(wm: Any) -> float:
    """The relation margin the model uses (the geometric backend's option; 1 cm otherwise)."""
    return float(getattr(getattr(wm, "backend", None), "relation_margin_m", 0.01))


def _match(objects: list, visible: list[dict], by_id: bool) -> dict[int, Any]:
    """Ground-truth id -> model object: by segmentation id, or greedily by nearest centre (within 5 cm)."""
    if by_id:
        by_object_id = {o.id: o for o in objects}
        return {g["id"]: by_object_id[g["id"]] for g in visible if g["id"] in by_object_id}
    pairs = sorted((float(np.linalg.norm(o.centroid - np.asarray(g["position"]))), i, g["id"])
                   for i, o in enumerate(objects) for g in visible)
    matched: dict[int, Any] = {}
    used: set[int] = set()
    for distance, i, gid in pairs:
        if distance > 0.05 or i in used or gid in matched:
            continue
        matched[gid] = objects[i]
        used.add(i)
    return matched
