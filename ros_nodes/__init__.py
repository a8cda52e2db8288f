"""ROS 2 side of joyai-embodied: the world model as a spatial-reasoning service and an imagination action.

Layout (imports point down only: ``launcher`` -> ``nodes`` / ``clients`` -> ``topics``, ``conversions``,
``results``, ``fastdds_profile`` -> the core; ``import joyai_embodied`` never imports this package):

- ``nodes/``: the servers. ``spatial_reasoning`` (service ``/joyai/spatial_query``), ``imagination``
  (action ``/joyai/imagine``), both thin adapters over one :class:`joyai_embodied.service.ModelService`
  (``common``), ``scene_publisher`` (the current scene as a MarkerArray and, optionally, a PointCloud2 for
  RViz), ``sim_bridge`` (the tabletop simulator as camera topics and ``/joyai/sim/*`` services),
  ``runtime`` (spinning until a signal, draining, clean shutdown).
- ``clients/``: ``world_model_client`` (:class:`WorldModelClient`, blocking + async calls),
  ``ros_backend`` (``WorldModel.load("ros")``), ``sim_client`` (``SimBridgeClient``, ``RosSimEnv``; needs no MuJoCo).
- ``topics``: service/action/topic names and the camera frame QoS; ``conversions``: messages <-> frames
  and cameras; ``results``: messages <-> Relation, Answer, SceneObject, ImaginedView, errors.
- ``launcher``: ``joyai-embodied ros`` (both nodes, one model, one process); ``child_process``: starting
  and stopping it from a client; ``fastdds_profile``: the shared-memory transport for multi-MB frames.

See ros_nodes/README.md for installation (pip-only or colcon), guarantees and usage.
"""
