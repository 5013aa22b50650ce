"""Run-length helpers over boolean sample masks (half-open ``[start, end)`` index ranges)."""

from __future__ import annotations

import numpy as np


def runs(mask: np.ndarray) -> np.ndarray:
    """(k, 2) half-open [start, end) index ranges where ``mask`` is True."""
    d = np.diff(np.concatenate(([0], mask.view(np.int8) if mask.dtype == bool else mask, [0])))
    return np.stack([np.flatnonzero(d == 1), np.flatnonzero(d == -1)], axis=1)
