"""The one service layer every transport calls: scene handles, edits, expiry and limits in one place.

The ZMQ server, the ROS 2 nodes and Ray Serve replicas all hand decoded requests to a
:class:`ModelService`; none of them holds model logic or scene state of its own.
"""

from .model_service import WORKER_METHODS, ModelService, SceneStore

__all__ = ["ModelService", "SceneStore", "WORKER_METHODS"]
