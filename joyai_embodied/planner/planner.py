"""A language-conditioned pick-and-place planner that reasons with the world model.

The loop for one task (:meth:`Planner.run_episode`):

1. **plan**: parse the instruction (:mod:`.instructions`), observe the scene with the world model and
   resolve which object is meant by asking it: relations from the observing camera or from the named
   camera (perspective taking), distances for closest/farthest, and imagined views (imagine ->
   observe again) when a named object is not found or is mostly hidden.
2. **predict**: edit the scene in the world model (the object moved onto the plate), ask whether it is
   then on top of the plate, and imagine how that looks (evidence for the report).
3. **act**: pick the chosen object by its segmentation id and place it on the plate's centre, through
   the simulator's primitive actions.
4. **verify**: observe again and ask the world model whether the object is now on top of the plate.

The planner reads only the observation arrays (rgb, depth, segmentation, intrinsics, cam_to_world)
and camera calibration. ``info["objects"]`` and ``info["target"]`` are never used for planning; the
episode keeps ``info["target"]`` and ``info["success"]`` only to score the result.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import numpy as np

from ..errors import AmbiguousObjectError, JoyAIError
from ..spatial import direction_offset
from ..types import CameraMove, CameraPose, MoveObject, Relation, Scene, SceneObject
from ..world_model import WorldModel
from .instructions import Goal, InstructionError, parse_instruction
from .records import ActResult, Episode, ImaginationRecord, Plan, Query, Verification

#: Primitive ids of the ``TabletopSpatial`` env in ``action_mode="primitive"``.
NOOP, PICK, PLACE = 0, 1, 2
#: Orbits imagined when an object named in the instruction is missing or mostly hidden: look from
#: either side and from higher up, where what hides it in the observation is out of the way.
SEARCH_MOVES = (CameraMove(yaw_deg=35.0), CameraMove(yaw_deg=-35.0), CameraMove(pitch_deg=30.0))

#: Shape words a backend uses when it cannot classify an object's shape.
UNKNOWN_SHAPES = ("", "object")

CameraSource = Callable[[str], CameraPose] | Mapping[str, CameraPose]


class Planner:
    """Plans and executes ``put <object> on the <plate>`` tasks with a :class:`WorldModel`.

    Example:
        >>> env = gym.make("joyai/TabletopSpatial-v0", action_mode="primitive")
        >>> planner = Planner(WorldModel.load("geometric"))
        >>> episode = planner.run_episode(env, seed=3)
        >>> episode.status, episode.verification.verified

    Args:
        wm: the world model to observe with and query.
        occlusion_threshold: an object named in the instruction whose ``visible_fraction`` is below
            this is treated as mostly hidden, and the planner imagines other views to locate it.
        search_moves: camera orbits imagined to find a missing or hidden object.
        imagine_perspective: for "from the <camera> camera" instructions, also imagine the scene from
            that camera and re-observe it (the view goes in the report, and the relation found in it
            is cross-checked against the direct one).
        preview: before acting, edit the scene in the world model (move the chosen object onto the
            plate), ask whether it would then be on top of the plate, and imagine how that looks from
            the observing camera (the predicted outcome in the report).
    """

    def __init__(self, wm: WorldModel, *, occlusion_threshold: float = 0.35,
                 search_moves: tuple[CameraMove, ...] = SEARCH_MOVES, imagine_perspective: bool = True,
                 preview: bool = True):
        if not 0.0 <= float(occlusion_threshold) <= 1.0:
            from ..errors import InvalidInputError
            raise InvalidInputError("occlusion_threshold", "a fraction in [0, 1]", occlusion_threshold)
        self.wm = wm
        self.occlusion_threshold = float(occlusion_threshold)
        self.search_moves = tuple(search_moves)
        self.imagine_perspective = bool(imagine_perspective)
        self.preview = bool(preview)

    # -- plan ----------------------------------------------------------------------------------
    def plan(self, obs: Mapping[str, Any], instruction: str, cameras: CameraSource | None = None) -> Plan:
        """Decides what to pick and where to put it, from one observation.

        Args:
            obs: an observation dict with rgb, depth, segmentation, intrinsics and cam_to_world.
            instruction: the task in words (one of the templates in :mod:`.instructions`).
            cameras: calibration of named cameras (a mapping or a function name -> CameraPose),
                needed only for "from the <camera> camera, ..." instructions.

        Returns:
            A Plan; ``plan.error`` starts with ``"cannot plan: "`` when the instruction cannot be parsed
            or the objects it names cannot be found, rather than raising.

        Raises:
            InvalidInputError: ``obs`` is not a valid observation.
        """
        plan = Plan(instruction=instruction)
        try:
            plan.goal = parse_instruction(instruction)
        except InstructionError as exc:
            plan.error = str(exc)
            return plan
        scene = self.wm.observe(obs)
        plan.scene = scene
        plan.queries.append(Query("observe", "What objects are in view?",
                                  ", ".join(o.name for o in scene.objects) or "none",
                                  detail={"objects": [_object_facts(o) for o in scene.objects]}))
        try:
            self._resolve(plan, scene, plan.goal, cameras)
        except _CannotPlan as exc:
            plan.error = f"cannot plan: {exc}"
            plan.pick = None
        if plan.ok and self.preview:
            self._predict_outcome(plan, scene)
        return plan

    def _predict_outcome(self, plan: Plan, scene: Scene) -> None:
        """Imagines the plan's result before acting: edit the scene, re-ask the relation, render the view.

        The prediction is evidence for the report (and a sanity check of the place position); the
        world model's answer does not change the plan.
        """
        question = f"If the {plan.pick.name} is moved onto the {plan.place.name}, will it be on top of it?"
        try:
            edited = self.wm.edit(scene, MoveObject(plan.pick.name, to=[float(v) for v in plan.place_position]))
            relation = self.wm.relation(edited, plan.pick.name, plan.place.name)
            view = self.wm.imagine(edited, scene.observation.camera)
        except JoyAIError as exc:
            plan.queries.append(Query("predict", question, f"cannot tell: {exc}"))
            return
        plan.queries.append(Query("predict", question, "yes" if relation.on_top_of else "no", frame=relation.frame,
                                  detail={"on_top_of": bool(relation.on_top_of), "above": bool(relation.above)}))
        plan.imagined.append(ImaginationRecord(
            "predicted outcome", f"the scene edited so the {plan.pick.name} sits on the {plan.place.name}, "
                                 "seen from the observing camera", view))

    def _resolve(self, plan: Plan, scene: Scene, goal: Goal, cameras: CameraSource | None) -> None:
        plan.place = self._locate(plan, scene, goal.place)
        if not _is_plate(plan.place) and _shape_of(plan.place) not in UNKNOWN_SHAPES:
            raise _CannotPlan(f"the place {goal.place!r} is not a plate")
        plan.place_position = np.array([plan.place.centroid[0], plan.place.centroid[1], plan.place.top_z])
        if not np.all(np.isfinite(plan.place_position)):
            raise _CannotPlan(f"the world model does not locate the {plan.place.name} in 3D (no depth), so "
                              "there is nowhere to place the object")

        if goal.target is not None:
            plan.pick = self._locate(plan, scene, goal.target)
            plan.candidates = [plan.pick.name]
            plan.rationale = f"the instruction names the {plan.pick.name}"
        else:
            reference = self._locate(plan, scene, goal.reference)
            others = [o for o in scene.objects if not _is_plate(o) and o.id not in (reference.id, plan.place.id)]
            candidates = [o for o in others if goal.shape is None or _shape_of(o) == goal.shape]
            if not candidates and goal.shape is not None:
                # The world model could not tell some shapes apart ("object"): those may be the one meant.
                candidates = [o for o in others if _shape_of(o) in UNKNOWN_SHAPES]
            plan.candidates = [o.name for o in candidates]
            if not candidates:
                what = f"{goal.shape}" if goal.shape else "object"
                raise _CannotPlan(f"no {what} other than the {reference.name} and the plates is in view")
            plan.pick, plan.rationale = self.choose(plan, scene, goal, candidates, reference, cameras)
        if plan.pick.id == plan.place.id:
            raise _CannotPlan(f"the object to pick and the place are both the {plan.place.name}")

    def choose(self, plan: Plan, scene: Scene, goal: Goal, candidates: list[SceneObject], reference: SceneObject,
               cameras: CameraSource | None) -> tuple[SceneObject, str]:
        """Picks the candidate a relational instruction means, by asking the world model.

        Subclasses replace this to try other strategies (the evaluation's random baseline does).

        Args:
            plan: the plan being made; queries and imagined views are appended to it.
            scene: the observed scene.
            goal: the parsed instruction (``goal.relation`` is set).
            candidates: objects that could be meant (right shape, not a plate, not the reference).
            reference: the object the relation refers to.
            cameras: calibration of named cameras, for "from the <camera> camera" instructions.

        Returns:
            The chosen object and why it was chosen, in words.
        """
        if goal.relation in ("closest", "farthest"):
            return self._choose_by_distance(plan, scene, goal, candidates, reference)
        frame, frame_name = self._frame(goal, cameras)
        if goal.viewpoint is not None and self.imagine_perspective:
            self._imagine_perspective(plan, scene, goal, frame, candidates, reference)
        return self._choose_by_relation(plan, scene, goal, candidates, reference, frame, frame_name)

    # -- locating objects, with imagination when the observation is not enough -------------------
    def _locate(self, plan: Plan, scene: Scene, name: str) -> SceneObject:
        """The scene object called ``name``; imagines other views when it is missing or mostly hidden."""
        try:
            found = _find_exact(scene, name)
        except AmbiguousObjectError as exc:
            raise _CannotPlan(str(exc)) from exc
        if found is not None and found.visible_fraction >= self.occlusion_threshold:
            plan.queries.append(Query("find", f"Where is the {name}?", _where(found),
                                      detail=_object_facts(found)))
            return found
        reason = (f"the {name} is mostly hidden ({found.visible_fraction:.0%} visible)" if found is not None
                  else f"no object called {name!r} in the observation")
        seen = self._search_imagined(plan, scene, name, reason)
        if seen is not None:
            return seen
        if found is not None:  # hidden but seen: the observed estimate is the best there is
            plan.queries.append(Query("find", f"Where is the {name}?", _where(found) + " (mostly hidden)",
                                      detail=_object_facts(found)))
            return found
        by_colour = _find_by_colour(scene, name)
        if by_colour is not None:
            plan.queries.append(Query("find", f"Where is the {name}?",
                                      f"{_where(by_colour)}; the only {_colour_of(by_colour)} "
                                      f"{'plate' if _is_plate(by_colour) else 'object'}, which the world model "
                                      f"calls the {by_colour.name}", detail=_object_facts(by_colour)))
            return by_colour
        raise _CannotPlan(f"no {name!r} in view, nor in {len(self.search_moves)} imagined views; "
                          f"the world model sees: {', '.join(scene.object_names()) or 'nothing'}")

    def _search_imagined(self, plan: Plan, scene: Scene, name: str, reason: str) -> SceneObject | None:
        """Imagines the search orbits, re-observes each view and looks for ``name`` there.

        An object found in an imagined view is mapped back to the observed scene through its instance
        id, which imagination keeps; its geometry then comes from the observation.
        """
        if not self.search_moves:
            return None
        try:
            views = self.wm.imagine_batch(scene, list(self.search_moves))
        except JoyAIError as exc:
            plan.queries.append(Query("imagine", f"Imagine other views to find the {name}", f"failed: {exc}"))
            return None
        by_id = {o.id: o for o in scene.objects}
        for move, view in zip(self.search_moves, views):
            label = f"search yaw {move.yaw_deg:+.0f} pitch {move.pitch_deg:+.0f}"
            plan.imagined.append(ImaginationRecord(label, reason, view))
            imagined_scene = self.wm.observe(view.as_observation())
            try:
                seen = _find_exact(imagined_scene, name)
            except AmbiguousObjectError:
                seen = None
            observed = by_id.get(seen.id) if seen is not None else None
            plan.queries.append(Query(
                "imagine", f"Imagine the scene ({label}); is the {name} there?",
                f"yes, instance {seen.id} ({observed.name if observed else 'not in the observation'})"
                if seen is not None else "no",
                frame=f"imagined:{label}",
                detail={"objects": imagined_scene.object_names(), "found_id": None if seen is None else seen.id}))
            if observed is not None:
                return observed
        return None

    # -- choosing among candidates ----------------------------------------------------------------
    def _frame(self, goal: Goal, cameras: CameraSource | None) -> tuple[str | CameraPose, str]:
        if goal.viewpoint is None:
            return "camera", "camera"
        if cameras is None:
            raise _CannotPlan(f"the instruction takes the {goal.viewpoint} camera's view, but no camera "
                              "calibration was given")
        try:
            pose = cameras(goal.viewpoint) if callable(cameras) else cameras[goal.viewpoint]
        except (KeyError, ValueError, JoyAIError) as exc:
            raise _CannotPlan(f"no calibration for the {goal.viewpoint} camera ({exc})") from exc
        return pose, f"camera:{goal.viewpoint}"

    def _choose_by_relation(self, plan: Plan, scene: Scene, goal: Goal, candidates: list[SceneObject],
                            reference: SceneObject, frame: str | CameraPose, frame_name: str
                            ) -> tuple[SceneObject, str]:
        words = goal.relation.replace("_", " ")
        holding, offsets = [], {}
        for candidate in candidates:
            relation = self.wm.relation(scene, candidate.name, reference.name, frame=frame)
            holds = bool(getattr(relation, goal.relation))
            offsets[candidate.id] = _offset_along(relation, goal.relation)
            plan.queries.append(Query(
                "relation", f"Is the {candidate.name} {words} the {reference.name}?", "yes" if holds else "no",
                frame=frame_name, detail={"left_of": relation.left_of, "right_of": relation.right_of,
                                          "in_front_of": relation.in_front_of, "behind": relation.behind,
                                          "distance_m": _metres(relation.distance_m),
                                          "lateral_m": _metres(relation.lateral_m),
                                          "depth_m": _metres(relation.depth_m),
                                          "confidence": round(float(relation.confidence), 3)}))
            if holds:
                holding.append(candidate)
        if len(holding) == 1:
            return holding[0], f"the world model says only the {holding[0].name} is {words} the {reference.name}"
        # Several (or no) candidates qualify: take the one furthest along the asked direction, by the
        # signed offsets the world model reported with each relation (in the same frame).
        pool = holding or candidates
        if not all(np.isfinite(offsets[o.id]) for o in pool):
            said = (f"{len(holding)} objects are {words}" if holding else f"no object is clearly {words}")
            raise _CannotPlan(f"cannot decide: the world model says {said} the {reference.name} and gives no "
                              "offsets to tell them apart (no depth)")
        scores = {o.id: offsets[o.id] for o in pool}
        best = max(pool, key=lambda o: scores[o.id])
        if holding:
            return best, (f"{len(holding)} objects are {words} the {reference.name}; the {best.name} is the "
                          f"furthest ({scores[best.id] * 100:.1f} cm)")
        return best, (f"no object is clearly {words} the {reference.name}; the {best.name} is the nearest to it "
                      f"({scores[best.id] * 100:+.1f} cm)")

    def _choose_by_distance(self, plan: Plan, scene: Scene, goal: Goal, candidates: list[SceneObject],
                            reference: SceneObject) -> tuple[SceneObject, str]:
        distances = {}
        for candidate in candidates:
            relation = self.wm.relation(scene, candidate.name, reference.name)
            distances[candidate.id] = float(relation.distance_m)
            plan.queries.append(Query("distance", f"How far is the {candidate.name} from the {reference.name}?",
                                      f"{relation.distance_m:.3f} m", frame=relation.frame,
                                      detail={"distance_m": _metres(relation.distance_m)}))
        if not all(np.isfinite(d) for d in distances.values()):
            raise _CannotPlan(f"cannot decide which object is the {goal.relation}: the world model gives no "
                              f"distances to the {reference.name} (no depth)")
        pick = (min if goal.relation == "closest" else max)(candidates, key=lambda o: distances[o.id])
        return pick, (f"the {pick.name} is the {goal.relation} to the {reference.name} "
                      f"({distances[pick.id]:.3f} m)")

    def _imagine_perspective(self, plan: Plan, scene: Scene, goal: Goal, pose: CameraPose,
                             candidates: list[SceneObject], reference: SceneObject) -> None:
        """Imagines the scene from the named camera and re-asks the relation inside the imagined view.

        This is the imagine -> understand loop; the direct answer (relation in the named camera's frame)
        still decides, and any disagreement is recorded so the report shows it.
        """
        label = f"{goal.viewpoint} camera"
        try:
            view = self.wm.imagine(scene, pose)
        except JoyAIError as exc:
            plan.queries.append(Query("imagine", f"Imagine the scene from the {label}", f"failed: {exc}"))
            return
        plan.imagined.append(ImaginationRecord(label, f"the instruction takes the {label}'s point of view", view))
        imagined_scene = self.wm.observe(view.as_observation())
        by_id = {o.id: o for o in imagined_scene.objects}
        words = goal.relation.replace("_", " ")
        if reference.id not in by_id:
            plan.queries.append(Query("imagine", f"From the {label}, which object is {words} the {reference.name}?",
                                      "the reference is not visible in the imagined view", frame=f"imagined:{label}"))
            return
        holding = []
        for candidate in candidates:
            if candidate.id in by_id:
                relation = self.wm.relation(imagined_scene, by_id[candidate.id].name, by_id[reference.id].name)
                if getattr(relation, goal.relation):
                    holding.append(candidate.name)
        plan.queries.append(Query("imagine", f"From the {label}, which object is {words} the {reference.name}?",
                                  ", ".join(holding) or "none", frame=f"imagined:{label}",
                                  detail={"objects_seen": imagined_scene.object_names()}))

    # -- act and verify --------------------------------------------------------------------------
    def act(self, env: Any, plan: Plan) -> ActResult:
        """Executes the plan with the env's primitive actions: pick the object, then place it.

        Args:
            env: a ``joyai/TabletopSpatial-v0`` env made with ``action_mode="primitive"``.
            plan: a plan with ``plan.ok``.

        Returns:
            The last observation and info, each step's action and action error.

        Raises:
            ValueError: the plan has no pick (``plan.ok`` is False).
        """
        if not plan.ok:
            raise ValueError(f"cannot act on a plan without a pick: {plan.error or 'incomplete plan'}")
        steps: list[dict[str, Any]] = []
        actions = [("pick", {"primitive": PICK, "object_id": int(plan.pick.id),
                             "position": np.zeros(3, dtype=np.float32)}),
                   ("place", {"primitive": PLACE, "object_id": 0,
                              "position": np.asarray(plan.place_position, dtype=np.float32)})]
        obs, info = None, {}
        for name, action in actions:
            obs, _, terminated, truncated, info = env.step(action)
            error = info.get("action_error")
            steps.append({"primitive": name, "object_id": int(action["object_id"]),
                          "position": [round(float(v), 4) for v in action["position"]],
                          "action_error": error})
            if error:
                return ActResult(obs, info, steps, error=f"{name} failed: {error}")
            if (terminated or truncated) and name != actions[-1][0]:
                return ActResult(obs, info, steps, error=f"the episode ended after {name}")
        return ActResult(obs, info, steps)

    def verify(self, obs: Mapping[str, Any], plan: Plan) -> Verification:
        """Observes again and asks the world model whether the picked object is on the plate.

        Objects are matched to the plan by instance (segmentation) id, since what the world model
        calls them may change with the new view.
        """
        scene = self.wm.observe(obs)
        by_id = {o.id: o for o in scene.objects}
        picked, plate = by_id.get(plan.pick.id), by_id.get(plan.place.id)
        question = f"Is the {plan.pick.name} on top of the {plan.place.name}?"
        if picked is None or plate is None:
            missing = plan.pick.name if picked is None else plan.place.name
            query = Query("verify", question, f"cannot tell: the {missing} is not in view")
            return Verification(False, f"the {missing} is not in view after acting", query, scene)
        relation = self.wm.relation(scene, picked.name, plate.name)
        query = Query("verify", question, "yes" if relation.on_top_of else "no", frame=relation.frame,
                      detail={"on_top_of": bool(relation.on_top_of), "above": bool(relation.above),
                              "distance_m": round(float(relation.distance_m), 4),
                              "picked": _object_facts(picked), "plate": _object_facts(plate)})
        reason = (f"the world model sees the {picked.name} on top of the {plate.name}" if relation.on_top_of
                  else f"the world model does not see the {picked.name} on top of the {plate.name} "
                       f"({_where(picked)})")
        return Verification(bool(relation.on_top_of), reason, query, scene)

    def run_episode(self, env: Any, seed: int | None = None, instruction: str | None = None) -> Episode:
        """Resets ``env``, then plans, acts and verifies one task.

        Args:
            env: a ``joyai/TabletopSpatial-v0`` env with ``action_mode="primitive"``.
            seed: reset seed (the task and scene layout).
            instruction: overrides ``info["instruction"]`` (to try your own wording). ``success`` still
                reports the simulator's own task, so it is meaningful only when the override asks the same.

        Returns:
            The episode, with its plan, actions, verification and the simulator's success flag.
        """
        start = time.perf_counter()
        obs, info = env.reset(seed=seed)
        text = info.get("instruction", "") if instruction is None else instruction
        height, width = obs["rgb"].shape[:2]
        plan = self.plan(obs, text, cameras=lambda name: env_camera(env, name, width, height))
        episode = Episode(seed=seed, plan=plan, observation=obs,
                          target=info.get("target") if instruction is None else None)
        if plan.ok:
            episode.act = self.act(env, plan)
            episode.success = bool(episode.act.info.get("success", False))
            episode.verification = self.verify(episode.act.observation, plan)
        episode.seconds = time.perf_counter() - start
        return episode


def env_camera(env: Any, name: str, width: int, height: int) -> CameraPose:
    """Calibration (not ground truth) of the env's named camera, as a CameraPose."""
    cam_to_world, intrinsics = env.unwrapped.camera_pose(name)
    return CameraPose(cam_to_world, intrinsics, width, height)


class _CannotPlan(Exception):
    """Internal: stops planning with a reason that becomes ``"cannot plan: <reason>"``."""


def _find_exact(scene: Scene, name: str) -> SceneObject | None:
    """The object with exactly this name (case-insensitive); None when there is none."""
    wanted = " ".join(name.lower().split())
    matches = [o for o in scene.objects if o.name.lower() == wanted]
    if len(matches) > 1:
        raise AmbiguousObjectError(name, [o.name for o in matches])
    return matches[0] if matches else None


def _find_by_colour(scene: Scene, name: str) -> SceneObject | None:
    """The one object of ``name``'s colour (first word) and plate-ness, when the shape word was misjudged.

    A partly hidden object is often named by colour only ("white object") or with the wrong shape; in
    scenes whose colours are distinct (the simulator's are) the colour still identifies it.
    """
    words = name.lower().split()
    if len(words) < 2:
        return None
    wants_plate = words[-1] == "plate"
    matches = [o for o in scene.objects if _colour_of(o) == words[0]
               and (_is_plate(o) == wants_plate or _shape_of(o) in UNKNOWN_SHAPES)]
    return matches[0] if len(matches) == 1 else None


def _colour_of(obj: SceneObject) -> str:
    """The colour word the world model gave the object ("" when it gave none); names are never parsed."""
    return obj.color


def _shape_of(obj: SceneObject) -> str:
    """The shape word the world model gave the object ("" when it gave none); names are never parsed."""
    return obj.shape


def _is_plate(obj: SceneObject) -> bool:
    return _shape_of(obj) == "plate"


def _offset_along(relation: Relation, direction: str) -> float:
    """Signed metres by which the relation's subject lies in ``direction`` of its reference (NaN: unknown)."""
    return direction_offset(direction, relation.lateral_m, relation.depth_m)


def _metres(value: float) -> float | None:
    """A distance for a report's JSON: rounded to 0.1 mm, None when the world model did not give one."""
    return round(float(value), 4) if np.isfinite(value) else None


def _where(obj: SceneObject) -> str:
    x, y, z = (float(v) for v in obj.centroid)
    return f"instance {obj.id} at ({x:.3f}, {y:.3f}, {z:.3f}) m, {obj.visible_fraction:.0%} visible"


def _object_facts(obj: SceneObject) -> dict[str, Any]:
    return {"id": int(obj.id), "name": obj.name, "centroid": [round(float(v), 4) for v in obj.centroid],
            "extent": [round(float(v), 4) for v in obj.extent],
            "visible_fraction": round(float(obj.visible_fraction), 3)}
