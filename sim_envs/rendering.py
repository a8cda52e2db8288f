"""Offscreen RGB, metric depth and instance segmentation from any OpenCV camera pose.

One :class:`FrameRenderer` per image size owns a GL context and MuJoCo's render context and is reused
for every frame and every episode. A frame costs two passes: colour and depth are read back together
from one pass, instance ids from a second (segmentation) pass. The view is set by writing MuJoCo's
OpenGL camera (position, axes and frustum) directly from ``cam_to_world`` and ``K``, so the rendered
pixels follow exactly the pinhole model of the observation, including off-centre principal points.
"""

from __future__ import annotations

import mujoco
import numpy as np



NEAR_M = 0.01
FAR_M = 20.0  # "sky" pixels report this depth: finite metres, never inf


def _asset_signature(model: mujoco.MjModel) -> tuple:
    # What MjrContext uploads to the GPU besides fonts: if this matches, the context fits the model.
    return (model.ntex, model.nmesh, model.nhfield, model.nskin, model.nflex,
            int(model.vis.quality.shadowsize))


class FrameRenderer:
    """Renders rgb (uint8 HxWx3), depth (float32 HxW, metres) and per-geom segmentation at one size.

    Args:
        model: the model to render (see :meth:`set_model` to switch to a new episode's model).
        width: image width in pixels.
        height: image height in pixels.
    """

    def __init__(self, model: mujoco.MjModel, width: int, height: int):
        from mujoco.gl_context import GLContext  # picks EGL / OSMesa from MUJOCO_GL

        self.width, self.height = int(width), int(height)
        self._gl = GLContext(self.width, self.height)
        self._gl.make_current()
        self._context = None
        self._signature = None
        self._rect = mujoco.MjrRect(0, 0, self.width, self.height)
        self._option = mujoco.MjvOption()
        self._option.geomgroup[:] = 1  # the end effector lives in group 3, hidden by default
        self._camera = mujoco.MjvCamera()
        self._rgb = np.empty((self.height, self.width, 3), dtype=np.uint8)
        self._depth = np.empty((self.height, self.width), dtype=np.float32)
        self._ids = np.empty((self.height, self.width, 3), dtype=np.uint8)
        self.set_model(model)

    def set_model(self, model: mujoco.MjModel) -> None:
        """Points the renderer at a new model; GPU resources are rebuilt only if the assets differ."""
        self.model = model
        self._scene = mujoco.MjvScene(model, maxgeom=256)
        signature = _asset_signature(model)
        if self._context is None or signature != self._signature:
            self._gl.make_current()
            # The offscreen buffer is sized from the model's <global offwidth/offheight>: make it ours.
            model.vis.global_.offwidth, model.vis.global_.offheight = self.width, self.height
            if self._context is not None:
                self._context.free()
            self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
            mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
            self._context.readDepthMap = mujoco.mjtDepthMap.mjDEPTH_ZEROFAR
            self._signature = signature

    def _set_view(self, cam_to_world: np.ndarray, intrinsics: np.ndarray) -> None:
        # OpenGL camera axes: forward = OpenCV +z, up = OpenCV -y. The frustum at the near plane spans the
        # image edges u in [-0.5, W - 0.5], v in [-0.5, H - 0.5] (pixel centres at integers).
        fx, fy, cx, cy = intrinsics[0, 0], intrinsics[1, 1], intrinsics[0, 2], intrinsics[1, 2]
        left = NEAR_M * (-0.5 - cx) / fx
        right = NEAR_M * (self.width - 0.5 - cx) / fx
        top = NEAR_M * (cy + 0.5) / fy
        bottom = -NEAR_M * (self.height - 0.5 - cy) / fy
        for gl_camera in self._scene.camera:  # both eyes of the (unused) stereo pair
            gl_camera.pos[:] = cam_to_world[:3, 3]
            gl_camera.forward[:] = cam_to_world[:3, 2]
            gl_camera.up[:] = -cam_to_world[:3, 1]
            gl_camera.frustum_center = (left + right) / 2.0
            gl_camera.frustum_width = (right - left) / 2.0
            gl_camera.frustum_bottom = bottom
            gl_camera.frustum_top = top
            gl_camera.frustum_near = NEAR_M
            gl_camera.frustum_far = FAR_M
            gl_camera.orthographic = 0

    def render(self, data: mujoco.MjData, cam_to_world: np.ndarray, intrinsics: np.ndarray,
               geom_to_instance: np.ndarray) -> dict[str, np.ndarray]:
        """Renders one frame.

        Args:
            data: simulation state to draw.
            cam_to_world: 4x4 OpenCV camera pose.
            intrinsics: 3x3 K at this renderer's size.
            geom_to_instance: int32 array mapping each geom id to its instance id (0 = background).

        Returns:
            dict with "rgb" (H, W, 3) uint8, "depth" (H, W) float32 metric z-depth, "segmentation" (H, W) int32.
        """
        self._gl.make_current()
        scene = self._scene
        mujoco.mjv_updateScene(self.model, data, self._option, None, self._camera,
                               mujoco.mjtCatBit.mjCAT_ALL, scene)
        self._set_view(np.asarray(cam_to_world, dtype=np.float64), np.asarray(intrinsics, dtype=np.float64))

        # Pass 1: colour and depth together.
        scene.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 0
        scene.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 0
        mujoco.mjr_render(self._rect, scene, self._context)
        mujoco.mjr_readPixels(self._rgb, self._depth, self._rect, self._context)

        # Pass 2: every geom drawn in a flat colour that encodes its index in the scene + 1.
        scene.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 1
        scene.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 1
        mujoco.mjr_render(self._rect, scene, self._context)
        mujoco.mjr_readPixels(self._ids, None, self._rect, self._context)
        scene.flags[mujoco.mjtRndFlag.mjRND_SEGMENT] = 0
        scene.flags[mujoco.mjtRndFlag.mjRND_IDCOLOR] = 0
        lookup = np.zeros(max(scene.ngeom + 2, 256), dtype=np.int32)
        for index in range(scene.ngeom):
            geom = scene.geoms[index]
            if geom.objtype == mujoco.mjtObj.mjOBJ_GEOM and geom.segid >= 0:
                lookup[geom.segid + 1] = geom_to_instance[geom.objid]

        # GL rows run bottom-up: every output is read through a flipped view, in one pass each.
        if scene.ngeom < 255:  # all scene indices fit in the red byte
            segmentation = lookup[self._ids[::-1, :, 0]]
        else:
            ids = self._ids[::-1].astype(np.int32)
            segmentation = lookup[ids[..., 0] | (ids[..., 1] << 8) | (ids[..., 2] << 16)]
        # Reversed-z depth buffer (1 at near, 0 at far) -> metric z-depth: near * far / (b (far - near) + near).
        # In float32 the relative error is ~1e-7 (0.1 um at 1 m).
        depth = np.float32(NEAR_M * FAR_M) / (self._depth[::-1] * np.float32(FAR_M - NEAR_M) + np.float32(NEAR_M))
        return {"rgb": self._rgb[::-1].copy(), "depth": depth, "segmentation": segmentation}

    def close(self) -> None:
        """Frees the GL resources (safe to call twice)."""
        if self._context is not None:
            self._gl.make_current()
            self._context.free()
            self._context = None
        if self._gl is not None:
            self._gl.free()
            self._gl = None
