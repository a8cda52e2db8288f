"""Full 3D boxes for every instance of a cloud: footprint, support, shape prior, completion.

Each object gets a box (:func:`fit_all`): its footprint is the minimum-area rectangle of its points
projected on the support plane, its bottom is the plane (or the top of the object it stands on), its top
is its highest point. A camera sees only the near faces, so the visible-surface mean is biased toward the
camera; the box centre is not. Footprints cut short by an occluder or the image border are completed with
a shape prior (cubes are square, round things are round), extended toward the hidden side. Shapes are
named once the support is known (:func:`_classify`): heights count from the support, and the side walls
(straight faces or an arc) tell cubes from cylinders even with the top hidden.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ...camera import project, to_camera
from ...types import CameraPose, SceneObject
from .cloud import SceneCloud
from .colors import color_name, representative_rgb
from .shapes import (Rectangle, WallFit, classify_shape, fit_sphere, fit_walls, min_area_rectangle, outline,
                     rectangle_at)
from .support_plane import PlaneFrame, level_plane_under
from .supports import SUPPORT_BAND_M, resolve_supports
from .visibility import visible_fraction

#: Shapes whose prior makes a footprint round (square box of the longest side, or a sphere).
ROUND_SHAPES = ("cylinder", "plate", "sphere")
#: A footprint whose short side is under this share of its long side is not round, whatever its shape prior.
ROUND_ASPECT = 0.8
#: Objects with fewer points than this are ignored (noise, slivers at the image border).
MIN_OBJECT_POINTS = 10
#: Percentiles taken as an object's lowest and highest visible height (stray edge pixels ignored).
HEIGHT_PERCENTILES = (0.5, 99.5)
#: Fewest points for a sphere fit or a top-face rectangle (fewer give unstable fits).
MIN_FIT_POINTS = 20
#: A fitted sphere smaller than this radius (metres) is a fit to noise.
MIN_SPHERE_RADIUS_M = 1e-3
#: The top face is the points within this of the top (metres), or this share of the height if larger.
TOP_BAND_M = 0.004
TOP_BAND_SHARE = 0.08
#: A cylinder's wall arc wider than this share of its footprint is a stray arc, not its wall.
MAX_ARC_RADIUS_SHARE = 0.75
#: Pixel offsets at which a neighbour of another, nearer object counts as occluding this one.
OCCLUSION_STEPS = (1, 2)
#: A neighbour hides this object when it is nearer by more than this (metres).
OCCLUDER_DEPTH_M = 0.01
#: Fewer occluder/border pixels than this say nothing about where the hidden part lies.
MIN_OCCLUSION_PIXELS = 4
#: Step (metres) of the finite differences that map image directions onto the plane.
JACOBIAN_STEP_M = 0.01
#: A footprint shorter than this share of the shape prior's expected side is completed.
COMPLETE_BELOW = 0.85
#: Without an occluder, only a footprint this thin (a lone side face) is completed.
SIDE_ONLY_BELOW = 0.4
#: The camera sees an object's top when it is above it by this share of the distance (~9 degrees down).
SEES_TOP_SLOPE = 0.15
#: A sphere's diameter is kept within this range of its height above the support (a bad fit is clipped).
SPHERE_DIAMETER_RANGE = (0.8, 1.25)


@dataclass
class _Footprint:
    """Intermediate fit of one object in plane coordinates."""

    id: int
    rect: Rectangle  # the footprint (padded, completed)
    seen: Rectangle  # the rectangle of the points as seen, for shape classification
    low: float  # lowest visible height above the plane
    top: float
    shape: str
    color: str
    pixel_count: int
    sphere: tuple[np.ndarray, float, float] | None = None  # (centre (a, b), radius, RMS residual / radius)
    support: float = 0.0
    ab: np.ndarray | None = None  # the points in plane coordinates
    pixel_m: float = 0.0  # one pixel's footprint at the object's depth
    top_rect: Rectangle | None = None  # rectangle of the top face's points
    walls: WallFit | None = None  # fit of the side walls' points
    outlined: tuple[np.ndarray, float] | None = None  # shapes.outline of ``ab`` (kept for a re-fit)


def fit_all(cloud: SceneCloud, depth_image: np.ndarray, id_image: np.ndarray,
            names: dict[int, str] | None, noise_m: float = 0.0) -> list[SceneObject]:
    """One SceneObject per instance id > 0 of ``cloud`` with enough points, in id order.

    Args:
        cloud: the scene cloud (its plane, or a level plane under it when it has none, is the support).
        depth_image: HxW depth the source camera sees (NaN where nothing is known), for visibility.
        id_image: HxW instance ids the source camera sees.
        names: ``{id: name}`` to use; other ids are named "<colour> <shape>", numbered when repeated.
        noise_m: RMS depth noise measured on the support (0 for exact depth): the part of a sphere fit's
            residual it explains is not held against the sphere.
    """
    plane = cloud.plane
    if plane is None:  # no support found: a level plane under the lowest point, so boxes still close
        plane = level_plane_under(cloud.points)
    frame = PlaneFrame.from_plane(plane)
    on_objects = np.flatnonzero(cloud.ids > 0)
    # PlaneFrame.to_plane's height, without the in-plane coordinates it also computes (the same expression)
    heights = np.asarray(cloud.points[on_objects], dtype=np.float64) @ frame.normal + frame.plane[3]
    # Points at support height carry no shape information (the box reaches the plane anyway), and they
    # are where a mask that is a pixel off its depth image leaks onto the table behind the object.
    keep = on_objects[heights > SUPPORT_BAND_M]
    kept_ids = cloud.ids[keep]
    pixel_counts = np.bincount(cloud.ids[on_objects])  # every point of each instance, support band included
    footprints = []
    for instance_id in np.unique(kept_ids):
        members = keep[kept_ids == instance_id]
        if len(members) < MIN_OBJECT_POINTS:
            continue
        footprints.append(_fit_footprint(int(instance_id), cloud.points[members], cloud.colors[members], frame,
                                         cloud.source))
        footprints[-1].pixel_count = int(pixel_counts[instance_id])
    resolve_supports(footprints)
    for fp in footprints:
        _classify(fp, noise_m)
        if names and fp.id in names:
            _heed_label(fp, names[fp.id])

    objects, used = [], set()
    for fp in footprints:
        _complete_footprint(fp, frame, cloud.source, depth_image, id_image)
        if names and fp.id in names:
            name = names[fp.id]
        else:
            name = _unique_name(f"{fp.color} {fp.shape}".strip(), used)
        used.add(name.lower())
        objects.append(_to_scene_object(fp, name, frame, cloud.source, depth_image, id_image))
    return number_repeated_names(objects, cloud.source)


def number_repeated_names(objects: list[SceneObject], camera: CameraPose) -> list[SceneObject]:
    """Objects given one label ("black bowl" twice) are numbered left to right in the image.

    The numbers ("black bowl 1", "black bowl 2") say where an object appears, nothing about a task; callers
    that must address one of them for sure pass its id or SceneObject instead of a name.
    """
    groups: dict[str, list[int]] = {}
    for index, obj in enumerate(objects):
        groups.setdefault(obj.name.lower(), []).append(index)
    renamed = list(objects)
    for members in groups.values():
        if len(members) < 2:
            continue
        in_camera = to_camera(np.stack([objects[i].centroid for i in members]), camera.cam_to_world)
        column = in_camera[:, 0] / np.maximum(in_camera[:, 2], 1e-6)  # x / z grows left to right in the image
        order = sorted(range(len(members)), key=lambda k: (column[k], objects[members[k]].id))
        for rank, k in enumerate(order, start=1):
            obj = objects[members[k]]
            renamed[members[k]] = dataclasses.replace(obj, name=f"{obj.name} {rank}")
    return renamed


def _unique_name(name: str, used: set[str]) -> str:
    if name.lower() not in used:
        return name
    n = 2
    while f"{name} {n}".lower() in used:
        n += 1
    return f"{name} {n}"


def _fit_footprint(instance_id: int, points: np.ndarray, colors: np.ndarray, frame: PlaneFrame,
                   camera: CameraPose) -> _Footprint:
    """Measures one object's points; its shape is named later, once its support is known."""
    ab, h = frame.to_plane(points)
    low, top = _percentiles(h, HEIGHT_PERCENTILES)
    outlined = outline(ab) if len(ab) >= 3 else None
    seen = min_area_rectangle(ab, outlined)
    # Points are pixel centres: the surface reaches half a pixel beyond the outermost ones on each side.
    depth = float(np.median((points - camera.position) @ camera.cam_to_world[:3, 2]))
    pixel_m = depth / camera.intrinsics[0, 0]
    rect = Rectangle(seen.center, seen.size + pixel_m, seen.axes, seen.hull_area)
    sphere = None
    if len(points) >= MIN_FIT_POINTS:
        centre, radius, residual = fit_sphere(points)
        if radius > MIN_SPHERE_RADIUS_M:
            sphere = (frame.to_plane(centre[None])[0][0], radius, residual / radius)
    top_band = max(TOP_BAND_M, TOP_BAND_SHARE * max(top - low, 1e-3))
    top_face = ab[h >= top - top_band]
    return _Footprint(id=instance_id, rect=rect, seen=seen, low=low, top=top, shape="object",
                      color=color_name(representative_rgb(colors)), pixel_count=int(len(points)),
                      sphere=sphere, ab=ab, pixel_m=pixel_m,
                      top_rect=min_area_rectangle(top_face) if len(top_face) >= MIN_FIT_POINTS else None,
                      walls=fit_walls(ab[h < top - top_band]), outlined=outlined)


