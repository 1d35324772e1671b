"""`vmae bench loader`: clips/s of naive decoding vs the project's loader and its frame cache."""

from __future__ import annotations

import numpy as np


def moving_frames(num_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """A smooth, textured pattern that drifts over time: uint8 (T, H, W, 3).

    Smooth enough to survive lossy codecs closely, different in every frame (so frame order is
    testable) and across seeds.
    """
    rng = np.random.default_rng(seed)
    freq = rng.uniform(0.05, 0.2, size=(3, 2))
    phase = rng.uniform(0, 2 * np.pi, size=3)
    speed = rng.uniform(0.5, 2.0, size=2)
    t = np.arange(num_frames, dtype=np.float32)[:, None, None]
    y = np.arange(height, dtype=np.float32)[None, :, None]
    x = np.arange(width, dtype=np.float32)[None, None, :]
    channels = [
        127.5 + 120 * np.sin(freq[c, 0] * (y + speed[0] * t) + freq[c, 1] * (x + speed[1] * t) + phase[c] + 0.2 * t)
        for c in range(3)
    ]
    return np.stack(channels, axis=-1).round().astype(np.uint8)
