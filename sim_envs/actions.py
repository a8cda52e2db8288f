"""Checks of continuous actions shared by the envs: a vector of finite numbers in [-1, 1]."""

from __future__ import annotations

from typing import Any

import numpy as np

from joyai_embodied.errors import InvalidInputError

#: Slack on the [-1, 1] bound: float32 actions from a policy land a rounding error outside it.
BOUND_SLACK = 1e-6


def check_unit_action(action: Any, size: int, expected: str) -> np.ndarray:
    """``action`` as a float64 vector of ``size`` finite numbers in [-1, 1].

    Raises:
        InvalidInputError: field ``action``, with ``expected`` (what each number means) in the message.
    """
    try:
        values = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError):
        raise InvalidInputError("action", expected, type(action).__name__) from None
    if values.shape != (size,) or not np.all(np.isfinite(values)) or np.any(np.abs(values) > 1.0 + BOUND_SLACK):
        raise InvalidInputError("action", expected, np.array2string(values, precision=3))
    return values
