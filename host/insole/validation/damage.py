"""Transport damage applied to a raw serial capture, as the simulator's faults do to its frames.

For checking the analysis on real recordings (converted by :mod:`insole.validation.datasets`)
under the same loss and corruption the simulator injects: each frame (``protocol.frame``, ended by
its 0x00 delimiter) is dropped with probability ``loss_pct`` / 100, or has one byte changed with
probability ``corrupt_pct`` / 100 (never into 0x00, so the damage stays inside that frame). The
first frame (the INFO packet) is always kept whole. The same seed gives the same bytes.
"""

from __future__ import annotations

import numpy as np


def damage_capture(data: bytes, loss_pct: float = 0.0, corrupt_pct: float = 0.0,
                   seed: int = 1) -> bytes:
    """``data`` (a raw serial capture) with frames lost and corrupted (module docstring)."""
    if not (0.0 <= loss_pct <= 100.0 and 0.0 <= corrupt_pct <= 100.0):
        raise ValueError("loss_pct and corrupt_pct must be 0-100")
    frames = data.split(b"\x00")
    tail = frames.pop()  # bytes after the last delimiter (normally empty)
    rng = np.random.default_rng([seed, 0xDA3A6E])
    draws = rng.random((len(frames), 3))
    vals = rng.integers(1, 256, len(frames))
    out = []
    for k, fr in enumerate(frames):
        lost, bad, pos = draws[k]
        if k > 0 and lost < loss_pct / 100.0:
            continue
        if k > 0 and bad < corrupt_pct / 100.0 and fr:
            i = int(pos * len(fr))
            b = fr[i] ^ int(vals[k])
            fr = fr[:i] + bytes([b if b else 0x01]) + fr[i + 1:]
        out.append(fr + b"\x00")
    return b"".join(out) + tail
