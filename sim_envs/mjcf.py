"""MJCF for one episode: floor, table, a mocap suction end effector and the layout's objects.

Every episode's model is built from this one template, so all of them share the same assets (no meshes,
no textures): the renderer relies on that to keep its GL resources across episodes.
"""

from __future__ import annotations

import math

from .constants import FLOOR_COLOR, TABLE_COLOR, TABLE_HALF_SIZE, TABLE_HEIGHT
from .scene import ObjectSpec

#: Geom group of the end effector's visual geoms (never collide; excluded from ray casts).
EE_GEOM_GROUP = 3
#: Where the end effector starts (its suction tip), world frame.
EE_HOME = (-0.30, 0.0, TABLE_HEIGHT + 0.30)
TABLE_THICKNESS = 0.04


def _rgba(rgb: tuple[float, float, float], alpha: float = 1.0) -> str:
    return " ".join(f"{c:.4f}" for c in (*rgb, alpha))


def _object_xml(spec: ObjectSpec) -> str:
    sx, sy, sz = spec.size
    if spec.shape == "cube":
        geom = f'type="box" size="{sx / 2:.5f} {sy / 2:.5f} {sz / 2:.5f}"'
    elif spec.shape == "sphere":
        # Rolling friction (condim 6) keeps a sphere where it was put instead of rolling off the table.
        geom = f'type="sphere" size="{sx / 2:.5f}" condim="6" friction="1 0.005 0.002"'
    else:  # cylinder and plate
        geom = f'type="cylinder" size="{sx / 2:.5f} {sz / 2:.5f}"'
    x, y, z = spec.position
    half_yaw = spec.yaw / 2.0
    quat = f"{math.cos(half_yaw):.6f} 0 0 {math.sin(half_yaw):.6f}"
    return (f'<body name="obj_{spec.id}" pos="{x:.5f} {y:.5f} {z:.5f}" quat="{quat}">'
            f'<freejoint name="obj_{spec.id}"/>'
            f'<geom name="obj_{spec.id}" {geom} rgba="{_rgba(spec.rgb)}" density="600"/></body>')


def build_mjcf(objects: list[ObjectSpec], timestep: float = 0.002) -> str:
    """Returns the MJCF text of a scene holding ``objects`` (each gets a free body ``obj_<id>``).

    Args:
        objects: the layout from :func:`sim_envs.scene.generate_scene`.
        timestep: physics step in seconds.

    Returns:
        MJCF XML as a string; lights cast no shadows (the env can switch them on).
    """
    hx, hy = TABLE_HALF_SIZE
    legs = "".join(
        f'<geom type="box" size="0.025 0.025 {(TABLE_HEIGHT - TABLE_THICKNESS) / 2:.4f}" '
        f'pos="{sx * (hx - 0.05):.3f} {sy * (hy - 0.05):.3f} {(TABLE_HEIGHT - TABLE_THICKNESS) / 2:.4f}" '
        f'rgba="{_rgba(TABLE_COLOR)}"/>'
        for sx in (-1, 1) for sy in (-1, 1))
    welds = "".join(f'<weld name="grip_{o.id}" body1="ee" body2="obj_{o.id}" active="false" solref="0.01 1"/>'
                    for o in objects)
    return f"""<mujoco model="tabletop_spatial">
  <option timestep="{timestep}" integrator="implicitfast"/>
  <visual>
    <headlight ambient="0.4 0.4 0.4" diffuse="0.45 0.45 0.45" specular="0.05 0.05 0.05"/>
    <map znear="0.01" zfar="20"/>
    <quality shadowsize="2048" offsamples="0"/>
    <!-- offsamples=0: no multisampling, so depth and ids are sampled at pixel centres like rgb. -->
    <global offwidth="64" offheight="64"/>
  </visual>
  <worldbody>
    <light name="sun" directional="true" pos="0.3 -0.3 3" dir="-0.1 0.1 -1" castshadow="false"
           diffuse="0.45 0.45 0.45" specular="0.1 0.1 0.1"/>
    <geom name="floor" type="plane" size="3 3 0.1" rgba="{_rgba(FLOOR_COLOR)}"/>
    <body name="table">
      <geom name="table_top" type="box" size="{hx} {hy} {TABLE_THICKNESS / 2}"
            pos="0 0 {TABLE_HEIGHT - TABLE_THICKNESS / 2}" rgba="{_rgba(TABLE_COLOR)}"/>
      {legs}
    </body>
    <body name="ee" mocap="true" pos="{EE_HOME[0]} {EE_HOME[1]} {EE_HOME[2]}">
      <geom name="ee_cup" type="cylinder" size="0.014 0.008" pos="0 0 0.008" contype="0" conaffinity="0"
            group="{EE_GEOM_GROUP}" rgba="0.15 0.15 0.17 1"/>
      <geom name="ee_rod" type="cylinder" size="0.007 0.15" pos="0 0 0.166" contype="0" conaffinity="0"
            group="{EE_GEOM_GROUP}" rgba="0.55 0.56 0.6 1"/>
    </body>
    {"".join(_object_xml(o) for o in objects)}
  </worldbody>
  <equality>{welds}</equality>
</mujoco>"""
