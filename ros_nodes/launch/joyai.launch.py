"""Starts the spatial-reasoning and imagination nodes (for users with a ROS 2 install and ``ros2 launch``).

    ros2 launch joyai_embodied joyai.launch.py preset:=geometric
    ros2 launch joyai_embodied joyai.launch.py preset:=joyai-image device:=cuda params_file:=my.yaml

Each node loads its own model here; to load a large model once, run ``joyai-embodied ros`` instead
(both nodes in one process). Keep ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST unless other machines
must reach the nodes.
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, SetEnvironmentVariable
from launch.substitutions import EnvironmentVariable, LaunchConfiguration
from launch_ros.actions import Node


def generate_launch_description() -> LaunchDescription:
    here = os.path.dirname(os.path.abspath(__file__))
    default_params = os.path.join(os.path.dirname(here), "config", "joyai.yaml")
    parameters = [LaunchConfiguration("params_file"),
                  {"preset": LaunchConfiguration("preset"), "device": LaunchConfiguration("device"),
                   "address": LaunchConfiguration("address")}]
    nodes = [Node(package="joyai_embodied", executable=executable, name=name, namespace=LaunchConfiguration("namespace"),
                  parameters=parameters, output="screen")
             for executable, name in (("spatial_reasoning_node", "spatial_reasoning_node"),
                                      ("imagination_node", "imagination_node"))]
    return LaunchDescription([
        DeclareLaunchArgument("preset", default_value="geometric", description="model preset or backend"),
        DeclareLaunchArgument("device", default_value="", description="device for learned backends"),
        DeclareLaunchArgument("address", default_value="", description="model server address (remote)"),
        DeclareLaunchArgument("namespace", default_value="", description="namespace of the nodes and topics"),
        DeclareLaunchArgument("params_file", default_value=default_params, description="parameters YAML"),
        SetEnvironmentVariable("ROS_AUTOMATIC_DISCOVERY_RANGE",
                               EnvironmentVariable("ROS_AUTOMATIC_DISCOVERY_RANGE", default_value="LOCALHOST")),
        *nodes,
    ])
