"""Starts the spatial-reasoning and imagination nodes (for users with a ROS 2 install and ``ros2 launch``).

    ros2 launch joyai_embodied joyai.launch.py preset:=geometric
    ros2 launch joyai_embodied joyai.launch.py preset:=joyai-image device:=cuda params_file:=my.yaml
    ros2 launch joyai_embodied joyai.launch.py with_sim_bridge:=true sim_width:=320 sim_height:=240

The nodes run as ``python3 -m ros_nodes.nodes.<node>`` (the package installs no per-node executables, so
the same launch file works for pip and colcon installs). Each node loads its own model and keeps its
own scenes here (a scene_id from one is unknown to the other); to load a large model once and share
scene ids, run ``joyai-embodied ros`` instead (both nodes in one process). Discovery stays
on localhost unless ROS_AUTOMATIC_DISCOVERY_RANGE is already set otherwise.
"""

import os

from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, ExecuteProcess, SetEnvironmentVariable
from launch.conditions import IfCondition
from launch.substitutions import EnvironmentVariable, LaunchConfiguration

#: (process name, module run as ``python3 -m``)
NODES = (("spatial_reasoning_node", "ros_nodes.nodes.spatial_reasoning"),
         ("imagination_node", "ros_nodes.nodes.imagination"))


def generate_launch_description() -> LaunchDescription:
    here = os.path.dirname(os.path.abspath(__file__))
    default_params = os.path.join(os.path.dirname(here), "config", "joyai.yaml")
    arguments = {"preset": ("geometric", "model preset or backend"),
                 "device": ("''", "device for learned backends"),
                 "address": ("''", "model server address (remote backend)"),
                 "namespace": ("/", "namespace of the camera topics"),
                 "params_file": (default_params, "parameters YAML (see ros_nodes/config/joyai.yaml)"),
                 "with_sim_bridge": ("false", "also start sim_bridge_node (the simulator as camera + robot)"),
                 "sim_seed": ("0", "sim bridge: seed of the first episode"),
                 "sim_width": ("640", "sim bridge: image width"),
                 "sim_height": ("480", "sim bridge: image height"),
                 "sim_camera": ("front", "sim bridge: observation camera (front, side, top)")}

    def node(name: str, module: str) -> ExecuteProcess:
        cmd = ["python3", "-m", module, "--ros-args",
               "-r", ["__ns:=", LaunchConfiguration("namespace")],
               "--params-file", LaunchConfiguration("params_file")]
        for name in ("preset", "device", "address"):  # '' (YAML empty string) keeps the preset's value
            cmd += ["-p", [f"{name}:=", LaunchConfiguration(name)]]
        return ExecuteProcess(cmd=cmd, name=name, output="screen")

    # The simulator publishes the camera topics the nodes subscribe to, in the same namespace.
    sim_bridge = ExecuteProcess(
        cmd=["python3", "-m", "ros_nodes.nodes.sim_bridge", "--ros-args",
             "-r", ["__ns:=", LaunchConfiguration("namespace")],
             "--params-file", LaunchConfiguration("params_file"),  # the same topic names as the nodes
             *(arg for name in ("seed", "width", "height", "camera")
               for arg in ("-p", [f"{name}:=", LaunchConfiguration(f"sim_{name}")]))],
        name="sim_bridge_node", output="screen", condition=IfCondition(LaunchConfiguration("with_sim_bridge")))

    return LaunchDescription([
        *(DeclareLaunchArgument(name, default_value=default, description=text)
          for name, (default, text) in arguments.items()),
        SetEnvironmentVariable("ROS_AUTOMATIC_DISCOVERY_RANGE",
                               EnvironmentVariable("ROS_AUTOMATIC_DISCOVERY_RANGE", default_value="LOCALHOST")),
        *(node(name, module) for name, module in NODES),
        sim_bridge,
    ])
