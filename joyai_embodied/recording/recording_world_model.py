"""A world model that records every call: what a planner observed, asked and imagined, without touching it.

    wm = RecordingWorldModel(WorldModel.load("geometric"), recorder=open_recorder("run.rrd", background=True))
    wm.start_episode("put the black bowl ... on the plate")
    episode = LiberoPlanner(wm).run_episode(env, labels, instruction, max_steps)   # any planner
    trace = wm.end_episode("success", final_observation=env.unwrapped.observe())

Each ``observe`` is one step of the recording's timeline: the camera images, depth, lifted cloud, the
end-effector pose when the observation dict carries ``robot_state``, and the scene's objects as named boxes.
Each ``relation`` / ``ask`` is a line of text (question and answer) at that step; each ``edit`` is logged as
before/after boxes of the objects it moved (and, with ``imagine_edits``, the edited scene imagined from the
observing camera); each ``imagine`` is an imagined camera with its image. The :class:`EpisodeTrace` keeps the
same for reports (the first and last observed frames, the queries, the edits and their imagined views).
"""

from __future__ import annotations

import math
from pathlib import Path
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..types import Answer, ImaginedView, Relation, Scene, SceneObject
from .base import Recorder

#: Relation booleans worth a word in the query log, in the order they are read out.
RELATION_WORDS = (("left_of", "left of"), ("right_of", "right of"), ("in_front_of", "in front of"),
                  ("behind", "behind"), ("above", "above"), ("below", "below"), ("on_top_of", "on top of"))


@dataclass
class EditRecord:
    """One ``edit`` call: its description, the scene before and after, and the imagined outcome (or None)."""

    label: str
    before: Scene
    after: Scene
    view: ImaginedView | None = None


@dataclass
class EpisodeTrace:
    """What the wrapped world model saw during one episode (for reports).

    ``first_observation`` / ``last_observation`` are the observation mappings given to ``observe`` (kept only
    with ``keep_frames``); ``queries`` are dicts with kind, question, answer, frame, step.
    """

    instruction: str = ""
    observations: int = 0
    first_observation: Mapping[str, Any] | None = None
    first_scene: Scene | None = None
    last_observation: Mapping[str, Any] | None = None
    last_scene: Scene | None = None
    final_observation: Mapping[str, Any] | None = None
    queries: list[dict[str, Any]] = field(default_factory=list)
    edits: list[EditRecord] = field(default_factory=list)
    status: str = ""


class RecordingWorldModel:
    """Forwards ``observe``, ``relation``, ``ask``, ``edit``, ``imagine`` (and everything else) to ``wm`` and
    logs each call to ``recorder``.

    Args:
        wm: the WorldModel (or anything with its methods).
        recorder: where to log (None: only the trace is kept).
        keep_frames: keep the first and last observation of each episode in the trace (for a report).
        imagine_edits: after each ``edit``, imagine the edited scene from the observing camera (the outcome
            a report shows; one more ``imagine`` call per edit).
    """

    def __init__(self, wm: Any, recorder: Recorder | None = None, keep_frames: bool = False,
                 imagine_edits: bool = False):
        self.wm = wm
        self.recorder = recorder
        self.keep_frames = bool(keep_frames)
        self.imagine_edits = bool(imagine_edits)
        self.step = -1  # the recorder's timeline step of the latest observation
        self.trace = EpisodeTrace()

    def __getattr__(self, name: str) -> Any:  # info, close, backend, answer_with_imagination...
        return getattr(self.wm, name)

    # -- episodes ------------------------------------------------------------------------------------
    def start_episode(self, instruction: str = "") -> None:
        """Starts a new trace; logs the instruction on the next step of the timeline."""
        self.trace = EpisodeTrace(instruction=instruction)
        self._next_step()
        if self.recorder is not None and instruction:
            self.recorder.log_text(instruction, kind="instruction")

    def end_episode(self, status: str = "", final_observation: Mapping[str, Any] | None = None) -> EpisodeTrace:
        """Logs the final frame (when given: the world after acting) and the status; returns the trace."""
        trace = self.trace
        trace.status = status
        if final_observation is not None:
            trace.final_observation = final_observation if self.keep_frames else None
            if self.recorder is not None:
                self._next_step()
                self.recorder.log_observation(final_observation)
        if self.recorder is not None and status:
            self.recorder.log_text(status, kind="status")
        return trace

    def _next_step(self) -> None:
        self.step += 1
        if self.recorder is not None:
            self.recorder.set_time(self.step)

    # -- the world model's calls -----------------------------------------------------------------------
    def observe(self, obs: Any = None, **kwargs: Any) -> Scene:
        """``wm.observe``, then logs the observation (one new step) and the scene's objects."""
        scene = self.wm.observe(obs, **kwargs)
        self._next_step()
        frame = obs if isinstance(obs, Mapping) else None
        if self.recorder is not None:
            self.recorder.log_observation(scene.observation, robot_state=(frame or {}).get("robot_state"))
            self.recorder.log_scene(scene)
        trace = self.trace
        trace.observations += 1
        keep = frame if (self.keep_frames and frame is not None) else None
        if trace.first_scene is None:
            trace.first_observation, trace.first_scene = keep, scene
        trace.last_observation, trace.last_scene = keep, scene
        return scene

    def relation(self, scene: Scene, subject: Any, reference: Any, frame: Any = "camera") -> Relation:
        """``wm.relation``, logged as "where is SUBJECT relative to REFERENCE? -> ..."."""
        relation = self.wm.relation(scene, subject, reference, frame=frame)
        question = f"where is {_name(scene, subject)} relative to {_name(scene, reference)}?"
        self._query("relation", question, describe_relation(relation), relation.frame)
        return relation

    def ask(self, scene: Scene, question: str, frame: Any = "camera") -> Answer:
        """``wm.ask``, logged as the question and the answer's text."""
        answer = self.wm.ask(scene, question, frame=frame)
        self._query("ask", question, answer.text, answer.frame)
        return answer

    def edit(self, scene: Scene, edit: Any, seed: int | None = None) -> Scene:
        """``wm.edit``, logged as the moved objects' boxes before and after (and the imagined outcome)."""
        edited = self.wm.edit(scene, edit, seed=seed)
        label = _describe_edit(scene, edit)
        record = EditRecord(label=label, before=scene, after=edited)
        if self.imagine_edits:
            record.view = self.wm.imagine(edited, scene.observation.camera)
        self.trace.edits.append(record)
        self._query("edit", label, f"{len(edited.objects)} objects after the edit", "world")
        if self.recorder is not None:
            self.recorder.log_scene_edit("predicted", scene, edited)
            if record.view is not None:
                self.recorder.log_imagined("predicted outcome", record.view)
        return edited

    def imagine(self, scene: Scene, move: Any, seed: int | None = None, **kwargs: Any) -> ImaginedView:
        """``wm.imagine``, logged as an imagined camera with its image."""
        view = self.wm.imagine(scene, move, seed=seed, **kwargs)
        if self.recorder is not None:
            self.recorder.log_imagined(_move_label(move), view)
        return view

    def imagine_batch(self, scene: Scene, moves: Sequence[Any], seed: int | None = None,
                      **kwargs: Any) -> list[ImaginedView]:
        """``wm.imagine_batch``, each view logged as an imagined camera."""
        views = self.wm.imagine_batch(scene, moves, seed=seed, **kwargs)
        if self.recorder is not None:
            for index, (move, view) in enumerate(zip(moves, views)):
                self.recorder.log_imagined(f"{_move_label(move)} {index}", view)
        return views

    def _query(self, kind: str, question: str, answer: str, frame: str) -> None:
        self.trace.queries.append({"kind": kind, "question": question, "answer": answer, "frame": str(frame),
                                   "step": self.step})
        if self.recorder is not None:
            self.recorder.log_text(f"[{kind}] {question} -> {answer} ({frame})", kind="query")


