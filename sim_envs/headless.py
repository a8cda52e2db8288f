"""Choose a headless OpenGL backend for MuJoCo before it is imported.

MuJoCo reads ``MUJOCO_GL`` once, at import. Unset, it tries GLFW, which needs a display; on a server we
want EGL (Mesa's llvmpipe or a GPU driver), and OSMesa when no EGL library is installed.
"""

from __future__ import annotations

import ctypes.util
import os
import sys
import warnings

# (MUJOCO_GL value, shared library it needs), in order of preference.
_BACKENDS = (("egl", "EGL"), ("osmesa", "OSMesa"))


def choose_gl_backend() -> str | None:
    """Sets ``MUJOCO_GL`` (and ``PYOPENGL_PLATFORM``) to egl or osmesa unless the user already chose.

    Returns:
        The backend in effect, or None when neither library is found (MuJoCo then tries GLFW).
    """
    chosen = os.environ.get("MUJOCO_GL")
    if chosen:
        return chosen
    if "mujoco" in sys.modules:
        warnings.warn("mujoco was imported before sim_envs with MUJOCO_GL unset; offscreen rendering may "
                      "need a display. Set MUJOCO_GL=egl (or osmesa) first.", RuntimeWarning, stacklevel=3)
        return None
    for backend, library in _BACKENDS:
        if ctypes.util.find_library(library):
            os.environ["MUJOCO_GL"] = backend
            os.environ.setdefault("PYOPENGL_PLATFORM", backend)
            return backend
    return None
