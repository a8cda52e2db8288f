"""What the model server does with a decoded request: call the WorldModel, keep scenes, shape the result.

No sockets here: :class:`ModelService` is driven by the server's single worker thread, so the scene store
and the backend are only ever touched from one thread.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from typing import Any, Callable, Mapping, Sequence

from ..errors import InvalidInputError
from ..types import CameraMove, CameraPose, ImaginedView, Scene
from ..world_model import WorldModel
from ..errors import SceneExpiredError

#: Methods the worker runs (the server answers ``info``/``health`` itself, without queueing).
WORKER_METHODS = ("observe", "relation", "ask", "imagine", "imagine_batch", "edit", "answer_with_imagination",
                  "release")


class SceneStore:
    """Scenes held for clients, by handle, with a least-recently-used bound.

    Args:
        max_scenes: how many scenes to keep; storing one more evicts the least recently used.
    """

    def __init__(self, max_scenes: int):
        if max_scenes < 1:
            raise InvalidInputError("max_scenes", "at least 1", max_scenes)
        self.max_scenes = max_scenes
        self._scenes: OrderedDict[str, Scene] = OrderedDict()
        self.evicted = 0

    def __len__(self) -> int:
        return len(self._scenes)

    def put(self, scene: Scene) -> str:
        handle = uuid.uuid4().hex
        self._scenes[handle] = scene
        while len(self._scenes) > self.max_scenes:
            self._scenes.popitem(last=False)
            self.evicted += 1
        return handle

    def get(self, handle: Any) -> Scene:
        if not isinstance(handle, str):
            raise InvalidInputError("params.scene", "a scene handle string returned by observe or edit",
                                    type(handle).__name__)
        scene = self._scenes.get(handle)
        if scene is None:
            raise SceneExpiredError(handle)
        self._scenes.move_to_end(handle)
        return scene

    def release(self, handles: Sequence[str]) -> int:
        return sum(self._scenes.pop(h, None) is not None for h in handles)


class ModelService:
    """Runs protocol methods against a WorldModel, keeping the scenes clients refer to by handle.

    Args:
        world_model: the in-process model that does the work.
        max_scenes: bound of the scene store (see :class:`SceneStore`).
    """

    def __init__(self, world_model: WorldModel, max_scenes: int = 64):
        self.world_model = world_model
        self.scenes = SceneStore(max_scenes)
        self._methods: dict[str, Callable[[Mapping[str, Any]], Any]] = {
            "observe": self._observe, "relation": self._relation, "ask": self._ask, "imagine": self._imagine,
            "imagine_batch": self._imagine_batch, "edit": self._edit,
            "answer_with_imagination": self._answer_with_imagination, "release": self._release,
        }

    def run(self, method: str, params: Mapping[str, Any]) -> Any:
        """Runs one request; raises what the WorldModel raises (sent back to the client as an error reply)."""
        return self._methods[method](params)

    def imagine_many(self, handle: str, moves: Sequence[CameraMove | CameraPose],
                     seed: int | None) -> list[ImaginedView]:
        """Imagines several moves of one scene in one backend call (requests batched by the server)."""
        return self.world_model.imagine_batch(self.scenes.get(handle), list(moves), seed=seed)

    # -- methods ------------------------------------------------------------------------------------------
    def _scene_reply(self, scene: Scene) -> dict[str, Any]:
        return {"handle": self.scenes.put(scene), "objects": list(scene.objects), "pivot": scene.pivot,
                "backend": scene.backend}

    def _observe(self, params: Mapping[str, Any]) -> dict[str, Any]:
        return self._scene_reply(self.world_model.observe(_param(params, "observation")))

    def _relation(self, params: Mapping[str, Any]) -> Any:
        scene = self.scenes.get(_param(params, "scene"))
        return self.world_model.relation(scene, _param(params, "subject"), _param(params, "reference"),
                                         frame=params.get("frame", "camera"))

    def _ask(self, params: Mapping[str, Any]) -> Any:
        scene = self.scenes.get(_param(params, "scene"))
        return self.world_model.ask(scene, _param(params, "question"), frame=params.get("frame", "camera"))

    def _imagine(self, params: Mapping[str, Any]) -> Any:
        scene = self.scenes.get(_param(params, "scene"))
        return self.world_model.imagine(scene, _param(params, "move"), seed=_seed(params))

    def _imagine_batch(self, params: Mapping[str, Any]) -> Any:
        moves = _param(params, "moves")
        if not isinstance(moves, list):
            raise InvalidInputError("params.moves", "a list of CameraMove or CameraPose", type(moves).__name__)
        return self.imagine_many(_param(params, "scene"), moves, _seed(params))

    def _edit(self, params: Mapping[str, Any]) -> dict[str, Any]:
        scene = self.scenes.get(_param(params, "scene"))
        return self._scene_reply(self.world_model.edit(scene, _param(params, "edit"), seed=_seed(params)))

    def _answer_with_imagination(self, params: Mapping[str, Any]) -> Any:
        scene = self.scenes.get(_param(params, "scene"))
        return self.world_model.answer_with_imagination(scene, _param(params, "question"),
                                                        max_views=params.get("max_views", 4))

    def _release(self, params: Mapping[str, Any]) -> int:
        handles = _param(params, "scenes")
        if not isinstance(handles, list) or not all(isinstance(h, str) for h in handles):
            raise InvalidInputError("params.scenes", "a list of scene handle strings", repr(handles)[:80])
        return self.scenes.release(handles)


def _param(params: Mapping[str, Any], key: str) -> Any:
    if key not in params:
        raise InvalidInputError(f"params.{key}", "a value (missing from the request)")
    return params[key]


def _seed(params: Mapping[str, Any]) -> int | None:
    seed = params.get("seed")
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise InvalidInputError("params.seed", "an integer or null", repr(seed))
    return seed
