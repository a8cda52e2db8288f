"""ROS 2 nodes of joyai-embodied: the world model as a spatial-reasoning service and an imagination action.

Modules (each imports rclpy; ``import joyai_embodied`` never imports this package):

- ``conversions``: ``sensor_msgs``/``geometry_msgs`` <-> numpy and the core types (zero-copy reads).
- ``common``: model loading parameters, the latest-frame cache behind ``use_latest``.
- ``spatial_reasoning_node``: service ``/joyai/spatial_query`` (``joyai_interfaces/srv/SpatialQuery``).
- ``imagination_node``: action ``/joyai/imagine`` (``joyai_interfaces/action/Imagine``), feedback and cancel.
- ``client``: :class:`~ros_nodes.client.WorldModelClient`, a blocking + async Python API over both.
- ``launcher``: ``joyai-embodied ros``: both nodes in one process, one model load.
- ``ros_backend``: a ``"ros"`` world-model backend, so code written against WorldModel runs through ROS.
- ``sim_bridge_node``: the tabletop simulator's camera topics and ``/joyai/sim/reset|pick|place`` services.
- ``sim_client``: ``SimBridgeClient`` over those, and ``RosSimEnv``, the planner's env through ROS.

See ros_nodes/README.md for installation (pip-only or colcon) and usage.
"""

SPATIAL_QUERY_SERVICE = "/joyai/spatial_query"
IMAGINE_ACTION = "/joyai/imagine"