def _percentiles(values: np.ndarray, percentiles: tuple[float, ...]) -> list[float]:
    """``np.percentile(values, percentiles)`` (linear method) of finite values, the same bits, without its
    overhead (~0.1 ms a call on a few thousand points): one partition, then numpy's own interpolation."""
    n = len(values)
    virtual = (n - 1) * (np.asarray(percentiles, dtype=np.float64) / 100)
    previous = np.floor(virtual)
    following = previous + 1
    following[virtual >= n - 1] = n - 1  # numpy takes the last value there
    previous[virtual >= n - 1] = n - 1
    gamma = virtual - previous
    previous, following = previous.astype(np.intp), following.astype(np.intp)
    ordered = np.partition(values, np.unique(np.concatenate([previous, following])))
    a, b = ordered[previous], ordered[following]
    # numpy's _lerp: a + (b - a) t, or b - (b - a)(1 - t) from t = 0.5 on
    difference = b - a
    result = np.where(gamma >= 0.5, b - difference * (1 - gamma), a + difference * gamma)
    return [float(value) for value in result]


def _classify(fp: _Footprint, noise_m: float = 0.0) -> None:
    """Names the shape from the height above its support; fits the box of cubes and cylinders to their walls.

    The height counts from the support: a sphere resting on a plate is as tall as it is round only above the
    plate. A cube whose top is hidden (something stands on it) shows only its side faces, whose minimum-area
    rectangle is tilted, so its footprint is re-fitted square to the faces. A cylinder's wall arc gives its
    centre and radius even when half of it is hidden.
    """
    height = max(fp.top - fp.support, 1e-3)
    sphere = fp.sphere
    if sphere is not None and noise_m > 0:
        # Residuals add in quadrature: what is left after the measured noise is the shape's own misfit.
        sphere = (sphere[0], sphere[1], _less_noise(sphere[2] * sphere[1], noise_m) / sphere[1])
    walls = fp.walls
    if walls is not None and noise_m > 0:
        # The same for the wall fits: noise widens a cube's faces and a cylinder's arc alike.
        centre, radius, residual = walls.circle
        walls = WallFit((centre, radius, _less_noise(residual, noise_m)), walls.edge_angle,
                        _less_noise(walls.edge_residual, noise_m), walls.chord)
    fp.shape = classify_shape(fp.seen, height, sphere[2] if sphere else None,
                              sphere_diameter=2 * sphere[1] if sphere else None, top=fp.top_rect, walls=walls)
    if fp.shape != "sphere":
        fp.sphere = None
    if fp.walls is None:
        return
    if fp.shape == "cube" and fp.walls.flat:
        seen = rectangle_at(fp.ab, fp.walls.edge_angle, fp.outlined)
        fp.seen = seen
        fp.rect = Rectangle(seen.center, seen.size + fp.pixel_m, seen.axes, seen.hull_area)
    elif fp.shape == "cylinder" and fp.walls.round:
        centre, radius, _ = fp.walls.circle
        if radius < MAX_ARC_RADIUS_SHARE * float(np.max(fp.rect.size)):  # not a stray arc bigger than the object
            fp.rect = Rectangle(centre, np.full(2, 2 * radius), np.eye(2), fp.rect.hull_area)


