"""Task success of the world-model planner against a baseline that guesses among plausible objects.

The baseline sees the same observation and finds the same objects (it observes with the same world
model), parses the same instruction and acts the same way; the only thing it lacks is spatial reasoning:
for a relational instruction it picks uniformly at random among the objects the instruction could mean
(any non-plate object of the named shape, or any non-plate object for "the object ..."), never the
reference itself. A named-object instruction (template 1) needs no reasoning, so both solve it alike.
The gap between the two is what relations, perspective taking and imagination contribute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from ..planner.instructions import Goal
from ..planner.planner import CameraSource, Planner
from ..planner.records import Episode, Plan
from ..types import Scene, SceneObject
from ..world_model import WorldModel


class RandomChoicePlanner(Planner):
    """The baseline: a :class:`Planner` that guesses among the candidates instead of reasoning.

    Args:
        wm: the world model (used only to observe and to name objects).
        seed: seed of the guessing RNG, so a run is reproducible.
    """

    def __init__(self, wm: WorldModel, seed: int = 0):
        super().__init__(wm, search_moves=(), imagine_perspective=False, preview=False)
        self.rng = np.random.default_rng(seed)

    def choose(self, plan: Plan, scene: Scene, goal: Goal, candidates: list[SceneObject], reference: SceneObject,
               cameras: CameraSource | None) -> tuple[SceneObject, str]:
        pick = candidates[int(self.rng.integers(len(candidates)))]
        return pick, f"guessed uniformly among {len(candidates)} candidates"


@dataclass
class PlannerScore:
    """Success of one planner over a set of seeds.

    Attributes:
        name: "world model" or "baseline".
        episodes: the episodes run, in seed order.
    """

    name: str
    episodes: list[Episode] = field(default_factory=list)
    #: Per episode, the labels of the imagined views it used (kept when the images are freed).
    imagined: list[list[str]] = field(default_factory=list)

    @property
    def success_rate(self) -> float:
        return sum(e.success for e in self.episodes) / len(self.episodes) if self.episodes else 0.0

    def by_template(self) -> dict[int, tuple[int, int]]:
        """``{template: (successes, episodes)}``; unparsed instructions are counted under 0."""
        table: dict[int, list[int]] = {}
        for episode in self.episodes:
            template = episode.plan.goal.template if episode.plan.goal is not None else 0
            counts = table.setdefault(template, [0, 0])
            counts[0] += int(episode.success)
            counts[1] += 1
        return {k: (v[0], v[1]) for k, v in sorted(table.items())}

    def imagination_use(self) -> dict[str, int]:
        """Episodes that imagined views: to find a missing/hidden object, from another camera, to predict."""
        def episodes_where(test: Callable[[str], bool]) -> int:
            return sum(any(test(label) for label in labels) for labels in self.imagined)

        # Labels are set by Planner: "search yaw ...", "<camera> camera", "predicted outcome".
        return {"search": episodes_where(lambda label: label.startswith("search ")),
                "perspective": episodes_where(lambda label: label.endswith(" camera")),
                "predicted outcome": episodes_where(lambda label: label == "predicted outcome")}

    def to_dict(self) -> dict[str, Any]:
        verified = [e for e in self.episodes if e.verification is not None]
        return {
            "name": self.name,
            "episodes": len(self.episodes),
            "success_rate": round(self.success_rate, 4),
            "picked_intended_rate": round(sum(bool(e.picked_intended) for e in self.episodes)
                                          / max(len(self.episodes), 1), 4),
            "verification_agreement": (round(sum(e.verification.verified == e.success for e in verified)
                                             / len(verified), 4) if verified else None),
            "cannot_plan": sum(not e.plan.ok for e in self.episodes),
            "by_template": {str(k): {"success": s, "episodes": n} for k, (s, n) in self.by_template().items()},
            "imagination_use": self.imagination_use(),
            "mean_seconds": round(sum(e.seconds for e in self.episodes) / max(len(self.episodes), 1), 3),
            "failures": [{"seed": e.seed, "instruction": e.plan.instruction, "status": e.status,
                          "picked": e.plan.pick.name if e.plan.pick else None,
                          "intended": (e.target or {}).get("pick_name"),
                          "error": e.plan.error or (e.act.error if e.act else None)}
                         for e in self.episodes if not e.success],
        }


def evaluate_planner(wm: WorldModel, env: Any, seeds: Iterable[int], baseline: bool = True,
                     baseline_seed: int = 0,
                     on_episode: Callable[[str, Episode], None] | None = None,
                     depth_noise: str | None = None, noise_seed: int = 0) -> dict[str, PlannerScore]:
    """Runs the world-model planner (and the random baseline) on the same tasks.

    Args:
        wm: the world model both planners observe with.
        env: a ``joyai/TabletopSpatial-v0`` env made with ``action_mode="primitive"``; it is reset per seed.
        seeds: task seeds; each planner gets the same tasks.
        baseline: also run :class:`RandomChoicePlanner`.
        baseline_seed: seed of the baseline's guesses.
        on_episode: called with (planner name, episode) after each episode, with its images and scenes
            still attached (for progress output and recordings; they are dropped afterwards).
        depth_noise: when given, the env's depth sensor model for these episodes (``"none"``,
            ``"structured_light"``, ``"stereo"``: ``env.unwrapped.set_depth_noise``, the tabletop env's).
        noise_seed: seed of that noise (each episode's noise also follows its task seed).

    Returns:
        ``{"world model": PlannerScore, "baseline": PlannerScore}`` (no "baseline" when ``baseline`` is False).

    Raises:
        InvalidInputError: ``seeds`` is empty.
    """
    from ..errors import InvalidInputError

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise InvalidInputError("seeds", "at least one seed", "none")
    if depth_noise is not None:
        setter = getattr(getattr(env, "unwrapped", env), "set_depth_noise", None)
        if setter is None:
            raise InvalidInputError("depth_noise", "an env with a depth sensor model (the tabletop's)",
                                    type(getattr(env, "unwrapped", env)).__name__)
        setter(depth_noise, noise_seed)
    planners: dict[str, Planner] = {"world model": Planner(wm)}
    if baseline:
        planners["baseline"] = RandomChoicePlanner(wm, seed=baseline_seed)
    scores = {}
    for name, planner in planners.items():
        score = PlannerScore(name)
        for seed in seeds:
            episode = planner.run_episode(env, seed=seed)
            score.imagined.append([record.label for record in episode.plan.imagined])
            if on_episode is not None:  # before the images go: a recorder (eval --record) logs them
                on_episode(name, episode)
            _drop_heavy_state(episode)
            score.episodes.append(episode)
        scores[name] = score
    return scores


def _drop_heavy_state(episode: Episode) -> None:
    """Frees the scenes and images an evaluation does not report (100 episodes would hold ~1 GB)."""
    episode.plan.scene = None
    episode.plan.imagined.clear()
    episode.observation = {}
    if episode.act is not None:
        episode.act.observation = {}
    if episode.verification is not None:
        episode.verification.scene = None
