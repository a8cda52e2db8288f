"""Camera geometry of the joyai-image backend: generation buckets, the intrinsics of what was generated,
orbit recovery for CameraPose requests, and the red target box of MoveObject edits.

The pipeline resizes its input to *cover* an aspect-ratio bucket and centre-crops it (diffusers'
``resize_center_crop``), then generates at the bucket size; the backend resizes the result back to the
requested size. When the bucket's aspect differs from the input's (640x480 -> 1152x832 at 1024 px),
rows or columns are cropped and the resize back stretches one axis: the generated view then has a
different focal length and principal point from the input camera (3.8% vertically for 640x480).
:class:`Framing` follows every pixel through those steps so the returned intrinsics are the ones of the
returned image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np
from PIL import Image, ImageDraw

from ...camera import project
from ...errors import ImpossibleCameraMoveError, InvalidInputError
from ...types import CameraMove, CameraPose, Observation, SceneObject

#: Spatial size granularity of the pipeline: VAE downsampling (8) x transformer patch (2).
SIZE_MULTIPLE = 16


def bucket_processor(resolution: int, vae_scale_factor: int):
    """The pipeline's resize-and-crop processor with its 1024-px aspect buckets scaled to ``resolution``.

    diffusers only ships buckets for a 1024 base; the same aspect ratios scaled down keep small test
    images (and faster 512-px runs) on sizes the VAE and the transformer patches divide.
    """
    from diffusers.pipelines.joyimage.image_processor import JoyImageEditImageProcessor

    class ScaledBucketProcessor(JoyImageEditImageProcessor):
        def get_default_height_width(self, image, height=None, width=None):
            bucket = super().get_default_height_width(image, height, width)
            scale = self.resolution / 1024.0
            return tuple(max(SIZE_MULTIPLE, int(round(side * scale / SIZE_MULTIPLE)) * SIZE_MULTIPLE)
                         for side in bucket)

    processor = ScaledBucketProcessor(vae_scale_factor=vae_scale_factor)
    processor.resolution = resolution
    return processor


def _resize_map(source: int, target: int) -> tuple[float, float]:
    """(scale, offset) of a resize from ``source`` to ``target`` pixels in pixel-centre coordinates.

    PIL (like OpenCV's K) puts pixel centres at integers: x' + 0.5 = (x + 0.5) * target / source.
    """
    scale = target / source
    return scale, 0.5 * (scale - 1.0)


@dataclass(frozen=True)
class Framing:
    """Where an input image of ``width`` x ``height`` lands in its generation bucket.

    Mirrors diffusers' ``resize_center_crop``: scale to cover the bucket (sizes rounded up), then crop
    the centre ``bucket_width`` x ``bucket_height``.
    """

    width: int
    height: int
    bucket_width: int
    bucket_height: int

    @property
    def resized(self) -> tuple[int, int]:
        """(width, height) of the input after the covering resize, before the crop."""
        scale = max(self.bucket_height / self.height, self.bucket_width / self.width)
        return math.ceil(self.width * scale), math.ceil(self.height * scale)

    @property
    def crop_offset(self) -> tuple[int, int]:
        """(left, top) pixels cut off the resized input."""
        resized_width, resized_height = self.resized
        return (resized_width - self.bucket_width) // 2, (resized_height - self.bucket_height) // 2

    def input_to_bucket(self) -> np.ndarray:
        """3x3 map from input pixel coordinates to bucket pixel coordinates."""
        (resized_width, resized_height), (left, top) = self.resized, self.crop_offset
        sx, ox = _resize_map(self.width, resized_width)
        sy, oy = _resize_map(self.height, resized_height)
        return np.array([[sx, 0.0, ox - left], [0.0, sy, oy - top], [0.0, 0.0, 1.0]])

    def bucket_to_output(self, width: int, height: int) -> np.ndarray:
        """3x3 map from bucket pixels to the pixels of the bucket image resized to ``width`` x ``height``."""
        sx, ox = _resize_map(self.bucket_width, width)
        sy, oy = _resize_map(self.bucket_height, height)
        return np.array([[sx, 0.0, ox], [0.0, sy, oy], [0.0, 0.0, 1.0]])

    def generated_intrinsics(self, intrinsics: np.ndarray, width: int, height: int) -> np.ndarray:
        """K of a view generated from an input with ``intrinsics`` and resized to ``width`` x ``height``.

        The model keeps the input's field of view (zoom is the only field-of-view word of its prompt),
        so this is the input camera seen through the crop and the two resizes.
        """
        return self.bucket_to_output(width, height) @ self.input_to_bucket() @ np.asarray(intrinsics, float)


def framing_for(processor, image: Image.Image) -> Framing:
    """The :class:`Framing` the pipeline's ``processor`` gives ``image``."""
    bucket_height, bucket_width = processor.get_default_height_width(image)
    return Framing(image.width, image.height, int(bucket_width), int(bucket_height))


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized to ``size`` = (width, height) with bicubic filtering (unchanged when equal)."""
    if (image.shape[1], image.shape[0]) == size:
        return image
    return np.asarray(Image.fromarray(image).resize(size, Image.BICUBIC))


def move_towards(observed: CameraPose, target: CameraPose, pivot: np.ndarray) -> CameraMove:
    """The orbit (yaw, pitch, zoom about ``pivot``) that best takes ``observed`` to ``target``.

    Yaw is the change of the camera's azimuth about the vertical through the pivot, pitch the change of
    its elevation, zoom the ratio of distances. Roll and look-at offsets are not expressible in the
    model's camera prompt and are ignored.

    Raises:
        ImpossibleCameraMoveError: a camera sits at the pivot (no direction to orbit from).
    """
    def polar(pose: CameraPose) -> tuple[float, float, float]:
        offset = pose.position - pivot
        distance = float(np.linalg.norm(offset))
        if distance < 1e-6:
            raise ImpossibleCameraMoveError("camera", "a camera away from the scene pivot", "at the pivot")
        return (math.degrees(math.atan2(offset[1], offset[0])),
                math.degrees(math.asin(np.clip(offset[2] / distance, -1, 1))), distance)

    azimuth0, elevation0, distance0 = polar(observed)
    azimuth1, elevation1, distance1 = polar(target)
    yaw = (azimuth1 - azimuth0 + 180.0) % 360.0 - 180.0
    pitch = float(np.clip(elevation1 - elevation0, -89.0, 89.0))
    return CameraMove(yaw_deg=yaw, pitch_deg=pitch, zoom=float(np.clip(distance0 / distance1, 0.1, 10.0)))


def _box_corners(centre: np.ndarray, extent: np.ndarray, rotation: np.ndarray) -> np.ndarray:
    signs = np.array([[x, y, z] for x in (-0.5, 0.5) for y in (-0.5, 0.5) for z in (-0.5, 0.5)])
    return centre + (signs * extent) @ np.asarray(rotation).T


def draw_target_box(observation: Observation, obj: SceneObject, to: Sequence[float]) -> np.ndarray:
    """The image with a red rectangle around where ``obj`` would appear with its base centre at ``to``.

    Raises:
        InvalidInputError: (``edit.to``) the target is behind the camera or its box leaves the image.
    """
    extent = np.asarray(obj.extent, dtype=np.float64)
    centre = np.asarray(to, dtype=np.float64) + np.array([0.0, 0.0, extent[2] / 2])
    pixels, depth = project(_box_corners(centre, extent, obj.obb_rotation), observation.intrinsics,
                            observation.cam_to_world)
    if np.any(depth <= 1e-3):
        raise InvalidInputError("edit.to", "a target in front of the camera", list(to))
    left, top = np.floor(pixels.min(axis=0)).astype(int)
    right, bottom = np.ceil(pixels.max(axis=0)).astype(int)
    if left < 0 or top < 0 or right >= observation.width or bottom >= observation.height:
        raise InvalidInputError("edit.to", f"a target whose box projects inside the {observation.width}x"
                                f"{observation.height} image", f"box ({left}, {top})-({right}, {bottom}) px")
    image = Image.fromarray(observation.rgb.copy())
    line = max(2, min(observation.width, observation.height) // 100)
    ImageDraw.Draw(image).rectangle([left, top, right, bottom], outline=(255, 0, 0), width=line)
    return np.asarray(image)


def moved(obj: SceneObject, to: Sequence[float]) -> SceneObject:
    """``obj`` with its base centre at ``to`` (what the edit asked for, not what the model drew)."""
    centroid = np.asarray(to, dtype=np.float64) + np.array([0.0, 0.0, obj.extent[2] / 2])
    return SceneObject(id=obj.id, name=obj.name, centroid=centroid, extent=obj.extent,
                       obb_rotation=obj.obb_rotation, pixel_count=obj.pixel_count,
                       visible_fraction=obj.visible_fraction, color=obj.color, shape=obj.shape)
