"""Renders one LIBERO camera in the project's conventions with MuJoCo's own renderer.

robosuite's renderer returns bottom-up images and normalised depth; ``mujoco.Renderer`` returns upright
images and metric z-depth directly, so nothing needs flipping or converting. Segmentation comes back as
(geom id, object type); geoms are mapped to instance ids with a lookup table the env builds.
"""

from __future__ import annotations

import math

import mujoco
import numpy as np

#: OpenGL camera frame (x right, y up, looking down -z) -> OpenCV (x right, y down, z forward).
GL_TO_CV = np.diag([1.0, -1.0, -1.0, 1.0])


def intrinsics(width: int, height: int, fovy_deg: float) -> np.ndarray:
    """K with square pixels and pixel centres at integer coordinates (MuJoCo's fovy is vertical)."""
    focal = height / (2.0 * math.tan(math.radians(fovy_deg) / 2.0))
    return np.array([[focal, 0.0, (width - 1) / 2.0], [0.0, focal, (height - 1) / 2.0], [0.0, 0.0, 1.0]])


class CameraRenderer:
    """RGB, metric depth and instance segmentation of one named camera at one size.

    Args:
        model: the simulator's MjModel (shadows are switched off on it: they cost most of the render time).
        camera: camera name in the model (``"agentview"``, ``"robot0_eye_in_hand"``).
        width: image width in pixels.
        height: image height in pixels.
    """

    def __init__(self, model: mujoco.MjModel, camera: str, width: int, height: int):
        self.model, self.camera, self.width, self.height = model, camera, width, height
        self.camera_id = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
        model.light_castshadow[:] = 0
        self._renderer = mujoco.Renderer(model, height, width)
        # Sites (robosuite's markers) would cover objects in segmentation: hide them in every pass.
        self._option = mujoco.MjvOption()
        self._option.sitegroup[:] = 0

    def render(self, data: mujoco.MjData, geom_to_instance: np.ndarray) -> dict[str, np.ndarray]:
        """Renders the camera now.

        Args:
            data: the simulator state to draw.
            geom_to_instance: (ngeom,) int32 instance id per geom (0 = background and robot).

        Returns:
            ``{"rgb", "depth", "segmentation", "intrinsics", "cam_to_world"}`` in the project's conventions.
        """
        renderer = self._renderer
        renderer.update_scene(data, camera=self.camera_id, scene_option=self._option)
        rgb = renderer.render().copy()
        renderer.enable_depth_rendering()
        renderer.update_scene(data, camera=self.camera_id, scene_option=self._option)
        depth = renderer.render().astype(np.float32, copy=True)
        renderer.disable_depth_rendering()
        renderer.enable_segmentation_rendering()
        renderer.update_scene(data, camera=self.camera_id, scene_option=self._option)
        raw = renderer.render()
        renderer.disable_segmentation_rendering()
        geom, kind = raw[..., 0], raw[..., 1]
        is_geom = (kind == int(mujoco.mjtObj.mjOBJ_GEOM)) & (geom >= 0) & (geom < len(geom_to_instance))
        segmentation = np.where(is_geom, geom_to_instance[np.clip(geom, 0, len(geom_to_instance) - 1)], 0)
        return {"rgb": rgb, "depth": depth, "segmentation": segmentation.astype(np.int32),
                "intrinsics": intrinsics(self.width, self.height, float(self.model.cam_fovy[self.camera_id])),
                "cam_to_world": self.cam_to_world(data)}

    def cam_to_world(self, data: mujoco.MjData) -> np.ndarray:
        """4x4 OpenCV camera pose in the world (the eye-in-hand camera moves with the arm)."""
        pose = np.eye(4)
        pose[:3, :3] = data.cam_xmat[self.camera_id].reshape(3, 3)
        pose[:3, 3] = data.cam_xpos[self.camera_id]
        return pose @ GL_TO_CV

    def close(self) -> None:
        self._renderer.close()
