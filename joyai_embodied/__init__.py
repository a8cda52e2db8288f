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
from .world_model import WorldModel

__version__ = "0.1.0"

__all__ = [
    "AmbiguousObjectError", "Answer", "BackendUnavailableError", "CameraMove", "CameraPose", "CheckpointError",
    "ImaginedView", "ImpossibleCameraMoveError", "InvalidInputError", "JoyAIError", "MoveObject", "Observation",
    "Relation", "RemoteError", "RequestTimeoutError", "RotateObject", "Scene", "SceneObject",
    "ServerBusyError", "UnknownObjectError", "WorldModel", "__version__",
]