class EpisodeRecorder:
    """Episode hooks (``joyai_embodied.evaluation.libero.evaluate_libero``'s ``hooks``): each episode becomes a
    span of the recording (instruction, every world-model call, final frame, verdict) and a trace.

    Args:
        wm: the RecordingWorldModel the planner is given.
        record: ``PATH.rrd`` / ``PATH.mcap`` to record to (None: no recording); opened at the first episode
            (after the env is built, so that the recorder's import overlaps it) with a background writer.
        final_frame: render the scene once more after each episode (the world after acting: one more
            render, ~0.1 s at 256x256) for the recording and the trace.
        keep: keep ``(record, trace)`` of every episode in :attr:`episodes` (for a report).
    """

    def __init__(self, wm: RecordingWorldModel, record: str | Path | None = None, final_frame: bool = True,
                 keep: bool = False):
        self.wm = wm
        self.record = record
        self.final_frame = final_frame
        self.keep = keep
        self.episodes: list[tuple[dict[str, Any], EpisodeTrace]] = []

    def start(self, task_id: int, init_state: int, info: Mapping[str, Any]) -> None:
        if self.record and self.wm.recorder is None:
            from .recorders import open_recorder

            self.wm.recorder = open_recorder(self.record, background=True)
        self.wm.start_episode(f"task {task_id} init {init_state}: {info['instruction']}")

    def finish(self, record: dict[str, Any], env: Any) -> None:
        status = (f"task {record['task_id']} init {record['init_state']}: "
                  f"{'success' if record['success'] else 'failure: ' + record['failure']} (LIBERO's check), "
                  f"{record['steps']} steps, chose {record['chosen']!r}")
        final = env.unwrapped.observe() if self.final_frame else None
        trace = self.wm.end_episode(status, final_observation=final)
        if self.keep:
            self.episodes.append((record, trace))

    def close(self) -> None:
        """Closes the recording (waits for its writer: nothing logged is lost)."""
        if self.wm.recorder is not None:
            self.wm.recorder.close()


def describe_relation(relation: Relation) -> str:
    """The relation in words: the true booleans, the distance and the signed offsets when known."""
    words = [word for name, word in RELATION_WORDS if getattr(relation, name, False)]
    text = ", ".join(words) or "none of left/right/front/behind/above/below"
    text += f"; {relation.distance_m:.3f} m apart"
    offsets = [(name, getattr(relation, f"{name}_m", math.nan)) for name in ("lateral", "depth", "vertical")]
    known = [f"{name} {value:+.3f}" for name, value in offsets if not math.isnan(value)]
    return text + (f" ({', '.join(known)} m)" if known else "")


def _name(scene: Scene, ref: Any) -> str:
    if isinstance(ref, SceneObject):
        return ref.name
    if isinstance(ref, int) and not isinstance(ref, bool):
        found = next((o for o in scene.objects if o.id == ref), None)
        return found.name if found is not None else f"#{ref}"
    return str(ref)


def _describe_edit(scene: Scene, edit: Any) -> str:
    name = _name(scene, getattr(edit, "object", "?"))
    to = getattr(edit, "to", None)
    if to is not None:
        return f"move {name} to ({', '.join(f'{v:.3f}' for v in to)})"
    return f"{type(edit).__name__} {name}"


def _move_label(move: Any) -> str:
    yaw, pitch = getattr(move, "yaw_deg", None), getattr(move, "pitch_deg", None)
    if yaw is not None:
        return f"yaw {yaw:g} pitch {pitch or 0:g}"
    return "camera pose"