def _heed_label(fp: _Footprint, label: str) -> None:
    """Drops a round shape prior that the object's label and footprint both contradict.

    The classifier knows primitives; a real mesh labelled "flat stove" or "wooden cabinet" may come out
    "plate" or "cylinder", and a round prior would square its footprint to the longest side (a stove's
    centre 5 cm off). When the label does not name the shape and the footprint seen is clearly elongated
    (:data:`ROUND_ASPECT`), the object keeps the rectangle it was seen with and no shape word.
    """
    if fp.shape not in ROUND_SHAPES or fp.shape in label.lower().split():
        return
    if float(np.min(fp.seen.size)) >= ROUND_ASPECT * float(np.max(fp.seen.size)):
        return  # round enough: a bowl or a ramekin keeps its round prior
    fp.shape, fp.sphere = "", None
    fp.rect = Rectangle(fp.seen.center, fp.seen.size + fp.pixel_m, fp.seen.axes, fp.seen.hull_area)


def _less_noise(residual: float, noise_m: float) -> float:
    """An RMS residual with the measured noise taken out in quadrature (never below zero)."""
    return float(np.sqrt(max(residual ** 2 - noise_m ** 2, 0.0)))


def _occluded_direction(fp: _Footprint, frame: PlaneFrame, camera: CameraPose, depth_image: np.ndarray,
                        id_image: np.ndarray) -> np.ndarray | None:
    """In-plane unit direction toward the part of the object hidden by an occluder or the image border."""
    rows, cols = np.nonzero(id_image == fp.id)
    if len(rows) == 0:
        return None
    full_height, full_width = id_image.shape
    # Work on the object's bounding box plus a ring of OCCLUSION_STEPS pixels, not the whole frame.
    ring = max(OCCLUSION_STEPS)
    r0, r1 = max(rows.min() - ring, 0), min(rows.max() + ring + 1, full_height)
    c0, c1 = max(cols.min() - ring, 0), min(cols.max() + ring + 1, full_width)
    ids, depth = id_image[r0:r1, c0:c1], depth_image[r0:r1, c0:c1]
    mask = ids == fp.id
    height, width = mask.shape
    pull = np.zeros(2)
    count = 0
    for dr, dc in ((0, 1), (0, -1), (1, 0), (-1, 0)):
        for step in OCCLUSION_STEPS:
            shifted_ids = np.full_like(ids, -1)
            shifted_depth = np.full(depth.shape, np.inf)
            rs = slice(max(step * dr, 0), height + min(step * dr, 0))
            rd = slice(max(-step * dr, 0), height + min(-step * dr, 0))
            cs = slice(max(step * dc, 0), width + min(step * dc, 0))
            cd = slice(max(-step * dc, 0), width + min(-step * dc, 0))
            shifted_ids[rd, cd] = ids[rs, cs]
            shifted_depth[rd, cd] = depth[rs, cs]
            # A neighbour of another object, nearer to the camera, hides this object's continuation.
            occluder = mask & (shifted_ids > 0) & (shifted_ids != fp.id) & (shifted_depth < depth - OCCLUDER_DEPTH_M)
            n = int(np.count_nonzero(occluder))
            pull += n * np.array([dc, dr], dtype=np.float64)
            count += n
    border = [(cols == 0).sum(), (cols == full_width - 1).sum(), (rows == 0).sum(),
              (rows == full_height - 1).sum()]
    pull += np.array([-border[0] + border[1], -border[2] + border[3]], dtype=np.float64)
    count += int(sum(border))
    if count < MIN_OCCLUSION_PIXELS or np.linalg.norm(pull) < 1e-9:
        return None
    # Map the image direction (du, dv) to the plane through the Jacobian of the projection at the object.
    centre = frame.to_world(fp.rect.center, fp.top)
    samples = np.stack([centre, centre + JACOBIAN_STEP_M * frame.e1, centre + JACOBIAN_STEP_M * frame.e2])
    uv = project(samples, camera.intrinsics, camera.cam_to_world)[0]
    jacobian = np.stack([uv[1] - uv[0], uv[2] - uv[0]], axis=1)
    if abs(np.linalg.det(jacobian)) < 1e-9:
        return None
    direction = np.linalg.solve(jacobian, pull / count)
    norm = np.linalg.norm(direction)
    return direction / norm if norm > 1e-9 else None


