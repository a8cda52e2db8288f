"""joyai-embodied: a unified multimodal world model (JoyAI-Image) made useful to robots.

Core import needs only numpy; backends, simulators, ROS and ZMQ load lazily when used.

    from joyai_embodied import WorldModel, CameraMove, MoveObject, RotateObject
    wm = WorldModel.load("geometric")
"""

from .errors import (AmbiguousObjectError, BackendUnavailableError, CheckpointError, ImpossibleCameraMoveError,
                     InvalidInputError, JoyAIError, RemoteError, RequestTimeoutError, ServerBusyError,
                     UnknownObjectError)
from .types import (Answer, CameraMove, CameraPose, ImaginedView, MoveObject, Observation, Relation,
                    RotateObject, Scene, SceneObject)
__version__ = "0.1.0"

__all__ = [
    "AmbiguousObjectError", "Answer", "BackendUnavailableError", "CameraMove", "CameraPose", "CheckpointError",
    "ImaginedView", "ImpossibleCameraMoveError", "InvalidInputError", "JoyAIError", "MoveObject", "Observation",
    "Relation", "RemoteError", "RequestTimeoutError", "RotateObject", "Scene", "SceneObject",
    "ServerBusyError", "UnknownObjectError", "WorldModel", "__version__",
]


def __getattr__(name: str) -> object:
    # WorldModel loads on first use (PEP 562): a process that needs only the types or a subpackage (the
    # recording writer child, `joyai-embodied --help`) skips the world model and the backends' entry points.
    if name == "WorldModel":
        from .world_model import WorldModel

        return WorldModel
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
