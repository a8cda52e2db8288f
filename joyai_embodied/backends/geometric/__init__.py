"""The geometric backend: exact spatial reasoning and forward-warped novel views from RGB-D, on CPU.

See README.md in this folder. ``perception`` lifts frames to objects, ``reasoning`` and ``questions``
answer, ``render`` and ``editing`` imagine.
"""

from .backend import GeometricBackend

__all__ = ["GeometricBackend"]