def _complete_footprint(fp: _Footprint, frame: PlaneFrame, camera: CameraPose, depth_image: np.ndarray,
                        id_image: np.ndarray) -> None:
    """Extends a footprint cut short by occlusion to the shape prior's size, toward the hidden side."""
    if fp.shape not in ("cube", "cylinder", "plate", "sphere") or fp.sphere is not None:
        return
    side = float(np.max(fp.rect.size))
    short = fp.rect.size < COMPLETE_BELOW * side
    if not short.any():
        return
    hidden = _occluded_direction(fp, frame, camera, depth_image, id_image)
    if hidden is None:
        cam_ab, cam_h = frame.to_plane(camera.position[None])
        reach = float(np.linalg.norm(fp.rect.center - cam_ab[0]))
        sees_top = cam_h[0] - fp.top > SEES_TOP_SLOPE * reach
        if sees_top or not (fp.rect.size < SIDE_ONLY_BELOW * side).any():
            return  # nothing hides it: the footprint seen is what the object is
        # Only a side face was seen (a camera level with the top): the unseen depth lies away from it.
        hidden = fp.rect.center - cam_ab[0]
    centre, size = fp.rect.center.copy(), fp.rect.size.copy()
    for axis in np.flatnonzero(short):
        direction = fp.rect.axes[:, axis]
        sign = 1.0 if direction @ hidden >= 0 else -1.0
        centre += sign * direction * (side - size[axis]) / 2
        size[axis] = side
    fp.rect = Rectangle(centre, size, fp.rect.axes, fp.rect.hull_area)


