"""Names and types shared by the nodes and their clients: services, the action, the camera topics and their QoS.

Both sides import this module (never each other), so a client needs neither the nodes nor the simulator.
"""

from __future__ import annotations

from geometry_msgs.msg import PoseStamped
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

SPATIAL_QUERY_SERVICE = "/joyai/spatial_query"
IMAGINE_ACTION = "/joyai/imagine"
SIM_RESET_SERVICE = "/joyai/sim/reset"
SIM_PICK_SERVICE = "/joyai/sim/pick"
SIM_PLACE_SERVICE = "/joyai/sim/place"
#: ``error_type`` of a primitive the simulator could not carry out (its ``info["action_error"]``).
ACTION_ERROR = "ActionError"

#: Topic parameters and their defaults. Relative names, so a node namespace moves them all at once.
TOPIC_DEFAULTS = {
    "rgb_topic": "camera/color/image_raw",
    "depth_topic": "camera/depth/image_raw",
    "camera_info_topic": "camera/color/camera_info",
    "segmentation_topic": "camera/segmentation/image_raw",
    "camera_pose_topic": "camera/pose",
}
#: Default topics of what the nodes publish for RViz (``markers_topic``/``cloud_topic`` parameters; relative names).
SCENE_MARKERS_TOPIC = "joyai/scene_markers"  # visualization_msgs/MarkerArray
SCENE_CLOUD_TOPIC = "joyai/scene_cloud"  # sensor_msgs/PointCloud2 (off unless publish_cloud)
#: Reliable + transient-local, depth 1, for the scene topics: a late subscriber (RViz started after the node)
#: gets the current scene, and only the current one matters.
SCENE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE, durability=DurabilityPolicy.TRANSIENT_LOCAL)
#: The messages of one camera frame, by the key of their ``<key>_topic`` parameter.
FRAME_TYPES = {"rgb": Image, "depth": Image, "segmentation": Image, "camera_info": CameraInfo,
               "camera_pose": PoseStamped}
#: Reliable, keep-last-2. A reliable writer serves both kinds of reader: sensor-data (best-effort)
#: subscribers such as the world-model nodes get best-effort delivery, reliable ones (SimBridgeClient)
#: get every frame: multi-megabyte images often lose a fragment on best-effort loopback.
FRAME_QOS = QoSProfile(depth=2, reliability=ReliabilityPolicy.RELIABLE)