def _to_scene_object(fp: _Footprint, name: str, frame: PlaneFrame, camera: CameraPose,
                     depth_image: np.ndarray, id_image: np.ndarray) -> SceneObject:
    height = max(fp.top - fp.support, 1e-3)
    if fp.sphere is not None:
        centre_ab = fp.sphere[0]
        diameter = float(np.clip(2 * fp.sphere[1], SPHERE_DIAMETER_RANGE[0] * height,
                                 SPHERE_DIAMETER_RANGE[1] * height))
        size_ab = np.array([diameter, diameter])
        axes = np.eye(2)
    elif fp.shape in ("cylinder", "plate"):
        centre_ab, axes = fp.rect.center, np.eye(2)
        diameter = float(np.max(fp.rect.size))
        size_ab = np.array([diameter, diameter])
    else:
        centre_ab, size_ab, axes = fp.rect.center, fp.rect.size, fp.rect.axes
    centroid = frame.to_world(centre_ab, fp.support + height / 2)
    rotation = np.stack([axes[0, 0] * frame.e1 + axes[1, 0] * frame.e2,
                         axes[0, 1] * frame.e1 + axes[1, 1] * frame.e2, frame.normal], axis=1)
    extent = np.array([size_ab[0], size_ab[1], height])
    visible = visible_fraction(fp.id, fp.shape, centroid, extent, rotation, camera, depth_image, id_image)
    return SceneObject(id=fp.id, name=name, centroid=centroid, extent=extent, obb_rotation=rotation,
                       pixel_count=fp.pixel_count, visible_fraction=visible, color=fp.color, shape=fp.shape)
